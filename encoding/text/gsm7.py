"""GSM 7-bit default alphabet: tables, encode/decode, septet counting and packing.

Implements 3GPP TS 23.038 section 6.2.1 (default alphabet), 6.2.1.1 (extension table, reached
through ESC 0x1B) and 6.1.2.1 (packing of septets, CR padding of 6.1.2.1.1), as summarised in
sections 8.1-8.3 of the gateway's SMPP reference. National language shift tables (Annex A,
reference section 8.5) are honoured when decoding; see :mod:`encoding.text.national`.

On SMPP, GSM-7 is carried unpacked (one septet per octet, reference section 8.3): that is what
:func:`gsm7_encode` returns and :func:`gsm7_decode` takes. :func:`pack_septets` and
:func:`unpack_septets` exist for operators that agreed on packed user data.

Decoding policy (reference section 8.2): ESC + an undefined code gives the character of the
active (default or locking shift) table for that code; ESC ESC (reserved for a further
extension) and a trailing lone ESC give a space; octets >= 0x80 are masked to 7 bits.
Decoding never raises.
"""

from __future__ import annotations

import codecs

from ..constants import CommandStatus
from ..errors import TextError
from .national import COMMON_SHIFT, LOCKING_SHIFT_TABLES, SINGLE_SHIFT_TABLES

__all__ = [
    "DEFAULT_ALPHABET",
    "ESC",
    "EXTENSION_TABLE",
    "gsm7_decode",
    "gsm7_encode",
    "gsm7_fits",
    "gsm7_septets",
    "pack_septets",
    "unpack_septets",
]

ESC = 0x1B
_CR = 0x0D

# 6.2.1: index = septet value. 0x1B is the escape to the extension table ("\x1b" here).
DEFAULT_ALPHABET = (
    # 0x00-0x0F
    "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5"
    # 0x10-0x1F
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\x1b\u00c6\u00e6\u00df\u00c9"
    # 0x20-0x3F
    " !\"#\u00a4%&'()*+,-./0123456789:;<=>?"
    # 0x40-0x5F
    "\u00a1ABCDEFGHIJKLMNOPQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7"
    # 0x60-0x7F
    "\u00bfabcdefghijklmnopqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0"
)

# 6.2.1.1: code after ESC -> character (the entries national single shifts share, plus €).
EXTENSION_TABLE: dict[int, str] = {**COMMON_SHIFT, 0x65: "\u20ac"}

# --- precomputed maps -------------------------------------------------------------------

# charmap_encode map: code point -> septet(s). Unmapped characters raise UnicodeEncodeError.
_ENCODE_MAP: dict[int, int | bytes] = {
    ord(ch): code for code, ch in enumerate(DEFAULT_ALPHABET) if code != ESC
}
for _code, _ch in EXTENSION_TABLE.items():
    _ENCODE_MAP[ord(_ch)] = bytes((ESC, _code))

_GSM_CHARS = frozenset(chr(cp) for cp in _ENCODE_MAP)
_EXTENSION_CHARS = tuple(EXTENSION_TABLE.values())

# Octets >= 0x80 are masked to 7 bits before decoding.
_MASK7 = bytes(i & 0x7F for i in range(256))


def _charmap(table: str) -> str:
    """256-entry decoding map for codecs.charmap_decode (high half mirrors the low half)."""
    low = table.replace("\x1b", " ")
    return low + low


_DECODE_MAPS: dict[int, str] = {0: _charmap(DEFAULT_ALPHABET)}
for _lang, _table in LOCKING_SHIFT_TABLES.items():
    _DECODE_MAPS[_lang] = _charmap(_table)


def _shift_map(single_shift: int, locking_map: str) -> dict[int, str]:
    """ESC + code -> character: the single shift table, then the active table for the code."""
    shift = SINGLE_SHIFT_TABLES.get(single_shift, EXTENSION_TABLE)
    return {code: shift.get(code, locking_map[code]) for code in range(128)}


_SHIFT_MAPS: dict[tuple[int, int], dict[int, str]] = {}


def _get_shift_map(single_shift: int, locking_shift: int) -> dict[int, str]:
    key = (
        single_shift if single_shift in SINGLE_SHIFT_TABLES else 0,
        locking_shift if locking_shift in LOCKING_SHIFT_TABLES else 0,
    )
    found = _SHIFT_MAPS.get(key)
    if found is None:
        found = _shift_map(key[0], _DECODE_MAPS[key[1]])
        found[ESC] = " "  # ESC ESC: reserved for a further extension table, shown as a space
        _SHIFT_MAPS[key] = found
    return found


