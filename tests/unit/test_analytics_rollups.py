"""Analytics rollups: the arithmetic of one commit's batch (hour boundaries, dimensions, one
entry per touched row), percentiles from the fixed buckets, the store's upserts summed by
the report, and the lifecycle hook (a fake clock: every time is given)."""

from __future__ import annotations

import pytest

from routing import Message, Ops, Status, Store
from routing.analytics import (
    FIELDS,
    LATENCY_BOUNDS,
    N_FIELDS,
    RECEIPT_ERROR,
    Analytics,
    RegionCache,
    RollupBatch,
    error_class,
    hour_of,
    percentile,
)
from routing.lifecycle import IllegalTransition, Lifecycle
from routing.sqlite.rollups import SqliteAnalytics
from smsc.http.analytics import error_name, merged

A, S, D, U, R = (Status.ACCEPTED, Status.SUBMITTED, Status.DELIVERED, Status.UNDELIVERABLE,
                 Status.REJECTED)
T0 = 1_800_000_000 - 1_800_000_000 % 86400  # a UTC midnight
B = len(LATENCY_BOUNDS) + 1


def msg(mid: str, *, created_at: float, dest: str = "447700900123", src: str = "ACME",
        tenant: str = "acme") -> Message:
    return Message(id=mid, tenant=tenant, source_addr=src, destination_addr=dest,
                   created_at=created_at)


class Batches:
    """A stand-in for the committer's pending batch: a new one per "commit"."""

    def __init__(self) -> None:
        self.current = RollupBatch()

    def __call__(self) -> RollupBatch:
        return self.current

    def commit(self) -> RollupBatch:
        done, self.current = self.current, RollupBatch()
        return done


class NoRecord:
    def record_change(self, *args: object, **kw: object) -> None:
        pass


def lifecycle(analytics: Analytics) -> Lifecycle:
    def illegal(exc: IllegalTransition) -> None:
        raise exc
    return Lifecycle(NoRecord(), illegal, analytics)  # type: ignore[arg-type]


# --- arithmetic ---------------------------------------------------------------------------


def test_hour_of_boundaries() -> None:
    assert hour_of(T0 + 3599.999) == T0
    assert hour_of(T0 + 3600.0) == T0 + 3600
    assert hour_of(T0 - 0.001) == T0 - 3600


def test_percentile_from_buckets_interpolates_inside_the_bucket() -> None:
    counts = [0] * B
    counts[2] = 10  # (0.5, 1.0]
    assert percentile(counts, 0.5) == pytest.approx(0.75)
    assert percentile(counts, 1.0) == pytest.approx(1.0)
    counts[4] = 10  # (2, 3]
    assert percentile(counts, 0.5) == pytest.approx(1.0)
    assert percentile(counts, 0.95) == pytest.approx(2.9)
    assert percentile([0] * B, 0.5) is None
    top = [0] * B
    top[-1] = 3  # the open bucket above the last bound answers that bound
    assert percentile(top, 0.95) == LATENCY_BOUNDS[-1]


def test_region_cache_by_prefix() -> None:
    regions = RegionCache()
    assert regions.region("447700900123") == "GB"
    assert regions.region("+14155550100") == "US"
    assert regions.region("4477") == "ZZ"  # too short for a number
    assert regions.region("ACME") == "ZZ"
    assert regions.region("447700900999") == "GB"  # from the cache
    assert len(regions._cache) == 2  # short numbers are not cached under a prefix


def test_error_class_is_bounded() -> None:
    assert error_class(0x45) == "failover"
    assert error_class(0x0B) == "permanent"
    assert error_class(0) == "unspecified"


def _row(**counts: int) -> list[int]:
    row = [0] * N_FIELDS
    for name, n in counts.items():
        row[FIELDS.index(name)] = n
    return row


def test_one_commit_one_entry_per_touched_row() -> None:
    batches = Batches()
    a = Analytics(batches)
    life = lifecycle(a)
    ms = [msg(str(i), created_at=T0 + 10) for i in range(50)]
    a.accepted(ms, T0 + 10)
    for m in ms:
        life.move(m, S, T0 + 11, operator="op1", parts=2)
    for i, m in enumerate(ms):
        if i < 40:
            life.move(m, D, T0 + 10 + 1.5)  # 1.5 s: bucket (1, 2]
        else:
            life.move(m, U, T0 + 12, error=0x45)
    batch = batches.commit()
    # one row while the operator is unknown, one once op1 took them: 50 messages, 2 rows
    assert batch.rows == {
        ("acme", T0, "", "GB", "ACME"): _row(submitted=50),
        ("acme", T0, "op1", "GB", "ACME"): _row(taken=50, delivered=40, failed=10,
                                                parts=100, latency_ms=40 * 1500, b3=40)}
    assert batch.errors == {("acme", T0, "op1", "GB", "ACME", 0x45): 10}


