"""GET /v1/analytics and the analytics metrics end to end: messages over HTTP and SMPP through
two simulated operators (one turning a share undeliverable by receipt, the other refusing a
share at submit_sm_resp), MO from a simulator; then the figures by hour, day, operator,
country and originator equal what happened, and /metrics shows the counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest

from config import MetricsConfig, RouteConfig
from config.simulator import FaultRule
from tests.httpkit import api_client, api_tenant, message_body, post_json
from tests.integration.e2e_support import (
    SOURCE,
    SmpplibTenant,
    Stack,
    gateway_config,
    operator,
    operator_bound,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)

TOKEN = "tok_demo_0123456789abcdef0123456789abcdef"
OTHER = "tok_other_0123456789abcdef0123456789abcd"


def _figures(client: httpx.Client, group_by: str, **params: str) -> dict[str, Any]:
    r = client.get("/v1/analytics", params={"group_by": group_by, **params})
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def _done(client: httpx.Client, want: dict[str, int]) -> bool:
    totals = _figures(client, "day")["totals"]
    return all(totals[k] == v for k, v in want.items())


def test_figures_equal_what_happened_on_both_doors(stack: Stack) -> None:
    sim_a = stack.sim(rules=(FaultRule(prefix="4477001", fault="undeliverable"),))
    sim_b = stack.sim(rules=(FaultRule(prefix="4915190", fault="reject"),))
    gw = stack.gateway(
        [operator("opa", sim_a.port), operator("opb", sim_b.port)],
        tenants=(api_tenant("demo", TOKEN, password="demo", numbers=("4479",)),
                 api_tenant("other", OTHER)),
        routes=(RouteConfig(prefix="4477", operators=("opa",)),
                RouteConfig(prefix="4915", operators=("opb",))))
    started = datetime.now(UTC)
    http_recipients = ([f"+447700000{i:03d}" for i in range(20)]  # opa, delivered
                       + [f"+447700100{i:03d}" for i in range(5)]  # opa, undeliverable
                       + [f"+491510000{i:03d}" for i in range(6)]  # opb, delivered
                       + [f"+491519000{i:03d}" for i in range(4)])  # opb, rejected
    with api_client(gw.gateway.http_port, TOKEN) as client:
        r = post_json(client, message_body(http_recipients, "counted", originator="ACME"))
        assert r.status_code == 200, r.text
        tenant = SmpplibTenant(gw.port)
        try:
            seqs = [tenant.submit(b"smpp", destination_addr=f"447700000{500 + i}")
                    for i in range(10)]
            seqs += [tenant.submit(b"smpp", destination_addr=f"491519000{500 + i}")
                     for i in range(3)]
            tenant.ids(seqs)
            for i in range(2):
                sim_a.inject_mo("447900000001", "447700900123", f"hello {i}")
            want = {"submitted": 48, "delivered": 36, "failed": 12, "inbound": 2}

            def settled() -> bool:
                tenant.client.read_once()  # answer receipts and MO on the SMPP side
                return _done(client, want)

            wait_until(settled, 30.0, f"analytics totals {want}", interval=0.1)
        finally:
            tenant.close()

        day = _figures(client, "day")
        assert day["group_by"] == "day"
        since, until = (datetime.fromisoformat(day[k].replace("Z", "+00:00"))
                        for k in ("since", "until"))
        assert until - since == timedelta(days=7)  # the default period: the last 7 days
        assert started <= until <= datetime.now(UTC)
        totals = day["totals"]
        assert totals["key"] == "total"
        assert totals["parts"] == 48 - 7  # the 7 refused at submit_sm_resp were not billed
        assert totals["delivery_rate"] == pytest.approx(36 / 48)
        assert totals["errors"] == {"ESME_RINVDSTADR": 7, "receipt err:001": 5}
        assert totals["latency_p50_ms"] is not None
        assert 0 <= totals["latency_p50_ms"] <= totals["latency_p95_ms"] <= 10_000
        assert (totals["clicks"], totals["opt_outs"], totals["click_through_rate"]) == (0, 0, 0)
        assert [g["key"] for g in day["groups"]] == sorted(
            {started.strftime("%Y-%m-%d"), datetime.now(UTC).strftime("%Y-%m-%d")})

        hours = _figures(client, "hour")["groups"]
        assert {g["key"] for g in hours} <= {
            t.strftime("%Y-%m-%dT%H:00:00Z") for t in (started, datetime.now(UTC))}
        assert sum(g["submitted"] for g in hours) == 48
        assert sum(g["delivered"] for g in hours) == 36
        assert sum(g["failed"] for g in hours) == 12

        by_op = {g["key"]: g for g in _figures(client, "operator")["groups"]}
        assert set(by_op) == {"opa", "opb"}
        a, b = by_op["opa"], by_op["opb"]
        assert (a["submitted"], a["delivered"], a["failed"], a["inbound"]) == (35, 30, 5, 2)
        assert (b["submitted"], b["delivered"], b["failed"], b["inbound"]) == (13, 6, 7, 0)
        assert b["errors"] == {"ESME_RINVDSTADR": 7}
        assert (a["parts"], b["parts"]) == (35, 6)
        assert a["delivery_rate"] == pytest.approx(30 / 35)

        by_country = {g["key"]: g for g in _figures(client, "country")["groups"]}
        assert {k: g["submitted"] for k, g in by_country.items()} == {"GB": 35, "DE": 13}
        assert by_country["GB"]["inbound"] == 2  # the MO's sender is in GB

        by_origin = {g["key"]: (g["submitted"], g["inbound"])
                     for g in _figures(client, "originator")["groups"]}
        assert by_origin == {"ACME": (35, 0), SOURCE: (13, 0), "447900000001": (0, 2)}

        # a period that holds none of it; bad periods are 400
        past = (started - timedelta(days=30)).isoformat()
        empty = _figures(client, "day", since=past,
                         until=(started - timedelta(days=29)).isoformat())
        assert empty["groups"] == [] and empty["totals"]["submitted"] == 0
        assert empty["totals"]["delivery_rate"] is None
        r = client.get("/v1/analytics", params={"since": started.isoformat(),
                                                "until": past})
        assert r.status_code == 400 and r.json()["code"] == "invalid_period"
        assert client.get("/v1/analytics", params={"group_by": "week"}).status_code == 400

        doc = client.get("/openapi.json").json()  # the answer is documented there
        assert "get" in doc["paths"]["/v1/analytics"]
        group = doc["components"]["schemas"]["AnalyticsGroup"]["properties"]
        assert "delivered + failed" in group["delivery_rate"]["description"]

    with api_client(gw.gateway.http_port, OTHER) as other:  # another tenant sees nothing
        assert _figures(other, "operator")["groups"] == []
    with api_client(gw.gateway.http_port, None) as anonymous:
        assert anonymous.get("/v1/analytics").status_code == 401


def test_metrics_show_the_counters(stack: Stack) -> None:
    sim = stack.sim(rules=(FaultRule(prefix="4477001", fault="undeliverable"),))
    config = gateway_config(stack.tmp_path, [operator("opa", sim.port)],
                            tenants=(api_tenant("demo", TOKEN, numbers=("4479",)),))
    gw = stack.gateway_factory(msgspec.structs.replace(
        config, metrics=MetricsConfig(enabled=True, host="127.0.0.1", port=0)))
    wait_until(lambda: operator_bound(gw, "opa"), 10.0, "bound to opa")
    with api_client(gw.gateway.http_port, TOKEN) as client:
        r = post_json(client, message_body(
            [f"+447700000{i:03d}" for i in range(4)] + ["+447700100001"], "m"))
        assert r.status_code == 200, r.text
        wait_until(lambda: _done(client, {"delivered": 4, "failed": 1}), 20.0,
                   "4 delivered, 1 failed", interval=0.1)
    url = f"http://127.0.0.1:{gw.gateway.metrics_port}/metrics"
    text = ""

    def scraped() -> bool:
        nonlocal text
        text = httpx.get(url, timeout=5.0, trust_env=False).text
        return 'smsc_messages_total{operator="opa",status="delivered",tenant="demo"} 4.0' in text

    wait_until(scraped, 10.0, "delivered counter at /metrics", interval=0.1)
    assert 'smsc_messages_total{operator="",status="accepted",tenant="demo"} 5.0' in text
    assert 'smsc_messages_total{operator="opa",status="failed",tenant="demo"} 1.0' in text
    assert 'smsc_message_parts_billed_total{operator="opa",tenant="demo"} 5.0' in text
    assert 'smsc_delivery_latency_seconds_count{operator="opa",tenant="demo"} 4.0' in text
    assert 'smsc_delivery_latency_seconds_bucket{le="+Inf",operator="opa",tenant="demo"} 4.0' \
        in text
    assert ('smsc_messages_failed_total{error_class="receipt",operator="opa",tenant="demo"} 1.0'
            in text)
    assert "447700" not in text  # no number in any label
