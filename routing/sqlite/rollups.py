"""Analytics rollups on SQLite: the upserts of one group commit, and the report queries.

``write_rollups`` runs inside ``Store.apply`` (the commit that carries the status changes it
counts): one ``INSERT ... ON CONFLICT DO UPDATE`` per touched rollup row. ``SqliteAnalytics``
reads rollup rows on the reader connection over the primary key's (tenant, hour) prefix,
summed per group with ``GROUP BY``: the cost of a report is the rows of the period (hours
times message shapes: operator, country, originator), never the messages. Clicks
(``clicks``, part E of issue 12) and opt-outs (``consent``, part A) are counted from their
own tables over their (tenant, at) indexes when those tables exist.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

from ..analytics import BUCKET0, FIELDS, N_FIELDS, RegionCache, RollupBatch, percentile

__all__ = ["write_rollups", "SqliteAnalytics", "GroupFigures", "GroupBy"]

GroupBy = Literal["day", "hour", "operator", "country", "originator"]

_COUNTS: Final = ", ".join(FIELDS)
_UPSERT: Final = (
    f"INSERT INTO rollups (tenant, hour, operator, country, originator, {_COUNTS}) "
    f"VALUES (?, ?, ?, ?, ?, {', '.join('?' * N_FIELDS)}) "
    "ON CONFLICT (tenant, hour, operator, country, originator) DO UPDATE SET "
    + ", ".join(f"{f} = {f} + excluded.{f}" for f in FIELDS))
_UPSERT_ERROR: Final = (
    "INSERT INTO rollup_errors (tenant, hour, operator, country, originator, error, n) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, hour, operator, country, originator, "
    "error) DO UPDATE SET n = n + excluded.n")
_SUMS: Final = ", ".join(f"sum({f})" for f in FIELDS)


def write_rollups(conn: sqlite3.Connection, batch: RollupBatch) -> None:
    """Add one commit's deltas (inside the caller's transaction)."""
    if batch.rows:
        conn.executemany(_UPSERT, [(*k, *v) for k, v in batch.rows.items() if any(v)])
    if batch.errors:
        conn.executemany(_UPSERT_ERROR, [(*k, n) for k, n in batch.errors.items()])


@dataclass
class GroupFigures:
    """One group of a report (a day, an hour, an operator, a country or an originator)."""

    key: str
    submitted: int = 0
    delivered: int = 0
    failed: int = 0
    parts: int = 0
    inbound: int = 0
    latency_ms: int = 0  # the sum of accept -> delivered times
    errors: dict[int, int] = field(default_factory=dict)
    buckets: list[int] = field(default_factory=list)
    clicks: int = 0
    opt_outs: int = 0

    @property
    def delivery_rate(self) -> float | None:
        """Delivered of those with an outcome (delivered or failed); None without any."""
        done = self.delivered + self.failed
        return self.delivered / done if done else None

    @property
    def click_through_rate(self) -> float | None:
        return self.clicks / self.delivered if self.delivered else None

    def latency(self, q: float) -> float | None:
        return percentile(self.buckets, q)


def _group_expr(group_by: GroupBy) -> str:
    """The SQL expression of the group for ``group_by``."""
    return {"hour": "hour", "day": "hour / 86400 * 86400"}.get(group_by, group_by)


def _by_time(conn: sqlite3.Connection, table: str, at: str, where: str,
             params: tuple[object, ...], group_by: GroupBy) -> list[tuple[str, int]]:
    """Rows of ``table`` matching ``where``, counted per hour or day of their ``at``."""
    size = 3600 if group_by == "hour" else 86400
    rows = conn.execute(f"SELECT CAST({at} / {size} AS INTEGER) * {size} AS g, count(*) "
                        f"FROM {table} WHERE {where} GROUP BY g", params).fetchall()
    return [(_label(group_by, g), int(n)) for g, n in rows]


def _label(group_by: GroupBy, value: object) -> str:
    if group_by in ("hour", "day"):
        t = datetime.fromtimestamp(int(value), UTC)  # type: ignore[call-overload]
        return t.strftime("%Y-%m-%d") if group_by == "day" else t.strftime("%Y-%m-%dT%H:00:00Z")
    return str(value)


class SqliteAnalytics:
    """Reports from the rollup tables (reader connection, event-loop thread)."""

    def __init__(self, reader: Callable[[], sqlite3.Connection],
                 regions: RegionCache | None = None) -> None:
        self._reader = reader
        self._regions = regions or RegionCache()

    def report(self, tenant: str, since: float, until: float, group_by: GroupBy
               ) -> list[GroupFigures]:
        """Groups of ``tenant``'s figures for hours starting in [hour of since, until), in
        key order."""
        conn = self._reader()
        expr = _group_expr(group_by)
        low = int(since // 3600) * 3600
        params = (tenant, low, until)
        groups: dict[str, GroupFigures] = {}
        for row in conn.execute(
                f"SELECT {expr} AS g, {_SUMS} FROM rollups WHERE tenant = ? "
                "AND hour >= ? AND hour < ? GROUP BY g ORDER BY g", params):
            label = _label(group_by, row[0])
            c = [int(v or 0) for v in row[1:]]
            fig = GroupFigures(
                key=label, submitted=c[1] if group_by == "operator" else c[0], delivered=c[2],
                failed=c[3], parts=c[4], inbound=c[5], latency_ms=c[6], buckets=c[BUCKET0:])
            if fig.submitted or fig.delivered or fig.failed or fig.parts or fig.inbound:
                groups[label] = fig  # by operator, "" holds accepts only until taken
        for g, error, n in conn.execute(
                f"SELECT {expr} AS g, error, sum(n) FROM rollup_errors WHERE tenant = ? "
                "AND hour >= ? AND hour < ? GROUP BY g, error", params):
            fig = groups.setdefault(_label(group_by, g), GroupFigures(key=_label(group_by, g)))
            fig.errors[int(error)] = int(n)
        tables = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name IN ('clicks', 'consent', 'messages')")}
        if "clicks" in tables:
            for label, n in self._clicks(conn, tenant, low, until, group_by):
                groups.setdefault(label, GroupFigures(key=label)).clicks += n
        if "consent" in tables:
            for label, n in self._opt_outs(conn, tenant, low, until, group_by):
                groups.setdefault(label, GroupFigures(key=label)).opt_outs += n
        return [groups[k] for k in sorted(groups)]

    def _clicks(self, conn: sqlite3.Connection, tenant: str, since: float, until: float,
                group_by: GroupBy) -> list[tuple[str, int]]:
        """Clicks (bot fetches left out) per group; by message attributes through the
        message each click belongs to."""
        where = "c.tenant = ? AND c.at >= ? AND c.at < ? AND c.bot = 0"
        params = (tenant, since, until)
        if group_by in ("hour", "day"):
            return _by_time(conn, "clicks c", "c.at", where, params, group_by)
        column = {"operator": "m.operator", "originator": "m.source_addr",
                  "country": "m.destination_addr"}[group_by]
        rows = conn.execute(
            f"SELECT {column} AS g, count(*) FROM clicks c JOIN messages m ON m.id = "
            f"c.message_id WHERE {where} GROUP BY g", params).fetchall()
        return self._regrouped(rows, group_by)

    def _opt_outs(self, conn: sqlite3.Connection, tenant: str, since: float, until: float,
                  group_by: GroupBy) -> list[tuple[str, int]]:
        """Opt-out records per group: by time, or by the number's country; an opt-out
        belongs to no operator or originator, so those groupings leave it out."""
        where = "tenant = ? AND at >= ? AND at < ? AND state = 'opted_out'"
        params = (tenant, since, until)
        try:
            if group_by in ("hour", "day"):
                return _by_time(conn, "consent", "at", where, params, group_by)
            if group_by == "country":
                rows = conn.execute(f"SELECT number, count(*) FROM consent WHERE {where} "
                                    "GROUP BY number", params).fetchall()
                return self._regrouped(rows, group_by)
        except sqlite3.OperationalError:  # another shape of the table than expected
            return []
        return []

    def _regrouped(self, rows: list[tuple[object, object]], group_by: GroupBy
                   ) -> list[tuple[str, int]]:
        if group_by != "country":
            return [(str(g), int(n)) for g, n in rows]  # type: ignore[call-overload]
        out: dict[str, int] = {}
        for number, n in rows:
            region = self._regions.region(str(number))
            out[region] = out.get(region, 0) + int(n)  # type: ignore[call-overload]
        return list(out.items())
