"""The ESME pool and its binds without sockets: operators up and down, who pumps, how much.

The router is a fake (``PoolRouter``) over a real ``MemoryWorkQueue``: it hands out queued
jobs, puts back what a bind could not send and answers ``part_failed`` with the real
classification. Binds are real ``OperatorBind`` objects that are never run; a fake
connection stands for a bound session (window room, writable). The clock is fake: the
binds read it from their connection's loop and, for timers and answers, from
``asyncio.get_running_loop()``, which the ``clock`` fixture points at the same fake.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

import pytest

from config import GatewayConfig, OperatorConfig
from encoding.constants import CommandStatus as S
from encoding.pdu import BindTransceiver, Pdu, SubmitSm, SubmitSmResp
from encoding.receipt import Receipt
from encoding.session import Event, ResponseReceived
from esme import Connection, Pool
from esme.bind import OperatorBind
from routing import Message
from routing.inbound import Inbound
from routing.jobs import Job, PartState
from routing.repository import MessageRecord
from routing.retry import Outcome, classify
from routing.workqueue import MemoryWorkQueue
from tests.fakesession import FakeSession
from tests.pool_fakes import HeldSlots


class Handle:
    def __init__(self, when: float, fn: Callable[[], object]) -> None:
        self.when = when
        self.fn = fn
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled


class FakeClock:
    """The parts of an event loop a bind uses: ``time`` and ``call_at``."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[Handle] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, fn: Callable[[], object]) -> Handle:
        h = Handle(when, fn)
        self.timers.append(h)
        return h

    def due_at(self) -> list[float]:
        return [h.when for h in self.timers if not h.cancelled()]

    def advance_to(self, when: float) -> None:
        self.now = when
        due = [h for h in self.timers if h.when <= when and not h.cancelled()]
        self.timers = [h for h in self.timers if h not in due]
        for h in due:
            h.fn()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    c = FakeClock()
    monkeypatch.setattr(asyncio, "get_running_loop", lambda: c)
    yield c


class FakeRouter:
    """A PoolRouter over a MemoryWorkQueue, recording what the pool and its binds ask."""

    def __init__(self, work: MemoryWorkQueue) -> None:
        self.work = work
        self.calls: list[tuple[str, str]] = []  # (verb, operator) for up/down/take
        self.put_backs: list[list[str]] = []  # message ids put back, per call
        self.failed: list[tuple[str, int, int | None]] = []
        self.acked: list[tuple[str, int, str]] = []

    def operator_up(self, operator: str) -> None:
        self.calls.append(("up", operator))

    def operator_down(self, operator: str) -> None:
        self.calls.append(("down", operator))

    def take(self, operator: str, limit: int, now: float) -> list[Job]:
        self.calls.append(("take", operator))
        return self.work.claim(operator, limit, now)

    def put_back(self, jobs: Iterable[Job], operator: str) -> None:
        jobs = list(jobs)
        self.put_backs.append([j.message.id for j in jobs])
        for job in reversed(jobs):
            self.work.retry(job, operator, job.not_before)

    def parts_for(self, job: Job, now: float) -> list[int]:
        return [i for i, p in enumerate(job.parts) if p.state == "pending"]

    def part_sending(self, job: Job, index: int) -> None:
        job.parts[index].state = "sending"
        job.sent = True

    def part_acked(self, job: Job, index: int, operator: str, operator_id: str) -> None:
        self.acked.append((job.message.id, index, operator_id))

    def part_failed(self, job: Job, index: int, status: int | None, now: float) -> Outcome:
        self.failed.append((job.message.id, index, status))
        job.parts[index].state = "pending"
        return classify(status)

    def pending(self, operator: str) -> int:
        return self.work.depth(operator)

    def next_due(self, operator: str) -> float | None:
        return self.work.next_due(operator)

    def receipt(self, operator: str, receipt: Receipt, now: float) -> bool:
        return False

    def ups_and_downs(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] in ("up", "down")]




