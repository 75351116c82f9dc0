"""Group commit: many writers, one transaction per batch.

Callers on the event loop append to ``pending`` (an ``Ops``) and take ``future()``, which
resolves when that batch is durable. Two ways to run the commit:

* ``threaded`` (for ``synchronous = full``, where every commit waits for an fsync): a writer
  thread takes the whole pending batch, applies it in one transaction and resolves its future
  through the loop; what arrives meanwhile forms the next batch. sqlite3 releases the GIL
  while it syncs, so the loop keeps going.
* inline (for ``synchronous = normal``, where a commit is a write to the page cache, tens of
  microseconds): the batch is committed on the loop thread at the end of the loop iteration
  that filled it, so every submit read in that iteration shares one transaction, with no
  thread hand-off (a futex, a GIL switch and a self-pipe write per batch) on the hot path.

Either way, WAL checkpoints run on a background thread with their own connection, so the
copy back into the database file never stalls a commit (SQLite's automatic checkpoint would
run inside whichever commit crosses the threshold).
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
                 on_commit: Callable[[int, float], None] | None = None, *,
                 threaded: bool = True, checkpoint_every_s: float = 1.0) -> None:
        self.store = store
        self.loop = loop
        self.threaded = threaded
        self.checkpoint_every_s = checkpoint_every_s
        self._checkpointer: threading.Thread | None = None
        self._stopping = threading.Event()
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
            if self.threaded:
                self._wake.set()
            else:
                self.loop.call_soon(self._commit_inline)
        return fut

    def start(self) -> None:
        self._running = True
        if self.threaded:
            self._thread = threading.Thread(target=self._run, name="smsc-group-commit",
                                            daemon=True)
            self._thread.start()
        if self.checkpoint_every_s > 0:
            self._checkpointer = threading.Thread(target=self._checkpoint_loop,
                                                  name="smsc-checkpoint", daemon=True)
            self._checkpointer.start()

    async def flush(self) -> None:
        """Wait until everything queued so far is durable (the batch being committed too)."""
        if len(self._pending) or self._future is not None or self._in_flight:
            await self.future()

    def stop(self) -> None:
        """Commit what is queued and stop the thread (call from the loop thread)."""
        self._running = False
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if not self.threaded and (len(self._pending) or self._future is not None):
            self._commit_inline()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=30)
            self._checkpointer = None

    def _commit_inline(self) -> None:
        ops, fut = self._pending, self._future
        self._pending = Ops()
        self._future = None
        error = self._commit(ops)
        if fut is not None and not fut.done():
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)

    def _commit(self, ops: Ops) -> Exception | None:
        """Apply one batch and count it; the error when it failed."""
        started = time.perf_counter()
        try:
            self.store.apply(ops)
        except Exception as exc:
            log.exception("store commit of %d writes failed", len(ops))
            return exc
        elapsed = time.perf_counter() - started
        st = self.stats
        st.batches += 1
        st.rows += len(ops)
        st.last_batch_size = len(ops)
        st.last_commit_s = elapsed
        if self._on_commit is not None:
            self._on_commit(len(ops), elapsed)
        return None

    def _checkpoint_loop(self) -> None:
        while not self._stopping.wait(self.checkpoint_every_s):
            try:
                self.store.checkpoint()
            except Exception:  # a busy or closed store: try again next time
                log.debug("checkpoint skipped", exc_info=True)

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
            try:
                error = self._commit(ops)
            finally:
                self._in_flight = 0
            if fut is not None:
                self._resolve(fut, error)

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
