"""Scheduled messages: held in the store until due, released by a timer (the Scheduler).

A message whose send time is in the future (HTTP ``send_at``, SMPP schedule_delivery_time in
the absolute or relative form of SMPP 3.4 section 7.1.1, or a later time chosen by
``Admission.hold_until``, e.g. quiet hours) is stored ``scheduled`` with its due time in
``send_at`` and is not given to the router (``hold``). The store keeps them all; this process
keeps none in memory. The ``Scheduler``'s timer sleeps until the earliest due time
(``ScheduleBook.next_due``), reads the due ones in batches (earliest first), moves each to
``accepted`` through the lifecycle (the change rides the group commit) and hands the batch to
the router; a message whose validity ran out first ends ``expired`` with its receipt. After a
restart the first wake finds the overdue ones and they go at once.

It is also the gateway's ``MessageControl`` for messages that have not left: cancel
(cancel_sm, ``DELETE /v1/messages/{id}``) and replace (replace_sm) of a scheduled one here,
of a queued one through the router; ``supersede`` is submit_sm's replace_if_present_flag
(SMPP 3.4 section 4.4.1: same source_addr, destination_addr and service_type).

A cluster (issue 14): every node stores scheduled messages in the shared log, and one node
releases the due ones, the holder of the scheduler's lease (``leads``); the others' timers
sleep until the lease comes to them (``wake``). A message is released once, by one node: the
new holder of the lease releases nothing before its replica has applied what the log held
when the lease came (smsc.storage), the last holder's releases included. Only a release a
node cut off from the cluster was still publishing then can be repeated.

Race rule: a message whose status change is recorded but not yet durable
(``MessageRecord.change_pending``) is left alone: the store's copy of it is stale.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from encoding.smpptime import format_smpp_time, parse_smpp_time

from .lifecycle import Lifecycle
from .model import Message, Status
from .repository import Durable, MessageRecord
from .router import Router

__all__ = ["ScheduleBook", "Scheduler", "hold"]

log = logging.getLogger(__name__)
_BATCH = 5000  # due messages read and released per store read
_MIN_SLEEP_S = 0.005
_RETRY_S = 1.0  # after a failed read


class ScheduleBook(Protocol):
    """The store's scheduled messages (``routing.sqlite.SqliteScheduleBook``)."""

    def due(self, before: float, limit: int) -> list[Message]:
        """Scheduled messages due at or before ``before``, earliest first."""
        ...

    def next_due(self) -> float | None:
        """The earliest due time of a scheduled message (None: none is scheduled)."""
        ...

    def scheduled_to(self, tenant: str, destination_addr: str, limit: int = 100
                     ) -> list[Message]:
        """A tenant's scheduled messages to one destination, oldest first."""
        ...


def hold(m: Message, due: float) -> None:
    """Make the new message ``m`` wait in the store until ``due`` (wall clock).

    The gateway does the holding, so the operator gets no schedule_delivery_time; a
    validity is kept as the absolute time it stands for (a relative one would start again
    when the message leaves). A validity that ends before ``due`` wakes the scheduler at
    its end instead, which then finishes the message ``expired``."""
    m.status = Status.SCHEDULED
    m.send_at = min(due, m.expires_at) if m.expires_at else due
    m.schedule_delivery_time = ""
    if m.expires_at:
        m.validity_period = format_smpp_time(m.expires_at)


