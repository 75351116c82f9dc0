"""What a load-generator worker records, how workers' records merge, and the summary numbers.

A ``Recorder`` keeps, per answered submit, its completion time and latency (two
``array('d')``: no per-message objects), the same for receipts, counts by command_status,
and the ids still waiting for a receipt. Times are ``time.monotonic()`` (CLOCK_MONOTONIC, the
same clock in every process of the machine), so records of several processes merge.
Receipts for ids a worker does not know (its sibling process submitted them) are kept as
orphans and matched when the records are merged. Percentiles are nearest-rank.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from encoding.constants import status_name

__all__ = ["Recorder", "WorkerRecord", "bucket_width", "merge", "percentiles", "summarize",
           "timeline"]

PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999))


class WorkerRecord(msgspec.Struct):
    """One worker's records in picklable form (arrays as bytes)."""

    sub_t: bytes = b""
    sub_lat: bytes = b""
    rc_t: bytes = b""
    rc_lat: bytes = b""
    sent: int = 0
    first_send: float = 0.0
    errors: dict[int, int] = msgspec.field(default_factory=dict)
    failures: dict[str, int] = msgspec.field(default_factory=dict)
    pending: dict[str, float] = msgspec.field(default_factory=dict)
    orphans: list[tuple[str, float]] = msgspec.field(default_factory=list)
    cpu_s: float = 0.0
    samples: list[tuple[float, float, float, float, float]] = msgspec.field(
        default_factory=list)  # (t, gw_cpu_s, gw_rss_kb, sim_cpu_s, sim_rss_kb)
    usage_start: dict[str, tuple[float, int, int, float]] = msgspec.field(default_factory=dict)
    usage_end: dict[str, tuple[float, int, int, float]] = msgspec.field(default_factory=dict)
    binds: int = 0
    bind_errors: dict[str, int] = msgspec.field(default_factory=dict)
    tls_versions: dict[str, int] = msgspec.field(default_factory=dict)  # binds per version


class Recorder:
    """Mutable per-worker records, filled on the hot path (keep methods tiny)."""

    __slots__ = ("errors", "failures", "first_send", "orphans", "pending", "rc_lat", "rc_t",
                 "sent", "sub_lat", "sub_t")

    def __init__(self) -> None:
        self.sub_t = array("d")
        self.sub_lat = array("d")
        self.rc_t = array("d")
        self.rc_lat = array("d")
        self.sent = 0
        self.first_send = 0.0
        self.errors: dict[int, int] = {}
        self.failures: dict[str, int] = {}
        self.pending: dict[str, float] = {}
        self.orphans: list[tuple[str, float]] = []

    def receipt(self, message_id: str, now: float) -> None:
        t_sched = self.pending.pop(message_id, None)
        if t_sched is None:
            self.orphans.append((message_id, now))
        else:
            self.rc_t.append(now)
            self.rc_lat.append(now - t_sched)

    def freeze(self) -> WorkerRecord:
        return WorkerRecord(sub_t=self.sub_t.tobytes(), sub_lat=self.sub_lat.tobytes(),
                            rc_t=self.rc_t.tobytes(), rc_lat=self.rc_lat.tobytes(),
                            sent=self.sent, first_send=self.first_send,
                            errors=dict(self.errors), failures=dict(self.failures),
                            pending=dict(self.pending), orphans=list(self.orphans))


def _arr(data: bytes) -> array[float]:
    a = array("d")
    a.frombytes(data)
    return a


class Merged(msgspec.Struct):
    sub_t: list[float]
    sub_lat: list[float]
    rc_t: list[float]
    rc_lat: list[float]
    sent: int
    t0: float
    errors: dict[int, int]
    failures: dict[str, int]
    missing: int
    unknown_receipts: int
    cpu_s: float


