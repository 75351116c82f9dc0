"""Handing waiting messages to the cluster node that holds their operator's binds
(routing.handoff), on the routing layer as the gateway wires it over a real SQLite store
(tests.routing_rig): what leaves this node's queue, where the store says it went, what stays,
what comes back after a failed handover, and what a node does with the handovers it reads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from config import GatewayConfig, OperatorConfig, RouteConfig, TenantConfig
from encoding.text import gsm7_encode
from routing import Message, Status
from routing.handoff import RETRY_S, Handoff
from routing.repository import Durable
from routing.sqlite import SqliteRecord
from tests.routing_rig import RoutingRig

MINE = 5  # this node's epoch


def operator(name: str) -> OperatorConfig:
    return OperatorConfig(name=name, host="127.0.0.1", port=2775, system_id="gw", password="pw")


class FailedHandover:
    """A handover whose log entry was not published (the cluster unreachable)."""

    def exception(self) -> BaseException | None:
        return ConnectionError("no NATS server answered")

    def add_done_callback(self, fn: Any, /) -> None:
        fn(self)


class CutOff(SqliteRecord):
    """The record, whose handovers end in ``failure`` while it is set."""

    failure: Durable | None = None

    def hand_over(self, message_ids: Sequence[str], operator: str, epoch: int) -> Durable:
        if self.failure is not None:
            return self.failure
        return super().hand_over(message_ids, operator, epoch)


class Rig(RoutingRig):
    def __init__(self, path: Path) -> None:
        super().__init__(path, GatewayConfig(
            tenants=(TenantConfig(system_id="acme", password="pw"),),
            operators=(operator("opA"), operator("opB")),
            routes=(RouteConfig(prefix="44", operators=("opA", "opB")),)))
        self.router.operator_down("opA")  # no bind of opA on this node
        self.cut_off = CutOff(self.store, self.committer)  # type: ignore[arg-type]
        self.handoff = Handoff(self.router, self.cut_off, MINE, self.loop)  # type: ignore[arg-type]
        self.work.subscribe(self.handoff.on_work)

    def submit(self, n: int = 1) -> list[Message]:
        ms = [Message(id=str(self.store.new_message_number()), tenant="acme",
                      source_addr="ACME", destination_addr="447700900123",
                      body=gsm7_encode(f"m{i}"), created_at=time.time()) for i in range(n)]
        self.record.accept(ms, time.time())
        self.commit()
        self.router.accepted(ms)
        return ms

    def owned_by(self, epoch: int) -> list[str]:
        self.commit()
        return [m.id for m in self.record.recoverable(epoch=epoch)]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path / "h.db")
    yield r
    r.store.close()


def ids(ms: list[Message]) -> list[str]:
    return [m.id for m in ms]


def test_work_for_an_operator_held_elsewhere_goes_to_its_holder_not_to_a_local_failover(
        rig: Rig) -> None:
    rig.handoff.holders_changed({"opA": [9]})
    assert rig.router.elsewhere == {"opA"}
    ms = rig.submit(3)
    assert rig.router.pending("opA") == 3 and rig.router.pending("opB") == 0
    rig.loop.run_soon()  # one turn hands all of it over
    assert rig.router.pending("opA") == 0 and rig.router.backlog() == 0
    assert rig.owned_by(9) == ids(ms)
    assert rig.handoff.handed_out == 3


def test_the_handovers_are_shared_round_robin_among_the_holders(rig: Rig) -> None:
    rig.handoff.holders_changed({"opA": [9, 11]})
    ms = rig.submit(4)
    rig.loop.run_soon()
    assert sorted(rig.owned_by(9) + rig.owned_by(11)) == sorted(ids(ms))
    assert len(rig.owned_by(9)) == len(rig.owned_by(11)) == 2


def test_without_holders_the_route_fails_over_locally_and_nothing_is_handed(rig: Rig) -> None:
    rig.handoff.holders_changed({})
    rig.submit(2)
    rig.loop.run_soon()
    assert rig.router.pending("opB") == 2 and rig.handoff.handed_out == 0


def test_work_waiting_when_the_holders_become_known_is_handed_over(rig: Rig) -> None:
    rig.router.operator_down("opB")  # no bind here yet: before the first round of slots
    ms = rig.submit(2)
    assert rig.router.pending("opA") == 2  # waiting on the route's first operator
    rig.handoff.holders_changed({"opA": [9]})
    rig.loop.run_soon()
    assert rig.owned_by(9) == ids(ms)


def test_a_job_with_a_part_out_already_stays(rig: Rig) -> None:
    rig.handoff.holders_changed({"opA": [9]})
    first, second = rig.submit(2)
    rig.router.jobs[first.id].sent = True  # a part of it left on this node's bind
    rig.loop.run_soon()
    assert rig.router.pending("opA") == 1 and first.id in rig.router.jobs
    assert rig.owned_by(9) == [second.id]


def test_a_failed_handover_puts_the_jobs_back_and_is_tried_again(rig: Rig) -> None:
    rig.handoff.holders_changed({"opA": [9]})
    rig.cut_off.failure = FailedHandover()
    ms = rig.submit(2)
    rig.loop.run_soon()
    assert rig.router.pending("opA") == 2 and rig.router.backlog() == 2
    assert rig.handoff.failed == 2 and rig.owned_by(9) == []
    rig.cut_off.failure = None
    rig.loop.advance(RETRY_S)
    rig.loop.run_soon()
    assert rig.owned_by(9) == ids(ms) and rig.router.backlog() == 0


def test_messages_handed_to_this_node_queue_on_the_operator_the_sender_chose(
        rig: Rig) -> None:
    rig.router.operator_up("opA")
    rig.handoff.holders_changed({})
    other = rig.submit(2)
    for m in other:  # as if accepted elsewhere: not on this node's router
        rig.router.jobs.pop(m.id)
    rig.work.drain("opA")
    rig.record.hand_over(ids(other), "opB", MINE)
    rig.record.record_change(other[1].id, Status.ACCEPTED, Status.CANCELLED, time.time())
    rig.commit()
    # the log entry: the first for this node (opB: the sender had failed over), the second
    # no longer waiting
    rig.handoff.arrived([(MINE, other[0].id, "opB"), (MINE, other[1].id, "opB")])
    assert list(rig.router.jobs) == [other[0].id]
    assert rig.router.pending("opB") == 1 and rig.router.pending("opA") == 0
    assert rig.handoff.handed_in == 1
    rig.handoff.arrived([(MINE, other[0].id, "opB")])  # read again: held already
    assert rig.router.pending("opB") == 1


def test_a_message_queued_here_that_was_handed_to_another_node_is_let_go(rig: Rig) -> None:
    rig.router.operator_up("opA")
    kept, given = rig.submit(2)
    rig.handoff.arrived([(9, given.id, "opA")])  # (a handover thought failed, in the log)
    assert list(rig.router.jobs) == [kept.id]
    assert [j.message.id for j in rig.router.take("opA", 10, 0.0)] == [kept.id]


def test_the_failure_of_a_cancelled_handover_is_a_failure(rig: Rig) -> None:
    class Cancelled(FailedHandover):
        def exception(self) -> BaseException | None:
            raise asyncio.CancelledError

    rig.handoff.holders_changed({"opA": [9]})
    rig.cut_off.failure = Cancelled()
    rig.submit(1)
    rig.loop.run_soon()
    assert rig.handoff.failed == 1 and rig.router.backlog() == 1


def test_an_epoch_found_gone_is_handed_nothing_more_whatever_the_slots_still_say(
        rig: Rig) -> None:
    rig.router.operator_down("opB")  # nothing to fail over to here: the work waits
    rig.handoff.holders_changed({"opA": [9, 11]})
    rig.handoff.epochs_gone({9})  # the takeover rounds: 9 stopped or died
    assert rig.handoff.holders == {"opA": (11,)}
    rig.handoff.holders_changed({"opA": [9, 11]})  # its slot lease has not lapsed yet
    ms = rig.submit(2)
    rig.loop.run_soon()
    assert sorted(rig.owned_by(11)) == sorted(ids(ms)) and rig.owned_by(9) == []
    rig.handoff.epochs_gone({11})
    assert rig.handoff.holders == {} and rig.router.elsewhere == frozenset()
    waiting = rig.submit(1)
    rig.loop.run_soon()
    assert rig.router.pending("opA") == 1 and rig.owned_by(11) == sorted(ids(ms))
    assert waiting[0].id in rig.router.jobs  # waits here for a bind of opA


def test_what_is_handed_to_an_epoch_this_node_took_over_is_queued_here(rig: Rig) -> None:
    rig.router.operator_up("opA")
    rig.handoff.holders_changed({})
    late = rig.submit(1)[0]
    rig.router.jobs.pop(late.id)  # accepted on a node that had not seen 9 die
    rig.work.drain("opA")
    rig.record.hand_over([late.id], "opA", 9)
    rig.commit()
    rig.handoff.arrived([(9, late.id, "opA")])
    assert late.id not in rig.router.jobs  # 9 is another node's, for now
    rig.handoff.adopt(9)  # this node's takeover round won 9
    rig.handoff.arrived([(9, late.id, "opA")])
    assert list(rig.router.jobs) == [late.id] and rig.router.pending("opA") == 1
