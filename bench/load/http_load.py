"""The HTTP load client of ``smsc-bench --http``: ``POST /v1/messages`` from its own process.

``run_http_load(spec)`` starts one spawned child process (so the client's CPU is never the
gateway's) that runs an aiohttp ``ClientSession`` on uvloop with keep-alive connections and
returns an ``HttpLoadResult``; the parent waits with a deadline and kills the child by PID.

- **Closed loop** (``rate == 0``): ``clients`` requests in flight, each worker sending its
  next request when the previous one is answered, ``requests`` in all. Latency runs from
  the send to the end of the answer.
- **Open loop** (``rate > 0``): request ``i`` is due at ``t0 + i / rate``; the first
  ``warmup`` requests are sent on the same schedule but not counted. Latency runs from the
  *scheduled* time, so a stall shows up as latency (no coordinated omission).

Bodies are built before the clock starts: ``recipients`` numbers per request, each number
used once in the run, the same short GSM-7 text for all. Answers are decoded (each
recipient's ``status``) to count accepted messages. With ``receiver`` the child also holds
an SMPP receiver bind of the tenant and counts the receipts that come back, so a run can
last until every accepted message is final, as the SMPP generator's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import queue
import signal
import sys
import time
import traceback
from array import array
from collections.abc import Callable
from typing import Any

import msgspec

from .resources import cpu_seconds
from .runner import loop_factory

__all__ = ["HttpLoadResult", "HttpLoadSpec", "SmppLogin", "run_http_load"]

_CONTENT = "Bench: your code is 482193"


class SmppLogin(msgspec.Struct, frozen=True):
    host: str
    port: int
    system_id: str
    password: str


class HttpLoadSpec(msgspec.Struct, frozen=True, kw_only=True):
    url: str  # http://127.0.0.1:PORT/v1/messages
    token: str
    recipients: int = 1000  # per request
    requests: int = 1  # measured requests
    clients: int = 4  # closed loop: requests in flight
    rate: float = 0.0  # open loop: requests/s; 0 = closed loop
    warmup: int = 0  # open loop: requests before the measured ones, on the same schedule
    max_connections: int = 256  # open loop: the pool's bound
    first_number: int = 447_700_000_000
    content: str = _CONTENT
    receiver: SmppLogin | None = None  # hold a receiver bind and wait for the receipts
    receipt_timeout_s: float = 30.0
    max_time_s: float = 600.0
    progress: bool = True
    label: str = "http"


class HttpLoadResult(msgspec.Struct, kw_only=True):
    requests: int = 0  # measured requests sent
    ok: int = 0  # answered 200
    statuses: dict[str, int] = msgspec.field(default_factory=dict)  # others, by status/error
    accepted: int = 0  # recipients accepted by the measured requests
    rejected: int = 0
    accepted_all: int = 0  # with the warm-up's
    t_first: float = 0.0  # monotonic: first measured request sent (open loop: scheduled)
    t_last: float = 0.0  # monotonic: last measured answer
    latency: bytes = b""  # array('d') of seconds, one per measured answer
    receipts: int = 0
    t_last_receipt: float = 0.0
    client_cpu_s: float = 0.0
    wall_start: float = 0.0  # time.time() at t_first (for matching webhook times)


class _Item(msgspec.Struct):
    status: str


class _Answer(msgspec.Struct):
    messages: list[_Item]


_decode_answer = msgspec.json.Decoder(_Answer).decode


def _bodies(spec: HttpLoadSpec, count: int) -> list[bytes]:
    enc = msgspec.json.Encoder()
    n = spec.first_number
    out = []
    for _ in range(count):
        out.append(enc.encode({"messages": [{
            "originator": "Bench", "content": spec.content,
            "recipients": [f"+{n + j}" for j in range(spec.recipients)]}]}))
        n += spec.recipients
    return out


class _Receipts:
    """An SMPP receiver bind that answers deliver_sm and counts receipts (ConnectionHandler)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.count = 0
        self.t_last = 0.0
        self.bound: asyncio.Future[int] = loop.create_future()
        self.conn: Any = None

    async def open(self, login: SmppLogin) -> None:
        from encoding.pdu import BindReceiver
        from encoding.session import Role, SessionConfig
        from esme import Connection

        config = SessionConfig(window=100, enquire_link_s=30.0, inactivity_s=0.0,
                               response_timeout_s=60.0)
        _, self.conn = await asyncio.wait_for(self.loop.create_connection(
            lambda: Connection(Role.ESME, config, self, self.loop), login.host, login.port),
            10.0)
        self.conn.send(BindReceiver(system_id=login.system_id, password=login.password,
                                    system_type="bench"))
        status = await asyncio.wait_for(self.bound, 10.0)
        if status:
            raise RuntimeError(f"receiver bind refused: status {status:#x}")

    def on_events(self, conn: Any, events: list[Any]) -> None:
        from encoding.constants import CommandId
        from encoding.pdu import DeliverSmResp
        from encoding.session import RequestReceived, ResponseReceived

        now = time.monotonic()
        for ev in events:
            if isinstance(ev, RequestReceived):
                pdu = ev.pdu
                if pdu.command_id == CommandId.deliver_sm:
                    conn.send(DeliverSmResp(sequence_number=pdu.sequence_number))
                    if getattr(pdu, "esm_class", 0) & 0x3C == 0x04:
                        self.count += 1
                        self.t_last = now
            elif (isinstance(ev, ResponseReceived) and not self.bound.done()
                  and ev.pdu.command_id == CommandId.bind_receiver_resp):
                self.bound.set_result(ev.pdu.command_status)

    def on_closed(self, conn: Any, reason: str) -> None:
        if not self.bound.done():
            self.bound.set_exception(RuntimeError(f"receiver closed before bind: {reason}"))

    async def close(self) -> None:
        conn = self.conn
        if conn is None:
            return
        if conn.session.bound:
            conn.unbind()
        deadline = self.loop.time() + 3.0
        while conn.transport is not None and self.loop.time() < deadline:
            await asyncio.sleep(0.02)
        conn.abort()


