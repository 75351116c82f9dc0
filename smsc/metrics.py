"""Prometheus metrics: plain counters on the hot path, exported by a collector at scrape time.

Incrementing a prometheus_client labelled child costs a lock and a label lookup per call;
the gateway counts into dicts and small histograms instead, and ``GatewayCollector`` turns
them into metric families only when /metrics is scraped. Labels are bounded: command names,
status names, tenant system_ids and operator names from config, never a number or an id.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from encoding.constants import status_name

__all__ = ["Histogram", "Metrics", "GatewayCollector"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


class Histogram:
    """Fixed buckets; ``observe`` is a bisect and two additions."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            total += count
            out.append((repr(float(bound)), total))
        out.append(("+Inf", total + self.counts[-1]))
        return out


class Metrics:
    """Everything the gateway counts; one instance per gateway."""

    def __init__(self) -> None:
        self.pdus_in: dict[str, int] = {}
        self.pdus_out: dict[tuple[str, int], int] = {}
        self.throttled: dict[tuple[str, str], int] = {}  # (tenant, reason)
        self.submit_latency = Histogram(_LATENCY_BUCKETS)
        self.commit_latency = Histogram(_LATENCY_BUCKETS)
        self.commit_batch = Histogram(_BATCH_BUCKETS)
        self.protocol_errors: dict[int, int] = {}
        self.operator_events: dict[tuple[str, str], int] = {}  # (operator, event)
        self.http_responses: dict[int, int] = {}  # HTTP API answers by status code
        # name -> (help, label name, source of {label value: gauge value}) read at scrape time
        self.gauges: dict[str, tuple[str, str, Callable[[], dict[str, float]]]] = {}
        # the same for counters kept elsewhere (the ban table's failures and bans)
        self.counters: dict[str, tuple[str, str, Callable[[], dict[str, float]]]] = {}

    def gauge(self, name: str, helptext: str, label: str,
              source: Callable[[], dict[str, float]]) -> None:
        self.gauges[name] = (helptext, label, source)

    def counter(self, name: str, helptext: str, label: str,
                source: Callable[[], dict[str, float]]) -> None:
        """A counter read from ``source`` at scrape time (exported as ``<name>_total``)."""
        self.counters[name] = (helptext, label, source)

    def pdu_in(self, command: str) -> None:
        self.pdus_in[command] = self.pdus_in.get(command, 0) + 1

    def pdu_out(self, command: str, status: int) -> None:
        key = (command, status)
        self.pdus_out[key] = self.pdus_out.get(key, 0) + 1

    def throttle(self, tenant: str, reason: str) -> None:
        key = (tenant, reason)
        self.throttled[key] = self.throttled.get(key, 0) + 1

    def protocol_error(self, status: int) -> None:
        self.protocol_errors[status] = self.protocol_errors.get(status, 0) + 1

    def operator_event(self, operator: str, event: str, n: int = 1) -> None:
        key = (operator, event)
        self.operator_events[key] = self.operator_events.get(key, 0) + n

    def http_response(self, status: int) -> None:
        self.http_responses[status] = self.http_responses.get(status, 0) + 1

    def on_commit(self, rows: int, seconds: float) -> None:
        """Called from the group-commit thread; plain int/float updates are safe enough."""
        self.commit_latency.observe(seconds)
        self.commit_batch.observe(rows)


class GatewayCollector(Collector):
    """Exports a ``Metrics`` instance in Prometheus text format."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.m
        c = CounterMetricFamily("smsc_pdus_in", "PDUs received from tenants", labels=["command"])
        for command, n in sorted(m.pdus_in.items()):
            c.add_metric([command], n)
        yield c
        c = CounterMetricFamily("smsc_pdus_out", "PDUs sent to tenants",
                                labels=["command", "status"])
        for (command, status), n in sorted(m.pdus_out.items()):
            c.add_metric([command, status_name(status)], n)
        yield c
        c = CounterMetricFamily("smsc_throttled", "Submits refused for rate, window or queue",
                                labels=["tenant", "reason"])
        for (tenant, reason), n in sorted(m.throttled.items()):
            c.add_metric([tenant, reason], n)
        yield c
        c = CounterMetricFamily("smsc_protocol_errors", "Bad PDUs from peers", labels=["status"])
        for status, n in sorted(m.protocol_errors.items()):
            c.add_metric([status_name(status)], n)
        yield c
        c = CounterMetricFamily("smsc_operator_events", "Operator-side events",
                                labels=["operator", "event"])
        for (operator, event), n in sorted(m.operator_events.items()):
            c.add_metric([operator, event], n)
        yield c
        c = CounterMetricFamily("smsc_http_responses", "HTTP API answers", labels=["status"])
        for status, n in sorted(m.http_responses.items()):
            c.add_metric([str(status)], n)
        yield c
        for name, helptext, hist in (
            ("smsc_submit_resp_latency_seconds", "submit_sm to submit_sm_resp",
             m.submit_latency),
            ("smsc_store_commit_seconds", "Group commit duration", m.commit_latency),
            ("smsc_store_commit_batch_rows", "Rows per group commit", m.commit_batch),
        ):
            yield HistogramMetricFamily(name, helptext, buckets=hist.buckets(), sum_value=hist.sum)
        for name, (helptext, label, source) in sorted(m.counters.items()):
            c = CounterMetricFamily(name, helptext, labels=[label])
            for key, value in sorted(source().items()):
                c.add_metric([key], value)
            yield c
        for name, (helptext, label, source) in sorted(m.gauges.items()):
            g = GaugeMetricFamily(name, helptext, labels=[label])
            for key, value in sorted(source().items()):
                g.add_metric([key], value)
            yield g
