"""SQLite store: schema migration and version guard, ids, one-transaction writes, status
changes with their precondition, reads as Structs, the events table."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from routing import Message, MoEvent, Ops, ReceiptEvent, Status, Store, StoredPdu, StoreError
from routing.events import Claim, TenantEvent, encode_event
from routing.repository import HistoryEntry, MoGroup, MoPart, Segment
from routing.sqlite.rows import row_of
from routing.sqlite.schema import MIGRATIONS, SCHEMA_VERSION

A, S, D, C = Status.ACCEPTED, Status.SUBMITTED, Status.DELIVERED, Status.CANCELLED


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "db" / "smsc.db", synchronous="OFF")
    s.open()
    yield s
    s.close()


def msg(mid: str, **kw: object) -> Message:
    base: dict[str, object] = dict(id=mid, tenant="acme", source_addr="ACME",
                                   destination_addr="447700900123", body=b"hi\x00\xff",
                                   tlvs=b"\x02\x04\x00\x02\x00\x07", created_at=10.0,
                                   data_coding=8, esm_class=0x40, registered_delivery=1)
    base.update(kw)
    return Message(**base)  # type: ignore[arg-type]


def apply(store: Store, fill: Callable[[Ops], object]) -> None:
    ops = Ops()
    fill(ops)
    store.apply(ops)


def receipt(mid: str = "5") -> ReceiptEvent:
    return ReceiptEvent(message_id=mid, status=D, submitted_at=10.0, done_at=20.0,
                        source_addr="ACME", destination_addr="447700900123", preview="hi")


def add_event(ops: Ops, store: Store, event: TenantEvent, *, tenant: str = "acme",
              created_at: float = 1.0) -> int:
    """Queue ``event`` as the event queue does; returns its id."""
    eid = store.new_event_id()
    if isinstance(event, StoredPdu):
        ops.add_event(eid, tenant, "pdu", event.pdu, event.message_id, created_at)
    else:
        kind = "receipt" if isinstance(event, ReceiptEvent) else "mo"
        ops.add_event(eid, tenant, kind, encode_event(event), getattr(event, "message_id", ""),
                      created_at)
    return eid


def _schema(path: Path, version: int) -> sqlite3.Connection:
    """A database at ``version`` built by hand from the first migrations, as an older
    gateway left it."""
    conn = sqlite3.connect(path)
    script = ";".join(MIGRATIONS[:version])
    conn.executescript(f"BEGIN;{script};PRAGMA user_version = {version};COMMIT;")
    return conn


# --- open, schema, ids --------------------------------------------------------------------


def test_open_creates_schema_with_version(tmp_path: Path, store: Store) -> None:
    assert store.reader.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.count("messages") == 0
    assert store.count("events") == 0


def test_reader_before_open_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        Store(tmp_path / "x.db").get_message("1")


def test_synchronous_must_be_a_known_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        Store(tmp_path / "x.db", synchronous="EXTRA")


def test_newer_schema_is_refused_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    s = Store(path)
    with pytest.raises(StoreError, match="newer"):
        s.open()
    s.close()


def test_a_store_from_the_first_schema_is_brought_forward_with_its_data(tmp_path: Path) -> None:
    """An older gateway's store (schema 1) opens: migrations add what is new, rows stay."""
    path = tmp_path / "old.db"
    conn = _schema(path, 1)
    conn.execute("INSERT INTO meta VALUES ('epoch', '4')")
    row = row_of(msg("7", status=S, operator="opA"), 1.0)[:24]  # the schema-1 columns
    conn.execute(f"INSERT INTO messages VALUES ({', '.join('?' * 24)})", row)
    conn.commit()
    conn.close()

    s = Store(path, synchronous="OFF")
    s.open()
    try:
        assert s.reader.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        got = s.get_message("7")
        assert got is not None and got.status is S
        assert [m.id for m in s.submitted_before("opA", 10**12)] == ["7"]
        assert s.mo_parts() == []
        assert s.events_for("acme") == [] and s.count("events") == 0
        tables = {r[0] for r in s.reader.execute("SELECT name FROM sqlite_master")}
        assert "outbox" not in tables
        assert s.new_message_number() >> 40 == 5  # epochs keep counting up
    finally:
        s.close()


