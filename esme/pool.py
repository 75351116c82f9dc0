"""The ESME pool: every configured operator's binds, and the router's view of them.

For each operator: ``binds`` transceivers, or ``binds`` transmitter + receiver pairs. The
pool tells the router when an operator can take traffic (``operator_up``) and when it lost
its last transmitting bind (``operator_down``: its queue fails over to the next operator of
each route), and wakes binds when their operator's work queue gets work.

A config reload (``reconfigure``) starts the binds of added operators, retires those of
removed ones, and replaces the binds of a changed operator one by one: the new bind first
(bound, or given up on after its connect timeout), then the old one retires (no more work,
answers to what it sent awaited, unbind), so traffic goes on and nothing in flight is lost.

On a cluster (issue 14) the binds are shared out among the nodes: ``slots`` says which of an
operator's bind slots this node holds (routing.nats.bind_slots). A bind connects only while
its slot is held here, sends only while it is (a node cut off from the cluster stops before
another may take the slot), and closes when the slot lapses (``slots_changed``) or is let go
(``let_go``: what it sent is answered first, then it unbinds, then the slot is released).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from config import GatewayConfig, OperatorConfig
from encoding.pdu import DataSm, DeliverSm
from routing.inbound import Inbound
from routing.repository import Durable, MessageRecord, WorkQueue

from .bind import OperatorBind
from .owner import Dispatch, Slotted
from .tls import OperatorContext, OperatorContexts

__all__ = ["Pool", "PoolRouter", "SlotGate"]


class PoolRouter(Dispatch, Protocol):
    """The router as the pool sees it: a bind's dispatch, plus operators going up or down."""

    def operator_up(self, operator: str) -> None: ...

    def operator_down(self, operator: str) -> None: ...


class SlotGate(Protocol):
    """Which operator bind slots this node holds (a cluster's leases)."""

    def holds(self, operator: str, slot: int) -> bool: ...

    def poke(self) -> None:
        """The operators or their ``binds`` changed: share the slots out again soon."""
        ...


