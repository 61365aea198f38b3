"""Runnable examples for aio_sessions."""
