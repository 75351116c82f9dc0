"""A NATS server that stops answering without closing its connections (frozen with SIGSTOP:
a hung server, or one cut off by the network without a reset) does not stop the gateway
node connected to it: the node's pings notice within seconds, it moves to another server,
and the submits it acknowledged meanwhile and after reach the operator and get their
receipts (routing.nats.connection; issue 14, "A node can die")."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest

from bench.natsd import NatsCluster
from tests.cluster.nodes import Nodes, sim_operator
from tests.conftest import GatewayThread
from tests.integration.e2e_support import SmpplibTenant, smpplib_tenant

pytestmark = [
    pytest.mark.timeout(180),
    # nats-py leaves the stream writer of the connection it gives up on (the frozen
    # server's) to the garbage collector when it reconnects elsewhere: its warning, not ours.
    pytest.mark.filterwarnings("ignore:unclosed <StreamWriter:ResourceWarning"),
    pytest.mark.filterwarnings("ignore:Exception ignored in. <function StreamWriter.__del__"
                               ":pytest.PytestUnraisableExceptionWarning"),
]


def connected_index(gw: GatewayThread, nats_cluster: NatsCluster) -> int:
    def port() -> int:
        cluster = gw.gateway.cluster
        assert cluster is not None and cluster.nc.connected_url is not None
        return int(cluster.nc.connected_url.port or 0)
    ports = [n.ports.client for n in nats_cluster.nodes]
    return ports.index(gw.run(port))


def answered(tx: SmpplibTenant, seqs: list[int]) -> bool:
    return all(s in tx.resps for s in seqs)


def submit(tx: SmpplibTenant, texts: list[str], timeout: float) -> list[str]:
    seqs = [tx.submit(t.encode()) for t in texts]
    tx.pump(partial(answered, tx, seqs), timeout, "answers")
    return tx.ids(seqs)


def test_a_frozen_server_is_left_for_another_and_nothing_acknowledged_is_lost(
        nats_cluster: NatsCluster, nodes: Nodes) -> None:
    op = sim_operator(nodes.sim())
    a = nodes.gateway("a", op)
    frozen = connected_index(a, nats_cluster)
    thaw: Callable[[], None] = partial(nats_cluster.thaw, frozen)
    try:
        with smpplib_tenant(a.port, how="receiver") as rx, \
                smpplib_tenant(a.port, how="transmitter") as tx:
            before = submit(tx, [f"before {i}" for i in range(5)], 20.0)
            nats_cluster.freeze(frozen)
            # Answered once the node has moved to another server (its pings: within 9 s)
            # and the log has a leader there; ESME_ROK each, as every acknowledged one.
            during = submit(tx, [f"during {i}" for i in range(5)], 60.0)
            assert connected_index(a, nats_cluster) != frozen
            ids = before + during
            rx.wait_receipts(len(ids), timeout=60.0)
            rx.settle(quiet_s=0.5)
            got = [r.receipted_message_id for r in rx.receipts()]
            assert sorted(set(got)) == sorted(ids)
    finally:
        thaw()
