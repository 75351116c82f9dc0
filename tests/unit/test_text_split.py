"""Splitting (reference sections 9.1-9.4) and the UDH parser/builder (section 9.2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encoding.constants import CommandStatus
from encoding.errors import TextError
from encoding.text import (
    Segment,
    Split,
    Udh,
    build_udh,
    concat_udh,
    parse_udh,
    part_limit,
    reassemble,
    single_limit,
    split_text,
    split_user_data,
)

GSM_BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"  # noqa: E501
GSM_EXT = "\x0c^{}\\[~]|€"
EMOJI = "\U0001f600\U0001f44d\U0001f1eb\U0001f1f7\U00010348"


def _user_data(segment: Segment) -> bytes:
    if segment.udhi:
        return parse_udh(segment.short_message)[1]
    return segment.short_message


def _air_octets(segment: Segment, data_coding: int) -> int:
    """Octets on the air interface: UDH + user data, GSM-7 packed after fill bits."""
    udh = len(segment.short_message) - len(_user_data(segment))
    if data_coding in (0, 0xF1):
        return (
            (8 * udh + 7 * len(_user_data(segment)) + 6) // 8
            if udh
            else (7 * len(segment.short_message) + 7) // 8
        )
    return len(segment.short_message)


def _check(split: Split, text: str) -> None:
    short_messages = [s.short_message for s in split.segments]
    assert reassemble(short_messages, split.data_coding) == text
    assert 1 <= len(split.segments) <= 255
    for segment in split.segments:
        data = _user_data(segment)
        assert _air_octets(segment, split.data_coding) <= 140
        if split.data_coding == 0:
            run = len(data) - len(data.rstrip(b"\x1b"))
            assert run % 2 == 0, "part ends with a lone ESC"
        if split.data_coding == 8:
            assert len(data) % 2 == 0
            assert not 0xD8 <= data[-2] <= 0xDB, "part ends with a high surrogate"
    if len(split.segments) > 1:
        udhs = [parse_udh(m)[0] for m in short_messages]
        assert [u.concat for u in udhs] == [
            (0, len(short_messages), i) for i in range(1, len(short_messages) + 1)
        ]


# --- properties -------------------------------------------------------------------------------


@settings(deadline=None)
@given(st.text(alphabet=st.sampled_from(GSM_BASIC), max_size=1200))
def test_gsm7_round_trip(text: str) -> None:
    split = split_text(text)
    assert split.data_coding == 0
    _check(split, text)


@settings(deadline=None)
@given(st.text(alphabet=st.sampled_from(GSM_EXT + "ab"), max_size=1200))
def test_gsm7_extension_heavy_round_trip(text: str) -> None:
    split = split_text(text)
    assert split.data_coding == 0
    _check(split, text)


@settings(deadline=None)
@given(st.text(alphabet=st.sampled_from(EMOJI + "aЖ€"), max_size=700))
def test_ucs2_emoji_round_trip(text: str) -> None:
    split = split_text(text)
    assert split.data_coding == (0 if all(c in "a€" for c in text) else 8)
    _check(split, text)


@settings(deadline=None)
@given(st.text(max_size=500))
def test_any_text_round_trip(text: str) -> None:
    _check(split_text(text), text)


@settings(deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=900))
def test_latin1_round_trip(text: str) -> None:
    split = split_text(text, prefer_latin1=True)
    assert split.data_coding in (0, 3)
    _check(split, text)


@settings(deadline=None)
@given(st.binary(max_size=3000), st.sampled_from(["udh8", "udh16", "sar"]))
def test_binary_split(data: bytes, method: str) -> None:
    split = split_user_data(data, 4, method=method, reference=0x1234)
    joined = b"".join(_user_data(s) for s in split.segments)
    assert joined == data
    for segment in split.segments:
        assert len(segment.short_message) <= 140


@settings(deadline=None)
@given(st.binary(max_size=2000).map(lambda b: bytes(x & 0x7F for x in b)))
def test_gsm7_user_data_never_cut_after_esc(data: bytes) -> None:
    split = split_user_data(data, 0)
    assert b"".join(_user_data(s) for s in split.segments) == data
    for segment in split.segments[:-1]:
        user = _user_data(segment)
        assert (len(user) - len(user.rstrip(b"\x1b"))) % 2 == 0


# --- boundaries (reference section 9.1) ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sizes"),
    [
        ("a" * 160, [160]),
        ("a" * 161, [153, 8]),
        ("a" * 306, [153, 153]),
        ("a" * 307, [153, 153, 1]),
        ("€" * 80, [160]),
        ("€" * 81, [152, 10]),
        ("a" * 152 + "€" + "b" * 10, [152, 12]),  # ESC would be septet 153: close one early
        ("a" * 151 + "€" + "b" * 10, [153, 10]),
    ],
)
def test_gsm7_boundaries(text: str, sizes: list[int]) -> None:
    split = split_text(text)
    assert [len(_user_data(s)) for s in split.segments] == sizes
    if len(sizes) == 1:
        assert split.segments[0] == Segment(split.segments[0].short_message, False, None)
    _check(split, text)


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("Ж" * 70, [70]),
        ("Ж" * 71, [67, 4]),
        ("Ж" * 134, [67, 67]),
        ("Ж" * 135, [67, 67, 1]),
        ("\U0001f600" * 35, [70]),
        ("\U0001f600" * 36, [66, 6]),
        ("Ж" * 66 + "\U0001f600" + "Ж" * 5, [66, 7]),  # a pair at units 67-68 moves whole
        ("Ж" * 65 + "\U0001f600" + "Ж" * 10, [67, 10]),
    ],
)
def test_ucs2_boundaries(text: str, units: list[int]) -> None:
    split = split_text(text)
    assert split.data_coding == 8
    assert [len(_user_data(s)) // 2 for s in split.segments] == units
    _check(split, text)


def test_latin1_boundaries() -> None:
    assert len(split_text("ç" * 140, prefer_latin1=True).segments) == 1
    split = split_text("ç" * 141, prefer_latin1=True)
    assert split.data_coding == 3
    assert [len(_user_data(s)) for s in split.segments] == [134, 7]


def test_255_parts_ok_256_rejected() -> None:
    split = split_text("a" * (153 * 255))
    assert len(split.segments) == 255
    assert split.segments[-1].short_message[:6] == bytes.fromhex("050003 00 ff ff")
    with pytest.raises(TextError) as info:
        split_text("a" * (153 * 255 + 1))
    assert info.value.command_status == CommandStatus.ESME_RINVMSGLEN
    with pytest.raises(TextError) as info:
        split_text("Ж" * (67 * 255 + 1))
    assert info.value.command_status == CommandStatus.ESME_RINVMSGLEN
    # escapes pushing the last part over: 255 parts of 152 + ESC boundary effects
    with pytest.raises(TextError) as info:
        split_text("€" * (153 * 255 // 2 + 1))
    assert info.value.command_status == CommandStatus.ESME_RINVMSGLEN


def test_escape_shortening_can_exceed_max_parts() -> None:
    # 3 parts by raw size (3 * 153 = 459 >= 458) but ESC boundaries cost a septet per part
    text = "€" * 229  # 458 septets; every cut falls between ESC and its code
    assert len(split_text(text).segments) == 4
    with pytest.raises(TextError) as info:
        split_text(text, max_parts=3)
    assert info.value.command_status == CommandStatus.ESME_RINVMSGLEN


def test_max_parts() -> None:
    assert len(split_text("a" * 306, max_parts=2).segments) == 2
    with pytest.raises(TextError):
        split_text("a" * 307, max_parts=2)
    assert len(split_text("a" * 160, max_parts=1).segments) == 1


def test_udh16() -> None:
    split = split_text("a" * 161, method="udh16", reference=0x1234)
    assert [len(_user_data(s)) for s in split.segments] == [152, 9]
    assert split.segments[0].short_message[:7] == bytes.fromhex("06 08 04 12 34 02 01")
    assert split.segments[1].short_message[:7] == bytes.fromhex("06 08 04 12 34 02 02")
    assert all(s.udhi and s.sar is None for s in split.segments)
    _check_ucs2 = split_text("Ж" * 71, method="udh16")
    assert [len(_user_data(s)) // 2 for s in _check_ucs2.segments] == [66, 5]


def test_udh8_reference_wraps() -> None:
    split = split_text("a" * 200, reference=0x1FF)
    assert split.segments[0].short_message[:6] == bytes.fromhex("05 00 03 ff 02 01")


def test_sar() -> None:
    split = split_text("a" * 161, method="sar", reference=0x10203)
    assert split.method == "sar"
    assert [s.short_message for s in split.segments] == [b"a" * 152, b"a" * 9]
    assert [s.sar for s in split.segments] == [(0x0203, 2, 1), (0x0203, 2, 2)]
    assert not any(s.udhi for s in split.segments)
    assert part_limit(0, "sar") == 152
    assert part_limit(8, "sar") == 66
    assert part_limit(4, "sar") == 133
    one = split_text("short", method="sar")
    assert one.segments == (Segment(b"short", False, None),)


def test_payload() -> None:
    text = "x" * 1000 + "€"
    split = split_text(text, method="payload")
    assert split.segments == (Segment(b"x" * 1000 + b"\x1be", False, None),)
    assert split.method == "payload"
    with pytest.raises(TextError) as info:
        split_user_data(b"x" * 65536, 4, method="payload")
    assert info.value.command_status == CommandStatus.ESME_RINVMSGLEN


def test_limits() -> None:
    assert (single_limit(0), single_limit(8), single_limit(3), single_limit(4)) == (
        160,
        70,
        140,
        140,
    )
    assert (part_limit(0), part_limit(8), part_limit(3)) == (153, 67, 134)
    assert (part_limit(0, "udh16"), part_limit(8, "udh16"), part_limit(4, "udh16")) == (
        152,
        66,
        133,
    )
    assert single_limit(0, dcs0="latin1") == 140


def test_bad_inputs() -> None:
    with pytest.raises(TextError):
        split_text("a", method="smoke-signals")
    with pytest.raises(TextError) as info:
        split_text("abc", data_coding=4)
    assert info.value.command_status == CommandStatus.ESME_RSUBMITFAIL
    with pytest.raises(TextError):
        split_text("ç", data_coding=0)


def test_dcs0_latin1_choice() -> None:
    split = split_text("Hello", dcs0="latin1")
    assert (split.data_coding, split.segments[0].short_message) == (0, b"Hello")
    assert split_text("Δ", dcs0="latin1").data_coding == 8  # GSM-only letter, not Latin-1
    long = split_text("é" * 141, dcs0="latin1", data_coding=0)
    assert [len(s.short_message) for s in long.segments] == [140, 13]  # 8-bit limits


def test_empty_text() -> None:
    split = split_text("")
    assert split.segments == (Segment(b"", False, None),)


# --- UDH (3GPP TS 23.040 section 9.2.3.24) -------------------------------------------------


def test_concat_udh_layouts() -> None:
    assert concat_udh(0xAB, 3, 2) == bytes.fromhex("050003ab0302")
    assert concat_udh(0xABCD, 3, 2, ref16=True) == bytes.fromhex("060804abcd0302")
    for bad in [(1, 0, 0), (1, 2, 3), (1, 256, 1), (1, 2, 0)]:
        with pytest.raises(TextError):
            concat_udh(*bad)


def test_parse_udh() -> None:
    sm = bytes.fromhex("0b 04 02 0b84 00 03 7f 03 02 24 01 01") + b"hi"
    udh, rest = parse_udh(bytes.fromhex("0e 05 04 0b84 23f0 00 03 7f 03 02 24 01 01") + b"hi")
    assert rest == b"hi"
    assert udh.concat == (0x7F, 3, 2)
    assert not udh.ref16
    assert udh.single_shift == 1
    assert udh.locking_shift == 0
    assert udh.elements == (
        (0x05, bytes.fromhex("0b8423f0")),
        (0x00, b"\x7f\x03\x02"),
        (0x24, b"\x01"),
    )
    udh16, rest16 = parse_udh(bytes.fromhex("09 25 01 03 08 04 01 02 05 01") + b"x")
    assert (udh16.concat, udh16.ref16, udh16.locking_shift, rest16) == (
        (0x102, 5, 1),
        True,
        3,
        b"x",
    )
    assert parse_udh(b"\x00abc") == (Udh(), b"abc")
    with pytest.raises(TextError):
        parse_udh(sm[:3])


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x05\x00\x03\x01\x02",  # UDHL past the end
        b"\x03\x00\x03\x01\x02\x01",  # IE length past UDHL
        b"\x01\x00",  # IE header cut by UDHL
        b"\x04\x00\x02\x01\x02",  # concatenation IE of the wrong length
        b"\x05\x08\x03\x01\x02\x01",  # 16-bit concatenation IE of the wrong length
    ],
)
def test_parse_udh_malformed(bad: bytes) -> None:
    with pytest.raises(TextError) as info:
        parse_udh(bad)
    assert info.value.command_status == CommandStatus.ESME_RINVESMCLASS


@given(st.lists(st.tuples(st.integers(0x30, 0xFF), st.binary(max_size=20)), max_size=5))
def test_build_parse_round_trip(elements: list[tuple[int, bytes]]) -> None:
    header = build_udh(elements)
    udh, rest = parse_udh(header + b"tail")
    assert rest == b"tail"
    assert list(udh.elements) == elements


def test_build_udh_limits() -> None:
    assert build_udh([]) == b"\x00"
    assert build_udh([(0, b"\x01\x02\x03")]) == bytes.fromhex("0500030102 03".replace(" ", ""))
    with pytest.raises(TextError):
        build_udh([(0x70, b"x" * 256)])
    with pytest.raises(TextError):
        build_udh([(0x70, b"x" * 200)])
