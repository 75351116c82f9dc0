"""Operator side: the asyncio session adapter, the pool of binds to operator SMSCs."""

from .connection import Connection, ConnectionHandler

__all__ = ["Connection", "ConnectionHandler"]
