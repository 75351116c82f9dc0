"""Group commit: many writers, one transaction per batch, on a dedicated thread.

Callers on the event loop append to ``pending`` (an ``Ops``) and take ``future()``, which
resolves when that batch is durable. A single writer thread takes the whole pending batch,
applies it in one transaction and resolves its future through the loop; whatever arrives
while a commit runs forms the next batch, so batches grow with load and durability does not
cost throughput. sqlite3 releases the GIL while it writes and syncs, so the loop keeps going.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from .ops import Ops
from .store import Store

__all__ = ["GroupCommitter", "CommitStats"]

log = logging.getLogger(__name__)


class CommitStats:
    """Counters the metrics layer reads (plain numbers: routing does not import prometheus)."""

    __slots__ = ("batches", "last_batch_size", "last_commit_s", "rows")

    def __init__(self) -> None:
        self.batches = 0
        self.rows = 0
        self.last_batch_size = 0
        self.last_commit_s = 0.0


class GroupCommitter:
    """Owns the writer thread. ``start`` on the loop thread; ``stop`` flushes and joins."""

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop,
                 on_commit: Callable[[int, float], None] | None = None) -> None:
        self.store = store
        self.loop = loop
        self.stats = CommitStats()
        self._on_commit = on_commit
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending = Ops()
        self._future: asyncio.Future[None] | None = None
        self._in_flight = 0
        self._running = False
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> Ops:
        """The batch being filled; append writes to it, then call ``future()``."""
        return self._pending

    @property
    def backlog(self) -> int:
        """Writes not yet durable (queued plus the batch being committed)."""
        return len(self._pending) + self._in_flight

    def future(self) -> asyncio.Future[None]:
        """Resolves when everything appended to ``pending`` so far is committed."""
        fut = self._future
        if fut is None:
            fut = self._future = self.loop.create_future()
            self._wake.set()
        return fut

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name="smsc-group-commit", daemon=True)
        self._thread.start()

    async def flush(self) -> None:
        """Wait until everything queued so far is durable (the batch being committed too)."""
        if len(self._pending) or self._future is not None or self._in_flight:
            await self.future()

    def stop(self) -> None:
        """Commit what is queued and stop the thread (call from the loop thread)."""
        self._running = False
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _take(self) -> tuple[Ops, asyncio.Future[None] | None]:
        with self._lock:
            ops, fut = self._pending, self._future
            self._pending = Ops()
            self._future = None
            self._in_flight = len(ops)
            self._wake.clear()
        return ops, fut

    def _run(self) -> None:
        while True:
            self._wake.wait(timeout=0.5)
            ops, fut = self._take()
            if not len(ops) and fut is None:
                if not self._running:
                    return
                continue
            started = time.perf_counter()
            try:
                self.store.apply(ops)
            except Exception as exc:
                log.exception("store commit of %d writes failed", len(ops))
                if fut is not None:
                    self._resolve(fut, exc)
                continue
            finally:
                self._in_flight = 0
            elapsed = time.perf_counter() - started
            st = self.stats
            st.batches += 1
            st.rows += len(ops)
            st.last_batch_size = len(ops)
            st.last_commit_s = elapsed
            if self._on_commit is not None:
                self._on_commit(len(ops), elapsed)
            if fut is not None:
                self._resolve(fut, None)

    def _resolve(self, fut: asyncio.Future[None], exc: Exception | None) -> None:
        def done() -> None:
            if fut.done():
                return
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(exc)

        try:
            self.loop.call_soon_threadsafe(done)
        except RuntimeError:  # loop closed during shutdown
            pass
