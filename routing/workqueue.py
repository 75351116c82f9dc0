"""``WorkQueue`` in this process's memory: per operator, a deque of jobs in arrival order.

Durable state is the message record (a message is ACCEPTED until an operator takes it), so
on one machine the queue itself needs no storage: a restart rebuilds it from
``MessageRecord.recoverable``. A claim lasts until the job is settled or put back; a bind
that dies fails its claims back (``RequestFailed``), and a process that dies loses them all
to the restart's recovery. Jobs that are not due yet (retry back-off) stay in place and are
skipped; a cancelled job is dropped when it reaches the head.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice

from .jobs import Job

__all__ = ["MemoryWorkQueue"]

_LOOKAHEAD = 64  # deferred jobs examined at the head for the next due time


class MemoryWorkQueue:
    def __init__(self, operators: Iterable[str]) -> None:
        self._queues: dict[str, deque[Job]] = {name: deque() for name in operators}
        self._claimed: dict[str, int] = dict.fromkeys(self._queues, 0)
        self._subscribers: list[Callable[[str], None]] = []

    @property
    def operators(self) -> list[str]:
        return list(self._queues)

    def add_operator(self, operator: str) -> None:
        """A queue for an operator added by a config reload (no-op when it has one). Queues
        of removed operators stay (empty once their jobs are routed again)."""
        if operator not in self._queues:
            self._queues[operator] = deque()
            self._claimed[operator] = 0

    def subscribe(self, on_work: Callable[[str], None]) -> None:
        self._subscribers.append(on_work)

    def notify(self, operator: str) -> None:
        for fn in self._subscribers:
            fn(operator)

    def put(self, jobs: Iterable[Job], operator: str, *, front: bool = False) -> None:
        queue = self._queues[operator]
        if front:
            for job in jobs:
                job.queued = True
                queue.appendleft(job)
        else:
            for job in jobs:
                job.queued = True
                queue.append(job)

    def claim(self, operator: str, limit: int, now: float) -> list[Job]:
        queue = self._queues[operator]
        out: list[Job] = []
        deferred: list[Job] = []
        while queue and len(out) < limit:
            job = queue.popleft()
            if job.cancelled:
                job.queued = False
                continue
            if job.not_before > now:
                deferred.append(job)
                if len(deferred) > limit:
                    break
                continue
            job.queued = False
            out.append(job)
        queue.extendleft(reversed(deferred))
        self._claimed[operator] += len(out)
        return out

    def settle(self, job: Job) -> None:
        operator = job.operator
        if self._claimed.get(operator, 0) > 0:
            self._claimed[operator] -= 1

    def retry(self, job: Job, operator: str, at: float) -> None:
        self.settle(job)
        job.not_before = at
        self.put((job,), operator, front=True)

    def drain(self, operator: str) -> list[Job]:
        queue = self._queues[operator]
        jobs = list(queue)
        queue.clear()
        for job in jobs:
            job.queued = False
        return jobs

    def depth(self, operator: str) -> int:
        return len(self._queues[operator])

    def claimed(self, operator: str) -> int:
        return self._claimed[operator]

    def next_due(self, operator: str) -> float | None:
        return min((j.not_before for j in islice(self._queues[operator], _LOOKAHEAD)),
                   default=None)
