"""GSM 7-bit alphabet: table exactness (reference sections 8.1/8.2), codec policies, packing,
national language shift tables (reference section 8.5)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from encoding.constants import CommandStatus
from encoding.errors import TextError
from encoding.text import (
    gsm7_decode,
    gsm7_encode,
    gsm7_fits,
    gsm7_septets,
    pack_septets,
    unpack_septets,
)
from encoding.text.gsm7 import DEFAULT_ALPHABET, EXTENSION_TABLE

# Reference section 8.1, written out column by column (septet = high nibble + low nibble).
# None marks ESC (0x1B).
_COLUMNS: list[list[int | None]] = [
    [0x40, 0xA3, 0x24, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC,
     0xF2, 0xC7, 0x0A, 0xD8, 0xF8, 0x0D, 0xC5, 0xE5],
    [0x394, 0x5F, 0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8,
     0x3A3, 0x398, 0x39E, None, 0xC6, 0xE6, 0xDF, 0xC9],
    [0x20, 0x21, 0x22, 0x23, 0xA4, 0x25, 0x26, 0x27,
     0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F],
    [*range(0x30, 0x40)],
    [0xA1, *range(0x41, 0x50)],
    [*range(0x50, 0x5B), 0xC4, 0xD6, 0xD1, 0xDC, 0xA7],
    [0xBF, *range(0x61, 0x70)],
    [*range(0x70, 0x7B), 0xE4, 0xF6, 0xF1, 0xFC, 0xE0],
]  # fmt: skip
EXPECTED_DEFAULT: dict[int, int] = {
    col * 16 + row: cp
    for col, column in enumerate(_COLUMNS)
    for row, cp in enumerate(column)
    if cp is not None
}
# Reference section 8.2.
EXPECTED_EXTENSION = {
    0x0A: 0x0C, 0x14: 0x5E, 0x28: 0x7B, 0x29: 0x7D, 0x2F: 0x5C,
    0x3C: 0x5B, 0x3D: 0x7E, 0x3E: 0x5D, 0x40: 0x7C, 0x65: 0x20AC,
}  # fmt: skip

GSM_BASIC = "".join(chr(cp) for cp in EXPECTED_DEFAULT.values())
GSM_EXT = "".join(chr(cp) for cp in EXPECTED_EXTENSION.values())
gsm_text = st.text(alphabet=st.sampled_from(GSM_BASIC + GSM_EXT))


def test_default_table_is_exact() -> None:
    assert len(EXPECTED_DEFAULT) == 127
    for code, cp in EXPECTED_DEFAULT.items():
        assert DEFAULT_ALPHABET[code] == chr(cp), hex(code)
        assert gsm7_encode(chr(cp)) == bytes((code,))
        assert gsm7_decode(bytes((code,))) == chr(cp)


def test_section_sign_and_backtick() -> None:
    assert gsm7_decode(b"\x5f") == "\u00a7"
    assert gsm7_encode("\u00a7") == b"\x5f"
    assert not gsm7_fits("`")


def test_extension_table_is_exact() -> None:
    assert {code: ord(ch) for code, ch in EXTENSION_TABLE.items()} == EXPECTED_EXTENSION
    for code, cp in EXPECTED_EXTENSION.items():
        assert gsm7_encode(chr(cp)) == bytes((0x1B, code))
        assert gsm7_decode(bytes((0x1B, code))) == chr(cp)
    assert gsm7_encode("\x0c") == b"\x1b\x0a"  # form feed


def test_encode_sample() -> None:
    assert gsm7_encode("@£$ Hello {x} €") == b"\x00\x01\x02 Hello \x1b(x\x1b) \x1be"


@pytest.mark.parametrize("bad", ["`", "ç", "\x1b", "\x00", "\U0001f600", "x\u00e7y", "\t"])
def test_encode_rejects_non_gsm(bad: str) -> None:
    with pytest.raises(TextError) as info:
        gsm7_encode(bad)
    assert info.value.command_status == CommandStatus.ESME_RSUBMITFAIL
    assert not gsm7_fits(bad)


def test_septet_count() -> None:
    assert gsm7_septets("") == 0
    assert gsm7_septets("abc") == 3
    assert gsm7_septets("{}[]~|^\\€\x0c") == 20
    assert gsm7_septets("a€b") == 4


@given(gsm_text)
def test_round_trip(text: str) -> None:
    encoded = gsm7_encode(text)
    assert gsm7_fits(text)
    assert len(encoded) == gsm7_septets(text)
    assert max(encoded, default=0) < 0x80
    assert gsm7_decode(encoded) == text


def test_decode_policies() -> None:
    assert gsm7_decode(b"\x1bA") == "A"  # ESC + undefined code: default-table character
    assert gsm7_decode(b"\x1b\x00") == "@"
    assert gsm7_decode(b"ab\x1b") == "ab "  # trailing lone ESC: a space, no exception
    assert gsm7_decode(b"\x1b") == " "
    assert gsm7_decode(b"\x1b\x1bA") == " A"  # ESC ESC: reserved, shown as a space
    assert gsm7_decode(b"\x1b\x1b\x1b") == "  "
    assert gsm7_decode(b"\xc1\xe2") == "Ab"  # high bit masked
    assert gsm7_decode(b"\x9b\x65") == "\u20ac"  # 0x9B masks to ESC
    assert gsm7_decode(b"") == ""


@given(st.binary(max_size=300), st.integers(0, 255), st.integers(0, 255))
def test_decode_never_raises(data: bytes, single: int, locking: int) -> None:
    text = gsm7_decode(data, single_shift=single, locking_shift=locking)
    assert len(text) <= len(data)


# --- national language shift tables (3GPP TS 23.038 Annex A) ------------------------------


def test_turkish_single_shift() -> None:
    data = b"\x1b\x47\x1b\x67\x1b\x53\x1b\x73\x1b\x49\x1b\x69\x1b\x63\x1b\x65"
    assert gsm7_decode(data, single_shift=1) == "ĞğŞşİıç€"
    # the default extension entries stay in the Turkish table
    assert gsm7_decode(b"\x1b(\x1b)", single_shift=1) == "{}"
    # without the shift IE those codes fall back to the default table
    assert gsm7_decode(b"\x1b\x47", single_shift=0) == "G"


def test_turkish_locking_shift() -> None:
    data = bytes([0x0B, 0x0C, 0x1C, 0x1D, 0x40, 0x07, 0x60, 0x04, 0x41])
    assert gsm7_decode(data, locking_shift=1) == "ĞğŞşİıç€A"
    assert gsm7_decode(b"\x0b\x0c", locking_shift=0) == "Øø"


def test_spanish_tables() -> None:
    data = b"\x1b\x41\x1b\x61\x1b\x49\x1b\x69\x1b\x4f\x1b\x6f\x1b\x55\x1b\x75\x1b\x09"
    assert gsm7_decode(data, single_shift=2) == "ÁáÍíÓóÚúç"
    # Spanish has no locking shift table (A.3.2 void): default alphabet
    assert gsm7_decode(b"\x00\x04\x5f", locking_shift=2) == "@è§"


def test_portuguese_tables() -> None:
    assert gsm7_decode(b"\x04\x13\x14\x5b\x5c\x7b\x7c\x7d\x60", locking_shift=3) == "êÇÀÃÕãõ`~"
    assert gsm7_decode(b"\x1b\x05\x1b\x7f\x1b\x0b\x1b\x12", single_shift=3) == "êâÔΦ"
    # both at once: locking table for plain septets, single shift after ESC
    assert gsm7_decode(b"\x04\x1b\x5b", single_shift=3, locking_shift=3) == "êÃ"


def test_undefined_shift_code_uses_locking_table() -> None:
    # ESC + code undefined in the Turkish single shift table -> Turkish locking char for code
    assert gsm7_decode(b"\x1b\x0b", single_shift=1, locking_shift=1) == "Ğ"


def test_unknown_language_ids_fall_back() -> None:
    assert gsm7_decode(b"\x1b\x65\x00", single_shift=13, locking_shift=200) == "€@"


# --- packing (23.038 section 6.1.2.1) -------------------------------------------------------


def test_pack_known_vectors() -> None:
    assert pack_septets(gsm7_encode("hellohello")).hex() == "e8329bfd4697d9ec37"
    assert pack_septets(gsm7_encode("hello")).hex() == "e8329bfd06"
    assert unpack_septets(bytes.fromhex("e8329bfd4697d9ec37")) == b"hellohello"
    assert pack_septets(b"") == b""
    assert unpack_septets(b"") == b""


def test_pack_cr_padding() -> None:
    packed = pack_septets(b"1234567")  # 49 bits: 7 spare bits in the 7th octet
    assert len(packed) == 7
    assert packed[-1] >> 1 == 0x0D
    assert unpack_septets(packed) == b"1234567"
    assert unpack_septets(packed, 8) == b"1234567\r"
    assert unpack_septets(pack_septets(b"@@@@@@@")) == b"@@@@@@@"


def test_pack_fill_bits() -> None:
    # 6-octet UDH -> 1 fill bit (reference section 8.3)
    packed = pack_septets(b"hello", fill_bits=1)
    assert packed[0] & 1 == 0
    assert unpack_septets(packed, 5, fill_bits=1) == b"hello"
    assert unpack_septets(packed, fill_bits=1) == b"hello"
    with pytest.raises(ValueError):
        pack_septets(b"a", fill_bits=7)
    with pytest.raises(ValueError):
        unpack_septets(b"a", fill_bits=-1)


@given(st.binary(max_size=200).map(lambda b: bytes(x & 0x7F for x in b)), st.integers(0, 6))
def test_pack_round_trip(septets: bytes, fill: int) -> None:
    packed = pack_septets(septets, fill)
    assert len(packed) == ((7 * len(septets) + fill + 7) // 8 if septets else 0)
    assert unpack_septets(packed, len(septets), fill) == septets
    ambiguous = septets.endswith(b"\r") and (7 * len(septets) + fill) % 8 == 0
    if not ambiguous:
        assert unpack_septets(packed, None, fill) == septets