# --- text level ---------------------------------------------------------------------------


def gsm7_encode(text: str) -> bytes:
    """Unpacked septets (one per octet) for ``text``; extension characters become ESC + code.

    Raises TextError (ESME_RSUBMITFAIL) naming the first character the alphabet cannot carry.
    """
    try:
        return codecs.charmap_encode(text, "strict", _ENCODE_MAP)[0]
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        raise TextError(
            f"character U+{ord(bad):04X} at offset {exc.start} is not in the GSM 7-bit alphabet",
            CommandStatus.ESME_RSUBMITFAIL,
        ) from None


def gsm7_fits(text: str) -> bool:
    """True when every character of ``text`` is in the default alphabet or its extension."""
    return _GSM_CHARS.issuperset(text)


def gsm7_septets(text: str) -> int:
    """Septets ``text`` takes in GSM-7: extension characters count two (ESC + code)."""
    n = len(text)
    for ch in _EXTENSION_CHARS:
        n += text.count(ch)
    return n


def gsm7_decode(data: bytes, *, single_shift: int = 0, locking_shift: int = 0) -> str:
    """Text of unpacked septets ``data``; never raises.

    ``single_shift`` / ``locking_shift`` are national language ids from UDH IEI 0x24 / 0x25
    (0 = default tables; unknown ids fall back to the default tables).
    """
    if not data.isascii():
        data = data.translate(_MASK7)
    locking_map = _DECODE_MAPS.get(locking_shift, _DECODE_MAPS[0])
    if ESC not in data:
        return codecs.charmap_decode(data, "strict", locking_map)[0]
    shift = _get_shift_map(single_shift, locking_shift)
    pieces = data.split(b"\x1b")
    out = [codecs.charmap_decode(pieces[0], "strict", locking_map)[0]]
    last = len(pieces) - 1
    i = 1
    while i <= last:
        piece = pieces[i]
        if piece:
            out.append(shift[piece[0]])
            out.append(codecs.charmap_decode(piece[1:], "strict", locking_map)[0])
            i += 1
        elif i == last:
            out.append(" ")  # trailing lone ESC
            i += 1
        else:
            # ESC ESC: the second ESC is the code; what follows it is plain.
            out.append(shift[ESC])
            out.append(codecs.charmap_decode(pieces[i + 1], "strict", locking_map)[0])
            i += 2
    return "".join(out)


# --- packing (23.038 section 6.1.2.1) -------------------------------------------------------


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets LSB first, after ``fill_bits`` zero bits (0-6, for a UDH boundary).

    When the last octet would carry 7 spare bits, they hold CR (0x0D) instead of zeros so a
    receiver does not read an extra ``@`` (23.038 section 6.1.2.1.1; reference section 8.3).
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError("fill_bits must be 0..6")
    if not septets:
        return b""
    out = bytearray()
    acc = 0
    nbits = fill_bits
    for septet in septets:
        acc |= (septet & 0x7F) << nbits
        nbits += 7
        if nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        if nbits == 1:
            acc |= _CR << 1
        out.append(acc & 0xFF)
    return bytes(out)


def unpack_septets(data: bytes, count: int | None = None, fill_bits: int = 0) -> bytes:
    """Septets packed in ``data`` after ``fill_bits`` leading bits.

    ``count`` (the TP-UDL septet count, minus UDH septets) bounds the result; when it is None
    every whole septet is returned, except a final CR that fills 7 spare bits (padding).
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError("fill_bits must be 0..6")
    available = (len(data) * 8 - fill_bits) // 7 if data else 0
    want = available if count is None else min(count, available)
    out = bytearray()
    acc = 0
    nbits = -fill_bits
    for octet in data:
        if len(out) >= want:
            break
        if nbits < 0:  # drop the fill bits of the first octet
            acc = octet >> fill_bits
            nbits = 8 - fill_bits
        else:
            acc |= octet << nbits
            nbits += 8
        while nbits >= 7 and len(out) < want:
            out.append(acc & 0x7F)
            acc >>= 7
            nbits -= 7
    if count is None and out and out[-1] == _CR and data and (len(data) * 8 - fill_bits) % 7 == 0:
        del out[-1]
    return bytes(out)