log = logging.getLogger("esme")
_SLOT_CHECK_S = 0.5  # how often a lapsed slot is looked for (its bind closes)


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
        self.binds: dict[str, list[OperatorBind]] = {
            op.name: self._binds_of(op) for op in config.operators}
        self._available: dict[str, bool] = {}
        self._tasks: dict[OperatorBind, asyncio.Task[None]] = {}
        self._changes: dict[str, asyncio.Task[None]] = {}  # reload work per operator
        self._stop: asyncio.Event | None = None
        self._expire: asyncio.TimerHandle | None = None
        # TLS contexts toward operators, one each (a reload calls ``tls.refresh``).
        self.tls = OperatorContexts()
        # A cluster's bind slots (None: one machine, every bind is this node's).
        self.slots: SlotGate | None = None
        self._leaving: set[tuple[str, int]] = set()  # slots being let go (``let_go``)
        self._slot_wake = asyncio.Event()  # set (and replaced) when slots may have changed
        self._slot_check: asyncio.TimerHandle | None = None
        work.subscribe(self.on_work)

    def _binds_of(self, op: OperatorConfig) -> list[OperatorBind]:
        kinds = ["transceiver"] if op.bind == "transceiver" else ["transmitter", "receiver"]
        return [OperatorBind(self, op, kind, i) for i in range(op.binds) for kind in kinds]

    # --- BindOwner --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    @property
    def dispatch(self) -> Dispatch:
        return self.router

    def tls_context(self, op: OperatorConfig) -> OperatorContext:
        return self.tls.get(op)

    def count(self, operator: str, event: str) -> None:
        self._count(operator, event)

    def inbound_message(self, operator: str, pdu: DeliverSm | DataSm, now: float) -> int:
        return self.inbound.message(operator, pdu, now)

    def durable(self) -> Durable:
        """What an answer to an operator's deliver_sm waits for: the events and MO parts it
        stored (the status change it caused may follow a few milliseconds later)."""
        return self.record.sync(changes=False)

    def wall(self) -> float:
        return self._wall()

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """One task per bind; each connects, binds and reconnects on its own."""
        self._running = True
        self._stop = asyncio.Event()
        for binds in self.binds.values():
            for b in binds:
                self._launch(b)
        self._schedule_expire()
        if self.slots is not None:
            self._check_slots()

    def _launch(self, b: OperatorBind) -> None:
        self._tasks[b] = asyncio.create_task(b.run(), name=b.name)

    # --- config reload ----------------------------------------------------------------------

    def reconfigure(self, config: GatewayConfig) -> list[str]:
        """Apply a reloaded config to the operators' binds (returns what changes, for the
        log). Binds are started and retired in the background (``settled`` waits)."""
        old = {op.name: op for op in self.config.operators}
        new = {op.name: op for op in config.operators}
        self.config = config
        notes: list[str] = []
        for name in old.keys() - new.keys():
            notes.append(f"operator {name} removed: its binds retire")
            self._change(name, self._retire_all(name, self.binds.get(name, [])))
        for name, op in new.items():
            if name not in old:
                notes.append(f"operator {name} added: {op.binds} bind(s)")
                self.binds[name] = binds = self._binds_of(op)
                if self._running:
                    for b in binds:
                        self._launch(b)
            elif op != old[name]:
                notes.append(f"operator {name} changed: its binds are replaced one by one")
                self._change(name, self._replace(name, op))
        if self.slots is not None:
            self.slots.poke()
        return notes

    def _change(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` for operator ``name`` after any earlier change of it (in order)."""
        earlier = self._changes.get(name)

        async def after() -> None:
            if earlier is not None:
                await asyncio.wait([earlier])
            await work

        task = self._changes[name] = asyncio.create_task(after(), name=f"{name}-reload")
        task.add_done_callback(lambda t: self._changes.pop(name, None)
                               if self._changes.get(name) is t else None)

    async def settled(self, timeout: float) -> bool:
        """Wait (bounded) until every reload change has finished; True when they have."""
        tasks = set(self._changes.values())
        if not tasks:
            return True
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        return not pending

    async def _replace(self, name: str, op: OperatorConfig) -> None:
        old = list(self.binds.get(name, []))
        fresh = self._binds_of(op)
        for i, b in enumerate(fresh):
            if not self._running:
                return
            self.binds.setdefault(name, []).append(b)
            self._launch(b)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + op.connect_timeout_s + op.response_timeout_s
            while self._running and not b.bound and loop.time() < deadline:
                await self.sleep(0.02)
            if not b.bound:
                log.warning("%s: new bind not up after the reload; replacing the old one anyway",
                            b.name)
            if i < len(old):
                await self._retire(name, old[i])
        await self._retire_all(name, old[len(fresh):])

    async def _retire_all(self, name: str, binds: list[OperatorBind]) -> None:
        for b in list(binds):
            await self._retire(name, b)
        if not self.binds.get(name):
            self.binds.pop(name, None)

    async def _retire(self, name: str, b: OperatorBind) -> None:
        await b.retire()
        task = self._tasks.pop(b, None)
        if task is not None:
            _, pending = await asyncio.wait([task], timeout=b.op.response_timeout_s)
            if pending:
                task.cancel()
        binds = self.binds.get(name)
        if binds is not None and b in binds:
            binds.remove(b)
        self.bound_changed(name)

    async def stop(self, timeout: float = 3.0) -> None:
        """Unbind every bound bind (bounded by ``timeout``); binds still connecting or
        backing off have nothing to unbind and are cancelled at once. Safe when ``start``
        never ran; returns only when every bind task has ended (or refused to, logged)."""
        self._running = False
        for change in list(self._changes.values()):
            change.cancel()
        if self._stop is not None:
            self._stop.set()
        if self._expire is not None:
            self._expire.cancel()
        if self._slot_check is not None:
            self._slot_check.cancel()
        self._wake_binds()
        for b, task in list(self._tasks.items()):
            if b.conn is None:
                task.cancel()
            else:
                b.stop()
        tasks = set(self._tasks.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for b in list(self._tasks):
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

    # --- a cluster's bind slots ------------------------------------------------------------

    def holds(self, operator: str, slot: int) -> bool:
        """Whether bind ``slot`` of ``operator`` may be open (and send) on this node now."""
        slots = self.slots
        return slots is None or ((operator, slot) not in self._leaving
                                 and slots.holds(operator, slot))

    async def until_held(self, b: Slotted) -> None:
        """Return once ``b``'s slot is held here (at once on one machine), or the pool stops,
        or ``b`` retires."""
        while self._running and not b.retired and not self.holds(b.op.name, b.slot):
            wake = self._slot_wake
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_SLOT_CHECK_S * 2):
                    await wake.wait()

    def slots_changed(self) -> None:
        """Close the binds whose slot this node no longer holds; wake those whose slot it
        now holds."""
        for binds in self.binds.values():
            for b in binds:
                if (b.conn is not None and not b.retired
                        and (b.op.name, b.slot) not in self._leaving
                        and not self.holds(b.op.name, b.slot)):
                    log.warning("%s: this node no longer holds the bind's slot: closing it",
                                b.name)
                    b.stop()
        self._wake_binds()

    def _wake_binds(self) -> None:
        wake, self._slot_wake = self._slot_wake, asyncio.Event()
        wake.set()

    def _check_slots(self) -> None:
        self.slots_changed()
        if self._running:
            self._slot_check = asyncio.get_running_loop().call_later(_SLOT_CHECK_S,
                                                                     self._check_slots)

    async def let_go(self, operator: str, slot: int) -> None:
        """Before slot ``slot`` of ``operator`` is released: its binds send no more, wait
        for the answers to what they sent, unbind and disconnect (each bounded)."""
        self._leaving.add((operator, slot))
        try:
            binds = [b for b in self.binds.get(operator, ()) if b.slot == slot]
            if binds:
                await asyncio.gather(*(b.leave_slot() for b in binds))
        finally:
            self._leaving.discard((operator, slot))

    def available(self, operator: str) -> bool:
        """Has ``operator`` a bound transmitting bind? (kept current by ``bound_changed``)"""
        return self._available.get(operator, False)

    def on_work(self, operator: str) -> None:
        for b in self.binds.get(operator, ()):
            b.pump()

    def bound_changed(self, operator: str) -> None:
        self._available[operator] = any(b.bound and b.transmits and not b.retired
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

