"""The storage interfaces (``routing.repository``) as their docstrings promise them, run
against every engine (``backend`` in conftest.py).

Only the Protocol verbs are used, plus what every engine's ``Backend`` offers: ``restart``
(an orderly stop and a fresh engine on the same storage), ``peer`` (the record opened again
alongside) and ``storage_reads``. Writes are awaited through their ``Durable``; events that
become due are awaited through ``subscribe`` with a timeout, never with a bare sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from routing.events import Claim, ReceiptEvent
from routing.jobs import Job
from routing.model import Message, Status
from routing.repository import (
    Durable,
    KeptAnswer,
    MessageFilter,
    MessageRecord,
    MoGroup,
    MoPart,
    Segment,
)

if TYPE_CHECKING:
    from tests.contract.conftest import Backend

A, S, D, U, C = (Status.ACCEPTED, Status.SUBMITTED, Status.DELIVERED, Status.UNDELIVERABLE,
                 Status.CANCELLED)
NOW = 1_700_000_000.0
WAIT_S = 5.0


# --- helpers ------------------------------------------------------------------------------


async def durable(d: Durable, timeout: float = WAIT_S) -> None:
    """Wait until ``d`` completes; fail if it failed or took longer than ``timeout``."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[BaseException | None] = loop.create_future()

    def finished(f: Any) -> None:
        if not done.done():
            done.set_result(f.exception())

    d.add_done_callback(finished)
    error = await asyncio.wait_for(done, timeout)
    assert error is None, f"durable write failed: {error!r}"


def completes_at_once(d: Durable) -> bool:
    """Whether ``d`` ran its callback synchronously (a write that was durable already)."""
    seen: list[bool] = []
    d.add_done_callback(lambda _: seen.append(True))
    return bool(seen)