class FakeConn:
    """A bound connection toward an operator: ``send`` records and uses window room."""

    def __init__(self, clock: FakeClock, room: int = 10) -> None:
        self.loop = clock
        self.session = FakeSession(room)
        self.writable = True
        self.sent: list[tuple[Pdu, Any]] = []
        self.unbinds = 0

    def send(self, pdu: Pdu, context: Any = None) -> int:
        assert self.session.window.room > 0, "sent beyond the window"
        self.session.window.room -= 1
        self.sent.append((pdu, context))
        return len(self.sent)

    def try_send(self, pdu: Pdu, context: Any = None) -> int | None:
        return self.send(pdu, context)

    def unbind(self) -> None:
        self.unbinds += 1

    def close(self) -> None:
        self.session.closed = True

    def ids(self) -> list[tuple[str, int]]:
        return [(ctx[0].message.id, ctx[1]) for _, ctx in self.sent]


def operator(name: str, **kw: Any) -> OperatorConfig:
    return OperatorConfig(name=name, host="127.0.0.1", port=2775, system_id="gw",
                          password="pw", **kw)


class Rig:
    def __init__(self, *ops: OperatorConfig) -> None:
        self.config = GatewayConfig(operators=ops)
        self.work = MemoryWorkQueue(op.name for op in ops)
        self.router = FakeRouter(self.work)
        self.counted: list[tuple[str, str]] = []
        self.pool = Pool(self.config, self.router, self.work, cast(Inbound, None),
                         cast(MessageRecord, None),
                         count=lambda op, event: self.counted.append((op, event)),
                         wall=lambda: 1_800_000_000.0)
        self._next = 0

    def job(self, operator: str, parts: int = 1) -> Job:
        self._next += 1
        m = Message(id=str(self._next), tenant="acme", source_addr="ACME",
                    destination_addr="447700900123")
        pdus = tuple(PartState(SubmitSm(destination_addr="447700900123",
                                        short_message=f"{self._next}/{i}".encode()))
                     for i in range(parts))
        return Job(m, (operator,), parts=pdus)

    def queue(self, operator: str, n: int = 1, parts: int = 1) -> list[Job]:
        jobs = [self.job(operator, parts) for _ in range(n)]
        self.work.put(jobs, operator)
        return jobs

    def attach(self, bind: OperatorBind, clock: FakeClock, room: int = 10) -> FakeConn:
        """``bind`` is connected and bound (as after its bind_resp)."""
        conn = FakeConn(clock, room)
        bind.conn = cast(Connection, conn)
        bind.bound = True
        return conn

    def queued_ids(self, operator: str) -> list[str]:
        return [j.message.id for j in self.work.claim(operator, 1000, float("inf"))]


def bind_resp(status: int = 0) -> list[Event]:
    request = BindTransceiver(system_id="gw", password="pw", sequence_number=1)
    return [ResponseReceived(request.response(status), request)]


def submit_resp(conn: FakeConn, n: int, status: int, message_id: str = "") -> Event:
    """The operator's answer to the ``n``-th submit the bind sent."""
    pdu, ctx = conn.sent[n]
    return ResponseReceived(SubmitSmResp(sequence_number=n + 1, command_status=status,
                                         message_id=message_id), pdu, ctx)


# --- the pool: operators up and down --------------------------------------------------------


def test_pool_builds_the_configured_binds() -> None:
    rig = Rig(operator("opA", binds=2), operator("opB", bind="transmitter+receiver"))
    assert [b.bind_type for b in rig.pool.binds["opA"]] == ["transceiver", "transceiver"]
    assert [b.bind_type for b in rig.pool.binds["opB"]] == ["transmitter", "receiver"]
    assert len({b.name for binds in rig.pool.binds.values() for b in binds}) == 4


def test_a_bind_becoming_bound_brings_its_operator_up_and_sends_its_queue(
        clock: FakeClock) -> None:
    rig = Rig(operator("opA"))
    [b] = rig.pool.binds["opA"]
    conn = FakeConn(clock)
    b.conn = cast(Connection, conn)
    jobs = rig.queue("opA", 2)
    b.on_events(cast(Connection, conn), bind_resp(S.ESME_ROK))
    assert b.bound
    assert rig.router.ups_and_downs() == [("up", "opA")]
    assert rig.pool.available("opA")
    assert conn.ids() == [(jobs[0].message.id, 0), (jobs[1].message.id, 0)]
    assert rig.work.depth("opA") == 0