def test_events_go_to_the_hour_they_happen_in() -> None:
    batches = Batches()
    a = Analytics(batches)
    life = lifecycle(a)
    m = msg("1", created_at=T0 + 3599.5)
    a.accepted([m], T0 + 3599.5)
    life.move(m, S, T0 + 3599.9, operator="op1", parts=1)
    life.move(m, D, T0 + 3600.2)
    rows = batches.commit().rows
    assert rows["acme", T0, "", "GB", "ACME"] == _row(submitted=1)
    assert rows["acme", T0, "op1", "GB", "ACME"] == _row(taken=1, parts=1)
    assert rows["acme", T0 + 3600, "op1", "GB", "ACME"] == _row(
        delivered=1, latency_ms=700, b2=1)  # 0.7 s: (0.5, 1]


def test_unknown_then_final_counts_once_and_cancel_is_not_a_failure() -> None:
    batches = Batches()
    a = Analytics(batches)
    life = lifecycle(a)
    m1, m2 = msg("1", created_at=T0), msg("2", created_at=T0)
    a.accepted([m1, m2], T0)
    life.move(m1, S, T0 + 1, operator="op1", parts=1)
    life.move(m1, Status.UNKNOWN, T0 + 2)
    life.move(m1, D, T0 + 3)
    life.move(m2, Status.CANCELLED, T0 + 1)
    rows = batches.commit().rows
    assert rows["acme", T0, "", "GB", "ACME"] == _row(submitted=2, taken=1)  # m2 cancelled
    assert rows["acme", T0, "op1", "GB", "ACME"] == _row(taken=1, delivered=1, parts=1,
                                                         latency_ms=3000, b4=1)


def test_inbound_counts() -> None:
    batches = Batches()
    a = Analytics(batches)
    a.inbound("acme", "op1", "447700900123", "4915112345", T0 + 5)
    assert batches.commit().rows == {("acme", T0, "op1", "GB", "4915112345"): _row(inbound=1)}


def test_prometheus_totals_fold_each_batch_once() -> None:
    batches = Batches()
    a = Analytics(batches)
    life = lifecycle(a)
    for commit in range(3):
        m = msg(str(commit), created_at=T0)
        a.accepted([m], T0)
        life.move(m, S, T0 + 1, operator="op1", parts=1)
        life.move(m, U if commit == 2 else D, T0 + 2, error=0x45 if commit == 2 else 0)
        totals, errors = a.cumulative()  # the batch being filled is counted, not consumed
        assert totals["acme", "op1"][FIELDS.index("taken")] == commit + 1
        batches.commit()
    totals, errors = a.cumulative()
    assert totals["acme", ""][FIELDS.index("submitted")] == 3
    assert totals["acme", "op1"][FIELDS.index("delivered")] == 2
    assert errors == {("acme", "op1", 0x45): 1}


# --- store: upserts and the report ------------------------------------------------------


def test_upserts_add_up_and_the_report_groups(store: Store) -> None:
    batches = Batches()
    a = Analytics(batches)
    life = lifecycle(a)
    # day 1, hour 0: 3 to GB via op1 (2 delivered in 1.5 s, 1 failed); hour 5: 1 to US via op2
    for commit in range(2):  # the same figures in two commits: rows add up
        ms = [msg(f"{commit}-{i}", created_at=T0 + 60) for i in range(3)]
        a.accepted(ms, T0 + 60)
        for m in ms:
            life.move(m, S, T0 + 61, operator="op1", parts=1)
        life.move(ms[0], D, T0 + 61.5)
        life.move(ms[1], D, T0 + 61.5)
        life.move(ms[2], R, T0 + 62, error=0x0B)
        us = msg(f"{commit}-us", created_at=T0 + 5 * 3600, dest="14155550100", src="Shop")
        a.accepted([us], us.created_at)
        life.move(us, S, us.created_at + 1, operator="op2", parts=3)
        life.move(us, D, us.created_at + 20)  # 20 s: (10, 20]
        ops = Ops()
        ops.rollups = batches.commit()
        store.apply(ops)
    report = SqliteAnalytics(lambda: store.reader)
    hours = report.report("acme", T0, T0 + 86400, "hour")
    assert [(g.key, g.submitted, g.delivered, g.failed, g.parts) for g in hours] == [
        ("2027-01-15T00:00:00Z", 6, 4, 2, 6), ("2027-01-15T05:00:00Z", 2, 2, 0, 6)]
    assert hours[0].errors == {0x0B: 2}
    assert hours[0].delivery_rate == pytest.approx(4 / 6)
    assert hours[0].latency(0.5) == pytest.approx(1.5)
    days = report.report("acme", T0, T0 + 86400, "day")
    assert [(g.key, g.submitted, g.delivered) for g in days] == [("2027-01-15", 8, 6)]
    ops_ = {g.key: (g.submitted, g.delivered, g.parts)
            for g in report.report("acme", T0, T0 + 86400, "operator")}
    assert ops_ == {"op1": (6, 4, 6), "op2": (2, 2, 6)}
    countries = {g.key: g.delivered for g in report.report("acme", T0, T0 + 86400, "country")}
    assert countries == {"GB": 4, "US": 2}
    origin = {g.key: g.submitted for g in report.report("acme", T0, T0 + 86400, "originator")}
    assert origin == {"ACME": 6, "Shop": 2}
    # until is exclusive, since from the start of its hour
    assert [g.key for g in report.report("acme", T0 + 1800, T0 + 5 * 3600, "hour")] == [
        "2027-01-15T00:00:00Z"]
    assert report.report("other", T0, T0 + 86400, "day") == []
    total = merged(hours)
    assert (total.submitted, total.delivered, total.failed) == (8, 6, 2)
    assert len(total.buckets) == B