class Ready:
    """A subscriber: records the names it is called with; ``wait`` for one, bounded."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._changed = asyncio.Event()

    def __call__(self, name: str) -> None:
        self.seen.append(name)
        self._changed.set()

    async def wait(self, name: str, timeout: float = WAIT_S) -> None:
        async def seen() -> None:
            while name not in self.seen:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(seen(), timeout)
        self.seen.clear()


def msg(record: MessageRecord, **kw: Any) -> Message:
    base: dict[str, Any] = dict(id=record.new_message_id(), tenant="acme", source_addr="ACME",
                                destination_addr="447700900123", body=b"hi\x00\xff",
                                tlvs=b"\x02\x04\x00\x02\x00\x07", data_coding=8,
                                registered_delivery=1, created_at=NOW)
    base.update(kw)
    return Message(**base)


def ids(messages: Sequence[Message]) -> list[str]:
    return [m.id for m in messages]


def same_content(got: Message | None, want: Message) -> bool:
    """Equal but for ``updated_at`` (the engine's to set)."""
    return got is not None and msgspec.structs.replace(got, updated_at=want.updated_at) == want


def rec(n: int) -> ReceiptEvent:
    return ReceiptEvent(message_id=str(n), status=D, submitted_at=NOW, done_at=NOW + 1,
                        source_addr="ACME", destination_addr="447700900123", preview=f"#{n}")


def events_of(claims: Sequence[Claim]) -> list[Any]:
    return [c.event for c in claims]


async def claim_within(backend: Backend, tenant: str, want: int,
                       timeout: float = WAIT_S) -> list[Claim]:
    """Claim until ``want`` claims came back (after a restart nobody is notified)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    out: list[Claim] = []
    while len(out) < want:
        out += backend.events.claim(tenant, want - len(out))
        if len(out) < want:
            assert loop.time() < deadline, f"only {len(out)} of {want} claims offered"
            await asyncio.sleep(0.01)
    return out


# --- MessageRecord ------------------------------------------------------------------------


def test_message_ids_are_never_handed_out_twice_also_after_a_restart(backend: Backend) -> None:
    async def body() -> None:
        first = [backend.record.new_message_id() for _ in range(200)]
        await backend.restart()
        second = [backend.record.new_message_id() for _ in range(200)]
        assert len(set(first)) == len(set(second)) == 200
        assert set(first).isdisjoint(second)

    backend.run(body())


def test_accepted_messages_are_read_back_queried_and_recovered(backend: Backend) -> None:
    async def body() -> None:
        r = backend.record
        ms = [msg(r, tenant="acme" if i % 2 == 0 else "beta", body=bytes([i]) * 3)
              for i in range(6)]
        await durable(r.accept(ms, NOW))
        for m in ms:
            assert same_content(r.get(m.id), m)
        assert r.get(r.new_message_id()) is None
        assert r.history_of(ms[0].id)[0].status is A

        assert ids(r.query(tenant="acme")) == ids(ms[0::2])
        assert ids(r.query(tenant="beta", status=A)) == ids(ms[1::2])
        page = r.query(limit=4)
        assert ids(page + r.query(after_id=page[-1].id)) == ids(ms)
        assert r.query(status=S) == []

        r.record_change(ms[0].id, A, S, NOW + 1, operator="opA")
        r.record_change(ms[3].id, A, C, NOW + 1)
        await durable(r.sync())
        assert ids(r.query(status=S)) == [ms[0].id]
        first = r.recoverable(limit=2)
        rest = r.recoverable(after_id=first[-1].id)
        assert ids(first + rest) == [ms[1].id, ms[2].id, ms[4].id, ms[5].id]
        assert all(m.status is A for m in first + rest)

    backend.run(body())


def test_recoverable_messages_are_read_by_the_epoch_that_accepted_them(
        backend: Backend) -> None:
    """Each start hands out ids of a new epoch: a node taking over another's messages reads
    those of one epoch only, and learns which epochs have any waiting."""
    async def body() -> None:
        before = [msg(backend.record) for _ in range(3)]
        await durable(backend.record.accept(before, NOW))
        await backend.restart()
        r = backend.record
        after = [msg(r) for _ in range(2)]
        await durable(r.accept(after, NOW))
        epochs = r.recoverable_epochs()
        assert len(epochs) == 2
        old, new = sorted(epochs)
        assert ids(r.recoverable(epoch=old)) == ids(before)
        assert ids(r.recoverable(epoch=new)) == ids(after)
        assert ids(r.recoverable(epoch=old, after_id=before[0].id, limit=1)) == [before[1].id]
        r.record_change(after[0].id, A, S, NOW + 1, operator="opA")
        r.record_change(after[1].id, A, C, NOW + 1)
        await durable(r.sync())
        assert r.recoverable_epochs() == {old}

    backend.run(body())


def test_handed_over_messages_are_recovered_by_the_epoch_they_went_to(
        backend: Backend) -> None:
    """A node without a bind to an operator hands its waiting messages to a node with one:
    from then on they are that node's to recover (or to take over when it dies), not their
    accepting node's; one that has left ``accepted`` stays as it is."""
    async def body() -> None:
        r = backend.record
        ms = [msg(r) for _ in range(4)]
        await durable(r.accept(ms, NOW))
        (mine,) = r.recoverable_epochs()
        other = mine + 7
        r.record_change(ms[3].id, A, S, NOW + 1, operator="opA")
        await durable(r.hand_over([ms[1].id, ms[2].id, ms[3].id], "opA", other))
        assert ids(r.recoverable(epoch=mine)) == [ms[0].id]
        assert ids(r.recoverable(epoch=other)) == [ms[1].id, ms[2].id]
        assert r.recoverable_epochs() == {mine, other}
        assert r.get(ms[3].id).status is S  # type: ignore[union-attr]
        await durable(r.hand_over([ms[2].id], "opA", mine))  # and back
        assert ids(r.recoverable(epoch=mine)) == [ms[0].id, ms[2].id]
        assert ids(r.recoverable()) == ids(ms[:3])
        await backend.restart()
        assert ids(backend.record.recoverable(epoch=other)) == [ms[1].id]

    backend.run(body())


def test_sync_completes_once_everything_recorded_is_durable(backend: Backend) -> None:
    """After ``sync``, another reader of the storage (and the engine after a restart) sees
    every write recorded before it: accepts, changes, segments, inbound parts."""
    group = MoGroup("opA", "447700900123", "4477", 0, 9, 2)
    part = MoPart(group, 1, b"first half", NOW)

    async def body() -> None:
        r = backend.record
        m1, m2 = msg(r), msg(r)
        r.accept([m1, m2], NOW)  # not awaited: sync covers it
        r.record_change(m1.id, A, S, NOW + 1, operator="opA")
        r.record_segment(m1.id, 1, 1, "opA", "OP-1", S)
        r.save_mo_part(part)
        assert r.change_pending(m1.id) and not r.change_pending(m2.id)
        assert r.backlog() > 0
        await durable(r.sync())
        assert not r.change_pending(m1.id) and r.backlog() == 0

        peer = await backend.peer()
        try:
            for view in (r, peer.record):
                got = view.get(m1.id)
                assert got is not None and (got.status, got.operator) == (S, "opA")
                assert same_content(view.get(m2.id), m2)
                assert view.find_segment("opA", "OP-1") == Segment(m1.id, 1, 1, "opA",
                                                                   "OP-1", S)
                assert view.mo_parts() == [part]
        finally:
            peer.close()
        await backend.restart()
        r = backend.record
        got = r.get(m1.id)
        assert got is not None and got.status is S
        assert r.mo_parts() == [part] and ids(r.recoverable()) == [m2.id]

    backend.run(body())


def test_changes_of_one_writer_chain_and_leave_their_history(backend: Backend) -> None:
    async def body() -> None:
        r = backend.record
        m = msg(r)
        await durable(r.accept([m], NOW))
        r.record_change(m.id, A, S, NOW + 1, operator="opA", detail="acked")
        r.record_change(m.id, S, D, NOW + 2, error=3, detail="receipt")  # same batch
        await durable(r.sync())
        got = r.get(m.id)
        assert got is not None
        assert (got.status, got.operator, got.error, got.updated_at) == (D, "opA", 3, NOW + 2)
        assert [(h.status, h.at, h.detail) for h in r.history_of(m.id)] == [
            (A, NOW, ""), (S, NOW + 1, "acked"), (D, NOW + 2, "receipt")]

    backend.run(body())


def test_a_change_from_a_status_the_message_has_left_loses(backend: Backend) -> None:
    """Two writers read the message ACCEPTED: the dispatcher moves it to SUBMITTED, then a
    cancel arrives with the same precondition. Only the first wins."""
    async def body() -> None:
        r = backend.record
        m = msg(r)
        await durable(r.accept([m], NOW))
        r.record_change(m.id, A, S, NOW + 1, operator="opA")
        await durable(r.sync())
        r.record_change(m.id, A, C, NOW + 2, error=9)
        await durable(r.sync())
        got = r.get(m.id)
        assert got is not None
        assert (got.status, got.operator, got.error, got.updated_at) == (S, "opA", 0, NOW + 1)
        r.record_change(m.id, S, D, NOW + 3)  # from where it really is: applied
        await durable(r.sync())
        got = r.get(m.id)
        assert got is not None and got.status is D

    backend.run(body())


def test_a_lost_change_is_not_in_the_history(backend: Backend) -> None:
    async def body() -> None:
        r = backend.record
        m = msg(r)
        await durable(r.accept([m], NOW))
        r.record_change(m.id, A, S, NOW + 1, operator="opA")
        await durable(r.sync())
        r.record_change(m.id, A, C, NOW + 2)
        await durable(r.sync())
        history = [h.status for h in r.history_of(m.id)]
        assert history == [A, S], (
            "BUG (sqlite: routing/sqlite/store.py Store.apply inserts history rows "
            "unconditionally): history_of lists a change the precondition refused: "
            f"{[s.value for s in history]}")

    backend.run(body())


def test_a_stale_change_loses_also_within_one_batch(backend: Backend) -> None:
    """The two writers above, both recorded before the next commit."""
    async def body() -> None:
        r = backend.record
        m = msg(r)
        await durable(r.accept([m], NOW))
        r.record_change(m.id, A, S, NOW + 1, operator="opA")
        r.record_change(m.id, A, C, NOW + 2)  # read ACCEPTED too: stale
        await durable(r.sync())
        got = r.get(m.id)
        assert got is not None
        assert got.status is S, (
            "BUG (sqlite: routing/sqlite/ops.py Ops.set_status merges a second change of a "
            "message in one batch without checking its precondition): the stale writer won, "
            f"status {got.status.value}")

    backend.run(body())


def test_replace_changes_a_message_only_while_it_is_accepted(backend: Backend) -> None:
    async def body() -> None:
        r = backend.record
        m = msg(r, body=b"old")
        await durable(r.accept([m], NOW))
        new = msgspec.structs.replace(m, body=b"new", data_coding=0)
        await durable(r.replace(new, NOW + 1))
        assert same_content(r.get(m.id), new)

        r.record_change(m.id, A, S, NOW + 2, operator="opA")
        await durable(r.sync())
        await durable(r.replace(msgspec.structs.replace(m, body=b"too late"), NOW + 3))
        got = r.get(m.id)
        assert got is not None
        assert (got.body, got.data_coding, got.status, got.operator) == (b"new", 0, S, "opA")

    backend.run(body())


def test_segments_are_found_by_the_operators_id_and_listed_by_part(backend: Backend) -> None:
    async def body() -> None:
        r = backend.record
        m, other = msg(r), msg(r)
        await durable(r.accept([m, other], NOW))
        r.record_segment(m.id, 2, 2, "opA", "AB2", S)
        r.record_segment(m.id, 1, 2, "opA", "AB1", S)
        await durable(r.sync())
        assert r.find_segment("opA", "AB2") == Segment(m.id, 2, 2, "opA", "AB2", S, 0)
        assert r.find_segment("opB", "AB2") is None
        assert r.find_segment("opA", "nope") is None

        r.record_segment(m.id, 2, 2, "opA", "AB2", D)  # its receipt
        r.record_segment(m.id, 1, 2, "opA", "AB1", U, 0x0B)
        await durable(r.sync())
        assert r.segments_of(m.id) == [Segment(m.id, 1, 2, "opA", "AB1", U, 0x0B),
                                       Segment(m.id, 2, 2, "opA", "AB2", D, 0)]
        assert r.find_segment("opA", "AB1") == Segment(m.id, 1, 2, "opA", "AB1", U, 0x0B)
        assert r.segments_of(other.id) == []

    backend.run(body())


def test_overdue_lists_what_an_operator_took_and_never_answered_oldest_first(
        backend: Backend) -> None:
    async def body() -> None:
        r = backend.record
        ms = [msg(r) for _ in range(6)]
        await durable(r.accept(ms, NOW))
        r.record_change(ms[0].id, A, S, NOW + 30, operator="opA")
        r.record_change(ms[1].id, A, S, NOW + 20, operator="opA")
        r.record_change(ms[2].id, A, S, NOW + 25, operator="opB")
        r.record_change(ms[3].id, A, S, NOW + 99, operator="opA")  # too recent
        r.record_change(ms[4].id, A, S, NOW + 10, operator="opA")
        r.record_change(ms[4].id, S, D, NOW + 11)  # answered
        await durable(r.sync())  # ms[5] is still ACCEPTED: not taken
        assert ids(r.overdue("opA", NOW + 50)) == [ms[1].id, ms[0].id]
        assert ids(r.overdue("opA", NOW + 50, limit=1)) == [ms[1].id]
        assert ids(r.overdue("opB", NOW + 50)) == [ms[2].id]
        assert r.overdue("opA", NOW + 20) == []

    backend.run(body())


def test_inbound_parts_are_kept_until_their_group_is_dropped(backend: Backend) -> None:
    g1 = MoGroup("opA", "447700900123", "4477", 0, 7, 3)
    g2 = MoGroup("opA", "447700900999", "4477", 8, 7, 2)
    p1, p2 = MoPart(g1, 1, b"one\x00", NOW + 4), MoPart(g1, 2, b"two", NOW + 5)
    q1 = MoPart(g2, 1, b"other", NOW + 6)

    async def body() -> None:
        r = backend.record
        for p in (p2, p1, q1):
            r.save_mo_part(p)
        await durable(r.sync())
        assert r.mo_parts() == [p1, p2, q1]  # oldest first

        anew = MoPart(g1, 1, b"anew", NOW + 7)
        r.drop_mo_group(g1)  # joined ...
        r.save_mo_part(anew)  # ... and a late part opens the group again
        await durable(r.sync())
        assert r.mo_parts() == [q1, anew]
        await backend.restart()
        assert backend.record.mo_parts() == [q1, anew]
        backend.record.drop_mo_group(g2)
        await durable(backend.record.sync())
        assert backend.record.mo_parts() == [anew]

    backend.run(body())


# --- WorkQueue ----------------------------------------------------------------------------


def job(mid: str, **kw: Any) -> Job:
    m = Message(id=mid, tenant="acme", source_addr="ACME", destination_addr="447700900123")
    return Job(message=m, operators=("opA", "opB"), **kw)


def jids(jobs: Sequence[Job]) -> list[str]:
    return [j.message.id for j in jobs]


def test_work_is_claimed_in_order_up_to_the_limit_per_operator(backend: Backend) -> None:
    w = backend.work
    w.put([job("1"), job("2"), job("3")], "opA")
    w.put([job("4"), job("5")], "opA")
    w.put([job("b")], "opB")
    assert (w.depth("opA"), w.depth("opB")) == (5, 1)
    first = w.claim("opA", 2, NOW)
    assert jids(first) == ["1", "2"]
    rest = w.claim("opA", 10, NOW)
    assert jids(rest) == ["3", "4", "5"]
    assert w.claim("opA", 10, NOW) == [] and w.depth("opA") == 0
    assert jids(w.claim("opB", 10, NOW)) == ["b"]
    for j in first + rest:
        w.settle(j)  # done with the queue: never offered again
    assert w.claim("opA", 10, NOW + 3600) == []
    assert w.next_due("opA") is None


def test_put_in_front_goes_first(backend: Backend) -> None:
    w = backend.work
    w.put([job("1"), job("2")], "opA")
    w.put([job("back")], "opA", front=True)
    assert jids(w.claim("opA", 10, NOW)) == ["back", "1", "2"]


def test_jobs_not_yet_due_stay_in_place_and_are_claimed_when_due(backend: Backend) -> None:
    w = backend.work
    w.put([job("later", not_before=NOW + 10), job("now1"), job("soon", not_before=NOW + 5),
           job("now2")], "opA")
    assert jids(w.claim("opA", 10, NOW)) == ["now1", "now2"]
    assert w.depth("opA") == 2
    assert w.next_due("opA") == NOW + 5
    assert w.claim("opA", 10, NOW + 4.9) == []
    assert jids(w.claim("opA", 10, NOW + 5)) == ["soon"]
    assert w.next_due("opA") == NOW + 10
    assert jids(w.claim("opA", 10, NOW + 11)) == ["later"]
    assert w.next_due("opA") is None


def test_a_retried_job_comes_back_when_due_ahead_of_newer_work(backend: Backend) -> None:
    w = backend.work
    w.put([job("a"), job("b")], "opA")
    [a] = w.claim("opA", 1, NOW)
    w.retry(a, "opA", NOW + 3)
    assert jids(w.claim("opA", 10, NOW)) == ["b"]  # a is not due yet
    assert w.next_due("opA") == NOW + 3
    w.put([job("c")], "opA")
    assert jids(w.claim("opA", 10, NOW + 3)) == ["a", "c"]


def test_a_claimed_job_can_be_retried_on_another_operator(backend: Backend) -> None:
    w = backend.work
    w.put([job("a")], "opA")
    [a] = w.claim("opA", 1, NOW)
    w.retry(a, "opB", NOW)
    assert w.claim("opA", 10, NOW) == []
    assert jids(w.claim("opB", 10, NOW)) == ["a"]


def test_cancelled_jobs_are_dropped_not_claimed(backend: Backend) -> None:
    w = backend.work
    gone = job("gone")
    w.put([gone, job("kept")], "opA")
    gone.cancelled = True
    assert jids(w.claim("opA", 10, NOW)) == ["kept"]
    assert w.depth("opA") == 0


def test_drain_takes_everything_queued(backend: Backend) -> None:
    w = backend.work
    w.put([job("1"), job("2", not_before=NOW + 60), job("3")], "opA")
    w.put([job("b")], "opB")
    assert jids(w.drain("opA")) == ["1", "2", "3"]
    assert w.depth("opA") == 0 and w.claim("opA", 10, NOW + 120) == []
    assert w.next_due("opA") is None
    assert w.depth("opB") == 1


def test_notify_wakes_every_subscriber_with_the_operator(backend: Backend) -> None:
    w = backend.work
    one: list[str] = []
    two: list[str] = []
    w.subscribe(one.append)
    w.subscribe(two.append)
    w.put([job("1")], "opB")
    w.notify("opB")
    assert one == two == ["opB"]


# --- EventQueue ---------------------------------------------------------------------------


def test_published_events_are_claimable_once_durable_oldest_first(backend: Backend) -> None:
    async def body() -> None:
        q = backend.events
        ready = Ready()
        q.subscribe(ready)
        events = [rec(i) for i in range(10)]
        first = q.publish("acme", events[:6], NOW)
        second = q.publish("acme", events[6:], NOW)
        if not completes_at_once(first):
            assert q.claim("acme", 100) == [], "claimable before it was durable"
            assert "acme" not in ready.seen
        await durable(first)
        await durable(second)
        await ready.wait("acme")
        await durable(q.publish("beta", [rec(99)], NOW))

        got = q.claim("acme", 3)
        assert len(got) == 3
        got += q.claim("acme", 100)
        assert events_of(got) == events
        assert [c.id for c in got] == sorted({c.id for c in got})
        assert all(c.tenant == "acme" and c.attempts == 0 for c in got)
        assert q.claim("acme", 100) == []  # all in flight
        assert events_of(q.claim("beta", 100)) == [rec(99)]

    backend.run(body())


def test_settled_events_are_never_offered_again_unsettled_ones_are_after_a_restart(
        backend: Backend) -> None:
    """Claims are leases: what the holder settled is gone, what it still held when the
    engine stopped is offered again."""
    async def body() -> None:
        q = backend.events
        await durable(q.publish("acme", [rec(1), rec(2), rec(3)], NOW))
        a, b, c = q.claim("acme", 10)
        q.settle(a)
        q.settle(b)
        assert q.claim("acme", 10) == []
        assert q.depths() == {"acme": 1}

        await backend.restart()
        q = backend.events
        assert q.depths() == {"acme": 1}
        [again] = await claim_within(backend, "acme", 1)
        assert (again.id, again.event) == (c.id, rec(3))
        q.settle(again)
        await backend.restart()
        assert backend.events.claim("acme", 10) == []
        assert backend.events.depths() == {}

    backend.run(body())


def test_a_retried_event_is_offered_again_after_the_delay(backend: Backend) -> None:
    async def body() -> None:
        q = backend.events
        ready = Ready()
        q.subscribe(ready)
        await durable(q.publish("acme", [rec(1), rec(2)], NOW))
        await ready.wait("acme")
        [one] = q.claim("acme", 1)
        q.retry(one, 0.05)
        [two] = q.claim("acme", 10)  # the other one is not held back
        assert two.event == rec(2)
        q.settle(two)
        assert q.claim("acme", 10) == []  # not before the delay
        assert q.depths() == {"acme": 1}  # waiting still counts

        await ready.wait("acme")
        [again] = q.claim("acme", 10)
        assert (again.id, again.event, again.attempts) == (one.id, rec(1), 1)
        q.retry(again, 0.05)
        await ready.wait("acme")
        [third] = q.claim("acme", 10)
        assert third.attempts == 2

        q.retry(third, 0.05)  # the attempts are kept across a restart
        await backend.restart()
        [after] = await claim_within(backend, "acme", 1)
        assert (after.id, after.attempts) == (one.id, 3)

    backend.run(body())


def test_a_released_event_is_offered_again_at_once_and_first(backend: Backend) -> None:
    async def body() -> None:
        q = backend.events
        ready = Ready()
        q.subscribe(ready)
        await durable(q.publish("acme", [rec(1), rec(2), rec(3)], NOW))
        await ready.wait("acme")
        a, b = q.claim("acme", 2)
        q.release(b)  # its bind ended
        await ready.wait("acme")
        got = q.claim("acme", 10)
        assert events_of(got) == [rec(2), rec(3)]
        assert got[0].attempts == 0  # a release is not a failed attempt
        q.release(a)
        await ready.wait("acme")
        assert events_of(q.claim("acme", 10)) == [rec(1)]
        assert q.depths() == {"acme": 3}

    backend.run(body())


def test_depths_count_waiting_and_in_flight_events_without_reading_storage(
        backend: Backend) -> None:
    async def body() -> None:
        q = backend.events
        assert q.depths() == {}
        await durable(q.publish("acme", [rec(1), rec(2), rec(3)], NOW))
        await durable(q.publish("beta", [rec(4), rec(5)], NOW))
        assert q.depths() == {"acme": 3, "beta": 2}
        a, b = q.claim("acme", 2)
        assert q.depths() == {"acme": 3, "beta": 2}  # in flight counts
        q.settle(a)
        q.retry(b, 60.0)
        assert q.depths() == {"acme": 2, "beta": 2}
        assert backend.storage_reads(q.depths) == 0, "depths() read the storage"

        await backend.restart()
        q = backend.events
        assert q.depths() == {"acme": 2, "beta": 2}
        assert backend.storage_reads(q.depths) == 0, "depths() read the storage"

    backend.run(body())


def test_purge_drops_events_older_than_the_retention(backend: Backend) -> None:
    async def body() -> None:
        q = backend.events
        await durable(q.publish("acme", [rec(1), rec(2)], NOW - 100))
        await durable(q.publish("acme", [rec(3)], NOW))
        await durable(q.publish("beta", [rec(4)], NOW - 100))
        await durable(q.purge(NOW - 50))
        assert q.depths() == {"acme": 1}
        assert events_of(q.claim("acme", 10)) == [rec(3)]
        assert q.claim("beta", 10) == []

        await backend.restart()
        assert backend.events.depths() == {"acme": 1}
        assert events_of(await claim_within(backend, "acme", 1)) == [rec(3)]
        assert backend.events.claim("beta", 10) == []

    backend.run(body())


def test_purging_an_event_in_flight_does_not_spoil_the_depths(backend: Backend) -> None:
    async def body() -> None:
        q = backend.events
        await durable(q.publish("acme", [rec(1)], NOW - 100))
        await durable(q.publish("acme", [rec(2)], NOW))
        [old] = q.claim("acme", 1)
        await durable(q.purge(NOW - 50))
        q.settle(old)  # its delivery ended after the purge
        assert q.depths() == {"acme": 1}, (
            "BUG (sqlite: routing/sqlite/eventqueue.py SqliteEventQueue counts a purged "
            "event down twice, in _purged and again in settle): rec(2) still waits, but "
            f"depths() == {q.depths()}")

    backend.run(body())


def test_a_purged_event_waiting_for_its_retry_is_not_offered_again(backend: Backend) -> None:
    async def body() -> None:
        q = backend.events
        ready = Ready()
        q.subscribe(ready)
        await durable(q.publish("acme", [rec(1)], NOW - 100))
        await durable(q.publish("acme", [rec(2)], NOW))
        old, new = q.claim("acme", 2)
        q.retry(old, 0.05)
        q.retry(new, 0.1)  # due after the old one
        await durable(q.purge(NOW - 50))
        ready.seen.clear()
        await ready.wait("acme")
        while not (got := q.claim("acme", 10)):  # an engine may not wake for a purged one
            await ready.wait("acme")
        assert events_of(got) == [rec(2)], (
            "BUG (sqlite: routing/sqlite/eventqueue.py SqliteEventQueue._due puts a claim "
            "back whatever purge dropped meanwhile): a purged event is offered again: "
            f"{events_of(got)}")

    backend.run(body())


# --- what the HTTP door reads and keeps ----------------------------------------------------


def test_find_filters_a_tenants_messages_newest_first_and_pages(backend: Backend) -> None:
    async def body() -> None:
        r = backend.record
        ms = [msg(r, tenant="acme" if i % 3 else "beta", request_id="r1" if i < 6 else "r2",
                  destination_addr=f"4477009001{i:02}", created_at=NOW + i)
              for i in range(9)]
        await durable(r.accept(ms, NOW))
        acme = [m for m in ms if m.tenant == "acme"]
        assert ids(r.find("acme", MessageFilter())) == ids(acme)[::-1]
        assert ids(r.find("acme", MessageFilter(request_id="r1"))) == [
            m.id for m in reversed(acme) if m.request_id == "r1"]
        assert ids(r.find("acme", MessageFilter(recipient=acme[0].destination_addr))) == [
            acme[0].id]
        assert ids(r.find("acme", MessageFilter(since=NOW + 2, until=NOW + 5))) == [
            m.id for m in reversed(acme) if NOW + 2 <= m.created_at < NOW + 5]
        pages: list[str] = []
        before = ""
        for _ in range(10):  # bounded: 6 messages, 4 per page
            page = r.find("acme", MessageFilter(before_id=before, limit=4))
            pages += ids(page)
            if len(page) < 4:
                break
            before = page[-1].id
        assert pages == ids(acme)[::-1]
        r.record_change(acme[0].id, A, S, NOW + 1, operator="opA")
        await durable(r.sync())
        assert ids(r.find("acme", MessageFilter(status=S))) == [acme[0].id]
        assert r.request_counts("acme", "r1") == {S: 1, A: sum(
            1 for m in acme if m.request_id == "r1") - 1}
        assert r.request_counts("beta", "nope") == {}
        assert r.find("gamma", MessageFilter()) == []

    backend.run(body())


def test_a_kept_answer_is_durable_with_the_messages_and_forgotten_after_retention(
        backend: Backend) -> None:
    async def body() -> None:
        r = backend.record
        answer = KeptAnswer("f" * 64, 200, b'{"request_id":"r_1"}', NOW)
        r.keep_answer("acme", "key-1", answer)
        await durable(r.accept([msg(r)], NOW))
        await backend.restart()
        r = backend.record
        assert r.kept_answer("acme", "key-1") == answer
        assert r.kept_answer("beta", "key-1") is None  # keys are per tenant
        r.keep_answer("acme", "key-1", KeptAnswer("0" * 64, 200, b"{}", NOW + 5))
        await durable(r.sync())
        assert r.kept_answer("acme", "key-1") == answer  # the first answer stays
        r.forget_answers(NOW + 1)
        await durable(r.sync())
        assert r.kept_answer("acme", "key-1") is None

    backend.run(body())


def test_a_failed_event_is_listed_not_offered_and_offered_again_when_revived(
        backend: Backend) -> None:
    async def body() -> None:
        q = backend.events
        await durable(q.publish("acme/webhook", [rec(1), rec(2)], NOW))
        one, two = await claim_within(backend, "acme/webhook", 2)
        q.fail(one)
        q.settle(two)
        await durable(backend.record.sync())
        assert q.depths() == {}
        [kept] = q.failed("acme/webhook")
        assert (kept.id, kept.event) == (one.id, rec(1))
        assert q.failed("acme") == [] and q.failed("acme/webhook", after_id=one.id) == []
        await backend.restart()
        q = backend.events
        assert q.claim("acme/webhook", 10) == []  # not offered after a restart either
        assert q.revive("acme/webhook", one.id)
        assert not q.revive("acme/webhook", one.id + 1000)
        [again] = await claim_within(backend, "acme/webhook", 1)
        assert (again.id, again.event, again.attempts) == (one.id, rec(1), 0)
        q.settle(again)
        await durable(backend.record.sync())
        assert q.failed("acme/webhook") == []

    backend.run(body())


def test_event_ids_are_never_reused_even_once_every_event_is_gone(backend: Backend) -> None:
    """Webhook receivers deduplicate by webhook-id, which is the event id."""
    async def body() -> None:
        q = backend.events
        await durable(q.publish("acme", [rec(1)], NOW))
        [first] = await claim_within(backend, "acme", 1)
        q.settle(first)
        await backend.restart()
        q = backend.events
        await durable(q.publish("acme", [rec(2)], NOW))
        [second] = await claim_within(backend, "acme", 1)
        assert second.id > first.id

    backend.run(body())
