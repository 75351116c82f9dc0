"""The ESME pool: every configured operator's binds, and the router's view of them.

For each operator: ``binds`` transceivers, or ``binds`` transmitter + receiver pairs. The
pool tells the router when an operator can take traffic (``operator_up``) and when it lost
its last transmitting bind (``operator_down``: its queue fails over to the next operator of
each route), and wakes binds when their operator's work queue gets work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from config import GatewayConfig
from encoding.pdu import DataSm, DeliverSm
from routing.inbound import Inbound
from routing.repository import Durable, MessageRecord, WorkQueue

from .bind import Dispatch, OperatorBind

__all__ = ["Pool", "PoolRouter"]


class PoolRouter(Dispatch, Protocol):
    """The router as the pool sees it: a bind's dispatch, plus operators going up or down."""

    def operator_up(self, operator: str) -> None: ...

    def operator_down(self, operator: str) -> None: ...

log = logging.getLogger("esme")


class Pool:
    def __init__(self, config: GatewayConfig, router: PoolRouter, work: WorkQueue,
                 inbound: Inbound, record: MessageRecord, *,
                 count: Callable[[str, str], None] | None = None,
                 wall: Callable[[], float]) -> None:
        self.config = config
        self.router = router
        self.inbound = inbound
        self.record = record
        self._wall = wall
        self._count: Callable[[str, str], None] = count or (lambda operator, event: None)
        self._running = False
        self.binds: dict[str, list[OperatorBind]] = {}
        for op in config.operators:
            kinds = (["transceiver"] if op.bind == "transceiver"
                     else ["transmitter", "receiver"])
            self.binds[op.name] = [OperatorBind(self, op, kind, i)
                                   for i in range(op.binds) for kind in kinds]
        self._available: dict[str, bool] = {}
        self._tasks: dict[OperatorBind, asyncio.Task[None]] = {}
        self._stop: asyncio.Event | None = None
        self._expire: asyncio.TimerHandle | None = None
        work.subscribe(self.on_work)

    # --- BindOwner --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    @property
    def dispatch(self) -> Dispatch:
        return self.router

    def count(self, operator: str, event: str) -> None:
        self._count(operator, event)

    def inbound_message(self, operator: str, pdu: DeliverSm | DataSm, now: float) -> int:
        return self.inbound.message(operator, pdu, now)

    def durable(self) -> Durable:
        return self.record.sync()

    def wall(self) -> float:
        return self._wall()

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """One task per bind; each connects, binds and reconnects on its own."""
        self._running = True
        self._stop = asyncio.Event()
        for binds in self.binds.values():
            for b in binds:
                self._tasks[b] = asyncio.create_task(b.run(), name=b.name)
        self._schedule_expire()

    async def stop(self, timeout: float = 3.0) -> None:
        """Unbind every bound bind (bounded by ``timeout``); binds still connecting or
        backing off have nothing to unbind and are cancelled at once. Safe when ``start``
        never ran; returns only when every bind task has ended (or refused to, logged)."""
        self._running = False
        if self._stop is not None:
            self._stop.set()
        if self._expire is not None:
            self._expire.cancel()
        for b, task in self._tasks.items():
            if b.conn is None:
                task.cancel()
            else:
                b.stop()
        tasks = set(self._tasks.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for b in self._tasks:
                if b.conn is not None:
                    b.conn.abort()
            for task in pending:
                task.cancel()
            if pending:
                # Not ``await task``: a CancelledError from there could be our own caller's.
                _, stuck = await asyncio.wait(pending, timeout=1.0)
                for task in stuck:
                    log.error("%s: bind task did not end when cancelled", task.get_name())
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    log.error("%s: bind task failed", task.get_name(),
                              exc_info=task.exception())
        self._tasks.clear()

    async def sleep(self, seconds: float) -> None:
        """Sleep that ends early when the pool stops. A cancel always propagates (no
        ``wait_for``, which can turn a cancel that meets the timeout into a TimeoutError)."""
        stop = self._stop
        if stop is None or stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stop.wait()

    def available(self, operator: str) -> bool:
        """Has ``operator`` a bound transmitting bind? (kept current by ``bound_changed``)"""
        return self._available.get(operator, False)

    def on_work(self, operator: str) -> None:
        for b in self.binds.get(operator, ()):
            b.pump()

    def bound_changed(self, operator: str) -> None:
        self._available[operator] = any(b.bound and b.transmits
                                        for b in self.binds.get(operator, ()))
        if self._available[operator]:
            self.router.operator_up(operator)
        else:
            self.router.operator_down(operator)

    def bound_count(self) -> dict[str, float]:
        return {name: float(sum(b.bound for b in binds)) for name, binds in self.binds.items()}

    def _schedule_expire(self) -> None:
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.inbound.expire(self._wall())
            if self._running:
                self._expire = loop.call_later(5.0, tick)

        self._expire = loop.call_later(5.0, tick)

