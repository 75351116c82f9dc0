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
from tests.cluster.nodes import BINDS, Nodes, closed_port, sim_operator
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