def merge(records: Sequence[WorkerRecord]) -> Merged:
    """Concatenate workers' records; match orphan receipts against every worker's pending."""
    sub_t: array[float] = array("d")
    sub_lat: array[float] = array("d")
    rc_t: array[float] = array("d")
    rc_lat: array[float] = array("d")
    errors: dict[int, int] = {}
    failures: dict[str, int] = {}
    pending: dict[str, float] = {}
    orphans: list[tuple[str, float]] = []
    for r in records:
        sub_t.extend(_arr(r.sub_t))
        sub_lat.extend(_arr(r.sub_lat))
        rc_t.extend(_arr(r.rc_t))
        rc_lat.extend(_arr(r.rc_lat))
        for status, n in r.errors.items():
            errors[status] = errors.get(status, 0) + n
        for reason, n in r.failures.items():
            failures[reason] = failures.get(reason, 0) + n
        pending.update(r.pending)
        orphans.extend(r.orphans)
    unknown = 0
    for mid, t in orphans:
        t_sched = pending.pop(mid, None)
        if t_sched is None:
            unknown += 1
        else:
            rc_t.append(t)
            rc_lat.append(t - t_sched)
    starts = [r.first_send for r in records if r.first_send]
    return Merged(sub_t=sub_t.tolist(), sub_lat=sub_lat.tolist(), rc_t=rc_t.tolist(),
                  rc_lat=rc_lat.tolist(), sent=sum(r.sent for r in records),
                  t0=min(starts) if starts else 0.0, errors=errors, failures=failures,
                  missing=len(pending), unknown_receipts=unknown,
                  cpu_s=sum(r.cpu_s for r in records))


def percentiles(values: Iterable[float]) -> dict[str, float | int | None]:
    """p50/p90/p99/p99.9, mean and max in milliseconds (nearest rank), plus the count."""
    data = sorted(values)
    n = len(data)
    out: dict[str, float | int | None] = {"count": n}
    for name, q in PERCENTILES:
        out[name] = round(data[max(0, math.ceil(q * n) - 1)] * 1e3, 3) if n else None
    out["mean"] = round(sum(data) / n * 1e3, 3) if n else None
    out["max"] = round(data[-1] * 1e3, 3) if n else None
    return out


def _rate(count: int, t0: float, times: Sequence[float]) -> float | None:
    if not count or not times:
        return None
    span = max(times) - t0
    return round(count / span, 1) if span > 0 else None


def bucket_width(duration_s: float) -> float:
    """A timeline step giving at most about 100 points over ``duration_s``."""
    for step in (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0):
        if duration_s / step <= 100:
            return step
    return 60.0


def timeline(m: Merged, samples: Sequence[tuple[float, float, float, float, float]]
             ) -> list[dict[str, Any]]:
    """Rows per step: submit_sm_resp/s, receipts/s, their p50/p99 (ms), gateway CPU%, RSS."""
    t_end = max(max(m.sub_t, default=m.t0), max(m.rc_t, default=m.t0))
    step = bucket_width(t_end - m.t0)
    buckets: dict[int, list[list[float]]] = {}
    for times, lats, slot in ((m.sub_t, m.sub_lat, 0), (m.rc_t, m.rc_lat, 1)):
        for t, lat in zip(times, lats, strict=True):
            key = int((t - m.t0) / step)
            row = buckets.get(key)
            if row is None:
                row = buckets[key] = [[], []]
            row[slot].append(lat)
    res: dict[int, tuple[float, float]] = {}
    prev: tuple[float, float, float, float, float] | None = None
    for s in samples:
        if prev is not None and s[0] > prev[0] and s[1] >= 0 and prev[1] >= 0:
            res[int((s[0] - m.t0) / step)] = ((s[1] - prev[1]) / (s[0] - prev[0]) * 100,
                                              s[2] / 1024)
        prev = s
    rows = []
    last = max([*buckets, *res], default=-1)
    for key in range(last + 1):
        sub, rc = buckets.get(key, [[], []])
        sub.sort()
        rc.sort()
        cpu_rss = res.get(key)
        rows.append({
            "t": round(key * step, 3), "step_s": step,
            "submit_per_s": round(len(sub) / step, 1), "receipt_per_s": round(len(rc) / step, 1),
            "submit_p50_ms": _q(sub, 0.5), "submit_p99_ms": _q(sub, 0.99),
            "receipt_p50_ms": _q(rc, 0.5), "receipt_p99_ms": _q(rc, 0.99),
            "gw_cpu_pct": round(cpu_rss[0], 1) if cpu_rss else None,
            "gw_rss_mb": round(cpu_rss[1], 1) if cpu_rss else None,
        })
    return rows


