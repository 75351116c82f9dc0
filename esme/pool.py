"""The ESME pool: every configured operator's binds, and the router's view of them.

For each operator: ``binds`` transceivers, or ``binds`` transmitter + receiver pairs. The
pool tells the router which operators can take traffic (``available``) and wakes binds when
their operator's queue gets work (``on_work``); when an operator loses its last
transmitting bind its queue fails over to the next operator of each route.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from config import GatewayConfig
from routing.inbound import Inbound
from routing.router import Router

from .bind import OperatorBind

__all__ = ["Pool"]

log = logging.getLogger("esme")


class Pool:
    def __init__(self, config: GatewayConfig, router: Router,
                 count: Callable[[str, str], None] | None = None) -> None:
        self.config = config
        self.router = router
        self.inbound = Inbound(router)
        self.count: Callable[[str, str], None] = count or (lambda operator, event: None)
        self.running = False
        self.binds: dict[str, list[OperatorBind]] = {}
        for op in config.operators:
            kinds = (["transceiver"] if op.bind == "transceiver"
                     else ["transmitter", "receiver"])
            self.binds[op.name] = [OperatorBind(self, op, kind, i)
                                   for i in range(op.binds) for kind in kinds]
        self._available: dict[str, bool] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stop: asyncio.Event | None = None
        self._expire: asyncio.TimerHandle | None = None
        router.available = self.available
        router.on_work = self.on_work

    async def start(self) -> None:
        self.running = True
        self._stop = asyncio.Event()
        for binds in self.binds.values():
            for b in binds:
                self._tasks.append(asyncio.create_task(b.run(), name=b.name))
        self._schedule_expire()

    async def stop(self, timeout: float = 3.0) -> None:
        self.running = False
        if self._stop is not None:
            self._stop.set()
        if self._expire is not None:
            self._expire.cancel()
        for binds in self.binds.values():
            for b in binds:
                b.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for b in (b for binds in self.binds.values() for b in binds):
                if b.conn is not None:
                    b.conn.abort()
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks.clear()

    async def sleep(self, seconds: float) -> None:
        """Sleep that ends early when the pool stops."""
        if self._stop is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

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
            self.on_work(operator)
        else:
            self.router.operator_down(operator)

    def bound_count(self) -> dict[str, float]:
        return {name: float(sum(b.bound for b in binds)) for name, binds in self.binds.items()}

    def _schedule_expire(self) -> None:
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.inbound.expire(time.time())
            if self.running:
                self._expire = loop.call_later(5.0, tick)

        self._expire = loop.call_later(5.0, tick)