def test_history_written_before_schema_11_keeps_its_order_and_new_rows_follow(
        tmp_path: Path) -> None:
    """Schema 11 clusters history by message; rows of an older store keep their write
    order (even with equal times), and rows written after the upgrade come after them."""
    path = tmp_path / "old.db"
    conn = _schema(path, 10)
    conn.execute("INSERT INTO meta VALUES ('epoch', '2')")
    for status, at, detail in (("accepted", 5.0, ""), ("submitted", 5.0, "opA"),
                               ("accepted", 1.0, "other message")):
        mid = "9" if detail == "other message" else "7"
        conn.execute("INSERT INTO history VALUES (?, ?, ?, ?)", (mid, status, at, detail))
    conn.commit()
    conn.close()

    s = Store(path, synchronous="OFF")
    s.open()
    try:
        ops = Ops()
        ops.insert_message(msg("7", status=S), 5.0)  # its history row follows the old ones
        ops.set_status("7", S, Status.DELIVERED, 4.0, detail="receipt")  # an earlier clock
        s.apply(ops)
        assert [(h.status, h.at, h.detail) for h in s.history_of("7")] == [
            (Status.ACCEPTED, 5.0, ""), (S, 5.0, "opA"), (S, 5.0, ""),
            (Status.DELIVERED, 4.0, "receipt")]
        assert [h.detail for h in s.history_of("9")] == ["other message"]
    finally:
        s.close()


