"""The tenant-facing SMPP listener: one ``Connection`` (role SMSC) per accepted socket.

One listener serves the plain port (``[listen]``, ``start``) and, when configured, the TLS
port (``[listen_tls]``, ``start_tls`` with a server ``ssl.SSLContext``): both share the
connection set and the ceiling. A ``smsc.listeners.Listener``: ``start`` binds (``OSError``
when it cannot), ``close`` ends.

The listener accepts itself (a reader on the listening socket, then
``loop.connect_accepted_socket``) instead of ``loop.create_server``, so that it behaves the
same on asyncio's loop and on uvloop when descriptors run short: asyncio's accept loop only
reports EMFILE to the loop's exception handler and pauses for a second; uvloop (libuv's
"EMFILE trick") accepts and closes the waiting connections without telling anyone. Here:

- at most ``ceiling`` tenant connections are open (``set_ceiling``; ``max_connections``
  until then, ``smsc.fdlimit`` computes it from the open-file limit), bound or not, TLS
  handshakes included; at the ceiling ``smsc.flood.admit`` closes the oldest unbound
  connection for the new one, or refuses the new one when bound sessions fill it;
- an accept that fails for lack of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM) is counted,
  logged once per interval, makes room by closing the oldest unbound connection when there
  is one, and otherwise takes the waiting connection with a spare descriptor and closes it
  (the peer learns at once instead of hanging in the backlog);
- a connection that never binds is closed by its session after ``session_init_s``
  (SMPP 3.4 section 7.2, session_init_timer).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import ssl
from collections import OrderedDict
from functools import partial

from config import ListenConfig
from encoding.session import Event, Role, SessionConfig
from esme import Connection, ConnectionHandler

from .flood import Admit, Every, FloodStats, admit, handshake_failure

__all__ = ["TenantListener"]

log = logging.getLogger("smsc.listener")

_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_ACCEPT_BURST = 100  # accepts per readable event at most (asyncio's default backlog)
_RETRY_S = 1.0  # accepting pauses this long when nothing can make room (asyncio's delay)
_ROOM_S = 0.01  # ... and this long after closing a connection to make room
_LOG_EVERY_S = 10.0
_BACKLOG = 1024


class _Acceptor:
    """One listening socket: accepts in bursts and hands each socket to the listener."""

    def __init__(self, listener: TenantListener, sock: socket.socket,
                 context: ssl.SSLContext | None, handshake_timeout_s: float | None) -> None:
        self.listener = listener
        self.sock = sock
        self.context = context  # replaceable: new handshakes use the new one
        self.handshake_timeout_s = handshake_timeout_s
        self._resume: asyncio.TimerHandle | None = None
        self.reading = False

    def start(self) -> None:
        if not self.reading and self.sock.fileno() >= 0:
            self.reading = True
            self.listener.loop.add_reader(self.sock.fileno(), self._on_readable)

    def pause(self, seconds: float) -> None:
        self._stop_reading()
        if self._resume is None:
            self._resume = self.listener.loop.call_later(seconds, self._resumed)

    def close(self) -> None:
        self._stop_reading()
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        self.sock.close()

    def _resumed(self) -> None:
        self._resume = None
        self.start()

    def _stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.listener.loop.remove_reader(self.sock.fileno())

    def _on_readable(self) -> None:
        for _ in range(_ACCEPT_BURST):
            try:
                conn, addr = self.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRNOS:
                    self.listener._accept_failed(exc, self)
                else:
                    log.warning("accept failed: %s", exc)
                return
            if not self.listener._accepted(conn, addr, self):
                return  # room is being made: the rest waits for the next event


class TenantListener:
    """Accepts tenant connections and tracks them until they close: the connections report
    to the listener, which passes everything on to ``handler`` and forgets a connection
    once it has closed."""

    def __init__(self, config: ListenConfig, handler: ConnectionHandler,
                 loop: asyncio.AbstractEventLoop, *, stats: FloodStats | None = None) -> None:
        self.config = config
        self.handler = handler
        self.loop = loop
        self.connections: set[Connection] = set()
        self.ceiling = config.max_connections
        self.stats = stats or FloodStats()
        self.stats.counts = self.counts
        # Unbound connections in accept order, the oldest first (O(1) at both ends).
        self._unbound: OrderedDict[Connection, None] = OrderedDict()
        self._evicting: set[Connection] = set()  # closed to make room, not yet gone
        # Connections not made yet (plain: until connection_made; TLS: the handshake), with
        # their socket and the task making them (kept: the loop holds tasks weakly).
        self._connecting: dict[Connection, tuple[socket.socket, asyncio.Task[object]]] = {}
        self._acceptors: list[_Acceptor] = []
        self._spare: int | None = None  # a descriptor kept to accept-and-close on EMFILE
        self._log_errors = Every(_LOG_EVERY_S)
        self._log_evicted = Every(_LOG_EVERY_S)
        self._log_refused = Every(_LOG_EVERY_S)
        self._log_handshakes = Every(_LOG_EVERY_S)
        self.session_config = SessionConfig(
            session_init_s=config.session_init_s, enquire_link_s=config.enquire_link_s,
            inactivity_s=config.inactivity_s, response_timeout_s=config.response_timeout_s,
            max_command_length=config.max_command_length, window=10)

    def set_ceiling(self, ceiling: int) -> None:
        """At most ``ceiling`` tenant connections (both ports) from now on."""
        self.ceiling = max(1, ceiling)

    def counts(self) -> tuple[int, int, int]:
        """(bound or closing, unbound, ceiling): for the metrics."""
        unbound = sum(1 for conn in self._unbound if not conn.session.bound)
        return len(self.connections) - unbound, unbound, self.ceiling

    # --- ConnectionHandler of every tenant connection ---------------------------------------

    def on_events(self, conn: Connection, events: list[Event]) -> None:
        self.handler.on_events(conn, events)
        if conn.session.bound and conn in self._unbound:
            del self._unbound[conn]  # bound: never evicted

    def on_closed(self, conn: Connection, reason: str) -> None:
        try:
            self.handler.on_closed(conn, reason)
        finally:
            self._forget(conn)

    # --- listening --------------------------------------------------------------------------

    async def start(self) -> int:
        """Listen; returns the port (useful with port 0). Raises OSError when it cannot."""
        return await self._listen(self.config.host, self.config.port, None, None)

    async def start_tls(self, host: str, port: int, context: ssl.SSLContext,
                        handshake_timeout_s: float) -> int:
        """Also listen for TLS on ``host:port``; returns the port. Raises OSError."""
        return await self._listen(host, port, context, handshake_timeout_s)

    def set_tls_context(self, context: ssl.SSLContext) -> None:
        """New TLS handshakes use ``context`` (open sessions keep theirs)."""
        for acceptor in self._acceptors:
            if acceptor.context is not None:
                acceptor.context = context

    async def _listen(self, host: str, port: int, context: ssl.SSLContext | None,
                      handshake_timeout_s: float | None) -> int:
        infos = await self.loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                            flags=socket.AI_PASSIVE)
        socks: list[socket.socket] = []
        try:
            for family, kind, proto, _, address in dict.fromkeys(infos):
                sock = socket.socket(family, kind, proto)
                socks.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(_BACKLOG)
                sock.setblocking(False)
        except BaseException:
            for sock in socks:
                sock.close()
            raise
        if self._spare is None:
            self._spare = _open_spare()
        for sock in socks:
            acceptor = _Acceptor(self, sock, context, handshake_timeout_s)
            self._acceptors.append(acceptor)
            acceptor.start()
        return int(socks[0].getsockname()[1])

    def stop_accepting(self) -> None:
        """Intake stops (the first phase of a gateway stop): no new connection."""
        self._close_acceptors()

    def _close_acceptors(self) -> None:
        for acceptor in self._acceptors:
            acceptor.close()
        self._acceptors.clear()
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None

    async def close(self, timeout: float) -> None:
        """Stop accepting, unbind every session, wait (bounded) for them to go, then drop
        what is left. Safe when ``start`` failed or never ran."""
        self._close_acceptors()
        for sock, _task in list(self._connecting.values()):
            _shutdown(sock)  # TLS handshakes still running fail at once
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

    # --- accepting --------------------------------------------------------------------------

    def _accepted(self, sock: socket.socket, addr: object, acceptor: _Acceptor) -> bool:
        """Take ``sock`` (or refuse it); False when the listener closed an unbound
        connection to make room and accepting should wait for it to go."""
        # An evicted connection's descriptor is already free, or is by now: the burst that
        # evicted it stopped, and its close ran first (asyncio) or at once (uvloop).
        open_ = len(self.connections) - len(self._evicting)
        victim = self._oldest_unbound() if open_ >= self.ceiling else None
        decision = admit(open_, int(victim is not None), self.ceiling)
        if decision is Admit.REFUSE:
            sock.close()
            self.stats.refused += 1
            if n := self._log_refused.hit(self.loop.time()):
                log.warning("connection from %s refused: %d bound sessions fill the ceiling "
                            "of %d (%d refused since the last line) — raise [listen] "
                            "max_connections or the open-file limit", _peer(addr),
                            len(self.connections), self.ceiling, n)
            return True
        if victim is not None and decision is Admit.EVICT_OLDEST_UNBOUND:
            self._evict(victim)
        self._connect(sock, addr, acceptor)
        return decision is Admit.ACCEPT

    def _connect(self, sock: socket.socket, addr: object, acceptor: _Acceptor) -> None:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(Role.SMSC, self.session_config, self, self.loop)
        conn.peer = _peer(addr)
        self.connections.add(conn)
        self._unbound[conn] = None
        if acceptor.context is None:
            made = self.loop.connect_accepted_socket(lambda: conn, sock)
        else:
            made = self.loop.connect_accepted_socket(
                lambda: conn, sock, ssl=acceptor.context,
                ssl_handshake_timeout=acceptor.handshake_timeout_s)
        task: asyncio.Task[object] = self.loop.create_task(made)
        self._connecting[conn] = (sock, task)
        task.add_done_callback(partial(self._made, conn))

    def _made(self, conn: Connection, task: asyncio.Task[object]) -> None:
        self._connecting.pop(conn, None)
        failure = asyncio.CancelledError() if task.cancelled() else task.exception()
        if failure is not None and conn.transport is None:
            # The TLS handshake failed or timed out (or was cut short by an eviction):
            # connection_made never ran, so nothing else will report it.
            if conn not in self._evicting and not isinstance(failure, asyncio.CancelledError):
                reason = handshake_failure(failure)
                self.stats.tls_failure(reason)
                n = self._log_handshakes.hit(self.loop.time())
                if n:
                    log.info("TLS handshake from %s failed (%s): %s%s", conn.peer, reason,
                             failure, f" ({n} failures since the last line)" if n > 1 else "")
            self._forget(conn)

    def _forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self._unbound.pop(conn, None)
        self._evicting.discard(conn)

    def _oldest_unbound(self) -> Connection | None:
        """The oldest connection still to bind; drops those that have bound meanwhile (a
        bind answered after a password check) or are closing."""
        while self._unbound:
            conn = next(iter(self._unbound))
            if not conn.session.bound and not conn.session.closed:
                return conn
            del self._unbound[conn]
        return None

    def _evict(self, conn: Connection) -> None:
        del self._unbound[conn]
        self._evicting.add(conn)
        self.stats.evicted += 1
        log.debug("closing unbound connection %s to make room", conn.peer)
        if n := self._log_evicted.hit(self.loop.time()):
            log.warning("tenant connections at the ceiling of %d: closed the oldest unbound "
                        "connection (%s) to make room (%d closed since the last line)",
                        self.ceiling, conn.peer, n)
        connecting = self._connecting.get(conn)
        if conn.transport is None and connecting is not None:
            # Not made yet (a TLS handshake, or connection_made still to run): cut the
            # socket under the transport, which then fails or closes on its own path. (A
            # cancelled connect_accepted_socket can leave uvloop's transport half made.)
            _shutdown(connecting[0])
        else:
            conn.abort()

    def _accept_failed(self, exc: OSError, acceptor: _Acceptor) -> None:
        reason = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        self.stats.accept_error(reason)
        if n := self._log_errors.hit(self.loop.time()):
            log.error("accept failed: %s (%d times since the last line); %d tenant "
                      "connections open, ceiling %d — raise the open-file limit (ulimit -n, "
                      "systemd LimitNOFILE=) or lower [listen] max_connections", exc, n,
                      len(self.connections), self.ceiling)
        victim = self._oldest_unbound()
        if victim is not None:
            self._evict(victim)  # its descriptor is free by the next loop iteration
            acceptor.pause(_ROOM_S)
        elif not self._refuse_waiting(acceptor):
            acceptor.pause(_RETRY_S)

    def _refuse_waiting(self, acceptor: _Acceptor) -> bool:
        """The classic trick: free the spare descriptor, accept the waiting connections and
        close them, take the spare again. False when there is no spare."""
        if self._spare is None:
            return False
        os.close(self._spare)
        self._spare = None
        try:
            for _ in range(_ACCEPT_BURST):
                try:
                    sock, _addr = acceptor.sock.accept()
                except OSError:
                    break
                sock.close()
                self.stats.refused += 1
        finally:
            self._spare = _open_spare()
        return self._spare is not None


def _open_spare() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # closed meanwhile (its transport detached it)


def _peer(addr: object) -> str:
    return f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)
