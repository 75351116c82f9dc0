"""Group commit: batching, futures that resolve only once rows are durable, failures, flush."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from routing import GroupCommitter, Message, Ops, Status, Store


def msg(mid: str) -> Message:
    return Message(id=mid, tenant="acme", source_addr="1", destination_addr="2")


class GatedStore:
    """Wraps a Store; ``apply`` waits for ``release`` after signalling ``entered``."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[int] = []

    def apply(self, ops: Ops, meta: tuple[str, str] | None = None) -> None:
        self.entered.set()
        assert self.release.wait(10)
        self.batches.append(len(ops))
        self.inner.apply(ops, meta)


def test_writes_queued_together_commit_as_one_batch(store: Store) -> None:
    seen: list[tuple[int, float]] = []

    async def main() -> None:
        c = GroupCommitter(store, asyncio.get_running_loop(),
                           on_commit=lambda n, s: seen.append((n, s)))
        futures = []
        for i in range(50):  # fifty writers before the thread runs
            c.pending.insert_message(msg(str(i)), 1.0)
            futures.append(c.future())
        assert all(f is futures[0] for f in futures)
        assert c.backlog == 50
        c.start()
        try:
            await asyncio.wait_for(futures[0], 10)
            assert store.count("messages") == 50
            assert c.stats.batches == 1
            assert c.stats.rows == c.stats.last_batch_size == 50
            assert c.backlog == 0
        finally:
            c.stop()

    asyncio.run(main())
    assert [n for n, _ in seen] == [50]


def test_future_resolves_only_after_the_write_is_durable(store: Store) -> None:
    gated = GatedStore(store)

    async def main() -> None:
        c = GroupCommitter(gated, asyncio.get_running_loop())  # type: ignore[arg-type]
        c.start()
        try:
            c.pending.insert_message(msg("1"), 1.0)
            fut = c.future()
            assert await asyncio.to_thread(gated.entered.wait, 10)
            # Rows written while a commit runs form the next batch.
            c.pending.insert_message(msg("2"), 1.0)
            second = c.future()
            assert second is not fut
            for _ in range(20):
                await asyncio.sleep(0)
            assert not fut.done()
            assert store.get_message("1") is None
            gated.release.set()
            await asyncio.wait_for(fut, 10)
            assert store.get_message("1") is not None
            await asyncio.wait_for(second, 10)
            assert store.get_message("2") is not None
        finally:
            gated.release.set()
            c.stop()

    asyncio.run(main())
    assert gated.batches == [1, 1]


def test_failed_commit_resolves_its_future_with_the_error(store: Store) -> None:
    async def main() -> None:
        c = GroupCommitter(store, asyncio.get_running_loop())
        c.start()
        try:
            c.pending.insert_message(msg("1"), 1.0)
            c.pending.segments["broken", 1] = ("broken",)  # wrong column count: the apply fails
            fut = c.future()
            with pytest.raises(sqlite3.Error):
                await asyncio.wait_for(fut, 10)
            assert store.count("messages") == 0  # all or nothing
            # The committer keeps working for the next batch.
            c.pending.insert_message(msg("2"), 1.0)
            await asyncio.wait_for(c.future(), 10)
            assert store.get_message("2") is not None
            assert c.stats.batches == 1
        finally:
            c.stop()

    asyncio.run(main())


def test_flush_waits_for_everything_queued(store: Store) -> None:
    async def main() -> None:
        c = GroupCommitter(store, asyncio.get_running_loop())
        c.start()
        try:
            await asyncio.wait_for(c.flush(), 10)  # nothing queued: returns at once
            for i in range(5):
                c.pending.insert_message(msg(str(i)), 1.0)  # no future() taken
            await asyncio.wait_for(c.flush(), 10)
            assert store.count("messages") == 5
        finally:
            c.stop()

    asyncio.run(main())


def test_flush_waits_for_the_batch_already_being_committed(store: Store) -> None:
    gated = GatedStore(store)

    async def main() -> None:
        c = GroupCommitter(gated, asyncio.get_running_loop())  # type: ignore[arg-type]
        c.start()
        try:
            c.pending.insert_message(msg("1"), 1.0)
            c.future()
            assert await asyncio.to_thread(gated.entered.wait, 10)
            flushing = asyncio.ensure_future(c.flush())
            for _ in range(20):
                await asyncio.sleep(0)
            assert not flushing.done(), "flush returned while the batch was not durable"
            gated.release.set()
            await asyncio.wait_for(flushing, 10)
            assert store.get_message("1") is not None
        finally:
            gated.release.set()
            c.stop()

    asyncio.run(main())


def test_stop_commits_what_is_queued(store: Store) -> None:
    async def main() -> None:
        c = GroupCommitter(store, asyncio.get_running_loop())
        c.start()
        c.pending.insert_message(msg("1"), 1.0)
        c.future()
        c.stop()
        assert store.get_message("1") is not None

    asyncio.run(main())


