"""An operator with fewer binds than nodes (issue 14, "Operator binds are shared out"): the
nodes holding none of its binds hand their messages for it to the node that holds one
(routing.handoff), so a tenant submits on any node and every message reaches the operator
once, with its receipt back on the tenant's bind. When the holder stops, the bind moves to
another node and the handovers follow it.
"""

from __future__ import annotations

import pytest

from tests.cluster.nodes import Nodes, bound_here, handed, holders, texts_at_operator
from tests.integration.e2e_support import operator, smpplib_tenant
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(150)


def test_nodes_without_a_bind_hand_their_messages_to_the_node_holding_it(
        nodes: Nodes) -> None:
    sim = nodes.sim()
    op = operator("sim", sim.port, binds=1)
    gws = [nodes.gateway(name, op, wait_bound=False) for name in ("a", "b", "c")]
    wait_until(lambda: sum(bound_here(g) for g in gws) == 1 and sim.bound() == 1, 20.0,
               "one node holds the operator's only bind")
    holder = next(g for g in gws if bound_here(g))
    others = [g for g in gws if g is not holder]
    receiver_node = others[0]

    with smpplib_tenant(receiver_node.port, how="receiver") as rx:
        ids: list[str] = []
        for k, gw in enumerate(gws):
            with smpplib_tenant(gw.port, how="transmitter") as tx:
                ids += tx.ids([tx.submit(f"handoff {k}.{i}".encode()) for i in range(10)])
        assert len(set(ids)) == 30
        receipts = rx.wait_receipts(30, timeout=60.0)
        assert sorted(x.receipted_message_id for x in receipts) == sorted(ids)
        assert {x.stat for x in receipts} == {"DELIVRD"}

    sent = texts_at_operator(sim.received())
    want = {f"handoff {k}.{i}".encode() for k in range(3) for i in range(10)}
    assert set(sent) == want and set(sent.values()) == {1}  # each once, none left behind
    assert sim.snapshot()["bound_peak"] <= 1  # never more binds than configured
    assert [handed(g)[0] for g in others] == [10, 10]
    assert handed(holder) == (0, 20)


def test_when_the_holder_stops_the_handovers_follow_the_bind_to_its_next_node(
        nodes: Nodes) -> None:
    sim = nodes.sim()
    op = operator("sim", sim.port, binds=1)
    a = nodes.gateway("a", op)  # alone: it takes the bind
    b = nodes.gateway("b", op, wait_bound=False)
    c = nodes.gateway("c", op, wait_bound=False)
    wait_until(lambda: bound_here(a) == 1 and sim.bound() == 1, 20.0, "a holds the bind")
    a.stop()  # orderly: its slot is let go, and b or c takes it at its next round
    wait_until(lambda: bound_here(b) + bound_here(c) == 1, 20.0, "the bind moved on")
    holder, other = (b, c) if bound_here(b) else (c, b)
    epoch = holder.run(lambda: holder.gateway.cluster.epoch)  # type: ignore[union-attr]
    # (until its next round of the slots, ``other`` hands to a's epoch: taken over from
    # there once a is gone, as any stopped node's waiting messages)
    wait_until(lambda: holders(other) == {"sim": (epoch,)}, 10.0, "other sees the new holder")
    with smpplib_tenant(holder.port, how="receiver") as rx, \
            smpplib_tenant(other.port, how="transmitter") as tx:
        ids = tx.ids([tx.submit(f"after {i}".encode()) for i in range(10)])
        receipts = rx.wait_receipts(10, timeout=60.0)
        assert sorted(x.receipted_message_id for x in receipts) == sorted(ids)
    assert handed(other)[0] == 10 and handed(holder)[1] == 10
    assert set(texts_at_operator(sim.received()).values()) == {1}
