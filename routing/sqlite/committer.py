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

Pacing (inline mode). A commit costs a fixed amount (a WAL frame for every page it touches,
tens of microseconds each) however few rows it carries, so at moderate rates, where every loop
iteration holds one PDU, committing per iteration spends most of the loop in ``COMMIT``
(measured: 65% of the gateway's time at 2,000 msg/s) and fills the WAL at ~100 MB/s. So:

* a write someone waits on (``future()``: a submit_sm_resp, a deliver_sm_resp to an operator)
  is committed at the end of this loop iteration if the last commit began at least
  ``min_interval_s`` ago, else when that interval is up: an idle gateway answers at once, a
  busy one commits at most once per interval and each commit carries more;
* a write nobody waits on (``commit_later()``: a status change, a segment) rides the next
  commit, and is committed by itself within ``lazy_s`` at the latest;
* a write nobody waits on but whose loss repeats something to a peer (``commit_soon()``: a
  settled event, so that a tenant's answered receipt is not delivered again after a crash)
  is paced like a write someone waits on, without a future. Measured: no CPU or latency
  difference against a 5 ms deadline at 2,000 msg/s, and a quarter of the repeats after
  a crash (BENCHMARKS.md, issue 10);
* when every waiter of a batch only needs its own rows (``future(deferrable=True)``: the
  messages of a submit_sm_resp, the events of a deliver_sm_resp to an operator), changes to
  SUBMITTED, segments and analytics deltas (``Ops.take_deferrable``) are left for a later
  commit, at most ``defer_s`` after the first commit that left them: most commits then touch
  fewer pages, and a submitted change still waiting when the receipt's final change comes
  becomes one row write with it. A change a receipt tells (final, or unknown at the receipt
  timeout) is never left behind its receipt's event. A crash loses at most ``defer_s`` of
  the deferred writes, as it lost up to ``lazy_s`` of writes nobody waits on before: a
  message still ACCEPTED in the store is sent again, as any message in flight at a crash.
  ``sync()`` callers (a cancel, a released schedule) get everything, as before.

Either way, WAL checkpoints run on a background thread with their own connection (the
writer's automatic checkpoint is only a distant safety net), so copying the WAL back into the
database never runs inside a commit: when it did, one commit in every few hundred took
15-25 ms and set the submit_sm_resp p99. Under steady writes a concurrent checkpoint never
catches up with the last frame, and SQLite restarts the WAL only after one that did, so the
file would grow without bound: once the WAL holds ``restart_frames``, the checkpoint thread
holds commits back (``_write_gate``) for one short checkpoint of what is left. Inline commits
that find the gate closed are put off by a millisecond, so the loop never blocks on it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from .ops import Ops
from .store import Store

__all__ = ["GroupCommitter", "CommitStats", "settle"]

log = logging.getLogger(__name__)


def settle(fut: asyncio.Future[None], error: BaseException | None) -> None:
    """Resolve a commit's future (``error`` when it failed), unless it is done already."""
    if fut.done():
        return
    if error is None:
        fut.set_result(None)
    else:
        fut.set_exception(error)


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
                 threaded: bool = True, checkpoint_every_s: float = 0.2,
                 min_interval_s: float = 0.001, lazy_s: float = 0.05,
                 defer_s: float | None = None, restart_frames: int = 16384) -> None:
        self.store = store
        self.loop = loop
        self.threaded = threaded
        self.checkpoint_every_s = checkpoint_every_s
        self.min_interval_s = min_interval_s
        self.lazy_s = lazy_s
        # Deferrable writes wait at most five paced commits (none without pacing).
        self.defer_s = 5 * min_interval_s if defer_s is None else defer_s
        self._full = False  # a waiter of the pending batch needs all of it (sync, replace)
        self._carry_since = float("inf")  # loop time deferrable writes were first left over
        self._soon = False  # commit_soon() asked for the pending batch
        self.restart_frames = restart_frames
        self.catch_ups = 0  # checkpoints run with commits held back
        self._write_gate = threading.Lock()  # held by commits; by the checkpointer to catch up
        self._last_commit = float("-inf")  # loop time the last inline commit began
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self._timer_due = float("inf")
        self._checkpointer: threading.Thread | None = None
        self._stopping = threading.Event()
        self.stats = CommitStats()
        self._on_commit = on_commit
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending = Ops()
        self._future: asyncio.Future[None] | None = None
        self._in_flight = 0
        self._committing: Ops | None = None  # the batch the writer thread is applying
        self._running = False
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> Ops:
        """The batch being filled; append writes to it, then call ``future()``."""
        return self._pending

    @property
    def backlog(self) -> int:
        """Messages accepted and not yet durable (queued plus the batch being committed):
        what ``[store] max_queue`` counts, besides the router's queues. O(1): it is read for
        every submit."""
        return len(self._pending.messages) + self._in_flight

    def status_uncommitted(self, message_id: str) -> bool:
        """Whether a status change of ``message_id`` is queued or being committed."""
        committing = self._committing
        return (message_id in self._pending.message_status
                or (committing is not None and message_id in committing.message_status))

    def future(self, *, deferrable: bool = False) -> asyncio.Future[None]:
        """Resolves when everything appended to ``pending`` so far is committed; with
        ``deferrable``, when all but its deferrable writes (``Ops.take_deferrable``) are,
        for a waiter that only needs the rows it added itself."""
        if not deferrable:
            self._full = True
        fut = self._future
        if fut is None:
            fut = self._future = self.loop.create_future()
            if self.threaded:
                self._wake.set()
            else:
                self._schedule(self._last_commit + self.min_interval_s)
        return fut

    def commit_soon(self) -> None:
        """Commit what is in ``pending`` at the next paced commit (nobody waits, but the write
        should not wait ``lazy_s`` either: a settled event that is not durable is delivered
        again after a crash)."""
        if self.threaded:
            self._wake.set()
        elif self._future is None:
            self._soon = True
            self._schedule(self._last_commit + self.min_interval_s)

    def commit_later(self) -> None:
        """Make sure what is in ``pending`` is committed within ``lazy_s`` (nobody waits)."""
        # A commit already arranged is due within ``lazy_s`` anyway (called several times
        # per message: this check keeps it to an attribute read).
        if not self.threaded and self._future is None and self._timer is None:
            self._schedule(self.loop.time() + self.lazy_s)
        # threaded: the writer thread wakes at least every ``lazy_s`` and commits what waits

    def _schedule(self, due: float) -> None:
        """Arrange an inline commit at loop time ``due`` (this iteration's end if past),
        unless one is already arranged for no later."""
        if self._timer is not None:
            if self._timer_due <= due:
                return  # an earlier commit is already arranged
            self._timer.cancel()
        now = self.loop.time()
        if due <= now:
            self._timer = self.loop.call_soon(self._commit_inline)
            self._timer_due = now
        else:
            self._timer = self.loop.call_at(due, self._commit_inline)
            self._timer_due = due

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
        if len(self._pending) or self._future is not None or self._committing is not None:
            await self.future()

    def stop(self) -> None:
        """Commit what is queued and stop the thread (call from the loop thread)."""
        self._running = False
        self._stopping.set()
        self._wake.set()
        if self._checkpointer is not None:  # first: it may hold the write gate
            self._checkpointer.join(timeout=30)
            self._checkpointer = None
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if not self.threaded and (len(self._pending) or self._future is not None):
            self._commit_inline()

    def _commit_inline(self) -> None:
        self._cancel_timer()
        if not self._write_gate.acquire(blocking=False):  # the checkpointer is catching up
            self._timer = self.loop.call_later(0.001, self._commit_inline)
            self._timer_due = self.loop.time() + 0.001
            return
        try:
            ops, fut = self._next_batch()
            error = self._commit(ops)
        finally:
            self._write_gate.release()
        self._schedule_left_over()
        if fut is not None:
            settle(fut, error)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_due = float("inf")

    def _next_batch(self) -> tuple[Ops, asyncio.Future[None] | None]:
        """Take the pending batch and its future for a commit, leaving its deferrable writes
        pending (``_left_over``), and pace the next commit."""
        now = self.loop.time()
        ops, fut = self._pending, self._future
        if fut is not None or self._soon:
            # Paces the next one. A commit of writes nobody waits on (lazy, deferred)
            # does not: a submit right behind it is not held back by it.
            self._last_commit = now
        self._soon = False
        self._pending = self._left_over(ops, now)
        self._future = None
        return ops, fut

    def _schedule_left_over(self) -> None:
        if len(self._pending):  # deferred writes: committed by ``_carry_since + defer_s``
            self._schedule(self._carry_since + self.defer_s)

    def _left_over(self, ops: Ops, now: float) -> Ops:
        """What of ``ops`` waits for a later commit, taken out of it: its deferrable writes,
        unless a waiter needs the whole batch, they have waited ``defer_s`` since the first
        commit that left them, or nothing else is in the batch; else nothing."""
        full, self._full = self._full, False
        since = min(self._carry_since, now)
        if not full and self._running and now - since < self.defer_s:
            later = ops.take_deferrable()
            if later is not None:
                self._carry_since = since
                return later
        self._carry_since = float("inf")
        return Ops()

    def _commit(self, ops: Ops, meta: tuple[str, str] | None = None) -> Exception | None:
        """Apply one batch (with ``meta``: ``Store.apply``) and count it; the error when it
        failed."""
        started = time.perf_counter()
        try:
            self.store.apply(ops, meta)
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
                if self.store.checkpoint() >= self.restart_frames:
                    # Most frames are copied now; copy the rest with commits held back, so
                    # the next commit starts the WAL over instead of growing it.
                    with self._write_gate:
                        self.store.checkpoint()
                    self.catch_ups += 1
            except Exception:  # a busy or closed store: try again next time
                log.debug("checkpoint skipped", exc_info=True)

    def _take(self) -> tuple[Ops, asyncio.Future[None] | None]:
        with self._lock:
            ops, fut = self._pending, self._future
            self._pending = Ops()
            self._future = None
            self._in_flight = len(ops.messages)
            self._committing = ops
            self._wake.clear()
        return ops, fut

    def _run(self) -> None:
        while True:
            self._wake.wait(timeout=self.lazy_s)
            ops, fut = self._take()
            if not len(ops) and fut is None:
                if not self._running:
                    return
                continue
            try:
                with self._write_gate:
                    error = self._commit(ops)
            finally:
                self._in_flight = 0
                self._committing = None
            if fut is not None:
                self._resolve(fut, error)

    def _resolve(self, fut: asyncio.Future[None], exc: Exception | None) -> None:
        try:
            self.loop.call_soon_threadsafe(settle, fut, exc)
        except RuntimeError:  # loop closed during shutdown
            pass
