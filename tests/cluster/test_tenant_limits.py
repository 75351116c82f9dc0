"""A tenant's limits hold over the whole cluster (issue 14, "Any node, either door, any
tenant"): its ``max_binds`` counts its binds on every node, and its ``tps`` is one budget
that two nodes taking its traffic at once keep within 10 %.

Two gateway nodes in this process over three NATS servers, the simulator as the operator.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import smpplib.exceptions

from encoding.constants import CommandStatus
from tests.cluster.nodes import TOKEN, Nodes, sim_operator, tenant
from tests.conftest import GatewayThread
from tests.httpkit import api_client, message_body, post_json
from tests.integration.e2e_support import SmpplibTenant
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(120)

TPS = 40.0
SECONDS = 3  # whole seconds counted, after the one the load starts in



def bind_status(port: int) -> int:
    """0 when a transceiver bind of ``demo`` is accepted (then unbound), else its status."""
    try:
        SmpplibTenant(port).close()
    except smpplib.exceptions.PDUError as e:
        return int(e.args[1])
    return 0


def test_max_binds_counts_the_binds_on_every_node(nodes: Nodes) -> None:
    op = sim_operator(nodes.sim())
    limited = (tenant(max_binds=2),)
    a, b = (nodes.gateway(n, op, tenants=limited) for n in ("a", "b"))
    first = SmpplibTenant(a.port)
    try:
        second = SmpplibTenant(b.port)
        try:
            # a third bind, on either node, is over the tenant's two
            wait_until(lambda: bind_status(a.port) == CommandStatus.ESME_RBINDFAIL, 10.0,
                       "a refuses a third bind")
            assert bind_status(b.port) == CommandStatus.ESME_RBINDFAIL
        finally:
            second.close()
        # b's bind ended: a bind on a is within the limit again once a has heard
        wait_until(lambda: bind_status(a.port) == 0, 10.0, "a accepts again")
    finally:
        first.close()


def _admitted_per_second(gws: list[GatewayThread], until: float) -> Counter[int]:
    """Each node offered as many single-recipient HTTP sends as one client can post until
    ``until``; what was accepted (200), by second."""
    admitted: Counter[int] = Counter()
    by_node: Counter[int] = Counter()
    lock = threading.Lock()

    def post(i: int, gw: GatewayThread) -> None:
        with api_client(gw.gateway.http_port, TOKEN) as http:
            while (now := time.time()) < until:
                r = post_json(http, message_body(["+447700900123"], f"rate {i}"))
                assert r.status_code in (200, 429), r.text
                if r.status_code == 200:
                    with lock:
                        admitted[int(now)] += 1
                        by_node[i] += 1

    threads = [threading.Thread(target=post, args=(i, gw)) for i, gw in enumerate(gws)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=until - time.time() + 30.0)
    assert not any(t.is_alive() for t in threads)
    assert len(by_node) == len(gws), f"every node accepted some: {by_node}"
    return admitted


def test_the_tps_of_a_tenant_is_one_budget_over_two_nodes(nodes: Nodes) -> None:
    op = sim_operator(nodes.sim())
    limited = (tenant(tps=TPS),)
    a, b = (nodes.gateway(n, op, tenants=limited) for n in ("a", "b"))
    start = int(time.time())
    admitted = _admitted_per_second([a, b], start + SECONDS + 1.0)
    whole = [admitted[s] for s in range(start + 1, start + 1 + SECONDS)]
    # Within 10 %, each whole second; a node may admit one message on credit a second
    # (routing.nats.budget), so a second can pass the budget by at most one per node.
    assert all(0.9 * TPS <= n <= TPS + 2 for n in whole), whole
    assert sum(whole) <= 1.1 * TPS * SECONDS, whole
