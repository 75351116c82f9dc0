"""A request of 10,000 recipients is durable in one group commit, not 10,000.

The 200 leaves only after the commit that holds every accepted message of the request, so
the number of commits one request costs is what its latency and the store's write load
depend on. Counted with the committer's own statistics, in an in-process gateway.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import GatewayThread, make_config
from tests.httpkit import api_client, api_tenant, message_body

TOKEN = "bulk-token"


def test_ten_thousand_recipients_are_one_commit(
        tmp_path: Path, gateway_factory: Callable[..., GatewayThread]) -> None:
    gw = gateway_factory(make_config(tmp_path, tenants=(api_tenant("bulk", TOKEN),)))
    stats = gw.gateway.committer.stats
    recipients = [f"+4477009{i:05}" for i in range(10_000)]
    with api_client(gw.gateway.http_port, TOKEN, timeout=60) as client:
        client.get("/health").raise_for_status()
        before = stats.batches
        response = client.post("/v1/messages", json=message_body(recipients, "bulk hello"))
        after = stats.batches
    assert response.status_code == 200, response.text[:300]
    results = response.json()["messages"]
    assert len(results) == 10_000 and all(r["status"] == "accepted" for r in results)
    # The request's messages (and their first history rows) rode one commit; a second may
    # carry what the routing of those messages wrote once they were durable.
    assert after - before <= 2, f"{after - before} commits for one request"
    assert gw.run(lambda: gw.gateway.store.count("messages")) == 10_000
