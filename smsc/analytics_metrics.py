"""Prometheus families of the analytics counters (``routing.analytics.Analytics``).

Read at scrape time from the plain dicts the lifecycle hook counts into, like
``smsc.metrics``. Labels are bounded: tenant system_ids and operator names from config,
lifecycle status names and error classes (``routing.retry`` outcomes). Never a number, an
id or an originator (free text): those are in ``GET /v1/analytics`` only.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from routing.analytics import LATENCY_BOUNDS, Analytics

__all__ = ["AnalyticsCollector"]


class AnalyticsCollector(Collector):
    def __init__(self, analytics: Analytics) -> None:
        self.a = analytics

    def collect(self) -> Iterator[Metric]:
        a = self.a
        c = CounterMetricFamily(
            "smsc_messages", "Messages by the status they reached (accepted: taken from a "
            "tenant, operator empty)", labels=["tenant", "operator", "status"])
        for (tenant, operator, status), n in sorted(a.by_status.items()):
            c.add_metric([tenant, operator, status], n)
        yield c
        c = CounterMetricFamily(
            "smsc_messages_failed", "Messages that failed (undeliverable, expired, rejected) "
            "by error class", labels=["tenant", "operator", "error_class"])
        for (tenant, operator, cls), n in sorted(a.failures.items()):
            c.add_metric([tenant, operator, cls], n)
        yield c
        c = CounterMetricFamily("smsc_inbound_messages", "MO messages queued for tenants",
                                labels=["tenant", "operator"])
        for (tenant, operator), n in sorted(a.inbound_count.items()):
            c.add_metric([tenant, operator], n)
        yield c
        h = HistogramMetricFamily("smsc_delivery_latency_seconds",
                                  "Accept to delivered, per tenant", labels=["tenant"])
        for tenant, counts in sorted(a.latency.items()):
            buckets: list[tuple[str, float]] = []
            total = 0
            for bound, n in zip(LATENCY_BOUNDS, counts, strict=False):
                total += n
                buckets.append((repr(float(bound)), total))
            buckets.append(("+Inf", total + counts[-1]))
            h.add_metric([tenant], buckets, sum_value=a.latency_sum.get(tenant, 0.0))
        yield h
