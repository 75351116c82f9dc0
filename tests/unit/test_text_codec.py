"""encode_text / decode_text by data_coding, choose_coding, units (reference sections 7, 8.4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from encoding.constants import CommandStatus
from encoding.errors import TextError
from encoding.text import (
    choose_coding,
    coding_kind,
    decode_text,
    encode_text,
    is_binary,
    units,
)

SUPPORTED = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x06, 0x07, 0x08,
    0x10, 0x11, 0x13, 0x14, 0x18, 0x1B, 0x40, 0x48,
    0xC0, 0xC8, 0xD3, 0xE0, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF6, 0xFF,
]  # fmt: skip
UNSUPPORTED = [0x05, 0x09, 0x0A, 0x0B, 0x0D, 0x0E, 0x0F, 0x1C, 0x20, 0x3F, 0x60, 0x80, 0xBF]


@pytest.mark.parametrize(
    ("data_coding", "kind"),
    [
        (0x00, "gsm7"), (0x01, "ascii"), (0x02, "binary"), (0x03, "latin1"), (0x04, "binary"),
        (0x06, "cyrillic"), (0x07, "hebrew"), (0x08, "ucs2"), (0x11, "gsm7"), (0x15, "binary"),
        (0x19, "ucs2"), (0xC1, "gsm7"), (0xD8, "gsm7"), (0xE9, "ucs2"), (0xF0, "gsm7"),
        (0xF1, "gsm7"), (0xF3, "gsm7"), (0xF4, "binary"), (0xF5, "binary"), (0xF6, "binary"),
    ],
)  # fmt: skip
def test_coding_kind(data_coding: int, kind: str) -> None:
    assert coding_kind(data_coding) == kind
    assert is_binary(data_coding) == (kind == "binary")


@pytest.mark.parametrize("data_coding", UNSUPPORTED)
def test_unsupported_coding(data_coding: int) -> None:
    assert not is_binary(data_coding)
    for call in (
        lambda: encode_text("a", data_coding),
        lambda: decode_text(b"a", data_coding),
        lambda: coding_kind(data_coding),
    ):
        with pytest.raises(TextError) as info:
            call()
        assert info.value.command_status == CommandStatus.ESME_RSUBMITFAIL


def test_dcs0_choices() -> None:
    assert encode_text("@é", 0) == b"\x00\x05"
    assert encode_text("@é", 0, dcs0="latin1") == b"@\xe9"
    assert encode_text("@e", 0, dcs0="ascii") == b"@e"
    assert decode_text(b"\x00\x05", 0) == "@é"
    assert decode_text(b"@\xe9", 0, dcs0="latin1") == "@é"
    assert decode_text(b"@\xe9", 0, dcs0="ascii") == "@\ufffd"
    with pytest.raises(TextError):
        encode_text("é", 0, dcs0="ascii")
    with pytest.raises(TextError):
        encode_text("a", 0, dcs0="ebcdic")


def test_gsm7_packed() -> None:
    assert encode_text("hello", 0, packed=True).hex() == "e8329bfd06"
    assert decode_text(bytes.fromhex("e8329bfd06"), 0, packed=True) == "hello"
    assert encode_text("hello", 0xF1, packed=True).hex() == "e8329bfd06"
    assert encode_text("hello", 0xF1) == b"hello"


def test_gsm7_shift_via_decode_text() -> None:
    assert decode_text(b"\x1b\x73", 0, single_shift=1) == "ş"
    assert decode_text(b"\x1b\x73", 0xF1, single_shift=1) == "ş"


def test_ucs2_is_utf16be_without_bom() -> None:
    assert encode_text("Hi", 8) == b"\x00H\x00i"
    assert encode_text("\U0001f600", 8) == b"\xd8\x3d\xde\x00"
    assert decode_text(b"\xd8\x3d\xde\x00", 8) == "\U0001f600"
    assert encode_text("Ж", 0x18) == b"\x04\x16"
    with pytest.raises(TextError):
        encode_text("a\ud800", 8)


def test_ucs2_broken_input_is_replaced() -> None:
    assert decode_text(b"\x00a\xd8\x3d", 8) == "a\ufffd"  # lone high surrogate at the end
    assert decode_text(b"\xde\x00\x00a", 8) == "\ufffda"  # lone low surrogate
    assert decode_text(b"\x00a\x00", 8) == "a\ufffd"  # odd length


def test_single_octet_codings() -> None:
    assert encode_text("abc", 1) == b"abc"
    assert encode_text("é£", 3) == b"\xe9\xa3"
    assert encode_text("Жж", 6) == "Жж".encode("iso8859-5")
    assert encode_text("שלום", 7) == "שלום".encode("iso8859-8")
    assert decode_text("שלום".encode("iso8859-8"), 7) == "שלום"
    assert decode_text(b"\xbf", 7) == "\ufffd"  # undefined in ISO-8859-8
    with pytest.raises(TextError) as info:
        encode_text("€", 3)
    assert info.value.command_status == CommandStatus.ESME_RSUBMITFAIL


@pytest.mark.parametrize("data_coding", [0x02, 0x04, 0xF5, 0x14])
def test_binary_is_not_text(data_coding: int) -> None:
    with pytest.raises(TextError) as info:
        encode_text("abc", data_coding)
    assert info.value.command_status == CommandStatus.ESME_RSUBMITFAIL
    assert decode_text(b"\x00\xff", data_coding) == "\x00\xff"


@given(st.binary(max_size=400), st.sampled_from(SUPPORTED), st.booleans(), st.integers(0, 255))
def test_decode_never_raises(data: bytes, data_coding: int, packed: bool, shift: int) -> None:
    for dcs0 in ("gsm7", "latin1", "ascii"):
        result = decode_text(
            data, data_coding, dcs0=dcs0, packed=packed, single_shift=shift, locking_shift=shift
        )
        assert isinstance(result, str)


@given(st.text())
def test_ucs2_round_trip(text: str) -> None:
    assert decode_text(encode_text(text, 8), 8) == text
    assert units(text, 8) == len(encode_text(text, 8)) // 2


@given(st.text(alphabet=st.characters(max_codepoint=0xFF)))
def test_latin1_round_trip(text: str) -> None:
    assert decode_text(encode_text(text, 3), 3) == text


def test_choose_coding() -> None:
    assert choose_coding("Hello {world} €") == 0
    assert choose_coding("") == 0
    assert choose_coding("ça va") == 8
    assert choose_coding("ça va", prefer_latin1=True) == 3
    assert choose_coding("`", prefer_latin1=True) == 3
    assert choose_coding("Ж", prefer_latin1=True) == 8
    assert choose_coding("\U0001f600") == 8


def test_units() -> None:
    assert units("a€", 0) == 3
    assert units("a\U0001f600", 8) == 3
    assert units("é", 3) == 1
    assert units(b"\x1be", 0) == 2
    assert units(b"\x00a\x00", 8) == 2
    assert units(b"abc", 4) == 3
