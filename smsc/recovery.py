"""Messages accepted and not yet sent go out again: after a restart on one machine, and in a
cluster when the node that accepted them stopped or died.

One machine: at start, every message still ``accepted`` in the store goes to the router
(``recover``). A cluster node must not do that: the other nodes' waiting messages are in its
replica too, and they are sending them. There ``OrphanSweep`` runs every round: it keeps
this node's epoch live and takes over the epochs of nodes that are gone (routing.nats.
takeover), reading their waiting messages from the replica. The epochs it took are read once
more at the next round, for what the replica had not applied yet at the first read. The
handovers (routing.handoff) hear of both: an epoch gone is handed nothing more, and what is
handed to an epoch this node took over is queued here.
"""

from __future__ import annotations

import asyncio
import logging

from routing.handoff import Handoff
from routing.nats.leases import run_rounds
from routing.nats.takeover import Takeover, TakeoverError
from routing.repository import MessageRecord
from routing.router import Router

__all__ = ["recover", "OrphanSweep"]

log = logging.getLogger(__name__)
_BATCH = 5000


def recover(record: MessageRecord, router: Router, epoch: int | None = None) -> int:
    """Give the router the messages accepted and not taken by an operator (of ``epoch``
    only, when given), but those it holds already or whose change is not durable yet.
    Returns how many it got."""
    after, total = "", 0
    while batch := record.recoverable(after_id=after, limit=_BATCH, epoch=epoch):
        after = batch[-1].id
        fresh = [m for m in batch if m.id not in router.jobs and not record.change_pending(m.id)]
        router.accepted(fresh)
        total += len(fresh)
    return total


class OrphanSweep:
    """A cluster node's rounds of liveness and takeover; ``start`` on the loop.

    Reading which epochs have waiting messages scans the replica's accepted messages (a
    few milliseconds on the loop per 100,000), so a round reads it only when it may find
    something: a node stopped being live since the last round, epochs taken last round are
    read again, and every ``FULL_EVERY`` rounds in any case (a node that came and went
    between two rounds)."""

    FULL_EVERY = 15

    def __init__(self, takeover: Takeover, record: MessageRecord, router: Router,
                 loop: asyncio.AbstractEventLoop, *, every_s: float,
                 handoff: Handoff | None = None) -> None:
        self.takeover = takeover
        self.handoff = handoff
        self.record = record
        self.router = router
        self.loop = loop
        self.every_s = every_s
        self.epochs_taken = 0  # counters (metrics)
        self.messages_taken = 0
        self._recheck: set[int] = set()
        self._live: set[int] = set()  # the live epochs at the last round
        self._rounds = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = self.loop.create_task(
            run_rounds(self.round, self.every_s, asyncio.Event(), "takeover"),
            name="orphan sweep")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task], timeout=2.0)

    async def round(self) -> None:
        """Beat, then take over what nodes that are gone left waiting."""
        try:
            await self._round()
        except TakeoverError as e:
            log.warning("cluster unreachable for the takeover round: %s", e)

    async def _round(self) -> None:
        await self.takeover.beat()
        live = await self.takeover.live_epochs()
        gone, self._live = self._live - live, live
        if gone and self.handoff is not None:
            self.handoff.epochs_gone(gone)
        recheck, self._recheck = self._recheck, set()
        self._rounds += 1
        if not (gone or recheck or self._rounds % self.FULL_EVERY == 1):
            return  # nothing can have become ours since the last round
        waiting = self.record.recoverable_epochs()
        for epoch in sorted(recheck & waiting):
            self._take(epoch)
        won = await self.takeover.claim(waiting - recheck)
        for epoch in won:
            self.epochs_taken += 1
            if self.handoff is not None:
                self.handoff.adopt(epoch)
            n = self._take(epoch)
            log.warning("took over %d waiting messages of epoch %d (a node that stopped or "
                        "died; those it had in flight may reach their recipients twice)",
                        n, epoch)
        self._recheck = set(won)

    def _take(self, epoch: int) -> int:
        n = recover(self.record, self.router, epoch)
        self.messages_taken += n
        return n
