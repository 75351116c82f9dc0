"""Analytics rollups: per tenant and hour, counted as messages move.

What ``GET /v1/analytics`` answers is read from rollup rows, never from the messages: one
row per (tenant, hour, operator, country, originator) with the counts of that hour and a
latency histogram of fixed buckets, so p50/p95 come from the buckets; a report by day, hour,
operator, country or originator sums the rows of its period by that column. ``operator``
is the operator that took the message ("" before one did); ``country`` the recipient's
region from phonenumbers, cached per number prefix ("ZZ" when unknown); ``originator`` the
sender id as given.

Counting happens where the lifecycle moves a message (``Lifecycle.move`` calls ``moved``),
where messages are accepted (``Admission.accept``) and where an MO arrives (``Inbound``):
each adds to the ``RollupBatch`` of the pending group commit, which keeps one count list per
touched row, so a commit writes one upsert per touched row (never a row per message per
status) in the same transaction as the status changes it counts. A message's events usually
share one row per commit: one message shape (tenant, operator, country, originator) is one
row, whatever grouping is asked later.

Figures go to the hour an event happened in (UTC): a message accepted at 10:59 and delivered
at 11:01 counts as submitted in 10:00 and delivered in 11:00. ``submitted`` counts accepted
messages (operator ""); ``taken`` counts them again at their first move out of ``accepted``,
under the operator then known: a report by operator shows ``taken`` as its submitted.
``failed`` is undeliverable, expired or rejected; ``parts`` (billed) are the parts operators
acknowledged, counted when the message becomes ``submitted``. Latency is accept ->
delivered.

The same counts, summed per tenant and operator since the start, feed Prometheus
(``smsc.analytics_metrics``): they are folded from each batch once the next one begins, so
the hot path counts once.
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
    "BUCKET0",
    "DELIVERED",
    "FAILED",
    "INBOUND",
    "LATENCY_MS",
    "PARTS",
    "RECEIPT_ERROR",
    "SUBMITTED",
    "TAKEN",
    "error_class",
    "LATENCY_BOUNDS",
    "RegionCache",
    "RollupBatch",
    "FIELDS",
    "N_FIELDS",
    "percentile",
    "hour_of",
]

# Upper bounds (seconds) of the accept -> delivered latency buckets; one more bucket above.
LATENCY_BOUNDS: Final[tuple[float, ...]] = (
    0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
# Counts of one rollup row, in column order (``routing.sqlite.rollups``).
FIELDS: Final = ("submitted", "taken", "delivered", "failed", "parts", "inbound",
                 "latency_ms", *(f"b{i}" for i in range(len(LATENCY_BOUNDS) + 1)))
N_FIELDS: Final = len(FIELDS)
SUBMITTED, TAKEN, DELIVERED, FAILED, PARTS, INBOUND, LATENCY_MS = range(7)
BUCKET0: Final = 7
_FAILED: Final = frozenset({Status.UNDELIVERABLE, Status.EXPIRED, Status.REJECTED})
# Error codes of failures an operator's receipt reported (its ``err:`` field, SMPP 3.4
# Appendix B: network-specific) are kept as RECEIPT_ERROR + err, apart from command_status
# values (32 bits).
RECEIPT_ERROR: Final = 1 << 32
_UNKNOWN_REGION: Final = "ZZ"
_CACHE_MAX: Final = 50_000
_PREFIX: Final = 6  # digits of a number that decide its region (NANP: 1 + area code + 2)

Key = tuple[str, int, str, str, str]  # tenant, hour start (epoch s), operator, country,
# originator


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
    touched (row, error code). ``combos`` finds a message's row from its shape without
    looking its region up again."""

    __slots__ = ("combos", "errors", "rows")

    def __init__(self) -> None:
        self.rows: dict[Key, list[int]] = {}
        self.errors: dict[tuple[str, int, str, str, str, int], int] = {}
        self.combos: dict[tuple[str, int, str, str, str], tuple[list[int], Key]] = {}

    def __len__(self) -> int:
        return len(self.rows) + len(self.errors)

    def row(self, key: Key) -> list[int]:
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = [0] * N_FIELDS
        return row

    def add(self, key: Key, field: int, n: int = 1) -> None:
        self.row(key)[field] += n

    def add_error(self, key: Key, error: int) -> None:
        ekey = (*key, error)
        self.errors[ekey] = self.errors.get(ekey, 0) + 1


def error_class(error: int) -> str:
    """A bounded label for why a message failed (Prometheus): the retry classification of
    its command_status, "receipt" for an operator's receipt, "unspecified" without a code."""
    if not error:
        return "unspecified"
    if error >= RECEIPT_ERROR:
        return "receipt"
    outcome = classify(error)
    return "other" if outcome is Outcome.OK else outcome.value


