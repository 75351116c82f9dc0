"""One loop timer for many delayed actions (receipts, slow responses): a heap, fired in batches.

Each entry is ``(due, n, fn, arg)``; ``fn(arg)`` runs when the loop time reaches ``due``. Only
the earliest entry has a loop timer (``loop.call_at``); when it fires, every entry due within
``slack`` seconds runs in the same callback, then ``after_batch`` runs once (the owner flushes
what the batch queued). No task or coroutine per message.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from typing import Any

__all__ = ["Timeline"]


class Timeline:
    """Delayed callbacks on one event loop, batched."""

    __slots__ = ("_after", "_armed_at", "_handle", "_heap", "_loop", "_n", "slack")

    def __init__(self, loop: asyncio.AbstractEventLoop, after_batch: Callable[[], None],
                 slack: float = 0.002) -> None:
        self._loop = loop
        self._after = after_batch
        self._heap: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._n = 0
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self.slack = slack

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, due: float, fn: Callable[[Any], None], arg: Any) -> None:
        self._n += 1
        heapq.heappush(self._heap, (due, self._n, fn, arg))
        if self._armed_at is None or due < self._armed_at:
            self._arm(due)

    def cancel(self) -> None:
        """Drop every pending entry and the timer (on shutdown)."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._armed_at = None
        self._heap.clear()

    def _arm(self, due: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = due
        self._handle = self._loop.call_at(due, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = None
        heap = self._heap
        limit = self._loop.time() + self.slack
        pop = heapq.heappop
        try:
            while heap and heap[0][0] <= limit:
                _, _, fn, arg = pop(heap)
                fn(arg)
        finally:
            if heap:
                self._arm(heap[0][0])
            self._after()
