"""Messages for an operator whose binds are all on other cluster nodes go to one of them.

Issue 14 shares each operator's ``binds`` out among the nodes (routing.nats.bind_slots);
with fewer binds than nodes, some nodes hold none of an operator's binds. A message such a
node accepts for that operator is handed over: its id and the operator go into the log with
the epoch of a node holding a bind (``MessageRecord.hand_over``; the replicas then count the
message as that epoch's, for recovery and takeover), and that node, reading the entry, puts
the message on its own queue for the operator (``arrived``). So a tenant may submit on any
node, whatever the operators' binds.

* ``holders_changed`` is told, after each round of the slots, which operators this node
  holds no bind of and which epochs hold them; the router then counts those operators as
  up (``Router.elsewhere``): a route's first operator held elsewhere is preferred over a
  local failover to the next.
* Work queued for such an operator (``on_work``) is taken off this node's queue, once per
  turn of the loop for all of it, and handed over round robin among the holders. Jobs with
  a part out already stay (their other parts go on the bind that sent the first).
* Epochs the takeover rounds find gone (``gone``) are handed nothing more, whatever the
  slots still say until their leases lapse: those operators wait here for a bind instead.
  Handovers to an epoch this node took over (``adopt``) are this node's: a node that had
  not seen the holder die yet may still hand to it, and the messages are queued here.
* A handover that does not become durable puts the jobs back and is tried again
  ``RETRY_S`` later. Should that handover reach the log after all, whichever node then holds
  the message queued and unsent lets it go when it reads the entry (``arrived``): one node
  sends it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from encoding.constants import CommandStatus

from .jobs import Job
from .model import Message, Status
from .repository import MessageRecord
from .router import Router

__all__ = ["Handoff", "RETRY_S"]

log = logging.getLogger(__name__)

RETRY_S = 1.0


class Handoff:
    """This node's handovers, both ways; ``on_work`` subscribes to the work queue."""

    def __init__(self, router: Router, record: MessageRecord, epoch: int,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.router = router
        self.record = record
        self.epoch = epoch
        self.loop = loop
        self.holders: dict[str, tuple[int, ...]] = {}  # operator -> epochs holding its binds
        self.mine: set[int] = {epoch}  # handovers to these epochs are queued here
        self.gone: set[int] = set()  # epochs of nodes that stopped or died: handed nothing
        self.handed_out = 0  # counters (metrics)
        self.handed_in = 0
        self.failed = 0
        self._due: set[str] = set()  # operators whose queue is handed over this turn
        self._turn = False  # a turn is scheduled
        self._next = 0  # round robin among the holders

    # --- what the slots say -----------------------------------------------------------------

    def holders_changed(self, holders: Mapping[str, Sequence[int]]) -> None:
        """``holders``: the operators this node holds no bind of, with the epochs that hold
        their binds (the last round of the slots)."""
        live = {op: tuple(e for e in epochs if e not in self.gone)
                for op, epochs in holders.items() if op in self.router.operators}
        self.holders = {op: epochs for op, epochs in live.items() if epochs}
        self.router.elsewhere = frozenset(self.holders)
        for operator in self.holders:
            if self.router.pending(operator):
                self.on_work(operator)

    def epochs_gone(self, epochs: Iterable[int]) -> None:
        """Nodes that stopped or died (the takeover rounds): hand them nothing more."""
        self.gone.update(epochs)
        self.holders_changed(self.holders)

    def adopt(self, epoch: int) -> None:
        """This node took ``epoch``'s waiting messages over: what is handed to it is ours."""
        self.mine.add(epoch)

    # --- out --------------------------------------------------------------------------------

    def on_work(self, operator: str) -> None:
        if operator not in self.holders:
            return
        self._due.add(operator)
        if not self._turn:
            self._turn = True
            self.loop.call_soon(self._hand_over)

    def _hand_over(self) -> None:
        self._turn = False
        due, self._due = self._due, set()
        for operator in due:
            holders = self.holders.get(operator)
            if not holders:
                continue  # this node took a bind of it meanwhile: its jobs stay
            jobs = self._take(operator)
            n = len(holders)
            for k in range(n):
                group = jobs[k::n]
                if group:
                    self._send(group, operator, holders[(self._next + k) % n])
            self._next += 1

    def _take(self, operator: str) -> list[Job]:
        """The jobs queued for ``operator`` that no part of has left, off this node."""
        router = self.router
        out: list[Job] = []
        keep: list[Job] = []
        for job in router.work.drain(operator):
            if not job.cancelled:
                (keep if job.sent else out).append(job)
        if keep:
            router.work.put(keep, operator)
        for job in out:
            router.jobs.pop(job.message.id, None)
        return out

    def _send(self, jobs: list[Job], operator: str, epoch: int) -> None:
        durable = self.record.hand_over([j.message.id for j in jobs], operator, epoch)

        def done(fut: Any) -> None:
            try:
                error = fut.exception()
            except asyncio.CancelledError as cancelled:
                error = cancelled
            if error is None:
                self.handed_out += len(jobs)
                return
            self.failed += len(jobs)
            log.warning("%d messages for %s not handed over to epoch %d (%r); trying again "
                        "in %g s", len(jobs), operator, epoch, error, RETRY_S)
            self._put_back(jobs, operator)

        durable.add_done_callback(done)

    def _put_back(self, jobs: list[Job], operator: str) -> None:
        router = self.router
        for job in jobs:
            if job.message.id not in router.jobs:
                router.jobs[job.message.id] = job
                router.work.put((job,), job.operator)
        self.loop.call_later(RETRY_S, self.on_work, operator)

    # --- in ---------------------------------------------------------------------------------

    def arrived(self, rows: Iterable[Sequence[object]]) -> None:
        """Handovers a log entry carried, applied to this node's replica: (epoch, message
        id, operator) rows. Those handed to this node (or to an epoch it took over) are queued
        for their operator; a message handed to another node that is still queued and unsent
        here is let go."""
        router = self.router
        mine: dict[str, list[Message]] = {}
        for epoch, message_id, operator in rows:
            mid, op = str(message_id), str(operator)
            job = router.jobs.get(mid)
            if epoch not in self.mine:
                if job is not None and job.queued and not job.sent:
                    job.cancelled = True  # dropped where it is queued
                    router.jobs.pop(mid, None)
                continue
            if job is not None:
                continue  # this node has it already
            m = self.record.get(mid)
            if m is not None and m.status is Status.ACCEPTED:
                mine.setdefault(op, []).append(m)
        for op, messages in mine.items():
            self.handed_in += len(messages)
            self._queue(messages, op)

    def _queue(self, messages: list[Message], operator: str) -> None:
        """Queue handed-in messages for ``operator`` (the sender's choice on the route: not
        the route's first, when the sender failed over), by the route's order from there."""
        router = self.router
        touched: set[str] = set()
        for m in messages:
            operators = router.routes.lookup(m.destination_addr, m.tenant) or ()
            if operator not in operators:
                operators = (operator,) if operator in router.operators else operators
            if not operators:
                router.finish(m, Status.REJECTED, router.wall(),
                              error=CommandStatus.ESME_RINVDSTADR,
                              detail="no route (handed over)")
                continue
            job = Job(m, operators, operator_index=max(0, _index(operators, operator)))
            router.jobs[m.id] = job
            touched.add(router.enqueue(job))
        for name in touched:
            router.work.notify(name)


def _index(operators: tuple[str, ...], operator: str) -> int:
    return operators.index(operator) if operator in operators else -1
