"""The load generator's tenant binds: one ``Driver`` per worker process drives all its binds.

Built on the sans-IO session through ``esme.connection.Connection`` (role ESME). The hot path
is ``Driver.on_events``: one ``time.monotonic()`` per read, array appends, no per-message
coroutine, task, timer or log line; every send in one callback goes out in one write.
Closed loop refills a bind's window as its responses arrive; open loop sends on a schedule
(``t0 + i / rate``) from a 1 ms ticker and measures latency from the scheduled time, so a
stalled gateway shows up as latency instead of hiding it (no coordinated omission).
With ``tls_ca`` every bind is a TLS connection verified against that CA (``--tls``).
Workers of one run share a small array of counters (sent, answered, accepted, receipts,
ready, done per worker): it is written every 100 ms, never per message.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, MutableSequence
from typing import Any

import msgspec

from encoding.constants import CommandId, CommandStatus
from encoding.pdu import BindReceiver, BindTransceiver, BindTransmitter, DeliverSmResp
from encoding.receipt import parse_receipt
from encoding.session import (
    Event,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    Role,
    SessionConfig,
)
from esme import Connection

from .certs import client_context
from .mix import MessageFactory, Mix
from .resources import usage
from .stats import Recorder, WorkerRecord

__all__ = ["SLOTS", "Driver", "WorkerSpec"]

SENT, ANSWERED, ACCEPTED, RECEIPTS, READY, DONE = range(6)
SLOTS = 6
_SUBMIT = CommandId.submit_sm
_SUBMIT_RESP = CommandId.submit_sm_resp
_DELIVER = CommandId.deliver_sm
_BIND_RESPS = frozenset({CommandId.bind_transceiver_resp, CommandId.bind_transmitter_resp,
                         CommandId.bind_receiver_resp})
_RECEIPT_TYPE = 0x04
_TYPE_MASK = 0x3C
_TICK_S = 0.001
_CHECK_S = 0.1


class WorkerSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What one worker process does (picklable; ``messages``/``rate`` are its share)."""

    host: str = "127.0.0.1"
    port: int
    system_id: str
    password: str
    binds: int = 1  # transceivers, or transmitter+receiver pairs with tx_rx
    tx_rx: bool = False
    window: int = 100
    messages: int = 0
    rate: float = 0.0  # msg/s of this worker; 0 = closed loop
    mix: Mix = Mix()
    seed: int = 1
    worker: int = 0
    workers: int = 1
    receipts: bool = True  # wait for receipts before finishing
    receipt_timeout_s: float = 30.0
    max_time_s: float = 600.0
    watch: dict[str, int] = msgspec.field(default_factory=dict)  # name -> pid (worker 0)
    progress: bool = True
    label: str = ""
    tls_ca: str = ""  # a PEM CA file: bind over TLS, verifying the server against it


