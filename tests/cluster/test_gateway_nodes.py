"""Several gateway nodes on one JetStream cluster (issue 14), end to end on loopback.

Three NATS servers (``nats_cluster``), the bundled simulator as the operator, and three
gateways in this process, each on its own loop thread with its own replica store and
``[cluster]`` naming the servers. A tenant binds a receiver on node 0, submits over SMPP on
node 1 and over HTTP on node 2: every submit is answered with an id, every SMPP receipt
reaches the bind on node 0 with that id, and every node answers the status of every message
(query over HTTP) from its own replica.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bench.natsd import NatsCluster
from config import ClusterConfig, GatewayConfig, TenantConfig
from tests.conftest import GatewayThread
from tests.httpkit import api_client, message_body, post_json, wait_message_status
from tests.integration.e2e_support import (
    SimThread,
    gateway_config,
    operator,
    operator_bound,
    sim_config,
    smpplib_tenant,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(120)

TOKEN = "cluster-token-0123456789abcdef"


def _tenant() -> TenantConfig:
    from smsc.http import hash_token

    return TenantConfig(system_id="demo", password="demo", numbers=("4479",),
                        api_keys=(hash_token(TOKEN),), max_binds=4)


@pytest.fixture
def nodes(nats_cluster: NatsCluster, tmp_path: Path
          ) -> Iterator[Callable[[int], list[GatewayThread]]]:
    """Start ``n`` gateway nodes over the cluster and one simulator; all stopped after."""
    started: list[GatewayThread] = []
    sims: list[SimThread] = []

    def start(n: int) -> list[GatewayThread]:
        sim = SimThread(sim_config())
        sims.append(sim)
        op = operator("sim", sim.port)
        for i in range(n):
            base: GatewayConfig = gateway_config(tmp_path / f"node{i}", [op],
                                                 tenants=(_tenant(),))
            cfg = msgspec.structs.replace(base, cluster=ClusterConfig(
                servers=tuple(nats_cluster.servers), node=f"g{i}", replicas=3))
            started.append(GatewayThread(cfg))
        for gw in started:
            wait_until(partial(operator_bound, gw, "sim"), 15.0, "node bound")
        return started

    try:
        yield start
    finally:
        try:
            for gw in started:
                gw.stop()
        finally:
            for s in sims:
                s.close()
            _drop_streams(nats_cluster)


def _drop_streams(cluster: NatsCluster) -> None:
    import asyncio

    import nats

    async def drop() -> None:
        nc = await nats.connect(cluster.servers)
        try:
            jsm = nc.jsm()
            for info in await jsm.streams_info():
                if info.config.name:
                    await jsm.delete_stream(info.config.name)
        finally:
            await nc.close()

    asyncio.run(drop())


def test_a_tenant_bound_on_one_node_gets_the_receipts_of_submits_on_the_others(
        nodes: Callable[[int], list[GatewayThread]]) -> None:
    a, b, c = nodes(3)
    receiver = smpplib_tenant(a.port, how="receiver")
    sender = smpplib_tenant(b.port, how="transmitter")
    http_c = api_client(c.gateway.http_port, TOKEN)
    http_a = api_client(a.gateway.http_port, TOKEN)
    with receiver as rx, sender as tx, http_c, http_a:
        ids = tx.ids([tx.submit(f"cluster {i}".encode()) for i in range(20)])
        assert len(set(ids)) == 20
        r = post_json(http_c, message_body(["+447700900123"], "over http on node c"))
        assert r.status_code == 200, r.text
        http_id = r.json()["messages"][0]["id"]
        assert http_id not in ids  # ids are unique across nodes

        # The tenant has no webhook: the HTTP message's receipt comes to its bind too.
        everyone = sorted([*ids, http_id])
        receipts = rx.wait_receipts(21, timeout=40.0)
        assert sorted(x.receipted_message_id for x in receipts) == everyone
        assert {x.stat for x in receipts} == {"DELIVRD"}
        rx.settle(quiet_s=0.5)
        # once each, from the one node that owns the tenant
        assert sorted(x.receipted_message_id for x in rx.receipts()) == everyone

        # Every node answers the status of a message accepted on another one.
        wait_message_status(http_a, http_id, "delivered", timeout=20.0)
        got: dict[str, Any] = http_a.get(f"/v1/messages/{ids[0]}").json()
        assert got["status"] == "delivered"


def test_receipts_wait_while_the_tenant_is_bound_nowhere_and_follow_its_next_bind(
        nodes: Callable[[int], list[GatewayThread]]) -> None:
    a, b = nodes(2)
    with smpplib_tenant(a.port, how="transmitter") as tx:
        ids = tx.ids([tx.submit(f"later {i}".encode()) for i in range(5)])

    def receipts_stored() -> bool:
        return b.run(lambda: b.gateway.store.count("events", "tenant = 'demo'")) >= 5

    wait_until(receipts_stored, 20.0, "receipts stored on node b's replica")
    with smpplib_tenant(b.port, how="receiver") as rx:
        receipts = rx.wait_receipts(5, timeout=30.0)
        assert sorted(x.receipted_message_id for x in receipts) == sorted(ids)