def _q(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return round(sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)] * 1e3, 3)


def _proc_usage(name: str, records: Sequence[WorkerRecord], messages: int
                ) -> dict[str, Any] | None:
    start = next((r.usage_start[name] for r in records if name in r.usage_start), None)
    end = next((r.usage_end[name] for r in records if name in r.usage_end), None)
    if start is None or end is None:
        return None
    cpu = end[0] - start[0]
    return {
        "cpu_s": round(cpu, 3),
        "cpu_sys_s": round(end[3] - start[3], 3),
        "cpu_s_per_1000": round(cpu / messages * 1000, 4) if messages else None,
        "cpu_us_per_msg": round(cpu / messages * 1e6, 1) if messages else None,
        "rss_start_mb": round(start[1] / 1024, 1),
        "rss_end_mb": round(end[1] / 1024, 1),
        "peak_rss_mb": round(end[2] / 1024, 1),
    }


def summarize(records: Sequence[WorkerRecord], *, with_timeline: bool = True
              ) -> dict[str, Any]:
    """The result numbers of one run (all workers merged)."""
    m = merge(records)
    accepted = len(m.sub_t) - sum(m.errors.values())
    receipts = len(m.rc_t)
    t_end = max(max(m.sub_t, default=m.t0), max(m.rc_t, default=m.t0))
    samples = sorted(s for r in records for s in r.samples)
    out: dict[str, Any] = {
        "sent": m.sent,
        "answered": len(m.sub_t),
        "accepted": accepted,
        "rejected": sum(m.errors.values()),
        "receipts": receipts,
        "missing_receipts": m.missing,
        "unknown_receipts": m.unknown_receipts,
        "duration_s": round(t_end - m.t0, 3) if m.t0 else 0.0,
        "throughput": {
            "submit_per_s": _rate(len(m.sub_t), m.t0, m.sub_t),
            "receipt_per_s": (round(receipts / (max(m.rc_t) - min(m.rc_t)), 1)
                              if receipts > 1 and max(m.rc_t) > min(m.rc_t) else None),
            "end_to_end_per_s": _rate(receipts, m.t0, m.rc_t),
        },
        "latency_ms": {"submit_resp": percentiles(m.sub_lat), "receipt": percentiles(m.rc_lat)},
        "errors": {status_name(s): n for s, n in sorted(m.errors.items())},
        "failures": dict(sorted(m.failures.items())),
        "binds": sum(r.binds for r in records),
        "bind_errors": {k: sum(r.bind_errors.get(k, 0) for r in records)
                        for k in sorted({k for r in records for k in r.bind_errors})},
        "tls_versions": {k: sum(r.tls_versions.get(k, 0) for r in records)
                         for k in sorted({k for r in records for k in r.tls_versions})},
        "loadgen": {"procs": len(records), "cpu_s": round(m.cpu_s, 3),
                    "cpu_us_per_msg": round(m.cpu_s / m.sent * 1e6, 1) if m.sent else None},
    }
    for name in ("gateway", "simulator"):
        usage = _proc_usage(name, records, accepted)
        if usage is not None:
            out[name] = usage
    if with_timeline:
        out["timeline"] = timeline(m, samples)
    return out
