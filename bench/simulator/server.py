"""The simulated operator SMSC: an asyncio server of ``esme.connection.Connection`` (role SMSC).

``Simulator`` owns the listener, the connections, the message store, one ``Timeline`` for
every delayed action and one ``Outbox`` for its own deliver_sm. Requests are handled by
``handlers.RequestHandler``; this module is the lifecycle (``start``/``stop``/``drop_all``),
the connection callbacks (binds in and out of the outbox, responses to our deliver_sm), MO
injection and the test helpers (``stats``, ``received``, ``wait_for``). Everything runs in
loop callbacks, in batches: no task per message, no log line per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Any

from config.simulator import SimulatorConfig
from encoding.constants import CommandId, CommandStatus
from encoding.pdu import Pdu
from encoding.session import (
    Event,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    Role,
    SessionConfig,
)
from esme.connection import Connection

from .delivery import Outbox
from .handlers import Bind, Out, RequestHandler
from .mo import MoGenerator, build_mo
from .receipts import MessageStore
from .report import ControlServer, new_stats, pdu_summary
from .timeline import Timeline
from .tls import server_context

__all__ = ["Simulator"]

_DELIVER_SM = CommandId.deliver_sm


class Simulator:
    """An operator SMSC on one port. ``await start()``, then ``await stop()``."""

    def __init__(self, config: SimulatorConfig | None = None, *, record: bool = False) -> None:
        self.config = cfg = config or SimulatorConfig()
        self.record = record
        self.stats: dict[str, Any] = new_stats()
        self.received: list[Pdu] = []
        self.connections: set[Connection] = set()
        self.port = 0
        self.control_port = 0
        self.rng = random.Random(cfg.seed)
        self.store = MessageStore(cfg.history)
        self.outbox = Outbox(on_send=self._on_sent)
        self.session_config = SessionConfig(
            enquire_link_s=cfg.enquire_link_s,
            inactivity_s=cfg.inactivity_s,
            response_timeout_s=cfg.response_timeout_s,
            window=cfg.window,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._control: ControlServer | None = None
        self._timeline: Timeline | None = None
        self._mo: MoGenerator | None = None
        self._handler: RequestHandler | None = None
        self._waiters: list[tuple[Callable[[Simulator], bool], asyncio.Event]] = []
        self._mo_ref = 0
        self._last_mo_parts = 0

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> int:
        """Listen on ``config.host:config.port`` (0 = any free port), over TLS when ``cert``
        is set; returns the real port. A TLS file that cannot be used raises ConfigError."""
        cfg = self.config
        loop = self._loop = asyncio.get_running_loop()
        self._timeline = Timeline(loop, self._after_batch)
        self._handler = RequestHandler(self, loop, self._timeline)
        context = server_context(cfg)  # None: plain TCP
        self._server = await loop.create_server(
            self._new_connection, cfg.host, cfg.port, backlog=1024, ssl=context,
            ssl_handshake_timeout=10.0 if context else None)
        self.port = self._server.sockets[0].getsockname()[1]
        if cfg.control_port:
            self._control = ControlServer(self.snapshot, self.received_summary)
            try:
                self.control_port = await self._control.start("127.0.0.1", cfg.control_port)
            except OSError:
                await self.stop()
                raise
        self._mo = MoGenerator(loop, cfg.mo, self._emit_mo,
                               lambda: self.outbox.queued(self._mo_key), self._after_batch)
        self._mo.start()
        return self.port

    async def stop(self, grace_s: float = 0.0) -> None:
        """Stop listening and close every connection (after unbinding, within ``grace_s``)."""
        if self._mo is not None:
            self._mo.stop()
        if self._timeline is not None:
            self._timeline.cancel()
        if self._server is not None:
            self._server.close()
        if grace_s > 0 and self.connections:
            for conn in list(self.connections):
                if conn.session.bound:
                    conn.unbind()
                else:
                    conn.close()
            with contextlib.suppress(TimeoutError):
                await self.wait_for(lambda s: not s.connections, grace_s)
        for conn in list(self.connections):
            conn.abort()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
        if self._control is not None:
            await self._control.stop()
            self._control = None
        await asyncio.sleep(0)  # let aborted transports run connection_lost
        self.outbox.clear()

    def drop_all(self) -> int:
        """Abort every connection at once (failover tests); returns how many."""
        conns = list(self.connections)
        for conn in conns:
            conn.abort()
        self.stats["dropped_connections"] += len(conns)
        return len(conns)

    # --- reports and test helpers -----------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Counters plus gauges (bound sessions, queued deliver_sm, pending timers)."""
        out = dict(self.stats)
        out["submit_resps"] = dict(self.stats["submit_resps"])
        out["receipt_stats"] = dict(self.stats["receipt_stats"])
        out["bound"] = sum(1 for c in self.connections if c.session.bound)
        out["queued"] = self.outbox.total_queued()
        out["scheduled"] = len(self._timeline) if self._timeline is not None else 0
        out["stored_messages"] = len(self.store)
        return out

    def received_summary(self, limit: int = 1000) -> list[dict[str, Any]]:
        return [pdu_summary(p) for p in self.received[-limit:]] if limit else []

    async def wait_for(self, predicate: Callable[[Simulator], bool],
                       timeout: float = 5.0) -> None:
        """Return once ``predicate(self)`` holds; raise TimeoutError after ``timeout``."""
        if predicate(self):
            return
        event = asyncio.Event()
        entry = (predicate, event)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"condition not met within {timeout} s; "
                               f"stats: {self.snapshot()}") from None
        finally:
            self._waiters.remove(entry)

    def notify(self) -> None:
        """Re-check ``wait_for`` conditions (after any batch that may have changed state)."""
        for predicate, event in self._waiters:
            if not event.is_set() and predicate(self):
                event.set()

    # --- MO ---------------------------------------------------------------------------------

    @property
    def _mo_key(self) -> str | None:
        return self.config.mo.system_id or None

    def inject_mo(self, to: str, from_: str, text: str, system_id: str | None = None) -> int:
        """Send one MO now (queued until a receiver binds); returns its number of parts."""
        self._emit_mo(to, from_, text, system_id)
        self._after_batch()
        return self._last_mo_parts

    def _emit_mo(self, to: str, from_: str, text: str, system_id: str | None = None) -> None:
        self._mo_ref = (self._mo_ref + 1) & 0xFF
        parts = build_mo(to, from_, text, self._mo_ref)
        key = system_id if system_id is not None else self._mo_key
        for part in parts:
            self.outbox.enqueue(key, part, Out("mo", key))
        self._last_mo_parts = len(parts)
        self.stats["mo_sent"] += 1

    # --- connection callbacks (ConnectionHandler) -------------------------------------------

    def _new_connection(self) -> Connection:
        assert self._loop is not None
        conn = Connection(Role.SMSC, self.session_config, self, self._loop)
        self.connections.add(conn)
        self.stats["connections"] += 1
        return conn

    def on_events(self, conn: Connection, events: list[Event]) -> None:
        handler = self._handler
        assert handler is not None
        bind: Bind | None = conn.context
        for event in events:
            kind = type(event)
            if kind is RequestReceived:
                handler.handle(conn, event.pdu)  # type: ignore[attr-defined]
                bind = conn.context
                if bind is not None and bind.dropping:
                    break
            elif kind is ResponseReceived:
                self._on_response(bind, event)  # type: ignore[arg-type]
            elif kind is RequestFailed:
                self._on_failed(event)  # type: ignore[arg-type]
        self._after_batch()

    def on_closed(self, conn: Connection, reason: str) -> None:
        self.connections.discard(conn)
        self.stats["closed"] += 1
        bind: Bind | None = conn.context
        if bind is not None and bind.receiver:
            self.outbox.remove_bind(bind.system_id, conn)
        self.notify()

    def bound(self, conn: Connection, bind: Bind) -> None:
        """A bind succeeded (its response is queued): receivers start getting deliver_sm."""
        conn.context = bind
        if bind.receiver:
            self.outbox.add_bind(bind.system_id, conn)
        # The most binds open at once (a cluster must never open more than configured).
        open_binds = sum(1 for c in self.connections if c.context is not None)
        self.stats["bound_peak"] = max(self.stats["bound_peak"], open_binds)

    def _on_response(self, bind: Bind | None, event: ResponseReceived) -> None:
        out = event.context
        if not isinstance(out, Out):
            return
        stats = self.stats
        if event.pdu.command_status == CommandStatus.ESME_ROK:
            stats["receipts_acked" if out.kind == "receipt" else "mo_acked"] += 1
        elif out.kind == "receipt":
            stats["receipts_nacked"] += 1
        if bind is not None:
            self.outbox.mark(bind.system_id)

    def _on_failed(self, event: RequestFailed) -> None:
        out = event.context
        if isinstance(out, Out) and event.request.command_id == _DELIVER_SM:
            self.outbox.requeue(out.key, event.request, out)
            self.stats["requeued"] += 1

    def _on_sent(self, out: Any) -> None:
        if isinstance(out, Out):
            self.stats["receipts_sent" if out.kind == "receipt" else "mo_parts_sent"] += 1

    def _after_batch(self) -> None:
        self.outbox.flush()
        if self._waiters:
            self.notify()
