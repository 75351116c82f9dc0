"""A node stops or dies with messages it acknowledged and did not send: another node sends
them (issue 14, "A node can die").

Node ``a`` routes to an operator that is down, so what it accepts waits; node ``b`` routes to
the simulator. When ``a`` stops (orderly) or is SIGKILLed (a real ``smsc serve`` process),
``b`` takes over its waiting messages, sends them, and the tenant's receiver on ``b`` gets a
receipt for every id ``a`` acknowledged, once each.
"""

from __future__ import annotations

import signal

import pytest
from prometheus_client import generate_latest

from routing.model import Status
from tests.cluster.nodes import (
    BINDS,
    Nodes,
    bound_here,
    closed_port,
    handed,
    holders,
    sim_operator,
    texts_at_operator,
)
from tests.conftest import GatewayThread
from tests.integration.e2e_support import operator, smpplib_tenant
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(150)

LEASE_TTL_S = 3.0  # the shortest the config allows: a dead node's epoch lapses quickly


NODE_OPTIONS = {"lease_ttl_s": LEASE_TTL_S}


def _accepted_on(gw: GatewayThread, ids: list[str]) -> bool:
    def statuses() -> set[Status]:
        got = [gw.gateway.record.get(i) for i in ids]
        return {m.status for m in got if m is not None} if all(got) else set()

    return gw.run(statuses) == {Status.ACCEPTED}


def _taken_over(gw: GatewayThread) -> float:
    text = generate_latest(gw.gateway.prometheus).decode()
    for line in text.splitlines():
        if line.startswith('smsc_cluster_taken_over_total{kind="messages"}'):
            return float(line.split()[-1])
    return 0.0


def test_an_orderly_stop_leaves_its_waiting_messages_to_another_node(nodes: Nodes) -> None:
    down = operator("sim", closed_port(), binds=BINDS)
    a = nodes.gateway("a", down, wait_bound=False)
    b = nodes.gateway("b", sim_operator(nodes.sim()))
    with smpplib_tenant(a.port, how="transmitter") as tx:
        ids = tx.ids([tx.submit(f"left behind {i}".encode()) for i in range(10)])
    wait_until(lambda: _accepted_on(b, ids), 10.0, "a's messages waiting in b's replica")
    assert _taken_over(b) == 0  # a is live: b leaves them alone
    a.stop()
    with smpplib_tenant(b.port, how="receiver") as rx:
        receipts = rx.wait_receipts(10, timeout=30.0)
        rx.settle(quiet_s=0.5)
        assert sorted(x.receipted_message_id for x in rx.receipts()) == sorted(ids)
        assert {x.stat for x in receipts} == {"DELIVRD"}
    assert _taken_over(b) == 10


def test_sigkill_of_a_node_loses_none_of_the_messages_it_acknowledged(nodes: Nodes) -> None:
    a = nodes.process("a", operator("sim", closed_port(), binds=BINDS))
    b = nodes.gateway("b", sim_operator(nodes.sim()))
    with smpplib_tenant(a.port, how="transmitter") as tx:
        ids = tx.ids([tx.submit(f"acknowledged {i}".encode()) for i in range(25)])
    a.kill()
    assert a.proc.returncode == -signal.SIGKILL
    with smpplib_tenant(b.port, how="receiver") as rx:
        # a's epoch lapses LEASE_TTL_S after its last beat; b's next round takes it over.
        receipts = rx.wait_receipts(25, timeout=40.0)
        rx.settle(quiet_s=0.5)
        assert sorted(x.receipted_message_id for x in rx.receipts()) == sorted(ids)
        assert {x.stat for x in receipts} == {"DELIVRD"}
    assert _taken_over(b) == 25


def test_messages_handed_to_a_bind_holder_that_dies_are_taken_over(nodes: Nodes) -> None:
    """The operator has one bind, held by ``a`` (a process); ``b`` hands its messages to
    ``a``. After SIGKILL of ``a``, ``b`` goes on handing to ``a``'s epoch until ``a``'s slot
    lease lapses: those messages wait in the log as ``a``'s, and are taken over by ``b``
    (which by then holds the bind) with the rest of ``a``'s waiting messages."""
    sim = nodes.sim()
    op = operator("sim", sim.port, binds=1)
    a = nodes.process("a", op)
    wait_until(lambda: sim.bound() == 1, 15.0, "a holds the operator's only bind")
    b = nodes.gateway("b", op, wait_bound=False)
    wait_until(lambda: bool(holders(b).get("sim")), 15.0, "b hands to a")
    before = holders(b)
    with smpplib_tenant(b.port, how="receiver") as rx:
        with smpplib_tenant(b.port, how="transmitter") as tx:
            sent = tx.ids([tx.submit(f"to a alive {i}".encode()) for i in range(10)])
        rx.wait_receipts(10, timeout=30.0)  # sent by a, receipts matched by a, back on b
        a.kill()
        assert a.proc.returncode == -signal.SIGKILL
        with smpplib_tenant(b.port, how="transmitter") as tx:
            waiting = tx.ids([tx.submit(f"to a dead {i}".encode()) for i in range(10)])
        assert holders(b) == before  # so these went to a's epoch: b has not seen a go yet
        wait_until(lambda: handed(b)[0] == 20, 10.0, "b handed all 20 to a")
        receipts = rx.wait_receipts(20, timeout=40.0)
        rx.settle(quiet_s=0.5)
        assert sorted(x.receipted_message_id for x in rx.receipts()) == sorted(sent + waiting)
        assert {x.stat for x in receipts} == {"DELIVRD"}
    assert bound_here(b) == 1  # the bind moved to b
    assert _taken_over(b) == 10  # exactly those handed to a after it died
    texts = texts_at_operator(sim.received())
    assert len(texts) == 20 and set(texts.values()) == {1}
    assert sim.snapshot()["bound_peak"] <= 1
