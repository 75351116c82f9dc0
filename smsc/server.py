"""The tenant-facing SMPP listener: one ``Connection`` (role SMSC) per accepted socket.

One listener serves the plain port (``[listen]``, ``start``) and, when configured, the TLS
port (``[listen_tls]``, ``start_tls`` with a server ``ssl.SSLContext``): both share the
factory, the connection set and ``max_connections``. Connections beyond ``max_connections``
are closed at once. A ``smsc.listeners.Listener``: ``start`` binds (``OSError`` when it
cannot), ``close`` ends.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

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
        self.tls_server: asyncio.Server | None = None
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

    async def start_tls(self, host: str, port: int, context: ssl.SSLContext,
                        handshake_timeout_s: float) -> int:
        """Also listen for TLS on ``host:port``; returns the port. Raises OSError."""
        self.tls_server = await self.loop.create_server(
            self._factory, host, port, reuse_address=True, backlog=1024, ssl=context,
            ssl_handshake_timeout=handshake_timeout_s)
        return int(self.tls_server.sockets[0].getsockname()[1])

    def stop_accepting(self) -> None:
        for server in (self.server, self.tls_server):
            if server is not None:
                server.close()

    async def close(self, timeout: float) -> None:
        """Stop accepting, unbind every session, wait (bounded) for them to go, then drop
        what is left. Safe when ``start`` failed or never ran."""
        self.stop_accepting()
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
        for server in (self.server, self.tls_server):
            if server is not None:
                await server.wait_closed()