def test_clicks_and_opt_outs_count_from_their_tables_when_they_exist(store: Store) -> None:
    conn = store.reader
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    batches = Batches()
    a = Analytics(batches)
    m = msg("77", created_at=T0)
    a.accepted([m], T0)
    ops = Ops()
    ops.insert_message(m, T0)
    ops.rollups = batches.commit()
    store.apply(ops)
    report = SqliteAnalytics(lambda: store.reader)
    if "clicks" in names:
        with conn:
            conn.execute("INSERT INTO clicks (code, tenant, message_id, at, bot) "
                         "VALUES ('c1', 'acme', '77', ?, 0), ('c1', 'acme', '77', ?, 1)",
                         (T0 + 100, T0 + 101))
    if "consent" in names:
        with conn:
            conn.execute("INSERT INTO consent (tenant, number, state, source, detail, "
                         "inbound_id, at) VALUES ('acme', '447700900123', 'opted_out', "
                         "'keyword', 'STOP', '', ?)", (T0 + 200,))
    day = report.report("acme", T0, T0 + 86400, "day")[0]
    assert day.clicks == (1 if "clicks" in names else 0)
    assert day.opt_outs == (1 if "consent" in names else 0)
    if "clicks" in names:
        by_op = report.report("acme", T0, T0 + 86400, "originator")
        assert {g.key: g.clicks for g in by_op} == {"ACME": 1}


def test_batch_len() -> None:
    b = RollupBatch()
    assert not b
    b.add(("t", 0, "", "ZZ", "x"), 0)
    b.add_error(("t", 0, "", "ZZ", "x"), 8)
    assert len(b) == 2 and len(b.rows["t", 0, "", "ZZ", "x"]) == N_FIELDS


def test_a_receipt_error_is_kept_apart_from_command_status() -> None:
    batches = Batches()
    a = Analytics(batches)
    life = lifecycle(a)
    m1, m2 = msg("1", created_at=T0), msg("2", created_at=T0)
    a.accepted([m1, m2], T0)
    for m in (m1, m2):
        life.move(m, S, T0 + 1, operator="op1", parts=1)
    life.move(m1, U, T0 + 2, error=1, detail="receipt")  # err:001 in the receipt
    life.move(m2, U, T0 + 2, error=1, detail="too many attempts")  # ESME_RINVMSGLEN
    errors = batches.commit().errors
    assert errors == {("acme", T0, "op1", "GB", "ACME", RECEIPT_ERROR + 1): 1,
                      ("acme", T0, "op1", "GB", "ACME", 1): 1}
    assert error_class(RECEIPT_ERROR + 1) == "receipt"
    assert (error_name(RECEIPT_ERROR + 1), error_name(1), error_name(0x4321), error_name(0)) == (
        "receipt err:001", "ESME_RINVMSGLEN", "0x00004321", "unspecified")


def test_a_scheduled_message_is_taken_once() -> None:
    batches = Batches()
    a = Analytics(batches)
    life = lifecycle(a)
    m1, m2 = msg("1", created_at=T0), msg("2", created_at=T0)
    m1.status = m2.status = Status.SCHEDULED
    a.accepted([m1, m2], T0)
    life.move(m1, A, T0 + 60)  # released when due
    life.move(m1, S, T0 + 61, operator="op1", parts=1)
    life.move(m2, Status.EXPIRED, T0 + 90)  # its validity ended while held
    rows = batches.commit().rows
    assert rows["acme", T0, "", "GB", "ACME"] == _row(submitted=2, taken=1, failed=1)
    assert rows["acme", T0, "op1", "GB", "ACME"] == _row(taken=1, parts=1)