class _Run:
    def __init__(self, spec: HttpLoadSpec) -> None:
        self.spec = spec
        self.res = HttpLoadResult()
        self.lat: array[float] = array("d")
        self.headers = {"Authorization": f"Bearer {spec.token}",
                        "Content-Type": "application/json"}
        self.done = 0

    def _record(self, measured: bool, t_from: float, status: int, data: bytes) -> None:
        now = time.monotonic()
        res = self.res
        self.done += 1
        accepted = 0
        if status == 200:
            items = _decode_answer(data).messages
            accepted = sum(1 for m in items if m.status == "accepted")
            res.accepted_all += accepted
        if not measured:
            return
        self.lat.append(now - t_from)
        res.t_last = max(res.t_last, now)
        if status == 200:
            res.ok += 1
            res.accepted += accepted
            res.rejected += len(items) - accepted
        else:
            key = str(status)
            res.statuses[key] = res.statuses.get(key, 0) + 1

    def _failed(self, measured: bool, exc: BaseException) -> None:
        self.done += 1
        if measured:
            key = type(exc).__name__
            self.res.statuses[key] = self.res.statuses.get(key, 0) + 1

    async def _one(self, session: Any, body: bytes, measured: bool, t_from: float) -> None:
        try:
            async with session.post(self.spec.url, data=body, headers=self.headers) as resp:
                data = await resp.read()
                status = resp.status
        except Exception as exc:  # every failure is counted, by its type
            self._failed(measured, exc)
            return
        self._record(measured, t_from, status, data)

    async def closed_loop(self, session: Any, bodies: list[bytes], end: float) -> None:
        nxt = iter(range(len(bodies)))

        async def worker() -> None:
            for i in nxt:
                if time.monotonic() > end:
                    return
                await self._one(session, bodies[i], True, time.monotonic())

        self.res.t_first = time.monotonic()
        self.res.wall_start = time.time()
        self.res.requests = len(bodies)
        await asyncio.gather(*(worker() for _ in range(self.spec.clients)))

    async def open_loop(self, session: Any, bodies: list[bytes], end: float) -> None:
        spec = self.spec
        rate = spec.rate
        tasks: set[asyncio.Task[None]] = set()
        t0 = time.monotonic()
        wall0 = time.time()
        self.res.t_first = t0 + spec.warmup / rate
        self.res.wall_start = wall0 + spec.warmup / rate
        i = 0
        total = len(bodies)
        while i < total:
            now = time.monotonic()
            if now > end:
                break
            due = min(total, int((now - t0) * rate) + 1)
            while i < due:
                task = asyncio.get_running_loop().create_task(
                    self._one(session, bodies[i], i >= spec.warmup, t0 + i / rate))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
            await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        self.res.requests = max(0, i - spec.warmup)
        if tasks:
            await asyncio.wait(list(tasks), timeout=max(1.0, end - time.monotonic()))

    async def progress(self, receipts: _Receipts | None, total: int) -> None:
        t0 = time.monotonic()
        last = (t0, 0)
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            acc = self.res.accepted_all
            rc = receipts.count if receipts else 0
            print(f"[{self.spec.label} {now - t0:5.1f}s] answered {self.done:>6}/{total}"
                  f"  accepted {acc:>8} ({(acc - last[1]) / (now - last[0]):7.0f}/s)"
                  f"  receipts {rc:>8}", file=sys.stderr, flush=True)
            last = (now, acc)

    async def main(self) -> HttpLoadResult:
        import aiohttp

        spec = self.spec
        loop = asyncio.get_running_loop()
        open_loop = spec.rate > 0
        bodies = _bodies(spec, spec.requests + (spec.warmup if open_loop else 0))
        receipts = _Receipts(loop) if spec.receiver is not None else None
        connector = aiohttp.TCPConnector(
            limit=spec.max_connections if open_loop else spec.clients, keepalive_timeout=60)
        session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                        timeout=aiohttp.ClientTimeout(total=60.0))
        ticker = None
        cpu0 = cpu_seconds(os.getpid()) or 0.0
        try:
            if receipts is not None:
                assert spec.receiver is not None
                await receipts.open(spec.receiver)
            if spec.progress:
                ticker = loop.create_task(self.progress(receipts, len(bodies)))
            end = time.monotonic() + spec.max_time_s
            if open_loop:
                await self.open_loop(session, bodies, end)
            else:
                await self.closed_loop(session, bodies, end)
            if receipts is not None:
                wait_end = time.monotonic() + spec.receipt_timeout_s
                while receipts.count < self.res.accepted_all and time.monotonic() < wait_end:
                    await asyncio.sleep(0.01)
                self.res.receipts = receipts.count
                self.res.t_last_receipt = receipts.t_last
        finally:
            self.res.client_cpu_s = round((cpu_seconds(os.getpid()) or 0.0) - cpu0, 3)
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            await session.close()
            if receipts is not None:
                await receipts.close()
        self.res.latency = self.lat.tobytes()
        return self.res


