"""Prometheus families of the analytics counts (``routing.analytics.Analytics``).

Read at scrape time from the per (tenant, operator) totals the rollups fold into, like
``smsc.metrics``. Labels are bounded: tenant system_ids and operator names from config
("" before an operator took the message), three outcomes and the error classes of
``routing.retry``. Never a number, an id or an originator (free text): those are in
``GET /v1/analytics`` only.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from routing.analytics import (
    BUCKET0,
    DELIVERED,
    FAILED,
    INBOUND,
    LATENCY_BOUNDS,
    LATENCY_MS,
    PARTS,
    SUBMITTED,
    Analytics,
    error_class,
)

__all__ = ["AnalyticsCollector"]


class AnalyticsCollector(Collector):
    def __init__(self, analytics: Analytics) -> None:
        self.a = analytics

    def collect(self) -> Iterator[Metric]:
        totals, errors = self.a.cumulative()
        rows = sorted(totals.items())
        c = CounterMetricFamily(
            "smsc_messages", "Messages by outcome: accepted from a tenant (operator empty), "
            "delivered, failed (undeliverable, expired, rejected)",
            labels=["tenant", "operator", "status"])
        for (tenant, operator), row in rows:
            for status, index in (("accepted", SUBMITTED), ("delivered", DELIVERED),
                                  ("failed", FAILED)):
                if row[index]:
                    c.add_metric([tenant, operator, status], row[index])
        yield c
        c = CounterMetricFamily("smsc_messages_failed", "Failed messages by error class",
                                labels=["tenant", "operator", "error_class"])
        classes: dict[tuple[str, str, str], int] = {}
        for (tenant, operator, code), n in errors.items():
            key = (tenant, operator, error_class(code))
            classes[key] = classes.get(key, 0) + n
        for labels, n in sorted(classes.items()):
            c.add_metric(list(labels), n)
        yield c
        for name, text, column in (
                ("smsc_message_parts_billed", "SMS parts operators acknowledged", PARTS),
                ("smsc_inbound_messages", "MO messages received for tenants", INBOUND)):
            c = CounterMetricFamily(name, text, labels=["tenant", "operator"])
            for (tenant, operator), row in rows:
                if row[column]:
                    c.add_metric([tenant, operator], row[column])
            yield c
        h = HistogramMetricFamily("smsc_delivery_latency_seconds", "Accept to delivered",
                                  labels=["tenant", "operator"])
        for (tenant, operator), row in rows:
            if not row[DELIVERED]:
                continue
            buckets: list[tuple[str, float]] = []
            total = 0
            for i, bound in enumerate(LATENCY_BOUNDS):
                total += row[BUCKET0 + i]
                buckets.append((repr(float(bound)), total))
            buckets.append(("+Inf", total + row[BUCKET0 + len(LATENCY_BOUNDS)]))
            h.add_metric([tenant, operator], buckets, sum_value=row[LATENCY_MS] / 1000.0)
        yield h