class Driver:
    """Connection handler of every bind of one worker, and its send schedule."""

    def __init__(self, spec: WorkerSpec, shared: MutableSequence[int],
                 loop: asyncio.AbstractEventLoop,
                 out: Callable[[str], Any] | None = None) -> None:
        self.spec = spec
        self.shared = shared
        self.loop = loop
        self.rec = Recorder()
        self.factory = MessageFactory(spec.mix, spec.seed + spec.worker)
        self.session_config = SessionConfig(window=spec.window, enquire_link_s=30.0,
                                            inactivity_s=0.0, response_timeout_s=60.0)
        self.tx: list[Connection] = []
        self.conns: list[Connection] = []
        self.answered = 0
        self.closed_loop = spec.rate <= 0
        self.t0 = 0.0
        self.finished: asyncio.Future[None] = loop.create_future()
        self.closing = False
        self.bind_errors: dict[str, int] = {}
        self.tls_versions: dict[str, int] = {}  # the TLS version of each bind ("TLSv1.3")
        self.samples: list[tuple[float, float, float, float, float]] = []
        self.usage_start: dict[str, tuple[float, int, int, float]] = {}
        self.usage_end: dict[str, tuple[float, int, int, float]] = {}
        self._bind_waiters: dict[int, asyncio.Future[int]] = {}
        self._cursor = 0
        self._done_at = 0.0
        self._out = out or (lambda line: print(line, file=sys.stderr, flush=True))
        self._last_progress = (0.0, 0, 0)
        self._handles: list[asyncio.TimerHandle] = []
        self._tls = client_context(spec.tls_ca) if spec.tls_ca else None

    # --- binds ----------------------------------------------------------------------------

    async def open_binds(self, count: int | None = None, chunk: int = 50) -> None:
        """Open the binds (bounded: 10 s per bind); a refused bind raises RuntimeError."""
        kinds: list[tuple[type, bool]] = []
        for _ in range(self.spec.binds if count is None else count):
            if self.spec.tx_rx:
                kinds += [(BindTransmitter, True), (BindReceiver, False)]
            else:
                kinds.append((BindTransceiver, True))
        for start in range(0, len(kinds), chunk):
            await asyncio.gather(*(self._open(cls, tx) for cls, tx in kinds[start:start + chunk]))

    async def _open(self, cls: type, tx: bool) -> None:
        spec = self.spec
        _, conn = await asyncio.wait_for(self.loop.create_connection(
            lambda: Connection(Role.ESME, self.session_config, self, self.loop),
            spec.host, spec.port, ssl=self._tls,
            server_hostname=spec.host if self._tls is not None else None), 10.0)
        waiter: asyncio.Future[int] = self.loop.create_future()
        self._bind_waiters[id(conn)] = waiter
        conn.context = tx
        self.conns.append(conn)
        conn.send(cls(system_id=spec.system_id, password=spec.password, system_type="bench"))
        try:
            status = await asyncio.wait_for(waiter, 10.0)
        finally:
            self._bind_waiters.pop(id(conn), None)
        if status:
            raise RuntimeError(f"bind refused: {CommandStatus(status).name}")
        ssl_object = conn.transport.get_extra_info("ssl_object") if conn.transport else None
        if ssl_object is not None:
            version = ssl_object.version() or "?"
            self.tls_versions[version] = self.tls_versions.get(version, 0) + 1
        if tx:
            self.tx.append(conn)

    async def close_binds(self, timeout_s: float = 3.0) -> None:
        """Unbind every bind, wait (bounded) for them to close, abort what is left."""
        self.closing = True
        for conn in self.conns:
            if conn.session.bound:
                conn.unbind()
            elif conn.transport is not None:
                conn.close()
        deadline = self.loop.time() + timeout_s
        while self.loop.time() < deadline and any(c.transport for c in self.conns):
            await asyncio.sleep(0.02)
        for conn in self.conns:
            conn.abort()

    # --- ConnectionHandler ------------------------------------------------------------------

    def on_events(self, conn: Connection, events: list[Event]) -> None:
        now = time.monotonic()
        rec = self.rec
        for ev in events:
            cls = ev.__class__
            if cls is ResponseReceived:
                pdu = ev.pdu  # type: ignore[attr-defined]
                cid = pdu.command_id
                if cid == _SUBMIT_RESP or ev.request.command_id == _SUBMIT:  # type: ignore[attr-defined]
                    t_sched = ev.context  # type: ignore[attr-defined]
                    rec.sub_t.append(now)
                    rec.sub_lat.append(now - t_sched)
                    self.answered += 1
                    status = pdu.command_status
                    if status:
                        rec.errors[status] = rec.errors.get(status, 0) + 1
                    else:
                        rec.pending[getattr(pdu, "message_id", "")] = t_sched
                elif cid in _BIND_RESPS:
                    waiter = self._bind_waiters.get(id(conn))
                    if waiter is not None and not waiter.done():
                        waiter.set_result(pdu.command_status)
            elif cls is RequestReceived:
                pdu = ev.pdu  # type: ignore[attr-defined]
                if pdu.command_id == _DELIVER:
                    conn.send(DeliverSmResp(sequence_number=pdu.sequence_number))
                    if pdu.esm_class & _TYPE_MASK == _RECEIPT_TYPE:
                        mid = pdu.tlvs.get("receipted_message_id")
                        if not isinstance(mid, str):
                            parsed = parse_receipt(pdu.short_message)
                            mid = parsed.id if parsed is not None else ""
                        rec.receipt(mid, now)
                elif pdu.response_class is not None:
                    conn.send(pdu.response(CommandStatus.ESME_RINVCMDID))
            elif cls is RequestFailed:
                if ev.request.command_id == _SUBMIT:  # type: ignore[attr-defined]
                    # a FailureReason: few, fixed values ("response timeout", "session closed")
                    reason = ev.reason.value  # type: ignore[attr-defined]
                    rec.failures[reason] = rec.failures.get(reason, 0) + 1
                    self.answered += 1
                else:
                    waiter = self._bind_waiters.get(id(conn))
                    if waiter is not None and not waiter.done():
                        why = ev.detail or ev.reason  # type: ignore[attr-defined]
                        waiter.set_exception(RuntimeError(why))
        if self.t0 and not self.closing:
            if self.closed_loop:
                if conn.context:
                    self._fill(conn)
            elif rec.sent < self.spec.messages:
                self._pump()

    def on_closed(self, conn: Connection, reason: str) -> None:
        waiter = self._bind_waiters.get(id(conn))
        if waiter is not None and not waiter.done():
            waiter.set_exception(RuntimeError(f"closed before bind: {reason}"))
        if not self.closing:
            self.bind_errors[reason] = self.bind_errors.get(reason, 0) + 1
        if conn in self.tx:
            self.tx.remove(conn)

    # --- sending ----------------------------------------------------------------------------

    def _fill(self, conn: Connection) -> None:
        session = conn.session
        n = min(session.window.room, self.spec.messages - self.rec.sent)
        if n <= 0 or not session.bound:
            return
        now = time.monotonic()
        make = self.factory.make
        send = conn.send
        for _ in range(n):
            send(make(), now)
        self.rec.sent += n

    def _pump(self) -> None:
        """Open loop: send every message whose scheduled time has come, as windows allow."""
        spec = self.spec
        rate = spec.rate
        t0 = self.t0
        due = min(spec.messages, int((time.monotonic() - t0) * rate) + 1)
        i = self.rec.sent
        txs = self.tx
        tries = 0
        make = self.factory.make
        while i < due and txs and tries < len(txs):
            self._cursor = (self._cursor + 1) % len(txs)
            conn = txs[self._cursor]
            n = min(conn.session.window.room, due - i)
            if n <= 0 or not conn.session.bound:
                tries += 1
                continue
            tries = 0
            send = conn.send
            for j in range(i, i + n):
                send(make(), t0 + j / rate)
            i += n
        self.rec.sent = i

    def _tick(self) -> None:
        if self.finished.done() or self.closing:
            return
        if self.rec.sent < self.spec.messages:
            self._pump()
            self._handles.append(self.loop.call_later(_TICK_S, self._tick))

    # --- run --------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin sending (after every worker is bound)."""
        self._snapshot(self.usage_start)
        self.t0 = self.rec.first_send = time.monotonic()
        self._last_progress = (self.t0, 0, 0)
        if self.closed_loop:
            for conn in list(self.tx):
                self._fill(conn)
        else:
            self._tick()
        self._handles.append(self.loop.call_later(_CHECK_S, self._check))

    def _snapshot(self, into: dict[str, tuple[float, int, int, float]]) -> None:
        if self.spec.worker:
            return
        for name, pid in self.spec.watch.items():
            u = usage(pid)
            if u is not None:
                into[name] = (u.cpu_s, u.rss_kb, u.hwm_kb, u.sys_s)

    def _publish(self) -> None:
        base = self.spec.worker * SLOTS
        shared = self.shared
        shared[base + SENT] = self.rec.sent
        shared[base + ANSWERED] = self.answered
        shared[base + ACCEPTED] = len(self.rec.sub_t) - sum(self.rec.errors.values())
        shared[base + RECEIPTS] = len(self.rec.rc_t) + len(self.rec.orphans)

    def totals(self) -> list[int]:
        shared = self.shared
        return [sum(shared[w * SLOTS + slot] for w in range(self.spec.workers))
                for slot in range(SLOTS)]

    def _check(self) -> None:
        if self.finished.done():
            return
        spec = self.spec
        now = time.monotonic()
        self._publish()
        base = spec.worker * SLOTS
        if not self.shared[base + DONE] and self.rec.sent >= spec.messages \
                and self.answered >= self.rec.sent:
            self.shared[base + DONE] = 1
        tot = self.totals()
        all_done = tot[DONE] >= spec.workers
        if all_done and not self._done_at:
            self._done_at = now
        if spec.worker == 0 and now - self._last_progress[0] >= 1.0:
            self._progress(now, tot)
        if (all_done and (not spec.receipts or tot[RECEIPTS] >= tot[ACCEPTED])) \
                or (all_done and now - self._done_at > spec.receipt_timeout_s) \
                or now - self.t0 > spec.max_time_s \
                or (not self.tx and self.rec.sent < spec.messages):
            self._snapshot(self.usage_end)
            self.finished.set_result(None)
            return
        self._handles.append(self.loop.call_later(_CHECK_S, self._check))

    def _progress(self, now: float, tot: list[int]) -> None:
        t_prev, ans_prev, rc_prev = self._last_progress
        dt = now - t_prev
        self._last_progress = (now, tot[ANSWERED], tot[RECEIPTS])
        sample: tuple[float, float, float, float, float] = (now, -1.0, 0.0, -1.0, 0.0)
        gw = usage(self.spec.watch.get("gateway"))
        sim = usage(self.spec.watch.get("simulator"))
        if gw is not None or sim is not None:
            sample = (now, gw.cpu_s if gw else -1.0, gw.rss_kb if gw else 0.0,
                      sim.cpu_s if sim else -1.0, sim.rss_kb if sim else 0.0)
            prev = self.samples[-1] if self.samples else None
            self.samples.append(sample)
        else:
            prev = None
        line = (f"[{self.spec.label or 'bench'} {now - self.t0:5.1f}s] sent {tot[SENT]:>8}"
                f"  answered {tot[ANSWERED]:>8} ({(tot[ANSWERED] - ans_prev) / dt:7.0f}/s)"
                f"  receipts {tot[RECEIPTS]:>8} ({(tot[RECEIPTS] - rc_prev) / dt:7.0f}/s)"
                f"  in flight {tot[SENT] - tot[ANSWERED]:>5}")
        if gw is not None and prev is not None and prev[1] >= 0:
            line += (f"  gateway cpu {(gw.cpu_s - prev[1]) / (now - prev[0]) * 100:4.0f}%"
                     f" rss {gw.rss_kb / 1024:6.1f} MB")
        if self.spec.progress:
            self._out(line)

    def record(self) -> WorkerRecord:
        r = self.rec.freeze()
        r.samples = self.samples
        r.usage_start = self.usage_start
        r.usage_end = self.usage_end
        r.binds = len(self.conns)
        r.bind_errors = self.bind_errors
        r.tls_versions = self.tls_versions
        return r

    def cancel_timers(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()
