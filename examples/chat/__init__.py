"""The chat example (a session counter page until the chat lands)."""