class Scheduler:
    """One per gateway: ``start()`` on the running loop, ``await stop()``."""

    def __init__(self, book: ScheduleBook, record: MessageRecord, lifecycle: Lifecycle,
                 router: Router, *, wall: Callable[[], float], batch: int = _BATCH) -> None:
        self.book = book
        self.record = record
        self.lifecycle = lifecycle
        self.router = router
        self.wall = wall
        self.batch = batch
        self.released = 0  # counters (metrics)
        self.expired = 0
        self.cancelled = 0
        # A cluster: whether this node releases due messages now (one node does, the holder
        # of the scheduler's lease, routing.nats.ownership); one machine: always.
        self.leads: Callable[[], bool] = lambda: True
        self._target: float | None = None  # when the sleeping timer wakes (None: idle)
        self._poke: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    # --- decisions (synchronous; the time is an argument) -----------------------------------

    def release_due(self, now: float) -> int:
        """Release up to ``batch`` messages due at ``now``: ``accepted`` and to the router,
        or ``expired`` (with its receipt) when the validity ended first. Returns how many
        due rows were read (a full batch: call again at once)."""
        if not self.leads():
            return 0
        due = self.book.due(now, self.batch)
        go: list[Message] = []
        for m in due:
            if self.record.change_pending(m.id):
                continue  # cancelled or replaced just now: the store's copy is stale
            if m.expires_at and m.expires_at <= now:
                self.router.finish(m, Status.EXPIRED, now,
                                   detail="validity ran out while scheduled")
                self.expired += 1
            elif self.lifecycle.move(m, Status.ACCEPTED, now, detail="due"):
                go.append(m)
        if go:
            self.router.accepted(go)
            self.released += len(go)
        return len(due)

    def held(self, messages: list[Message]) -> None:
        """Scheduled messages just became durable: wake earlier if one is due sooner."""
        if messages:
            self.wake(min(m.send_at for m in messages))

    def wake(self, due: float) -> None:
        """Wake the timer when ``due`` comes before the time it sleeps to (0: at once; a
        cluster: another node scheduled a message, or this node took the lease)."""
        poke = self._poke
        if poke is not None and (self._target is None or due < self._target):
            poke.set()

    # --- MessageControl: messages that have not left ----------------------------------------

    def cancel(self, message_id: str, now: float) -> bool:
        """Cancel a queued (the router's) or scheduled message: CANCELLED, no receipt."""
        if self.router.cancel(message_id, now):
            return True
        m = self.record.get(message_id)
        if m is None or m.status is not Status.SCHEDULED or self.record.change_pending(m.id):
            return False
        self.cancelled += 1
        return self.lifecycle.move(m, Status.CANCELLED, now, detail="cancelled while scheduled")

    def cancel_matching(self, tenant: str, source_addr: str, destination_addr: str,
                        service_type: str, now: float) -> int:
        """cancel_sm without a message_id (SMPP 3.4 section 4.10.1): every message of
        ``tenant`` from ``source_addr`` to ``destination_addr`` (and of ``service_type``
        when given) that has not left is cancelled; returns how many."""
        dest = destination_addr.lstrip("+")

        def same(m: Message) -> bool:
            return (m.tenant == tenant and m.destination_addr == dest
                    and m.source_addr == source_addr
                    and (not service_type or m.service_type == service_type))

        n = 0
        for m in self.book.scheduled_to(tenant, dest, limit=10_000):
            if (same(m) and not self.record.change_pending(m.id)
                    and self.lifecycle.move(m, Status.CANCELLED, now,
                                            detail="cancel_sm by address")):
                n += 1
        for job in list(self.router.jobs.values()):
            if same(job.message) and self.router.cancel(job.message.id, now):
                n += 1
        self.cancelled += n
        return n

    def replace(self, message: Message, now: float) -> Durable | None:
        """New content for a message that has not left, durable when the result completes
        (None: it left, or is changing right now). ``message`` is the stored one with the
        new content; a scheduled one given a schedule_delivery_time (replace_sm) is due then
        (at once when that has passed)."""
        if message.status is not Status.SCHEDULED:
            return self.router.replace(message, now)
        if self.record.change_pending(message.id):
            return None
        if message.schedule_delivery_time:
            try:
                due = parse_smpp_time(message.schedule_delivery_time, now) or now
            except ValueError:
                return None
            if message.expires_at and message.expires_at <= due:
                return None
            hold(message, max(due, now))
        durable = self.record.replace(message, now)
        self.wake(message.send_at)
        return durable

    def supersede(self, new: Message, now: float) -> str | None:
        """replace_if_present_flag = 1 (SMPP 3.4 section 4.4.1): the tenant's message with
        ``new``'s source_addr, destination_addr and service_type that has not left is
        cancelled, in the same commit as ``new`` is stored. Returns its id (None: none)."""
        def same(m: Message) -> bool:
            return (m.tenant == new.tenant and m.destination_addr == new.destination_addr
                    and m.source_addr == new.source_addr
                    and m.service_type == new.service_type and m.id != new.id)

        for old in self.book.scheduled_to(new.tenant, new.destination_addr):
            if (same(old) and not self.record.change_pending(old.id)
                    and self.lifecycle.move(old, Status.CANCELLED, now,
                                            detail=f"replaced by {new.id}")):
                self.cancelled += 1
                return old.id
        # Queued ones are in the router's memory (bounded by [store] max_queue).
        for job in list(self.router.jobs.values()):
            m = job.message
            if same(m) and not job.sent and self.router.cancel(m.id, now):
                return m.id
        return None

    # --- the timer ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the timer on the running loop (its first pass releases what is overdue)."""
        self._poke = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="scheduler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._poke = None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=1.0)

    async def _run(self) -> None:
        while True:
            try:
                read = self.release_due(self.wall())
                if read:
                    # Their changes durable before the next read (which would see them
                    # still scheduled otherwise).
                    synced = self.record.sync()
                    if isinstance(synced, asyncio.Future):
                        await synced
                    continue
                nxt = self.book.next_due()
            except Exception:
                log.exception("scheduler: reading due messages failed; retrying")
                await asyncio.sleep(_RETRY_S)
                continue
            self._target = nxt
            poke = self._poke
            if poke is None:
                return
            poke.clear()
            if not self.leads():
                nxt = None  # another node releases them; ``wake`` once the lease is here
            timeout = None if nxt is None else max(_MIN_SLEEP_S, nxt - self.wall())
            try:
                await asyncio.wait_for(poke.wait(), timeout)
            except TimeoutError:
                pass