def _child(spec: HttpLoadSpec, results: Any) -> None:
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            res = runner.run(_Run(spec).main())
        results.put((msgspec.msgpack.encode(res), None))
    except BaseException as exc:  # reported to the parent, which raises it
        results.put((None, f"{exc!r}\n{traceback.format_exc(limit=6)}"))


def run_http_load(spec: HttpLoadSpec, on_start: Callable[[int], object] | None = None
                  ) -> HttpLoadResult:
    """Run ``spec`` in a child process; RuntimeError if it fails or overruns its deadline.
    ``on_start`` gets the child's PID once it runs (to sample its CPU)."""
    ctx = mp.get_context("spawn")
    results: Any = ctx.Queue()
    child = ctx.Process(target=_child, args=(spec, results), daemon=True,
                        name=f"smsc-bench-{spec.label}")
    got: tuple[bytes | None, str | None] | None = None
    try:
        child.start()
        if on_start is not None and child.pid is not None:
            on_start(child.pid)
        end = time.monotonic() + spec.max_time_s + spec.receipt_timeout_s + 60.0
        while got is None and time.monotonic() < end:
            try:
                got = results.get(timeout=0.5)
            except queue.Empty:
                if not child.is_alive() and results.empty():
                    break
    finally:
        child.join(timeout=10.0)
        if child.is_alive() and child.pid is not None:
            os.kill(child.pid, signal.SIGKILL)
            child.join(timeout=5.0)
        results.close()
    if got is None:
        raise RuntimeError(f"{spec.label}: the HTTP client did not report")
    blob, err = got
    if err is not None or blob is None:
        raise RuntimeError(f"{spec.label}: HTTP client failed: {err}")
    return msgspec.msgpack.decode(blob, type=HttpLoadResult)
