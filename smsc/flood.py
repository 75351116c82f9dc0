"""Connection floods on the tenant listener: who gets a descriptor, and what is said about it.

``admit`` is the decision for each accepted connection (no I/O): below the ceiling it is
taken; at the ceiling the oldest connection that has not bound yet is closed to make room
(a flood of idle connections then cannot keep an authenticated tenant out), and when bound
sessions (and connections already closing) alone fill the ceiling the new one is refused.

``Every`` turns a burst of the same event into one log line per interval with the count
since the last line. ``FloodStats`` holds the counters and ``FloodCollector`` exports them
with the listener's connection gauges:

- ``smsc_accept_errors_total{reason}``: accept failures (EMFILE, ENFILE, ENOBUFS, ENOMEM);
- ``smsc_tls_handshake_failures_total{reason}``: tenant TLS handshakes that failed
  (``handshake_failure``: certificate, version, timeout, closed, other), also logged once
  per interval with the count, since the client often sees only a closed connection;
- ``smsc_connections_evicted_total``: unbound connections closed to make room;
- ``smsc_connections_refused_total``: connections closed at once, the ceiling being full of
  bound sessions;
- ``smsc_tenant_connections{state}`` (``bound``, ``unbound``) and
  ``smsc_tenant_connection_ceiling``.
"""

from __future__ import annotations

import enum
import ssl
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["Admit", "admit", "Every", "FloodStats", "FloodCollector"]


class Admit(enum.Enum):
    ACCEPT = "accept"
    EVICT_OLDEST_UNBOUND = "evict"  # close the oldest unbound connection, take the new one
    REFUSE = "refuse"  # close the new one


def admit(open_connections: int, unbound: int, ceiling: int) -> Admit:
    """What to do with one more connection when ``open_connections`` (bound, unbound and
    closing) are open, ``unbound`` of them evictable, and at most ``ceiling`` may be."""
    if open_connections < ceiling:
        return Admit.ACCEPT
    if unbound > 0:
        return Admit.EVICT_OLDEST_UNBOUND
    return Admit.REFUSE


class Every:
    """Rate limit for a log line: ``hit(now)`` returns how many hits to report (this one
    and those kept quiet since the last line) at most once per ``interval_s``, else 0."""

    __slots__ = ("_last", "_quiet", "interval_s")

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last: float | None = None
        self._quiet = 0

    def hit(self, now: float) -> int:
        self._quiet += 1
        if self._last is not None and now - self._last < self.interval_s:
            return 0
        n, self._quiet, self._last = self._quiet, 0, now
        return n


class FloodStats:
    """Counters of the listener (plain ints, read at scrape time)."""

    def __init__(self) -> None:
        self.accept_errors: dict[str, int] = {}  # errno name -> count
        self.tls_failures: dict[str, int] = {}  # handshake_failure() reason -> count
        self.evicted = 0
        self.refused = 0
        # (bound or closing, unbound, ceiling) now; the listener sets it
        self.counts: Callable[[], tuple[int, int, int]] = lambda: (0, 0, 0)

    def accept_error(self, reason: str) -> None:
        self.accept_errors[reason] = self.accept_errors.get(reason, 0) + 1

    def tls_failure(self, reason: str) -> None:
        self.tls_failures[reason] = self.tls_failures.get(reason, 0) + 1


def handshake_failure(exc: BaseException) -> str:
    """A failed server handshake as a metric label from a closed set: "certificate" (none
    given, or not signed by ``client_ca``), "version" (below ``min_version``, or plain SMPP
    sent to the TLS port), "timeout" (``handshake_timeout_s``), "closed" (the peer left)
    or "other"."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or "").upper()
        if "CERTIFICATE" in reason:
            return "certificate"
        if "VERSION" in reason or "PROTOCOL" in reason or "HTTP" in reason:
            return "version"
        if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return "closed"
        return "other"
    if isinstance(exc, ConnectionError | EOFError):
        return "closed"
    return "other"


class FloodCollector(Collector):
    """Exports ``FloodStats`` with the listener's open connections and ceiling."""

    def __init__(self, stats: FloodStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        c = CounterMetricFamily("smsc_accept_errors", "Tenant listener accept failures",
                                labels=["reason"])
        for reason, n in sorted(s.accept_errors.items()):
            c.add_metric([reason], n)
        yield c
        t = CounterMetricFamily("smsc_tls_handshake_failures",
                                "Tenant TLS handshakes that failed, by reason",
                                labels=["reason"])
        for reason, n in sorted(s.tls_failures.items()):
            t.add_metric([reason], n)
        yield t
        yield CounterMetricFamily("smsc_connections_evicted",
                                  "Unbound tenant connections closed to make room at the "
                                  "ceiling", value=s.evicted)
        yield CounterMetricFamily("smsc_connections_refused",
                                  "Tenant connections closed at once: the ceiling is full "
                                  "of bound sessions", value=s.refused)
        bound, unbound, ceiling = s.counts()
        g = GaugeMetricFamily("smsc_tenant_connections", "Open tenant connections",
                              labels=["state"])
        g.add_metric(["bound"], bound)
        g.add_metric(["unbound"], unbound)
        yield g
        yield GaugeMetricFamily("smsc_tenant_connection_ceiling",
                                "Tenant connections the listener holds at most "
                                "(max_connections or the open-file limit)", value=ceiling)
