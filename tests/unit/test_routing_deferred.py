"""Deferred writes of the group commit (issue 15): status changes and segments may follow the
rows a waiter needed by up to ``defer_s``; reads through the record still see them at once,
and ``sync()``, ``stop()`` and an unpaced committer commit everything."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from routing import GroupCommitter, Message, Status, Store
from routing.sqlite import SqliteRecord

A, S, D, K = Status.ACCEPTED, Status.SUBMITTED, Status.DELIVERED, Status.UNKNOWN


def msg(mid: str) -> Message:
    return Message(id=mid, tenant="acme", source_addr="1", destination_addr="2")


def _stored_status(store: Store, mid: str) -> Status | None:
    m = store.get_message(mid)
    return m.status if m is not None else None


async def _accepted(record: SqliteRecord, mid: str) -> None:
    fut = record.accept([msg(mid)], 1.0)
    await asyncio.wait_for(fut, 5)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def _running(store: Store, *, interval: float = 0.02, defer: float | None = 0.5
                   ) -> AsyncIterator[tuple[GroupCommitter, SqliteRecord]]:
    """An inline committer (paced by ``interval``, deferring up to ``defer``) and its record,
    stopped at the end."""
    c = GroupCommitter(store, asyncio.get_running_loop(), threaded=False,
                       checkpoint_every_s=0, min_interval_s=interval, defer_s=defer)
    c.start()
    try:
        yield c, SqliteRecord(store, c)
    finally:
        c.stop()


def test_a_status_change_follows_the_new_rows_a_waiter_needed(store: Store) -> None:
    async def main() -> None:
        async with _running(store) as (_, record):
            await _accepted(record, "1")
            record.record_change("1", A, S, 2.0, operator="opA", detail="sent")
            record.record_segment("1", 1, 1, "opA", "X1", S)
            await _accepted(record, "2")  # its commit leaves the change for later
            assert _stored_status(store, "2") is A
            assert _stored_status(store, "1") is A, "the change went with the new row"
            # ... but this process reads its own writes
            m = record.get("1")
            assert m is not None and m.status is S and m.operator == "opA"
            assert [h.status for h in record.history_of("1")] == [A, S]
            assert [(g.operator_id, g.status) for g in record.segments_of("1")] == [("X1", S)]
            assert {m.id: m.status for m in record.query(tenant="acme")} == {"1": S, "2": A}
            assert record.change_pending("1")
            # within defer_s the change is committed by itself
            for _ in range(200):
                if _stored_status(store, "1") is S:
                    break
                await asyncio.sleep(0.01)
            assert _stored_status(store, "1") is S
            assert [g.operator_id for g in store.segments_of("1")] == ["X1"]
            assert not record.change_pending("1")

    asyncio.run(main())


def test_a_change_a_receipt_tells_is_not_deferred(store: Store) -> None:
    """Delivered (final) and unknown (the receipt timeout) are what a tenant's receipt
    says: they commit with the rows of that commit, never after the receipt's event."""
    async def main() -> None:
        async with _running(store) as (_, record):
            await _accepted(record, "1")
            await _accepted(record, "2")
            await _accepted(record, "3")
            record.record_change("1", A, D, 2.0, detail="receipt")
            record.record_change("2", A, K, 2.0, detail="receipt timeout")
            record.record_change("3", A, S, 2.0)
            await _accepted(record, "4")
            assert _stored_status(store, "1") is D
            assert _stored_status(store, "2") is K
            assert _stored_status(store, "3") is A  # submitted may wait
            assert [h.detail for h in store.history_of("1")] == ["", "receipt"]
            assert [h.status for h in record.history_of("3")] == [A, S]

    asyncio.run(main())


def test_a_waiting_change_goes_with_the_final_one_that_follows_it(store: Store) -> None:
    """Submitted waits; delivered right behind it makes one row write, committed with the
    next batch, with both history rows."""
    async def main() -> None:
        async with _running(store) as (_, record):
            await _accepted(record, "1")
            record.record_change("1", A, S, 2.0, operator="opA")
            await _accepted(record, "2")
            assert _stored_status(store, "1") is A
            record.record_change("1", S, D, 3.0, detail="receipt")
            await _accepted(record, "3")
            m = store.get_message("1")
            assert m is not None and (m.status, m.operator) == (D, "opA")
            assert [(h.status, h.detail) for h in store.history_of("1")] == [
                (A, ""), (S, ""), (D, "receipt")]

    asyncio.run(main())


def test_sync_and_stop_commit_what_was_deferred(store: Store) -> None:
    async def main() -> None:
        async with _running(store, defer=60.0) as (_, record):
            await _accepted(record, "1")
            record.record_change("1", A, S, 2.0)
            await _accepted(record, "2")
            assert _stored_status(store, "1") is A
            await asyncio.wait_for(record.sync(), 5)  # type: ignore[arg-type]
            assert _stored_status(store, "1") is S

            record.record_change("2", A, S, 2.0)
            await _accepted(record, "3")
            assert _stored_status(store, "2") is A
        assert _stored_status(store, "2") is S

    asyncio.run(main())


def test_without_pacing_nothing_is_deferred(store: Store) -> None:
    async def main() -> None:
        async with _running(store, interval=0.0, defer=None) as (_, record):
            await _accepted(record, "1")
            record.record_change("1", A, S, 2.0)
            await _accepted(record, "2")
            assert _stored_status(store, "1") is S

    asyncio.run(main())


def test_a_change_that_will_not_apply_is_not_shown(store: Store) -> None:
    """A queued change whose precondition the stored row no longer meets (another writer
    moved it on) is not laid over the read."""
    async def main() -> None:
        async with _running(store) as (_, record):
            await _accepted(record, "1")
            record.record_change("1", S, D, 2.0)  # expects SUBMITTED; the row is ACCEPTED
            m = record.get("1")
            assert m is not None and m.status is A
            assert [h.status for h in record.history_of("1")] == [A]

    asyncio.run(main())


def test_a_commit_nobody_waited_on_does_not_hold_back_the_next_answer(store: Store) -> None:
    """Pacing counts commits someone waited for: a lazy commit that just ran does not make
    the submit right behind it wait for the interval."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        committed = asyncio.Event()
        c = GroupCommitter(store, loop, threaded=False, checkpoint_every_s=0,
                           min_interval_s=5.0, lazy_s=0.01,
                           on_commit=lambda n, s: committed.set())
        c.start()
        try:
            c.pending.insert_message(msg("lazy"), 1.0)
            c.commit_later()
            await asyncio.wait_for(committed.wait(), 5)
            fut = c.future(deferrable=True)
            c.pending.insert_message(msg("urgent"), 1.0)
            for _ in range(5):
                await asyncio.sleep(0)
            assert fut.done(), "the answer waited for the interval after a lazy commit"
            assert _stored_status(store, "urgent") is A
        finally:
            c.stop()

    asyncio.run(main())
