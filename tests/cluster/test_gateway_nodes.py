"""Several gateway nodes on one JetStream cluster (issue 14), end to end on loopback.

Three NATS servers (``nats_cluster``), the bundled simulator as the operator, and two or
three gateways in this process (``tests.cluster.nodes``). A tenant binds a receiver on node
0, submits over SMPP on node 1 and over HTTP on node 2: every submit is answered with an id,
every receipt reaches the bind on node 0 with that id, and every node answers the status of
every message (query over HTTP) from its own replica. Receipts wait while the tenant is
bound nowhere, and a scheduled message is released once, by one node. A scheduled message
is cancelled on any node; a queued one is cancelled or replaced from any node by the node
whose queue holds it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from bench.natsd import NatsCluster
from encoding.constants import CommandStatus as S
from encoding.constants import MessageState
from encoding.pdu import CancelSm, QuerySm, ReplaceSm, SubmitSm
from tests.cluster.nodes import TOKEN, Nodes, closed_port, sim_operator
from tests.conftest import GatewayThread
from tests.httpkit import api_client, message_body, post_json, wait_message_status
from tests.integration.e2e_support import operator, smpplib_tenant
from tests.rawclient import RawClient
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def nodes(nats_cluster: NatsCluster, tmp_path: Path
          ) -> Iterator[Callable[[int], list[GatewayThread]]]:
    """Start ``n`` gateway nodes over the cluster and one simulator; all stopped after."""
    started = Nodes(nats_cluster, tmp_path)

    def start(n: int) -> list[GatewayThread]:
        op = sim_operator(started.sim())
        return [started.gateway(f"g{i}", op) for i in range(n)]

    try:
        yield start
    finally:
        started.close()


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


def test_a_scheduled_message_is_released_once_by_one_node(
        nodes: Callable[[int], list[GatewayThread]]) -> None:
    a, b = nodes(2)
    http_a = api_client(a.gateway.http_port, TOKEN)
    http_b = api_client(b.gateway.http_port, TOKEN)
    with http_a, http_b, smpplib_tenant(b.port, how="receiver") as rx:
        send_at = time.time() + 2.0
        r = post_json(http_a, message_body(["+447700900124"], "later, once",
                                           send_at=_iso(send_at)))
        assert r.status_code == 200, r.text
        mid = r.json()["messages"][0]["id"]
        assert http_b.get(f"/v1/messages/{mid}").json()["status"] == "scheduled"
        wait_message_status(http_b, mid, "delivered", timeout=20.0)
        receipts = rx.wait_receipts(1, timeout=10.0)
        rx.settle(quiet_s=1.0)
        assert [x.receipted_message_id for x in rx.receipts()] == [mid]
        assert [x.receipted_message_id for x in receipts] == [mid]
    released = [gw.run(partial(_released, gw)) for gw in (a, b)]
    assert sorted(released) == [0, 1]


def test_a_message_queued_on_one_node_is_cancelled_or_replaced_from_another(
        nats_cluster: NatsCluster, tmp_path: Path) -> None:
    started = Nodes(nats_cluster, tmp_path)
    try:
        _cancel_across_nodes(started)
    finally:
        started.close()


def _cancel_across_nodes(started: Nodes) -> None:
    # a's operator is down: what a accepts waits in a's queue; b's is the simulator
    a = started.gateway("a", operator("sim", closed_port(), binds=3), wait_bound=False)
    b = started.gateway("b", sim_operator(started.sim()))
    raw = RawClient(b.port)
    try:
        _cancel_on_b(a, b, raw)
    finally:
        raw.close()


def _cancel_on_b(a: GatewayThread, b: GatewayThread, raw: RawClient) -> None:
    with api_client(a.gateway.http_port, TOKEN) as http_a, \
            api_client(b.gateway.http_port, TOKEN) as http_b:
        later = post_json(http_a, message_body(["+447700900125"], "in an hour",
                                               send_at=_iso(time.time() + 3600.0)))
        queued = post_json(http_a, message_body(
            ["+447700900126", "+447700900127", "+447700900128"], "queued on a"))
        assert later.status_code == queued.status_code == 200
        later_id = later.json()["messages"][0]["id"]
        by_http, by_smpp, replaced = (m["id"] for m in queued.json()["messages"])
        for mid in (by_http, by_smpp, replaced):
            wait_message_status(http_b, mid, "accepted", timeout=10.0)
        wait_message_status(http_b, later_id, "scheduled", timeout=10.0)

        # scheduled: in the store, cancelled by any node
        assert http_b.delete(f"/v1/messages/{later_id}").status_code == 200
        wait_message_status(http_a, later_id, "cancelled", timeout=10.0)
        # queued on a: b asks a, and answers once a's change is in b's replica too
        gone = http_b.delete(f"/v1/messages/{by_http}")
        assert gone.status_code == 200, gone.text
        assert http_b.get(f"/v1/messages/{by_http}").json()["status"] == "cancelled"
        raw.bind(expect_ok=True)
        cancel = raw.request(CancelSm(message_id=by_smpp, source_addr="ACME"))
        assert cancel.command_status == S.ESME_ROK, S(cancel.command_status).name
        query = raw.request(QuerySm(message_id=by_smpp, source_addr="ACME"))
        assert query.message_state == MessageState.DELETED  # type: ignore[attr-defined]
        swap = raw.request(ReplaceSm(message_id=replaced, source_addr="ACME",
                                     short_message=b"new text"))
        assert swap.command_status == S.ESME_ROK, S(swap.command_status).name
        assert a.run(lambda: a.gateway.record.get(replaced)).body == b"new text"  # type: ignore[union-attr]
        # a's queue lets them go, and the replaced one waits with its new text
        assert a.run(lambda: sorted(a.gateway.router.jobs)) == [replaced]
        assert a.run(lambda: a.gateway.router.jobs[replaced].message.body) == b"new text"
        twice = raw.request(CancelSm(message_id=by_smpp, source_addr="ACME"))
        assert twice.command_status == S.ESME_RCANCELFAIL
        assert http_b.delete(f"/v1/messages/{by_smpp}").status_code == 409


def test_a_request_for_10000_recipients_larger_than_a_nats_message_is_accepted(
        nats_cluster: NatsCluster, tmp_path: Path) -> None:
    """One HTTP request is one batch and one log entry, megabytes for 10,000 recipients,
    beyond the servers' max_payload (1 MB): it goes as several chunks (routing.nats.chunks),
    is answered 200, and every message is in the other node's replica and sent once."""
    started = Nodes(nats_cluster, tmp_path)
    try:
        _ten_thousand(started)
    finally:
        started.close()


def _ten_thousand(started: Nodes) -> None:
    sim = started.sim()
    op = sim_operator(sim)
    a, b = started.gateway("a", op), started.gateway("b", op)
    recipients = [f"+4477009{i:05d}" for i in range(10_000)]
    with api_client(a.gateway.http_port, TOKEN, timeout=60.0) as http:
        r = post_json(http, message_body(recipients, "one request, one entry, many chunks"))
    assert r.status_code == 200, r.text
    ids = [m["id"] for m in r.json()["messages"]]
    assert len(set(ids)) == 10_000

    def in_b() -> bool:
        return b.run(lambda: all(b.gateway.record.get(i) is not None for i in ids))

    wait_until(in_b, 20.0, "every message of the request in b's replica")
    wait_until(lambda: len(sim.received()) >= 10_000, 60.0, "the simulator got them all")
    sent = Counter(p.destination_addr for p in sim.received() if isinstance(p, SubmitSm))
    assert len(sent) == 10_000 and max(sent.values()) == 1


def _released(gw: GatewayThread) -> int:
    return gw.gateway.scheduler.released


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
