"""Analytics rollups: per tenant, hour and dimension, counted as messages move.

What ``GET /v1/analytics`` answers is read from rollup rows, never from the messages: one
row per (tenant, dimension, hour, key) with the counts of that hour and a latency histogram
of fixed buckets, so p50/p95 come from the buckets. Dimensions: ``all`` (key ""),
``operator`` (the operator that took the message; "" for messages none took), ``country``
(the recipient's region from phonenumbers, cached per number prefix; "ZZ" when unknown)
and ``originator`` (the sender id as given).

Counting happens where the lifecycle moves a message (``Lifecycle.move`` calls ``moved``),
where messages are accepted (``Admission.accept``) and where an MO arrives
(``Inbound``): each adds to the ``RollupBatch`` of the pending group commit, which keeps one
entry per touched row, so a commit writes one upsert per touched row (never a row per
message per status) in the same transaction as the status changes it counts.

Figures go to the hour an event happened in (UTC): a message accepted at 10:59 and delivered
at 11:01 counts as submitted in 10:00 and delivered in 11:00. ``submitted`` counts accepted
messages; in the ``operator`` dimension it is counted at the message's first move out of
``accepted`` (only then is its operator known). ``failed`` is undeliverable, expired or
rejected; ``parts`` (billed) are the parts operators acknowledged, counted when the message
becomes ``submitted``. Latency is accept -> delivered.

The module also keeps cumulative in-memory counters with bounded labels (tenant, operator,
status, error class) for Prometheus (``smsc.analytics_metrics``).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from typing import Final

import phonenumbers

from .model import Message, Status
from .retry import Outcome, classify

__all__ = [
    "Analytics",
    "DIMENSIONS",
    "LATENCY_BOUNDS",
    "RegionCache",
    "RollupBatch",
    "FIELDS",
    "N_FIELDS",
    "percentile",
    "hour_of",
]

DIMENSIONS: Final = ("all", "operator", "country", "originator")
# Upper bounds (seconds) of the accept -> delivered latency buckets; one more bucket above.
LATENCY_BOUNDS: Final[tuple[float, ...]] = (
    0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
# Counts of one rollup row, in column order (``routing.sqlite.rollups``).
FIELDS: Final = ("submitted", "delivered", "failed", "parts", "inbound",
                 *(f"b{i}" for i in range(len(LATENCY_BOUNDS) + 1)))
N_FIELDS: Final = len(FIELDS)
SUBMITTED, DELIVERED, FAILED, PARTS, INBOUND = range(5)
_BUCKET0: Final = 5
_FAILED: Final = frozenset({Status.UNDELIVERABLE, Status.EXPIRED, Status.REJECTED})
_UNKNOWN_REGION: Final = "ZZ"
_CACHE_MAX: Final = 50_000
_PREFIX: Final = 6  # digits of a number that decide its region (NANP: 1 + area code + 2)

Key = tuple[str, str, int, str]  # tenant, dimension, hour start (epoch s), key


def hour_of(t: float) -> int:
    """The start (epoch seconds, UTC) of the hour ``t`` falls in."""
    return int(t // 3600) * 3600


def percentile(buckets: Iterable[int], q: float,
               bounds: tuple[float, ...] = LATENCY_BOUNDS) -> float | None:
    """The ``q`` quantile (0 < q <= 1) from bucket counts (one more count than bounds),
    interpolated linearly inside its bucket (the last, open bucket answers its lower bound);
    None when there is nothing counted."""
    counts = list(buckets)
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            low = bounds[i - 1] if i > 0 else 0.0
            if i >= len(bounds):
                return low
            return low + (bounds[i] - low) * max(0.0, rank - seen) / n
        seen += n
    return bounds[-1]  # pragma: no cover - rank <= total always lands above


class RegionCache:
    """The ISO region of a recipient number (phonenumbers), cached per number prefix: the
    prefix decides the region for all but a few shared country codes, and parsing costs
    tens of microseconds."""

    def __init__(self, max_size: int = _CACHE_MAX) -> None:
        self._cache: dict[str, str] = {}
        self._max = max_size

    def region(self, number: str) -> str:
        digits = number.lstrip("+")
        if len(digits) < 8 or not digits.isdigit():  # short codes, names: no country
            return _UNKNOWN_REGION
        prefix = digits[:_PREFIX]
        found = self._cache.get(prefix)
        if found is not None:
            return found
        try:
            parsed = phonenumbers.parse("+" + digits)
        except phonenumbers.NumberParseException:
            parsed = None
        found = _UNKNOWN_REGION
        if parsed is not None:
            found = (phonenumbers.region_code_for_number(parsed)
                     or phonenumbers.region_code_for_country_code(parsed.country_code or 0)
                     or _UNKNOWN_REGION)
            if found == "001":  # non-geographic entities (satellite, UIFN)
                found = _UNKNOWN_REGION
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[prefix] = found
        return found


class RollupBatch:
    """The rollup deltas of one group commit: one count list per touched row, one count per
    touched (row, error code)."""

    __slots__ = ("errors", "rows")

    def __init__(self) -> None:
        self.rows: dict[Key, list[int]] = {}
        self.errors: dict[tuple[str, str, int, str, int], int] = {}

    def __len__(self) -> int:
        return len(self.rows) + len(self.errors)

    def add(self, key: Key, field: int, n: int = 1) -> None:
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = [0] * N_FIELDS
        row[field] += n

    def add_error(self, key: Key, error: int) -> None:
        ekey = (*key, error)
        self.errors[ekey] = self.errors.get(ekey, 0) + 1


def error_class(status: Status, error: int) -> str:
    """A bounded label for why a message failed (Prometheus): the retry classification of
    its command_status, or its status when it has none."""
    if not error:
        return status.value
    outcome = classify(error)
    return "other" if outcome is Outcome.OK else outcome.value


class Analytics:
    """Counts into the pending commit's ``RollupBatch`` (``batch()``) and into cumulative
    counters for Prometheus. ``clock``-free: callers pass the time of the event."""

    def __init__(self, batch: Callable[[], RollupBatch],
                 regions: RegionCache | None = None) -> None:
        self._batch = batch
        self.regions = regions or RegionCache()
        # cumulative, bounded labels: tenant, operator, status / error class
        self.by_status: dict[tuple[str, str, str], int] = {}
        self.failures: dict[tuple[str, str, str], int] = {}
        self.inbound_count: dict[tuple[str, str], int] = {}
        self.latency: dict[str, list[int]] = {}  # tenant -> bucket counts
        self.latency_sum: dict[str, float] = {}

    def _keys(self, tenant: str, hour: int, m: Message, operator: bool) -> list[Key]:
        keys: list[Key] = [(tenant, "all", hour, ""),
                           (tenant, "country", hour, self.regions.region(m.destination_addr)),
                           (tenant, "originator", hour, m.source_addr)]
        if operator:
            keys.append((tenant, "operator", hour, m.operator))
        return keys

    def accepted(self, messages: Iterable[Message], now: float) -> None:
        """Messages accepted (durable in the commit this batch goes with)."""
        batch = self._batch()
        hour = hour_of(now)
        for m in messages:
            for key in self._keys(m.tenant, hour, m, False):
                batch.add(key, SUBMITTED)
            sk = (m.tenant, "", "accepted")
            self.by_status[sk] = self.by_status.get(sk, 0) + 1

    def moved(self, m: Message, old: Status, new: Status, now: float, *, error: int = 0,
              parts: int = 0) -> None:
        """``m`` moved from ``old`` to ``new`` at ``now`` (``m`` already carries ``new``
        and its operator)."""
        first_out = old is Status.ACCEPTED
        if not (first_out or new is Status.DELIVERED or new in _FAILED
                or new is Status.SUBMITTED):
            return
        batch = self._batch()
        hour = hour_of(now)
        tenant = m.tenant
        if first_out:
            batch.add((tenant, "operator", hour, m.operator), SUBMITTED)
        sk = (tenant, m.operator, new.value)
        self.by_status[sk] = self.by_status.get(sk, 0) + 1
        if new is Status.SUBMITTED:
            if parts:
                for key in self._keys(tenant, hour, m, True):
                    batch.add(key, PARTS, parts)
            return
        if new is Status.DELIVERED:
            latency = max(0.0, now - m.created_at)
            bucket = _BUCKET0 + bisect.bisect_left(LATENCY_BOUNDS, latency)
            for key in self._keys(tenant, hour, m, True):
                row = batch.rows.get(key)
                if row is None:
                    row = batch.rows[key] = [0] * N_FIELDS
                row[DELIVERED] += 1
                row[bucket] += 1
            hist = self.latency.get(tenant)
            if hist is None:
                hist = self.latency[tenant] = [0] * (len(LATENCY_BOUNDS) + 1)
            hist[bucket - _BUCKET0] += 1
            self.latency_sum[tenant] = self.latency_sum.get(tenant, 0.0) + latency
        elif new in _FAILED:
            for key in self._keys(tenant, hour, m, True):
                batch.add(key, FAILED)
                batch.add_error(key, error)
            fk = (tenant, m.operator, error_class(new, error))
            self.failures[fk] = self.failures.get(fk, 0) + 1

    def inbound(self, tenant: str, operator: str, source: str, destination: str,
                now: float) -> None:
        """An MO for ``tenant`` from ``source`` (country) to ``destination`` (the tenant's
        number: its originator dimension) through ``operator``."""
        batch = self._batch()
        hour = hour_of(now)
        for key in ((tenant, "all", hour, ""), (tenant, "operator", hour, operator),
                    (tenant, "country", hour, self.regions.region(source)),
                    (tenant, "originator", hour, destination)):
            batch.add(key, INBOUND)
        ik = (tenant, operator)
        self.inbound_count[ik] = self.inbound_count.get(ik, 0) + 1
