"""The chat example: sessions, a guarded WebSocket and logout everywhere (see README.md)."""
