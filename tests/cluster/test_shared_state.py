"""Webhook retries and analytics are shared across gateway nodes (issue 14, "Everything else
is shared too").

* Analytics: what is sent over HTTP on one node and over SMPP on another is counted in the
  figures every node answers (``GET /v1/analytics`` reads the rollups each replica applies).
* Webhook retries: the node delivering a tenant's events retries a failing endpoint; when
  it stops, another node takes the tenant over, reads the events still waiting from its
  replica and goes on retrying, so every event reaches the endpoint once it answers 200.

Two gateway nodes in this process over three NATS servers, the simulator as the operator.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import pytest

from routing.channels import webhook_queue
from tests.cluster.nodes import TOKEN, Nodes, sim_operator, tenant
from tests.conftest import GatewayThread
from tests.httpkit import api_client, message_body, post_json
from tests.integration.e2e_support import smpplib_tenant
from tests.integration.test_webhooks import FAST, hooked_tenant
from tests.waiting import wait_until
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.timeout(120)



@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


def totals(client: httpx.Client) -> dict[str, Any]:
    r = client.get("/v1/analytics", params={"group_by": "day"})
    assert r.status_code == 200, r.text
    figures: dict[str, Any] = r.json()["totals"]
    return figures


def counted(client: httpx.Client, n: int) -> bool:
    figures = totals(client)
    return (figures["submitted"], figures["delivered"]) == (n, n)


def test_analytics_count_what_every_node_sent(nodes: Nodes) -> None:
    op = sim_operator(nodes.sim())
    a, b = nodes.gateway("a", op), nodes.gateway("b", op)
    with api_client(a.gateway.http_port, TOKEN) as http_a, \
            api_client(b.gateway.http_port, TOKEN) as http_b, \
            smpplib_tenant(b.port, how="transmitter") as tx:
        r = post_json(http_a, message_body([f"+4477009003{i:02d}" for i in range(6)],
                                           "counted on every node"))
        assert r.status_code == 200, r.text
        tx.ids([tx.submit(f"smpp on b {i}".encode()) for i in range(6)])
        for client in (http_a, http_b):
            wait_until(partial(counted, client, 12), 20.0,
                       "12 submitted and delivered in the figures")


def _delivering(gws: list[GatewayThread], queue: str) -> list[GatewayThread]:
    """The nodes that deliver the events of ``queue`` now (one, once the leases settle)."""
    return [g for g in gws if g.run(partial(g.gateway.events.owns, queue))]


def test_webhook_retries_go_on_from_another_node_when_the_delivering_one_stops(
        nodes: Nodes, hook: WebhookReceiver) -> None:
    hook.always(503)
    acme = hooked_tenant("acme", hook.url)
    op = sim_operator(nodes.sim())
    tenants = (tenant(), acme.config)
    a, b = (nodes.gateway(n, op, tenants=tenants, http=FAST) for n in ("a", "b"))
    hooks = webhook_queue("acme")
    wait_until(lambda: len(_delivering([a, b], hooks)) == 1, 15.0, "one node sends acme's")
    [first] = _delivering([a, b], hooks)
    other = b if first is a else a
    with httpx.Client(base_url=f"http://127.0.0.1:{other.gateway.http_port}", timeout=10.0,
                      headers={"Authorization": f"Bearer {acme.token}"},
                      trust_env=False) as client:
        r = post_json(client, message_body(["+447700900401", "+447700900402"], "hooked"))
        assert r.status_code == 200, r.text
    # message.sent of each, refused (503) and retried; message.delivered waits behind it
    hook.wait(lambda got: len({x.webhook_id for x in got}) >= 2 and len(got) >= 6, 20.0)
    assert not hook.delivered()
    first.stop()  # the delivering node goes; the other takes acme over
    hook.always(200)
    got = hook.wait_ids(4, 30.0)
    delivered = [x.webhook_id for x in got if x.ok]
    assert len(delivered) == len(set(delivered)) == 4  # every event once
