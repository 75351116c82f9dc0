"""Metrics: fixed-bucket histograms and the collector's Prometheus text output."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from encoding.constants import CommandStatus as S
from smsc.metrics import GatewayCollector, Histogram, Metrics


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(GatewayCollector(m))
    text = generate_latest(registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_histogram_buckets_are_cumulative_and_bounds_inclusive() -> None:
    h = Histogram((1.0, 5.0, 10.0))
    for v in (0.5, 1.0, 1.5, 5.0, 7, 11, 100):
        h.observe(v)
    assert h.buckets() == [("1.0", 2), ("5.0", 4), ("10.0", 5), ("+Inf", 7)]
    assert h.sum == pytest.approx(126.0)


def test_empty_histogram() -> None:
    assert Histogram((1, 2)).buckets() == [("1.0", 0), ("2.0", 0), ("+Inf", 0)]


def test_collector_exports_counters_with_status_names() -> None:
    m = Metrics()
    m.pdu_in("submit_sm")
    m.pdu_in("submit_sm")
    m.pdu_out("submit_sm_resp", S.ESME_ROK)
    m.pdu_out("submit_sm_resp", S.ESME_RTHROTTLED)
    m.throttle("acme", "tps")
    m.protocol_error(S.ESME_RINVCMDLEN)
    m.operator_event("opA", "submit_ok", 3)
    got = samples(m)
    assert got[("smsc_pdus_in_total", (("command", "submit_sm"),))] == 2
    assert got[("smsc_pdus_out_total", (("command", "submit_sm_resp"),
                                        ("status", "ESME_RTHROTTLED")))] == 1
    assert got[("smsc_pdus_out_total", (("command", "submit_sm_resp"),
                                        ("status", "ESME_ROK")))] == 1
    assert got[("smsc_throttled_total", (("reason", "tps"), ("tenant", "acme")))] == 1
    assert got[("smsc_protocol_errors_total", (("status", "ESME_RINVCMDLEN"),))] == 1
    assert got[("smsc_operator_events_total", (("event", "submit_ok"),
                                               ("operator", "opA")))] == 3


def test_collector_exports_histograms() -> None:
    m = Metrics()
    m.submit_latency.observe(0.003)
    m.on_commit(rows=7, seconds=0.0015)
    m.on_commit(rows=700, seconds=0.2)
    got = samples(m)
    assert got[("smsc_submit_resp_latency_seconds_bucket", (("le", "0.002"),))] == 0
    assert got[("smsc_submit_resp_latency_seconds_bucket", (("le", "0.005"),))] == 1
    assert got[("smsc_submit_resp_latency_seconds_count", ())] == 1
    assert got[("smsc_submit_resp_latency_seconds_sum", ())] == pytest.approx(0.003)
    assert got[("smsc_store_commit_batch_rows_bucket", (("le", "10.0"),))] == 1
    assert got[("smsc_store_commit_batch_rows_bucket", (("le", "1000.0"),))] == 2
    assert got[("smsc_store_commit_batch_rows_count", ())] == 2
    assert got[("smsc_store_commit_seconds_bucket", (("le", "+Inf"),))] == 2


def test_gauges_are_read_at_scrape_time() -> None:
    m = Metrics()
    depth = {"acme": 3.0}
    m.gauge("smsc_outbox_depth", "deliver_sm waiting per tenant", "tenant", lambda: depth)
    assert samples(m)[("smsc_outbox_depth", (("tenant", "acme"),))] == 3
    depth["acme"] = 9.0
    depth["beta"] = 1.0
    got = samples(m)
    assert got[("smsc_outbox_depth", (("tenant", "acme"),))] == 9
    assert got[("smsc_outbox_depth", (("tenant", "beta"),))] == 1


def test_empty_metrics_still_scrape() -> None:
    got = samples(Metrics())
    assert got[("smsc_submit_resp_latency_seconds_count", ())] == 0
    assert not any(name == "smsc_pdus_in_total" for name, _ in got)
