"""The asyncio adapter of a sans-IO ``Session``: one TCP connection, either role.

Bytes from the transport go to ``Session.receive_data``; the events go to a handler; what the
session queued is written once per callback (one write, many PDUs); the session's next
deadline is kept as one timer handle. Used by the ESME pool (role ESME), the tenant-facing
server in ``smsc`` (role SMSC) and the bundled simulator. Back-pressure: when the transport's
write buffer is above its high-water mark we stop reading from that peer until it drains, so
a peer that does not read cannot make us buffer without bound.

Events caused by a send. ``Session.send`` can close the session (the last answer owed
before a held unbind or after a framing error, a refused bind); the ``RequestFailed`` of
every request still in the window and the ``SessionClosed`` then wait in the session
(``take_events``). They are handed to ``handler.on_events`` by ``_after_io``, which runs at
the end of the callback that sent: right after the dispatch in ``data_received`` or
``_on_timer`` returns, or from the ``call_soon`` that ``send`` schedules when it was called
from elsewhere (a commit callback, another connection's events). Never from inside
``send``: it is mostly called by a handler in the middle of its own loop over events, and a
nested ``on_events`` would see the close before the events it is still handling, and would
run the handler's end-of-batch work (commits, pumps) twice. If ``_after_io`` is itself
reached inside a dispatch of this connection (a handler calling ``unbind()``), the events
wait for the next ``_after_io``, scheduled then. Events the session returns from input
(``receive_data`` and the rest) include any still waiting, first, so none is delivered
twice. ``on_closed`` is reported once, from ``connection_lost``, after the last events.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol, cast

from encoding.errors import SmppError
from encoding.pdu import Pdu
from encoding.session import Event, Role, Session, SessionConfig

__all__ = ["Connection", "ConnectionHandler"]

log = logging.getLogger(__name__)


class ConnectionHandler(Protocol):
    """What a connection reports to: the session's events, then its end."""

    def on_events(self, conn: Connection, events: list[Event]) -> None: ...

    def on_closed(self, conn: Connection, reason: str) -> None: ...


class Connection(asyncio.Protocol):
    """Drives one Session over one asyncio transport."""

    def __init__(self, role: Role, config: SessionConfig, handler: ConnectionHandler,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.get_event_loop()
        self.session = Session(role, self.loop.time(), config)
        self.handler = handler
        self.transport: asyncio.Transport | None = None
        self.peer: str = "?"
        self.tls = False  # whether the transport is TLS (set when connected)
        self.context: Any = None  # owner's per-connection state (tenant binding, pool slot)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush_scheduled = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed_reported = False
        self._dispatching = 0  # depth of handler.on_events calls for this connection

    # --- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport: no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.tls = transport.get_extra_info("ssl_object") is not None
        self.session = Session(self.session.role, self.loop.time(), self.session.config)
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        events = self.session.receive_data(data, self.loop.time())
        if events:
            self._dispatch(events)
        self._after_io()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        events = self.session.connection_lost(self.loop.time(),
                                              f"connection lost: {exc}" if exc else "peer closed")
        if events:
            self._dispatch(events)
        self._report_closed(self.session.close_reason or "closed")
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._writable.set()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    # --- API for owners ---------------------------------------------------------------------

    @property
    def writable(self) -> bool:
        return self._writable.is_set()

    async def wait_writable(self) -> None:
        await self._writable.wait()

    def send(self, pdu: Pdu, context: Any = None) -> int:
        """Queue a PDU; the write happens once at the end of the current callback."""
        seq = self.session.send(pdu, self.loop.time(), context)
        self._schedule_after_io()
        return seq

    def try_send(self, pdu: Pdu, context: Any = None) -> int | None:
        """``send`` that returns None instead of raising when the session refuses."""
        try:
            return self.send(pdu, context)
        except SmppError:
            return None

    def unbind(self) -> None:
        events = self.session.unbind(self.loop.time())
        if events:
            self._dispatch(events)
        self._after_io()

    def close(self) -> None:
        """Write what is queued, then close the transport."""
        self.flush()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # --- internals --------------------------------------------------------------------------

    def flush(self) -> None:
        data = self.session.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _after_io(self) -> None:
        self._flush_scheduled = False
        if self._dispatching:
            # Reached from inside this connection's handler (e.g. it called unbind()): what a
            # send left waiting is dispatched after that handler returns, not nested in it.
            self._schedule_after_io()
        else:
            # Only a close leaves events there, and a closed session refuses every send, so
            # a second round finds nothing: the loop ends.
            while events := self.session.take_events():
                self._dispatch(events)
        self.flush()
        if self.session.closed:
            if self.transport is not None:
                self.transport.close()
            return
        self._arm_timer()

    def _schedule_after_io(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._after_io)

    def _dispatch(self, events: list[Event]) -> None:
        self._dispatching += 1
        try:
            self.handler.on_events(self, events)
        except Exception:  # a handler bug must not kill the loop or other sessions
            log.exception("handler failed on events from %s; closing that connection", self.peer)
            self.abort()
        finally:
            self._dispatching -= 1

    def _arm_timer(self) -> None:
        deadline = self.session.next_deadline()
        if deadline is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
                self._timer_at = None
            return
        if self._timer is not None and self._timer_at is not None and self._timer_at <= deadline:
            return  # the armed timer fires first; it re-arms after running
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        events = self.session.handle_timer(self.loop.time())
        if events:
            self._dispatch(events)
        self._after_io()

    def _report_closed(self, reason: str) -> None:
        if not self._closed_reported:
            self._closed_reported = True
            try:
                self.handler.on_closed(self, reason)
            except Exception:
                log.exception("handler failed on close of %s", self.peer)