def test_a_refused_bind_does_not_bring_the_operator_up(clock: FakeClock) -> None:
    rig = Rig(operator("opA"))
    [b] = rig.pool.binds["opA"]
    conn = FakeConn(clock)
    b.conn = cast(Connection, conn)
    rig.queue("opA")
    b.on_events(cast(Connection, conn), bind_resp(S.ESME_RINVPASWD))
    assert not b.bound and not rig.pool.available("opA")
    assert rig.router.ups_and_downs() == []
    assert conn.sent == [] and conn.session.closed


def test_operator_goes_down_only_with_its_last_transmitter(clock: FakeClock) -> None:
    rig = Rig(operator("opA", bind="transmitter+receiver", binds=2))
    tx0, rx0, tx1, rx1 = rig.pool.binds["opA"]
    assert [b.bind_type for b in (tx0, rx0, tx1, rx1)] == [
        "transmitter", "receiver", "transmitter", "receiver"]
    for b in (tx0, rx0, tx1, rx1):
        rig.attach(b, clock)
        rig.pool.bound_changed("opA")
    assert rig.pool.available("opA")
    assert ("down", "opA") not in rig.router.calls
    tx0.on_closed(cast(Connection, tx0.conn), "peer closed")
    rx0.on_closed(cast(Connection, rx0.conn), "peer closed")
    assert rig.pool.available("opA")  # tx1 still sends
    assert ("down", "opA") not in rig.router.calls
    tx1.on_closed(cast(Connection, tx1.conn), "peer closed")
    assert not rig.pool.available("opA")
    assert rig.router.ups_and_downs()[-1] == ("down", "opA")


def test_receivers_alone_do_not_make_an_operator_available(clock: FakeClock) -> None:
    rig = Rig(operator("opA", bind="transmitter+receiver"))
    _, rx = rig.pool.binds["opA"]
    rig.attach(rx, clock)
    rig.pool.bound_changed("opA")
    assert not rig.pool.available("opA")
    assert ("up", "opA") not in rig.router.calls


def test_work_wakes_only_that_operators_binds(clock: FakeClock) -> None:
    rig = Rig(operator("opA"), operator("opB"))
    [a] = rig.pool.binds["opA"]
    [b] = rig.pool.binds["opB"]
    conn_a, conn_b = rig.attach(a, clock), rig.attach(b, clock)
    rig.queue("opA", 2)
    rig.queue("opB", 1)
    rig.work.notify("opA")  # the queue's subscriber is the pool
    assert [c for c in rig.router.calls if c[0] == "take"] == [("take", "opA")]
    assert len(conn_a.sent) == 2 and conn_b.sent == []
    assert rig.work.depth("opB") == 1


# --- OperatorBind.pump -----------------------------------------------------------------------


def test_pump_sends_no_more_than_window_room(clock: FakeClock) -> None:
    rig = Rig(operator("opA"))
    [b] = rig.pool.binds["opA"]
    conn = rig.attach(b, clock, room=3)
    jobs = rig.queue("opA", 5)
    b.pump()
    assert conn.ids() == [(j.message.id, 0) for j in jobs[:3]]
    assert conn.session.window.room == 0
    assert rig.queued_ids("opA") == [j.message.id for j in jobs[3:]]  # still first in line
    assert clock.timers == []  # no room: the next answer pumps again, not a timer



def test_a_bind_sends_only_while_this_node_holds_its_slot(clock: FakeClock) -> None:
    """A node cut off from the cluster stops sending once its lease lapses on its clock,
    before another node may take the slot (routing.nats.leases)."""
    rig = Rig(operator("opA", binds=2))
    rig.pool.slots = slots = HeldSlots(("opA", 1))
    first, second = rig.pool.binds["opA"]
    conns = rig.attach(first, clock), rig.attach(second, clock)
    jobs = rig.queue("opA", 3)
    first.pump()
    second.pump()
    assert conns[0].sent == []  # slot 0 is another node's
    assert conns[1].ids() == [(j.message.id, 0) for j in jobs]
    slots.held.clear()  # the lease of slot 1 lapsed
    more = rig.queue("opA", 2)
    second.pump()
    assert len(conns[1].sent) == 3
    assert rig.queued_ids("opA") == [j.message.id for j in more]  # kept for a bind that may


