"""SQLite store: schema migration and version guard, ids, one-transaction writes, reads."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from routing import Message, Ops, OutboxItem, OutboxKind, Status, Store, StoreError
from routing.schema import SCHEMA_VERSION


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


def apply(store: Store, fill: object) -> None:
    ops = Ops()
    fill(ops)  # type: ignore[operator]
    store.apply(ops)


def item(store: Store, tenant: str = "acme", created_at: float = 1.0) -> OutboxItem:
    return OutboxItem(id=store.new_outbox_id(), tenant=tenant, kind=OutboxKind.RECEIPT,
                      pdu=b"\x00\x01", message_id="5", created_at=created_at)


def test_open_creates_schema_with_version(tmp_path: Path, store: Store) -> None:
    assert store.reader.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.count("messages") == 0


def test_reader_before_open_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        Store(tmp_path / "x.db").get_message("1")


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
    from routing.schema import MIGRATIONS

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript("BEGIN;" + MIGRATIONS[0] + ";PRAGMA user_version = 1;COMMIT;")
    conn.execute("INSERT INTO meta VALUES ('epoch', '4')")
    conn.commit()
    conn.close()
    old = Store(path, synchronous="OFF")
    old.open()  # at schema 1 plus migrations: write a SUBMITTED message as the old one would
    old.apply(_with_message(msg("7", status=Status.SUBMITTED, operator="opA")))
    old.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE mo_parts")  # back to what schema 1 had ...
    conn.execute("DROP INDEX messages_submitted")
    conn.execute("PRAGMA user_version = 1")  # ... and its version
    conn.commit()
    conn.close()

    s = Store(path, synchronous="OFF")
    s.open()
    try:
        assert s.reader.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        got = s.get_message("7")
        assert got is not None and got.status is Status.SUBMITTED
        assert [m.id for m in s.submitted_before("opA", 10**12)] == ["7"]
        assert s.mo_parts() == []
        assert s.new_message_number() >> 40 == 6  # epochs keep counting up
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


def test_message_round_trip(store: Store) -> None:
    m = msg("42", validity_period="000001000000000R", expires_at=99.5, priority_flag=2)
    apply(store, lambda o: o.insert_message(m, 11.0))
    got = store.get_message("42")
    assert got is not None
    assert got == Message(**{**{f: getattr(m, f) for f in m.__struct_fields__},
                             "updated_at": 11.0})
    assert store.get_message("nope") is None
    assert store.history_of("42") == [("accepted", 11.0, "")]


def test_insert_is_idempotent_replace_is_not(store: Store) -> None:
    apply(store, lambda o: o.insert_message(msg("1", body=b"first"), 1.0))
    apply(store, lambda o: o.insert_message(msg("1", body=b"second"), 2.0))
    got = store.get_message("1")
    assert got is not None and got.body == b"first"
    apply(store, lambda o: o.replace_message(msg("1", body=b"third"), 3.0))
    got = store.get_message("1")
    assert got is not None and got.body == b"third"
    assert [h[2] for h in store.history_of("1")] == ["", "", "replaced"]


def test_set_status_keeps_operator_unless_given(store: Store) -> None:
    def fill(o: Ops) -> None:
        o.insert_message(msg("1"), 1.0)
        o.set_status("1", Status.SUBMITTED, 2.0, operator="opA")
    apply(store, fill)
    apply(store, lambda o: o.set_status("1", Status.DELIVERED, 3.0, error=7, detail="receipt"))
    got = store.get_message("1")
    assert got is not None
    assert (got.status, got.operator, got.error, got.updated_at) == (
        Status.DELIVERED, "opA", 7, 3.0)
    assert store.history_of("1") == [("accepted", 1.0, ""), ("submitted", 2.0, ""),
                                     ("delivered", 3.0, "receipt")]


def test_apply_is_one_transaction(store: Store) -> None:
    ops = Ops()
    ops.insert_message(msg("1"), 1.0)
    ops.add_outbox(item(store))
    ops.segments["1", 1] = ("1", 1)  # a broken row: wrong number of values
    with pytest.raises(sqlite3.Error):
        store.apply(ops)
    assert store.count("messages") == 0
    assert store.count("outbox") == 0
    assert store.count("history") == 0
    # The writer is usable again afterwards.
    apply(store, lambda o: o.insert_message(msg("2"), 1.0))
    assert store.count("messages") == 1


def test_segments_lookup(store: Store) -> None:
    def fill(o: Ops) -> None:
        o.insert_message(msg("1"), 1.0)
        o.put_segment("1", 1, 2, "opA", "ABC", Status.SUBMITTED)
        o.put_segment("1", 2, 2, "opA", "ABD", Status.SUBMITTED)
    apply(store, fill)
    apply(store, lambda o: o.put_segment("1", 2, 2, "opA", "ABD", Status.DELIVERED, 0))
    assert store.find_segment("opA", "ABD") == ("1", 2, 2)
    assert store.find_segment("opB", "ABD") is None
    assert store.segments_of("1") == [(1, 2, "opA", "ABC", "submitted", 0),
                                      (2, 2, "opA", "ABD", "delivered", 0)]


def test_updates_to_one_row_within_a_batch_write_it_once(store: Store) -> None:
    """An operator's resp and receipt often land in one group commit: the message and the
    part are written once, in their last state, the operator kept; history keeps every step."""
    apply(store, lambda o: o.insert_message(msg("1"), 1.0))
    ops = Ops()
    ops.put_segment("1", 1, 1, "opA", "ABC", Status.SUBMITTED)
    ops.set_status("1", Status.SUBMITTED, 2.0, operator="opA")
    ops.put_segment("1", 1, 1, "opA", "ABC", Status.DELIVERED)
    ops.set_status("1", Status.DELIVERED, 3.0, detail="receipt")
    assert len(ops.segments) == 1 and len(ops.message_status) == 1
    store.apply(ops)
    m = store.get_message("1")
    assert m is not None
    assert (m.status, m.operator, m.updated_at) == (Status.DELIVERED, "opA", 3.0)
    assert store.segments_of("1") == [(1, 1, "opA", "ABC", "delivered", 0)]
    assert [h[0] for h in store.history_of("1")] == ["accepted", "submitted", "delivered"]


def test_messages_with_status_pages_in_id_order(store: Store) -> None:
    def fill(o: Ops) -> None:
        for i in range(10, 20):
            o.insert_message(msg(str(i)), 1.0)
        o.set_status("15", Status.DELIVERED, 2.0)
    apply(store, fill)
    first = store.messages_with_status(Status.ACCEPTED, limit=4)
    rest = store.messages_with_status(Status.ACCEPTED, after_id=first[-1].id)
    ids = [m.id for m in first + rest]
    assert ids == ["10", "11", "12", "13", "14", "16", "17", "18", "19"]
    assert [m.id for m in store.messages_with_status(Status.DELIVERED)] == ["15"]


def test_outbox_add_ack_retry_and_order(store: Store) -> None:
    a, b, c = item(store), item(store), item(store, tenant="other")
    assert a.id < b.id < c.id

    def fill(o: Ops) -> None:
        for x in (b, a, c):
            o.add_outbox(x)
    apply(store, fill)
    assert [x.id for x in store.outbox_for("acme")] == [a.id, b.id]
    assert store.outbox_for("acme", after_id=a.id)[0].id == b.id
    assert store.outbox_depths() == {"acme": 2, "other": 1}

    def fill2(o: Ops) -> None:
        o.ack_outbox(a.id)
        o.retry_outbox(b.id, 3, 77.0)
    apply(store, fill2)
    [left] = store.outbox_for("acme")
    assert (left.id, left.attempts, left.next_attempt_at, left.kind, left.pdu) == (
        b.id, 3, 77.0, OutboxKind.RECEIPT, b"\x00\x01")


def test_outbox_ids_continue_after_reopen(tmp_path: Path) -> None:
    s = Store(tmp_path / "o.db", synchronous="OFF")
    s.open()
    ids = [s.new_outbox_id() for _ in range(3)]
    ops = Ops()
    for i in ids:
        ops.add_outbox(OutboxItem(id=i, tenant="t", kind=OutboxKind.MO, pdu=b""))
    s.apply(ops)
    s.close()
    s.open()
    assert s.new_outbox_id() > max(ids)
    s.close()


def test_purge_drops_only_old_items(store: Store) -> None:
    old, new = item(store, created_at=5.0), item(store, created_at=50.0)

    def fill(o: Ops) -> None:
        o.add_outbox(old)
        o.add_outbox(new)
    apply(store, fill)
    assert store.purge_outbox(older_than=10.0) == 1
    assert [x.id for x in store.outbox_for("acme")] == [new.id]


def test_count_refuses_other_tables(store: Store) -> None:
    with pytest.raises(ValueError):
        store.count("meta")
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
