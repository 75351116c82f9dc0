"""SIGKILL of one NATS server of three in the middle of a load (issue 14, "A node can die"):
no message acknowledged to the tenant is lost.

Two gateway nodes over a three-server JetStream cluster; the tenant's receiver is bound on
node a, its transmitter on node b submits with ten submits in flight. After a third of the
load, the server leading the log stream (``SMSC_LOG``: the one every acknowledgement waits
for) is killed; the load goes on while the others elect a new leader. Then every
acknowledged id is audited: it is in both nodes' replicas, the simulator received its text,
and the tenant got its receipt, once. The killed server is started again at the end (its
store intact), as an operator would.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from functools import partial

import nats
import pytest

from bench.natsd import NatsCluster
from encoding.pdu import SubmitSm
from tests.cluster.nodes import Nodes, sim_operator
from tests.conftest import GatewayThread
from tests.integration.e2e_support import SmpplibTenant, smpplib_tenant
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(240)

MESSAGES = 150
IN_FLIGHT = 10
KILL_AFTER = MESSAGES // 3



def log_leader(servers: list[str]) -> str:
    """The server name (``nN``) leading the replicated log stream."""
    async def ask() -> str:
        nc = await nats.connect(servers=servers, connect_timeout=5)
        try:
            info = await nc.jetstream(timeout=5).stream_info("SMSC_LOG")
            assert info.cluster is not None and info.cluster.leader
            return info.cluster.leader
        finally:
            await nc.close()
    return asyncio.run(ask())


def answered(tx: SmpplibTenant, seqs: list[int]) -> bool:
    return all(s in tx.resps for s in seqs)


def submit_all(tx: SmpplibTenant, kill: Callable[[], None]) -> dict[str, str]:
    """Submit MESSAGES texts with IN_FLIGHT outstanding; ``kill()`` once KILL_AFTER were
    sent. Returns text -> message id of every submit answered with ESME_ROK."""
    texts: dict[int, str] = {}
    acked: dict[str, str] = {}
    sent = 0
    while sent < MESSAGES:
        batch = []
        for _ in range(min(IN_FLIGHT, MESSAGES - sent)):
            text = f"load {sent}"
            seq = tx.submit(text.encode())
            texts[seq] = text
            batch.append(seq)
            sent += 1
            if sent == KILL_AFTER:
                kill()
        tx.pump(partial(answered, tx, batch), 60.0, "answers across the kill")
        for s in batch:
            resp = tx.resps[s]
            if resp.command == "submit_sm_resp" and resp.status == 0:
                acked[texts[s]] = resp.message_id.decode("ascii")
    return acked


def in_replica(gw: GatewayThread, ids: list[str]) -> bool:
    return gw.run(lambda: all(gw.gateway.record.get(i) is not None for i in ids))


def test_sigkill_of_the_log_leader_mid_load_loses_no_acknowledged_message(
        nats_cluster: NatsCluster, nodes: Nodes) -> None:
    sim = nodes.sim()
    op = sim_operator(sim)
    a, b = nodes.gateway("a", op), nodes.gateway("b", op)
    leader = log_leader(nats_cluster.servers)
    index = [n.server_name for n in nats_cluster.nodes].index(leader)
    try:
        with smpplib_tenant(a.port, how="receiver") as rx, \
                smpplib_tenant(b.port, how="transmitter") as tx:
            acked = submit_all(tx, lambda: nats_cluster.kill(index))
            assert not nats_cluster.nodes[index].running
            # Most are acknowledged (a retried publish waits for the new leader); whatever
            # was refused the tenant would send again.
            assert len(acked) >= MESSAGES * 0.9, f"{len(acked)} of {MESSAGES} acknowledged"
            ids = sorted(acked.values())
            rx.wait_receipts(len(ids), timeout=90.0)
            rx.settle(quiet_s=0.5)
            receipts = Counter(r.receipted_message_id for r in rx.receipts())
        # The audit: every acknowledged id in the engine, at the operator, and receipted
        # to the tenant once.
        wait_until(lambda: in_replica(a, ids) and in_replica(b, ids), 20.0,
                   "every acknowledged id in both replicas")
        at_operator = {p.short_message.decode() for p in sim.received()
                       if isinstance(p, SubmitSm)}
        assert set(acked) <= at_operator, sorted(set(acked) - at_operator)[:5]
        assert set(ids) <= set(receipts), sorted(set(ids) - set(receipts))[:5]
        assert all(receipts[i] == 1 for i in ids), [i for i in ids if receipts[i] != 1][:5]
    finally:
        if not nats_cluster.nodes[index].running:
            nats_cluster.restart(index)
