"""Reassembly of concatenated parts (reference section 9.5), with a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encoding.constants import CommandStatus
from encoding.errors import TextError
from encoding.text import (
    Reassembler,
    build_udh,
    concat_udh,
    decode_text,
    encode_text,
    parse_udh,
    reassemble,
    split_text,
)


def test_in_order() -> None:
    r = Reassembler()
    assert r.add("k", 7, 3, 1, b"ab", now=0.0) is None
    assert r.add("k", 7, 3, 2, b"cd", now=1.0) is None
    assert len(r) == 1
    assert r.add("k", 7, 3, 3, b"e", now=2.0) == b"abcde"
    assert len(r) == 0
    assert r.next_deadline() is None


def test_out_of_order_and_duplicates_keep_first_copy() -> None:
    r = Reassembler()
    assert r.add("k", 1, 3, 3, b"C", now=0.0) is None
    assert r.add("k", 1, 3, 1, b"A", now=0.0) is None
    assert r.add("k", 1, 3, 3, b"X", now=0.0) is None  # duplicate: ignored
    assert r.add("k", 1, 3, 1, b"Y", now=0.0) is None
    assert r.add("k", 1, 3, 2, b"B", now=0.0) == b"ABC"


def test_single_part_passes_through() -> None:
    r = Reassembler()
    assert r.add("k", 1, 1, 1, b"whole", now=0.0) == b"whole"
    assert len(r) == 0


@pytest.mark.parametrize(("total", "seqnum"), [(3, 0), (3, 4), (0, 0), (0, 1), (256, 1)])
def test_invalid_part_numbers_rejected(total: int, seqnum: int) -> None:
    r = Reassembler()
    with pytest.raises(TextError) as info:
        r.add("k", 1, total, seqnum, b"x", now=0.0)
    assert info.value.command_status == CommandStatus.ESME_RINVESMCLASS
    assert len(r) == 0


def test_groups_are_separate_by_key_reference_and_total() -> None:
    r = Reassembler()
    r.add(("op1", "123", "456"), 5, 2, 1, b"a", now=0.0)
    r.add(("op2", "123", "456"), 5, 2, 1, b"b", now=0.0)
    r.add(("op1", "123", "456"), 6, 2, 1, b"c", now=0.0)
    r.add(("op1", "123", "456"), 5, 3, 1, b"d", now=0.0)
    assert len(r) == 4
    assert r.add(("op2", "123", "456"), 5, 2, 2, b"B", now=0.0) == b"bB"
    assert r.add(("op1", "123", "456"), 5, 2, 2, b"A", now=0.0) == b"aA"
    assert len(r) == 2


def test_timeout_with_fake_clock() -> None:
    r = Reassembler(timeout_s=600.0)
    r.add("a", 1, 2, 1, b"x", now=100.0)
    r.add("b", 2, 3, 2, b"y", now=200.0)
    assert r.next_deadline() == 700.0
    assert r.expire(699.9) == []
    assert r.expire(700.0) == [("a", 1, 2, {1: b"x"})]
    assert r.next_deadline() == 800.0
    # a late part of the expired group opens a new group (and never completes it)
    assert r.add("a", 1, 2, 2, b"z", now=750.0) is None
    assert r.expire(10_000.0) == [("b", 2, 3, {2: b"y"}), ("a", 1, 2, {2: b"z"})]
    assert len(r) == 0
    assert r.next_deadline() is None


def test_completed_group_is_not_expired() -> None:
    r = Reassembler(timeout_s=10.0)
    r.add("k", 1, 2, 1, b"x", now=0.0)
    assert r.add("k", 1, 2, 2, b"y", now=5.0) == b"xy"
    assert r.expire(100.0) == []


def test_max_pending_bound() -> None:
    r = Reassembler(timeout_s=10.0, max_pending=2)
    r.add("a", 1, 2, 1, b"x", now=0.0)
    r.add("b", 1, 2, 1, b"x", now=1.0)
    with pytest.raises(TextError) as info:
        r.add("c", 1, 2, 1, b"x", now=2.0)
    assert info.value.command_status == CommandStatus.ESME_RMSGQFUL
    assert len(r) == 2
    # parts of groups already pending are still accepted
    assert r.add("a", 1, 2, 2, b"y", now=3.0) == b"xy"
    assert r.add("c", 1, 2, 1, b"x", now=3.0) is None
    assert [g[0] for g in r.expire(11.0)] == ["b"]
    assert r.add("d", 1, 2, 1, b"x", now=11.0) is None


def test_constructor_checks() -> None:
    with pytest.raises(ValueError):
        Reassembler(timeout_s=0)
    with pytest.raises(ValueError):
        Reassembler(max_pending=0)


# --- parts cut inside a character (joined as bytes before decoding) -------------------------


def test_surrogate_pair_cut_across_parts() -> None:
    data = encode_text("a\U0001f600b", 8)  # 00 61 d8 3d de 00 00 62
    first, second = data[:4], data[4:]  # cut between the high and the low surrogate
    r = Reassembler()
    assert r.add("k", 9, 2, 2, second, now=0.0) is None
    joined = r.add("k", 9, 2, 1, first, now=0.0)
    assert joined is not None
    assert decode_text(joined, 8) == "a\U0001f600b"
    parts = [concat_udh(9, 2, 2) + second, concat_udh(9, 2, 1) + first]
    assert reassemble(parts, 8) == "a\U0001f600b"


def test_odd_ucs2_cut_across_parts() -> None:
    data = encode_text("ЖЖЖ", 8)
    parts = [concat_udh(3, 2, 1, ref16=True) + data[:3], concat_udh(3, 2, 2, ref16=True) + data[3:]]
    assert reassemble(parts, 8) == "ЖЖЖ"


def test_escape_pair_cut_across_parts() -> None:
    data = encode_text("x€y", 0)  # 78 1b 65 79
    parts = [concat_udh(4, 2, 1) + data[:2], concat_udh(4, 2, 2) + data[2:]]
    assert reassemble(parts, 0) == "x€y"
    r = Reassembler()
    r.add("k", 4, 2, 1, data[:2], now=0.0)
    joined = r.add("k", 4, 2, 2, data[2:], now=0.0)
    assert joined is not None
    assert decode_text(joined, 0) == "x€y"


def test_reassemble_honours_national_shift() -> None:
    header1 = build_udh([(0x00, b"\x01\x02\x01"), (0x24, b"\x01")])
    header2 = build_udh([(0x24, b"\x01"), (0x00, b"\x01\x02\x02")])
    parts = [header2 + b"\x1b\x73", header1 + b"Ba\x1b\x67"]
    assert reassemble(parts, 0) == "Bağş"


def test_reassemble_single_and_bare() -> None:
    assert reassemble([], 0) == ""
    assert reassemble([b"hello"], 0) == "hello"
    assert reassemble([b"\x05\x00\x03\x01\x01\x01hello"], 0) == "hello"
    assert reassemble([b"\x03\x24\x01\x01\x1b\x49"], 0) == "İ"
    assert reassemble([b"\x00hi"], 0, udhi=True) == "hi"
    assert reassemble([b"\x00hi"], 0, udhi=False) == "@hi"


def test_reassemble_errors() -> None:
    with pytest.raises(TextError):
        reassemble([concat_udh(1, 3, 1) + b"a", concat_udh(1, 3, 3) + b"c"], 0)
    with pytest.raises(TextError):
        reassemble([concat_udh(1, 2, 1) + b"a", b"\x00b"], 0)
    with pytest.raises(TextError):
        reassemble([concat_udh(1, 2, 1) + b"a", b"\x09b"], 0)


# --- properties -----------------------------------------------------------------------------

texts = st.one_of(
    st.text(max_size=800),
    st.text(alphabet=st.sampled_from("ab€{}[]\U0001f600Ж"), max_size=800),
)


@settings(deadline=None)
@given(texts, st.randoms(use_true_random=False), st.sampled_from(["udh8", "udh16"]))
def test_split_shuffle_duplicate_reassemble(text: str, rnd: object, method: str) -> None:
    import random

    assert isinstance(rnd, random.Random)
    split = split_text(text, method=method, reference=77)
    messages = [s.short_message for s in split.segments]
    extra = rnd.sample(messages, k=min(3, len(messages))) if len(messages) > 1 else []
    shuffled = messages + extra
    rnd.shuffle(shuffled)
    assert reassemble(shuffled, split.data_coding) == text

    r = Reassembler()
    result: bytes | None = None
    for message in shuffled:
        udh, user_data = parse_udh(message) if len(messages) > 1 else (None, message)
        if udh is None or udh.concat is None:
            result = r.add("k", 0, 1, 1, user_data, now=0.0)
            continue
        ref, total, seq = udh.concat
        got = r.add("k", ref, total, seq, user_data, now=0.0)
        if got is not None:
            assert result is None
            result = got
            break
    assert result is not None
    assert decode_text(result, split.data_coding) == text