def test_pump_stops_mid_message_at_the_window_and_puts_the_rest_back(
        clock: FakeClock) -> None:
    rig = Rig(operator("opA"))
    [b] = rig.pool.binds["opA"]
    conn = rig.attach(b, clock, room=2)
    long, short = rig.queue("opA", 1, parts=3) + rig.queue("opA", 1)
    b.pump()
    assert conn.ids() == [(long.message.id, 0), (long.message.id, 1)]
    assert rig.router.put_backs == [[long.message.id, short.message.id]]
    # Room again: the third part goes next, then the short message.
    conn.session.window.room = 5
    b.pump()
    assert conn.ids()[2:] == [(long.message.id, 2), (short.message.id, 0)]


def test_pump_keeps_to_the_operator_rate(clock: FakeClock) -> None:
    rig = Rig(operator("opA", tps=2.0))
    [b] = rig.pool.binds["opA"]
    conn = rig.attach(b, clock, room=10)
    jobs = rig.queue("opA", 5)
    b.pump()
    assert len(conn.sent) == 2  # the bucket holds two tokens
    assert rig.router.put_backs == [[j.message.id for j in jobs[2:]]]
    assert clock.due_at() == [0.5]  # the next token
    clock.advance_to(0.5)
    assert len(conn.sent) == 3
    assert clock.due_at() == [1.0]
    clock.advance_to(1.0)
    assert conn.ids() == [(j.message.id, 0) for j in jobs[:4]]


def test_unbound_or_unwritable_bind_sends_nothing(clock: FakeClock) -> None:
    rig = Rig(operator("opA"))
    [b] = rig.pool.binds["opA"]
    conn = rig.attach(b, clock)
    rig.queue("opA", 2)
    conn.writable = False
    b.pump()
    conn.writable, conn.session.bound = True, False  # unbinding
    b.pump()
    assert conn.sent == [] and rig.work.depth("opA") == 2


def test_acked_part_is_reported_with_the_operator_id(clock: FakeClock) -> None:
    rig = Rig(operator("opA"))
    [b] = rig.pool.binds["opA"]
    conn = rig.attach(b, clock)
    [job] = rig.queue("opA")
    b.pump()
    b.on_events(cast(Connection, conn), [submit_resp(conn, 0, S.ESME_ROK, "op-77")])
    assert rig.router.acked == [(job.message.id, 0, "op-77")]
    assert ("opA", "submit_ok") in rig.counted


def test_flow_control_answer_pauses_the_bind(clock: FakeClock) -> None:
    rig = Rig(operator("opA"))
    [b] = rig.pool.binds["opA"]
    conn = rig.attach(b, clock, room=10)
    rig.queue("opA", 3)
    b.pump()
    assert len(conn.sent) == 3
    conn.session.window.room = 10
    rig.queue("opA", 2)
    clock.now = 10.0
    # All three answered "throttled" at once: one episode, one strike.
    b.on_events(cast(Connection, conn),
                [submit_resp(conn, n, S.ESME_RTHROTTLED) for n in range(3)])
    assert [f[2] for f in rig.router.failed] == [S.ESME_RTHROTTLED] * 3
    assert b.paused_until == pytest.approx(10.1)
    assert len(conn.sent) == 3, "sent while paused by the operator's flow control"
    assert clock.due_at() == [pytest.approx(10.1)]
    clock.advance_to(10.1)
    assert len(conn.sent) == 5  # the pause is over: the queue goes out
    # Throttled again after the pause: a second strike, a longer pause.
    clock.now = 11.0
    b.on_events(cast(Connection, conn), [submit_resp(conn, 3, S.ESME_RMSGQFUL)])
    assert b.paused_until == pytest.approx(11.2)


def test_a_session_error_answer_unbinds(clock: FakeClock) -> None:
    rig = Rig(operator("opA"))
    [b] = rig.pool.binds["opA"]
    conn = rig.attach(b, clock)
    rig.queue("opA")
    b.pump()
    b.on_events(cast(Connection, conn), [submit_resp(conn, 0, S.ESME_RINVBNDSTS)])
    assert conn.unbinds == 1
