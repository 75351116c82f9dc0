"""Ids handed out in memory: message numbers, event ids, history sequence numbers.

One machine: message numbers are ``epoch << 40 | counter``, where the store bumps the epoch
durably at every open, so ids are unique across restarts and fit 20 decimal digits; event
ids start above every id already stored and above everything of earlier epochs, so they are
never reused (webhook receivers deduplicate by them) and keep their order across restarts.

A cluster (``join_cluster``): the epoch comes from the cluster instead (every node start
takes a new one, routing.nats.cluster), so no two nodes hand out one message id. Event ids
must be unique across nodes too, and in the order they were created whichever node created
them (a tenant's events are read back in id order: an id below what its reader already read
would be skipped), so they are time-ordered: milliseconds since 2020 (``<< 22``), a counter
for events of one millisecond (10 bits, borrowing the next millisecond beyond 1,024), and the
low 12 bits of the node's epoch, which keep two nodes' ids apart in the same millisecond.
Clock skew between nodes orders their events by the clocks; the reader tolerates that for the
events it is told of (routing.sqlite.eventqueue).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

__all__ = ["Ids", "COUNTER_BITS"]

COUNTER_BITS = 40
_COUNTER_MAX = (1 << COUNTER_BITS) - 1
_TAG_BITS = 12
_PER_MS_BITS = 10
_SINCE_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z


class Ids:
    """The id counters of one store; ``start`` once the store knows its epoch."""

    __slots__ = ("_clock", "_counter", "_event_hi", "_next_event", "epoch", "history_seq",
                 "tag")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.epoch = 0
        self._counter = 0
        self._next_event = 1
        self._event_hi = 0
        self.tag = -1  # a cluster node's tag in its event ids; -1 on one machine
        self._clock = clock
        self.history_seq = itertools.count(1)  # numbers history rows in write order

    def start(self, epoch: int, last_event: int) -> None:
        """One machine: ``epoch`` as bumped by this open, above ``last_event`` stored."""
        self.epoch = epoch
        self._counter = 0
        self._next_event = max(last_event + 1, epoch << COUNTER_BITS)
        self.history_seq = itertools.count(epoch << COUNTER_BITS)

    def join_cluster(self, epoch: int, last_event: int) -> None:
        """A cluster node: ``epoch`` is unique in the cluster; event ids are time-ordered."""
        self.start(epoch, last_event)
        self.tag = epoch & ((1 << _TAG_BITS) - 1)
        self._event_hi = (last_event >> _TAG_BITS) + 1

    def message_number(self) -> int:
        """A number never handed out before, even across restarts (and nodes)."""
        self._counter += 1
        if self._counter > _COUNTER_MAX:  # pragma: no cover - 10^12 messages in one run
            self.epoch += 1
            self._counter = 1
        return self.epoch << COUNTER_BITS | self._counter

    def event_id(self) -> int:
        if self.tag < 0:
            eid = self._next_event
            self._next_event += 1
            return eid
        ms = int(self._clock() * 1000) - _SINCE_MS
        hi = max(self._event_hi + 1, ms << _PER_MS_BITS)
        self._event_hi = hi
        return hi << _TAG_BITS | self.tag