def test_a_schema_3_outbox_becomes_pdu_events_with_the_same_bytes_in_id_order(
        tmp_path: Path) -> None:
    """Migration 4: what waited in an old outbox (encoded deliver_sm) comes back from the
    events table as StoredPdu, bytes untouched, oldest (lowest id) first."""
    path = tmp_path / "v3.db"
    conn = _schema(path, 3)
    rows = [  # inserted out of id order, with the old kinds
        (9, "acme", "mo", b"\x00\x00\x00\x10third\xff", "", 3.0, 0, 0.0),
        (3, "acme", "receipt", b"\x00\x00\x00\x10first\x00", "42", 1.0, 2, 55.0),
        (5, "other", "receipt", b"elsewhere", "43", 1.5, 0, 0.0),
        (7, "acme", "receipt", b"\x00\x00\x00\x10second", "44", 2.0, 0, 0.0),
    ]
    conn.executemany("INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()

    s = Store(path, synchronous="OFF")
    s.open()
    try:
        assert s.reader.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert s.events_for("acme") == [
            Claim(3, "acme", StoredPdu(b"\x00\x00\x00\x10first\x00", "42"), 2, 1.0),
            Claim(7, "acme", StoredPdu(b"\x00\x00\x00\x10second", "44"), 0, 2.0),
            Claim(9, "acme", StoredPdu(b"\x00\x00\x00\x10third\xff", ""), 0, 3.0),
        ]
        assert s.events_for("other") == [Claim(5, "other", StoredPdu(b"elsewhere", "43"), 0,
                                               1.5)]
        assert s.count("events", "kind = ?", ["pdu"]) == 4
        assert s.event_depths() == {"acme": 3, "other": 1}
        # New events come after the old ones, above every id of earlier epochs (never reused).
        assert s.new_event_id() == 1 << 40
    finally:
        s.close()


def _with_message(m: Message) -> Ops:
    ops = Ops()
    ops.insert_message(m, 1.0)
    return ops


def test_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        Store(blocker / "sub" / "db.sqlite").open()


def test_message_numbers_unique_across_reopen(tmp_path: Path) -> None:
    seen: set[int] = set()
    for _ in range(3):
        s = Store(tmp_path / "ids.db", synchronous="OFF")
        s.open()
        numbers = [s.new_message_number() for _ in range(100)]
        s.close()
        assert len(set(numbers)) == 100
        assert seen.isdisjoint(numbers)
        assert all(len(str(n)) <= 20 and len(f"{n:X}") <= 16 for n in numbers)
        seen.update(numbers)


# --- messages -----------------------------------------------------------------------------


def test_message_round_trip(store: Store) -> None:
    m = msg("42", validity_period="000001000000000R", expires_at=99.5, priority_flag=2)
    apply(store, lambda o: o.insert_message(m, 11.0))
    got = store.get_message("42")
    assert got is not None
    assert got == Message(**{**{f: getattr(m, f) for f in m.__struct_fields__},
                             "updated_at": 11.0})
    assert store.get_message("nope") is None
    assert store.history_of("42") == [HistoryEntry(A, 11.0, "")]


def test_insert_is_idempotent_replace_is_not(store: Store) -> None:
    apply(store, lambda o: o.insert_message(msg("1", body=b"first"), 1.0))
    apply(store, lambda o: o.insert_message(msg("1", body=b"second"), 2.0))
    got = store.get_message("1")
    assert got is not None and got.body == b"first"
    apply(store, lambda o: o.replace_message(msg("1", body=b"third"), 3.0))
    got = store.get_message("1")
    assert got is not None and got.body == b"third" and got.updated_at == 3.0
    assert [h.detail for h in store.history_of("1")] == ["", "", "replaced"]


def test_replace_does_not_touch_a_message_no_longer_accepted(store: Store) -> None:
    """replace_sm raced with the dispatcher: the operator took the message first, so the new
    content must not overwrite what was sent, nor its status."""
    apply(store, lambda o: o.insert_message(msg("1", body=b"sent"), 1.0))
    apply(store, lambda o: o.set_status("1", A, S, 2.0, operator="opA"))
    apply(store, lambda o: o.replace_message(msg("1", body=b"too late"), 3.0))
    got = store.get_message("1")
    assert got is not None
    assert (got.body, got.status, got.operator, got.updated_at) == (b"sent", S, "opA", 2.0)


def test_set_status_keeps_operator_unless_given(store: Store) -> None:
    def fill(o: Ops) -> None:
        o.insert_message(msg("1"), 1.0)
        o.set_status("1", A, S, 2.0, operator="opA")
    apply(store, fill)
    apply(store, lambda o: o.set_status("1", S, D, 3.0, error=7, detail="receipt"))
    got = store.get_message("1")
    assert got is not None
    assert (got.status, got.operator, got.error, got.updated_at) == (D, "opA", 7, 3.0)
    assert store.history_of("1") == [HistoryEntry(A, 1.0, ""), HistoryEntry(S, 2.0, ""),
                                     HistoryEntry(D, 3.0, "receipt")]
    assert store.conflicts == 0


def test_a_change_whose_precondition_no_longer_holds_is_not_applied(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    """Two writers both read the message ACCEPTED and both move it: the dispatcher to
    SUBMITTED, a cancel_sm to CANCELLED. Applied one after the other, only the first wins;
    the second finds the row moved on, changes nothing and is counted."""
    apply(store, lambda o: o.insert_message(msg("1"), 1.0))
    first, second = Ops(), Ops()
    first.set_status("1", A, S, 2.0, operator="opA")
    second.set_status("1", A, C, 3.0, error=9)
    store.apply(first)
    with caplog.at_level(logging.WARNING, logger="routing.sqlite.store"):
        store.apply(second)
    got = store.get_message("1")
    assert got is not None
    assert (got.status, got.operator, got.error, got.updated_at) == (S, "opA", 0, 2.0)
    assert store.conflicts == 1
    assert "moved on" in caplog.text
    # A change from the status it really is in still goes through afterwards.
    apply(store, lambda o: o.set_status("1", S, D, 4.0))
    got = store.get_message("1")
    assert got is not None and got.status is D and store.conflicts == 1


def test_conflicts_are_counted_per_change_in_a_batch(store: Store) -> None:
    def fill(o: Ops) -> None:
        for i in "123":
            o.insert_message(msg(i), 1.0)
    apply(store, fill)
    apply(store, lambda o: o.set_status("2", A, S, 2.0))
    ops = Ops()
    for i in "123":
        ops.set_status(i, A, C, 3.0)
    store.apply(ops)
    assert [m.status for m in store.query()] == [C, S, C]
    assert store.conflicts == 1


def test_a_lost_change_does_not_appear_in_the_history(store: Store) -> None:
    """history_of is what happened to the message: a change that was not applied did not."""
    apply(store, lambda o: o.insert_message(msg("1"), 1.0))
    apply(store, lambda o: o.set_status("1", A, S, 2.0, operator="opA"))
    apply(store, lambda o: o.set_status("1", A, C, 3.0, detail="cancel_sm"))
    apply(store, lambda o: o.replace_message(msg("1", body=b"too late"), 4.0))
    got = store.get_message("1")
    assert got is not None and got.status is S and got.body == msg("1").body
    assert store.history_of("1") == [HistoryEntry(A, 1.0, ""), HistoryEntry(S, 2.0, "")], (
        "BUG routing/sqlite/store.py Store.apply: history rows are inserted unconditionally, "
        "also for status changes whose precondition refused them and for replaces of a "
        "message no longer ACCEPTED, so history_of shows a CANCELLED (and a 'replaced') "
        f"that never happened: {store.history_of('1')}")


def test_a_stale_change_in_the_same_batch_does_not_win(store: Store) -> None:
    """The two writers of the test above, but within one group commit: the second one's
    precondition (ACCEPTED) no longer holds once the first moved it to SUBMITTED."""
    apply(store, lambda o: o.insert_message(msg("1"), 1.0))
    ops = Ops()
    ops.set_status("1", A, S, 2.0, operator="opA")
    ops.set_status("1", A, C, 3.0)
    store.apply(ops)
    got = store.get_message("1")
    assert got is not None
    assert (got.status, store.conflicts) == (S, 1), (
        "BUG routing/sqlite/ops.py Ops.set_status: a second change of one message in a "
        "batch is merged into the first's row write without checking that its `old` is the "
        "first's `new`, so a writer that read a stale status wins (the row ends "
        f"{got.status.value}, conflicts={store.conflicts})")


def test_apply_is_one_transaction(store: Store) -> None:
    ops = Ops()
    ops.insert_message(msg("1"), 1.0)
    add_event(ops, store, receipt())
    ops.segments["1", 1] = ("1", 1)  # a broken row: wrong number of values
    with pytest.raises(sqlite3.Error):
        store.apply(ops)
    assert store.count("messages") == 0
    assert store.count("events") == 0
    assert store.count("history") == 0
    # The writer is usable again afterwards.
    apply(store, lambda o: o.insert_message(msg("2"), 1.0))
    assert store.count("messages") == 1


def test_segments_lookup(store: Store) -> None:
    def fill(o: Ops) -> None:
        o.insert_message(msg("1"), 1.0)
        o.put_segment("1", 1, 2, "opA", "ABC", S)
        o.put_segment("1", 2, 2, "opA", "ABD", S)
    apply(store, fill)
    apply(store, lambda o: o.put_segment("1", 2, 2, "opA", "ABD", D, 0))
    assert store.find_segment("opA", "ABD") == Segment("1", 2, 2, "opA", "ABD", D, 0)
    assert store.find_segment("opB", "ABD") is None
    assert store.segments_of("1") == [Segment("1", 1, 2, "opA", "ABC", S, 0),
                                      Segment("1", 2, 2, "opA", "ABD", D, 0)]
    assert store.segments_of("2") == []


def test_updates_to_one_row_within_a_batch_write_it_once(store: Store) -> None:
    """An operator's resp and receipt often land in one group commit: the message and the
    part are written once, in their last state, the operator kept; history keeps every step."""
    apply(store, lambda o: o.insert_message(msg("1"), 1.0))
    ops = Ops()
    ops.put_segment("1", 1, 1, "opA", "ABC", S)
    ops.set_status("1", A, S, 2.0, operator="opA")
    ops.put_segment("1", 1, 1, "opA", "ABC", D)
    ops.set_status("1", S, D, 3.0, detail="receipt")
    assert len(ops.segments) == 1 and len(ops.message_status) == 1
    store.apply(ops)
    m = store.get_message("1")
    assert m is not None
    assert (m.status, m.operator, m.updated_at) == (D, "opA", 3.0)
    assert store.segments_of("1") == [Segment("1", 1, 1, "opA", "ABC", D, 0)]
    assert [h.status for h in store.history_of("1")] == [A, S, D]
    assert store.conflicts == 0


def test_messages_with_status_pages_in_id_order(store: Store) -> None:
    def fill(o: Ops) -> None:
        for i in range(10, 20):
            o.insert_message(msg(str(i)), 1.0)
        o.set_status("15", A, D, 2.0)
    apply(store, fill)
    first = store.messages_with_status(A, limit=4)
    rest = store.messages_with_status(A, after_id=first[-1].id)
    ids = [m.id for m in first + rest]
    assert ids == ["10", "11", "12", "13", "14", "16", "17", "18", "19"]
    assert [m.id for m in store.messages_with_status(D)] == ["15"]


def test_query_filters_by_tenant_and_status_and_pages(store: Store) -> None:
    def fill(o: Ops) -> None:
        for i in range(10, 16):
            o.insert_message(msg(str(i), tenant="acme" if i % 2 else "beta"), 1.0)
        o.set_status("11", A, S, 2.0)
    apply(store, fill)
    assert [m.id for m in store.query(tenant="acme")] == ["11", "13", "15"]
    assert [m.id for m in store.query(tenant="acme", status=A)] == ["13", "15"]
    assert [m.id for m in store.query(status=S)] == ["11"]
    assert [m.id for m in store.query(after_id="12", limit=2)] == ["13", "14"]


def test_submitted_before_is_per_operator_and_oldest_first(store: Store) -> None:
    def fill(o: Ops) -> None:
        for i in "1234":
            o.insert_message(msg(i), 1.0)
        o.set_status("1", A, S, 30.0, operator="opA")
        o.set_status("2", A, S, 20.0, operator="opA")
        o.set_status("3", A, S, 25.0, operator="opB")
        o.set_status("4", A, S, 99.0, operator="opA")  # too recent
    apply(store, fill)
    assert [m.id for m in store.submitted_before("opA", 50.0)] == ["2", "1"]
    assert [m.id for m in store.submitted_before("opA", 50.0, limit=1)] == ["2"]
    assert [m.id for m in store.submitted_before("opB", 50.0)] == ["3"]


def test_mo_parts_round_trip_and_drop_before_insert(store: Store) -> None:
    g1 = MoGroup("opA", "447700900123", "4477", 0, 7, 3)
    g2 = MoGroup("opA", "447700900999", "4477", 8, 7, 2)

    def fill(o: Ops) -> None:
        o.put_mo_part(g1, 2, b"two", 5.0)
        o.put_mo_part(g1, 1, b"one\x00", 4.0)
        o.put_mo_part(g2, 1, b"other", 6.0)
    apply(store, fill)
    assert store.mo_parts() == [MoPart(g1, 1, b"one\x00", 4.0), MoPart(g1, 2, b"two", 5.0),
                                MoPart(g2, 1, b"other", 6.0)]

    def fill2(o: Ops) -> None:
        o.drop_mo_group(g1)  # joined ...
        o.put_mo_part(g1, 1, b"anew", 7.0)  # ... and a late part opens the group again
    apply(store, fill2)
    assert store.mo_parts() == [MoPart(g2, 1, b"other", 6.0), MoPart(g1, 1, b"anew", 7.0)]


# --- events -------------------------------------------------------------------------------


def test_events_add_ack_retry_and_order(store: Store) -> None:
    ops = Ops()
    pdu = StoredPdu(b"\x00\x00\x00\x11raw", "6")
    mo = MoEvent(source_addr="447700900123", destination_addr="4477", body=b"\x00hi",
                 data_coding=8, tlvs={"sar_msg_ref_num": 7})
    a = add_event(ops, store, receipt("5"))
    b = add_event(ops, store, mo, created_at=2.0)
    c = add_event(ops, store, receipt("9"), tenant="other")
    d = add_event(ops, store, pdu, created_at=3.0)
    assert a < b < c < d
    ops.event_adds.reverse()  # the table, not the batch, gives the order
    store.apply(ops)
    assert store.events_for("acme") == [Claim(a, "acme", receipt("5"), 0, 1.0),
                                        Claim(b, "acme", mo, 0, 2.0),
                                        Claim(d, "acme", pdu, 0, 3.0)]
    assert [x.id for x in store.events_for("acme", after_id=a, limit=1)] == [b]
    assert store.event_depths() == {"acme": 3, "other": 1}

    def fill2(o: Ops) -> None:
        o.ack_event(a)
        o.retry_event(b, 3, 77.0)
    apply(store, fill2)
    assert [(x.id, x.attempts, x.event) for x in store.events_for("acme")] == [
        (b, 3, mo), (d, 0, pdu)]
    assert store.count("events", "id = ? AND next_attempt_at = ?", [b, 77.0]) == 1
    assert store.event_depths() == {"acme": 2, "other": 1}


def test_an_unreadable_event_is_skipped_and_logged(store: Store,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    ops = Ops()
    bad = store.new_event_id()
    ops.add_event(bad, "acme", "receipt", b"\xc1 not msgpack", "5", 1.0)
    good = add_event(ops, store, receipt())
    store.apply(ops)
    with caplog.at_level(logging.ERROR, logger="routing.sqlite.store"):
        assert [x.id for x in store.events_for("acme")] == [good]
    assert f"event {bad} of acme is unreadable" in caplog.text


def test_event_ids_continue_after_reopen(tmp_path: Path) -> None:
    s = Store(tmp_path / "o.db", synchronous="OFF")
    s.open()
    ops = Ops()
    ids = [add_event(ops, s, receipt(), tenant="t") for _ in range(3)]
    s.apply(ops)
    s.close()
    s.open()
    assert s.new_event_id() > max(ids)
    s.close()


def test_purge_drops_only_old_events_and_says_which(store: Store) -> None:
    ops = Ops()
    old = add_event(ops, store, receipt(), created_at=5.0)
    new = add_event(ops, store, receipt(), created_at=50.0)
    other = add_event(ops, store, receipt(), tenant="other", created_at=1.0)
    store.apply(ops)
    assert store.purge_events(older_than=10.0) == 2
    assert [x.id for x in store.events_for("acme")] == [new]
    assert sorted(store.purged_rows) == [(old, "acme"), (other, "other")]
    assert store.event_depths() == {"acme": 1}


def test_purge_rides_a_batch(store: Store) -> None:
    ops = Ops()
    add_event(ops, store, receipt(), created_at=5.0)
    store.apply(ops)
    ops = Ops()
    ops.purge_before = 10.0
    keep = add_event(ops, store, receipt(), created_at=20.0)
    assert len(ops) == 2
    store.apply(ops)
    assert [x.id for x in store.events_for("acme")] == [keep]


def test_count_refuses_other_tables(store: Store) -> None:
    with pytest.raises(ValueError):
        store.count("meta")
    with pytest.raises(ValueError):
        store.count("outbox")
    assert store.count("messages", "status = ?", ["accepted"]) == 0


def test_writes_are_visible_to_a_fresh_connection(tmp_path: Path) -> None:
    s = Store(tmp_path / "d.db")
    s.open()
    apply(s, lambda o: o.insert_message(msg("9"), 1.0))
    s.close()
    s2 = Store(tmp_path / "d.db")
    s2.open()
    try:
        assert s2.get_message("9") is not None
    finally:
        s2.close()