def test_inline_mode_commits_each_loop_iteration_as_one_batch(store: Store) -> None:
    """synchronous=normal runs the commit on the loop: writes made in one iteration share one
    transaction, their future resolves only after it, and the next iteration starts a new one."""
    async def main() -> None:
        c = GroupCommitter(store, asyncio.get_running_loop(), threaded=False,
                           checkpoint_every_s=0)
        c.start()
        try:
            first = []
            for i in range(30):
                c.pending.insert_message(msg(str(i)), 1.0)
                first.append(c.future())
            assert store.count("messages") == 0  # nothing written before the loop turns
            await asyncio.wait_for(first[0], 5)
            assert store.count("messages") == 30 and c.stats.batches == 1
            c.pending.insert_message(msg("late"), 2.0)
            await asyncio.wait_for(c.future(), 5)
            assert store.count("messages") == 31 and c.stats.batches == 2
            c.pending.insert_message(msg("at-stop"), 3.0)
            c.future()
        finally:
            c.stop()  # commits what is still pending
        assert store.get_message("at-stop") is not None

    asyncio.run(main())


@pytest.mark.parametrize("every", [0.05, 0.0], ids=["checkpointing", "no-checkpoints"])
def test_checkpoint_thread_copies_the_wal_into_the_database(tmp_path: Path,
                                                              every: float) -> None:
    """Checkpoints run off the commit path: with the background thread on, committed pages
    reach the database file itself; with it off (and SQLite's own threshold far away) they
    stay in the WAL."""
    store = Store(tmp_path / "w.db", synchronous="OFF")
    store.open()
    db_file = tmp_path / "w.db"

    async def main() -> bool:
        c = GroupCommitter(store, asyncio.get_running_loop(), threaded=False,
                           checkpoint_every_s=every)
        c.start()
        try:
            start_size = db_file.stat().st_size
            for i in range(300):
                c.pending.insert_message(msg(f"m{i}"), 1.0)
                await c.future()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 2
            while loop.time() < deadline:
                if db_file.stat().st_size > start_size:
                    return True
                await asyncio.sleep(0.02)
            return False
        finally:
            c.stop()

    try:
        grew = asyncio.run(main())
    finally:
        store.close()
    assert grew is (every > 0)


async def _turns(n: int) -> None:
    """Let the loop run ``n`` iterations."""
    for _ in range(n):
        await asyncio.sleep(0)


def test_inline_commits_are_paced_by_the_interval_and_carry_more_each(store: Store) -> None:
    """While answers keep waiting, one commit per interval: writes from several loop
    iterations inside the interval share the next transaction, which starts no earlier than
    the interval after the previous one began."""
    began: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        c = GroupCommitter(store, loop, threaded=False, checkpoint_every_s=0,
                           min_interval_s=0.2,
                           on_commit=lambda n, s: began.append(loop.time() - s))
        c.start()
        try:
            c.pending.insert_message(msg("first"), 1.0)
            await asyncio.wait_for(c.future(), 5)  # nothing committed before: at once
            futures = []
            for i in range(3):  # three iterations, three writers, inside the interval
                c.pending.insert_message(msg(f"w{i}"), 1.0)
                futures.append(c.future())
                await _turns(5)
            assert not futures[0].done()
            assert store.get_message("w0") is None
            await asyncio.wait_for(asyncio.gather(*futures), 5)
            assert c.stats.batches == 2 and c.stats.last_batch_size == 3
        finally:
            c.stop()

    asyncio.run(main())
    assert len(began) == 2
    assert began[1] - began[0] >= 0.19


def test_first_write_after_a_quiet_spell_commits_at_once(store: Store) -> None:
    async def main() -> None:
        c = GroupCommitter(store, asyncio.get_running_loop(), threaded=False,
                           checkpoint_every_s=0, min_interval_s=0.05)
        c.start()
        try:
            c.pending.insert_message(msg("1"), 1.0)
            await asyncio.wait_for(c.future(), 5)
            await asyncio.sleep(0.1)  # longer than the interval: the next commit is not held
            c.pending.insert_message(msg("2"), 1.0)
            fut = c.future()
            await _turns(3)
            assert fut.done() and store.get_message("2") is not None
        finally:
            c.stop()

    asyncio.run(main())


