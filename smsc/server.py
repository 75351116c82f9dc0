"""The tenant-facing SMPP listener: one ``Connection`` (role SMSC) per accepted socket.

Plain TCP today; the factory is the seam where a TLS listener (an ``ssl`` context passed to
``create_server``) plugs in later. Connections beyond ``max_connections`` are closed at once.
A ``smsc.listeners.Listener``: ``start`` binds (``OSError`` when it cannot), ``close`` ends.
"""

from __future__ import annotations

import asyncio
import logging

from config import ListenConfig
from encoding.session import Event, Role, SessionConfig
from esme import Connection, ConnectionHandler

__all__ = ["TenantListener"]

log = logging.getLogger("smsc.listener")


class _Refuse(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class TenantListener:
    """Accepts tenant connections and tracks them until they close: the connections report
    to the listener, which passes everything on to ``handler`` and forgets a connection
    once it has closed."""

    def __init__(self, config: ListenConfig, handler: ConnectionHandler,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.handler = handler
        self.loop = loop
        self.connections: set[Connection] = set()
        self.server: asyncio.Server | None = None
        self.session_config = SessionConfig(
            session_init_s=config.session_init_s, enquire_link_s=config.enquire_link_s,
            inactivity_s=config.inactivity_s, response_timeout_s=config.response_timeout_s,
            max_command_length=config.max_command_length, window=10)

    def _factory(self) -> asyncio.Protocol:
        if len(self.connections) >= self.config.max_connections:
            log.warning("connection refused: %d connections already", len(self.connections))
            return _Refuse()
        conn = Connection(Role.SMSC, self.session_config, self, self.loop)
        self.connections.add(conn)
        return conn

    # --- ConnectionHandler of every tenant connection ---------------------------------------

    def on_events(self, conn: Connection, events: list[Event]) -> None:
        self.handler.on_events(conn, events)

    def on_closed(self, conn: Connection, reason: str) -> None:
        try:
            self.handler.on_closed(conn, reason)
        finally:
            self.connections.discard(conn)

    async def start(self) -> int:
        """Listen; returns the port (useful with port 0). Raises OSError when it cannot."""
        self.server = await self.loop.create_server(
            self._factory, self.config.host, self.config.port, reuse_address=True, backlog=1024)
        return int(self.server.sockets[0].getsockname()[1])

    def stop_accepting(self) -> None:
        if self.server is not None:
            self.server.close()

    async def close(self, timeout: float) -> None:
        """Stop accepting, unbind every session, wait (bounded) for them to go, then drop
        what is left. Safe when ``start`` failed or never ran."""
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            if conn.session.bound:
                conn.unbind()
            else:
                conn.close()
        deadline = self.loop.time() + timeout
        while self.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.abort()
        if self.server is not None:
            await self.server.wait_closed()
