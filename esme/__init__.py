"""Operator side: the asyncio session adapter, the pool of binds to operator SMSCs."""

from .connection import Connection, ConnectionHandler
from .pool import Pool

__all__ = ["Connection", "ConnectionHandler", "Pool"]