class Analytics:
    """Counts into the pending commit's ``RollupBatch`` (``batch()``); callers pass the time
    of the event (no clock here)."""

    def __init__(self, batch: Callable[[], RollupBatch],
                 regions: RegionCache | None = None) -> None:
        self._batch = batch
        self.regions = regions or RegionCache()
        self._last: RollupBatch | None = None  # the batch counted into last, not folded
        self._totals: dict[tuple[str, str], list[int]] = {}  # (tenant, operator) -> FIELDS
        self._error_totals: dict[tuple[str, str, int], int] = {}  # (tenant, operator, code)

    def _current(self) -> RollupBatch:
        batch = self._batch()
        if batch is not self._last:
            if self._last is not None:
                self._fold(self._last, self._totals, self._error_totals)
            self._last = batch
        return batch

    @staticmethod
    def _fold(batch: RollupBatch, totals: dict[tuple[str, str], list[int]],
              errors: dict[tuple[str, str, int], int]) -> None:
        for (tenant, _hour, operator, _country, _origin), row in batch.rows.items():
            total = totals.get((tenant, operator))
            if total is None:
                total = totals[tenant, operator] = [0] * N_FIELDS
            for i, n in enumerate(row):
                if n:
                    total[i] += n
        for (tenant, _hour, operator, _country, _origin, code), n in batch.errors.items():
            errors[tenant, operator, code] = errors.get((tenant, operator, code), 0) + n

    def cumulative(self) -> tuple[dict[tuple[str, str], list[int]],
                                  dict[tuple[str, str, int], int]]:
        """Everything counted since the start per (tenant, operator), and failures per
        (tenant, operator, error code): copies, for a scrape."""
        totals = {k: list(v) for k, v in self._totals.items()}
        errors = dict(self._error_totals)
        if self._last is not None:
            self._fold(self._last, totals, errors)
        return totals, errors

    def _row(self, batch: RollupBatch, hour: int, m: Message) -> tuple[list[int], Key]:
        d = m.destination_addr
        combo = (m.tenant, hour, m.operator, d[:_PREFIX] if len(d) >= 8 else d, m.source_addr)
        found = batch.combos.get(combo)
        if found is None:
            key = (m.tenant, hour, m.operator, self.regions.region(d), m.source_addr)
            found = batch.combos[combo] = (batch.row(key), key)
        return found

    def accepted(self, messages: Iterable[Message], now: float) -> None:
        """Messages accepted (durable in the commit this batch goes with)."""
        batch = self._current()
        hour = hour_of(now)
        for m in messages:
            self._row(batch, hour, m)[0][SUBMITTED] += 1

    def moved(self, m: Message, old: Status, new: Status, now: float, *, error: int = 0,
              parts: int = 0, detail: str = "") -> None:
        """``m`` moved from ``old`` to ``new`` at ``now`` (``m`` already carries ``new``
        and its operator)."""
        # out of the gateway's hands for the first time (a scheduled message released goes
        # back to accepted first; one cancelled or expired while held leaves from there)
        first_out = old is Status.ACCEPTED or (old is Status.SCHEDULED
                                               and new is not Status.ACCEPTED)
        delivered = new is Status.DELIVERED
        failed = new in _FAILED
        if not (first_out or delivered or failed):
            return
        batch = self._batch()
        if batch is not self._last:
            batch = self._current()
        # (inlined ``_row``: this runs for every status change)
        d = m.destination_addr
        hour = int(now // 3600) * 3600
        found = batch.combos.get(
            (m.tenant, hour, m.operator, d[:_PREFIX] if len(d) >= 8 else d, m.source_addr))
        row, key = found if found is not None else self._row(batch, hour, m)
        if first_out:
            row[TAKEN] += 1
        if delivered:
            latency = now - m.created_at
            row[DELIVERED] += 1
            row[BUCKET0 + bisect.bisect_left(LATENCY_BOUNDS, latency)] += 1
            if latency > 0:
                row[LATENCY_MS] += int(latency * 1000)
        elif failed:
            row[FAILED] += 1
            # a receipt's err: is the operator's own code, not a command_status
            batch.add_error(key, RECEIPT_ERROR + error if detail == "receipt" else error)
        elif parts and new is Status.SUBMITTED:
            row[PARTS] += parts

    def inbound(self, tenant: str, operator: str, source: str, destination: str,
                now: float) -> None:
        """An MO for ``tenant`` from ``source`` (country) to ``destination`` (the tenant's
        number: its originator) through ``operator``."""
        batch = self._current()
        key = (tenant, hour_of(now), operator, self.regions.region(source), destination)
        batch.row(key)[INBOUND] += 1
