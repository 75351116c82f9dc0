"""Log entries larger than a NATS message, as chunks (routing.nats.chunks): split and put
back together, applied whole or not at all, and read again from their first chunk after a
restart."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from routing.nats.chunks import DROP_AFTER_S, Reassembly, parse_position, position, split


@given(st.binary(max_size=5000), st.integers(min_value=1, max_value=700))
def test_chunks_are_at_most_the_limit_and_join_back(payload: bytes, limit: int) -> None:
    parts = split(payload, limit)
    assert b"".join(parts) == payload
    assert all(len(p) <= limit for p in parts)
    assert len(parts) == max(1, -(-len(payload) // limit))


def test_an_entry_is_whole_at_its_last_chunk_only() -> None:
    r = Reassembly()
    assert r.add("n.1.7", "0/3", 10, b"ab", 100.0) is None
    assert r.add("n.1.7", "1/3", 12, b"cd", 100.1) is None
    assert len(r) == 1 and r.resume_from(12) == 10  # a restart reads from the first chunk
    assert r.add("n.1.7", "2/3", 15, b"e", 100.2) == b"abcde"
    assert len(r) == 0 and r.resume_from(15) == 16


def test_a_last_chunk_without_its_earlier_chunks_applies_nothing() -> None:
    r = Reassembly()
    r.add("n.1.8", "0/3", 20, b"ab", 100.0)
    assert r.add("n.1.8", "2/3", 22, b"e", 100.1) is None  # chunk 1 never read here
    assert len(r) == 0


def test_chunks_whose_commit_never_comes_are_dropped_by_stream_time() -> None:
    r = Reassembly()
    r.add("n.1.9", "0/2", 30, b"x", 100.0)
    r.add("n.2.1", "0/2", 31, b"y", 100.0 + DROP_AFTER_S)
    assert r.expire(100.0 + DROP_AFTER_S) == 0  # not older than DROP_AFTER_S yet
    assert r.expire(100.0 + DROP_AFTER_S + 1) == 1
    assert r.resume_from(40) == 31


def test_a_replica_that_restarts_between_chunks_reads_the_entry_again_whole() -> None:
    """The stream: chunk 0 of A (seq 1), entry B of another node (2), A's last chunk (3).
    A replica that applied B and stopped keeps "2:1"; started again it reads from 1,
    keeps A's chunk, skips B (applied), and applies A whole at 3."""
    before = Reassembly()
    before.add("a", "0/2", 1, b"left ", 0.0)
    kept = position(2, before.resume_from(2))  # applying B at seq 2
    assert kept == "2:1"
    applied, resume_from = parse_position(kept)
    assert (applied, resume_from) == (2, 1)
    after = Reassembly()
    stream = [(1, "a", "0/2", b"left "), (2, "b", None, b"B"), (3, "a", "1/2", b"right")]
    applied_now = []
    for seq, entry, chunk, data in stream:
        if seq < min(applied + 1, resume_from):
            continue
        if chunk is None:
            if seq > applied:
                applied_now.append(data)
            continue
        whole = after.add(entry, chunk, seq, data, 0.0)
        if whole is not None and seq > applied:
            applied_now.append(whole)
    assert applied_now == [b"left right"]


def test_positions_round_trip() -> None:
    assert parse_position(None) == (0, 1)
    assert parse_position(position(41, 42)) == (41, 42)
    assert position(41, 42) == "41"
    assert parse_position(position(41, 7)) == (41, 7)