def test_commit_later_waits_for_a_commit_or_the_lazy_deadline(store: Store) -> None:
    """Writes nobody waits on ride the next commit; alone, they are committed within
    ``lazy_s``; an answer waiting (``future``) brings the commit forward."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        committed = asyncio.Event()
        c = GroupCommitter(store, loop, threaded=False, checkpoint_every_s=0,
                           min_interval_s=0, lazy_s=0.1,
                           on_commit=lambda n, s: committed.set())
        c.start()
        try:
            c.pending.insert_message(msg("lazy"), 1.0)
            c.commit_later()
            await _turns(20)
            assert store.get_message("lazy") is None  # not yet: nobody waits for it
            await asyncio.wait_for(committed.wait(), 5)  # but within lazy_s by itself
            assert store.get_message("lazy") is not None

            committed.clear()
            c.pending.insert_message(msg("rides"), 1.0)
            c.commit_later()
            c.pending.insert_message(msg("urgent"), 1.0)
            fut = c.future()
            await _turns(3)
            assert fut.done()
            assert store.get_message("rides") is not None  # went with the urgent commit
            assert c.stats.batches == 2
        finally:
            c.stop()

    asyncio.run(main())


def test_threaded_commit_later_is_committed_without_a_future(store: Store) -> None:
    async def main() -> None:
        c = GroupCommitter(store, asyncio.get_running_loop(), threaded=True,
                           checkpoint_every_s=0, lazy_s=0.05)
        c.start()
        try:
            c.pending.insert_message(msg("lazy"), 1.0)
            c.commit_later()
            for _ in range(200):  # bounded: 200 x 25 ms
                if store.get_message("lazy") is not None:
                    break
                await asyncio.sleep(0.025)
            assert store.get_message("lazy") is not None
        finally:
            c.stop()

    asyncio.run(main())


def _steady_writes(store: Store, *, restart_frames: int) -> tuple[int, int]:
    """Commit back to back for a while; (largest WAL file seen in bytes, catch-ups)."""
    largest = 0
    wal = Path(store.path + "-wal")

    async def main() -> int:
        nonlocal largest
        c = GroupCommitter(store, asyncio.get_running_loop(), threaded=False,
                           checkpoint_every_s=0.01, min_interval_s=0,
                           restart_frames=restart_frames)
        c.start()
        try:
            for i in range(4000):
                c.pending.insert_message(msg(f"m{i:06d}"), 1.0)
                c.pending.history.append((f"m{i:06d}", "x", 1.0, "y" * 200))
                await asyncio.wait_for(c.future(), 5)
                if i % 100 == 0 and wal.exists():
                    largest = max(largest, wal.stat().st_size)
        finally:
            c.stop()
        return c.catch_ups

    catch_ups = asyncio.run(main())
    return largest, catch_ups


def test_wal_stays_bounded_under_steady_writes(tmp_path: Path) -> None:
    """A checkpoint running beside back-to-back commits never copies the last frame, and
    SQLite restarts the WAL only after one that did: the checkpointer holds commits back
    for one short catch-up once the WAL is long, so the file stops growing."""
    store = Store(tmp_path / "wal.db", synchronous="NORMAL")
    store.open()
    try:
        largest, catch_ups = _steady_writes(store, restart_frames=64)
    finally:
        store.close()
    assert catch_ups > 0
    # About 80 MB of frames are written; without catch-ups the file grows to hold them all
    # (75 MB seen), with them it holds what one checkpoint cycle writes (8-10 MB seen).
    assert largest < 24 << 20, f"WAL grew to {largest} bytes"


def test_a_status_change_is_uncommitted_while_queued_or_being_committed(store: Store) -> None:
    """What the receipt-timeout sweep asks before it overrides a status it read from the
    store: also true while the writer thread is still applying the change."""
    gated = GatedStore(store)

    async def main() -> None:
        c = GroupCommitter(gated, asyncio.get_running_loop())  # type: ignore[arg-type]
        c.start()
        try:
            assert not c.status_uncommitted("1")
            c.pending.set_status("1", Status.SUBMITTED, Status.DELIVERED, 1.0)
            assert c.status_uncommitted("1")  # queued
            fut = c.future()
            assert await asyncio.to_thread(gated.entered.wait, 10)
            assert len(c.pending) == 0 and c.status_uncommitted("1")  # being committed
            gated.release.set()
            await asyncio.wait_for(fut, 10)
            assert not c.status_uncommitted("1")
        finally:
            gated.release.set()
            c.stop()

    asyncio.run(main())


def test_commit_soon_is_committed_at_the_next_paced_commit(store: Store) -> None:
    """A settled event nobody waits on: not held for ``lazy_s``, but not ahead of the pacing
    either (committed once the interval after the last commit is up)."""
    async def main() -> None:
        committed = asyncio.Event()
        c = GroupCommitter(store, asyncio.get_running_loop(), threaded=False,
                           checkpoint_every_s=0, min_interval_s=0.2, lazy_s=60,
                           on_commit=lambda n, s: committed.set())
        c.start()
        try:
            c.pending.insert_message(msg("1"), 1.0)
            await asyncio.wait_for(c.future(), 5)  # a commit just began: the next is paced
            committed.clear()
            c.pending.insert_message(msg("soon"), 1.0)
            c.commit_soon()
            await _turns(5)
            assert store.get_message("soon") is None  # the interval is not up yet
            await asyncio.wait_for(committed.wait(), 5)  # far before lazy_s
            assert store.get_message("soon") is not None
            assert c.stats.batches == 2
        finally:
            c.stop()

    asyncio.run(main())
