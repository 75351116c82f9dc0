"""Text <-> short_message octets by SMPP data_coding, and the choice of data_coding.

Implements SMPP 3.4 section 5.2.19 (data_coding) with the GSM TP-DCS groups of
3GPP TS 23.038 section 4 that SMSCs pass through SMPP, as tabled in sections 7, 7.1 and 8.4
of the gateway's SMPP reference:

====================  =========================================================
data_coding           codec
====================  =========================================================
0x00                  per-bind ``dcs0``: "gsm7" (default, unpacked), "latin1", "ascii"
0x01                  ASCII (IA5)
0x02, 0x04            binary (not text: encoding raises, decoding gives a Latin-1 view)
0x03                  Latin-1
0x06 / 0x07           ISO-8859-5 / ISO-8859-8
0x08                  UTF-16BE, no BOM; astral characters as surrogate pairs (section 8.4)
0x10-0x1F, 0x40-0x5F  TP-DCS general / auto-deletion groups, uncompressed: alphabet bits
0xC0-0xDF             TP-DCS message waiting groups: GSM-7
0xE0-0xEF             TP-DCS message waiting group, UCS2
0xF0-0xFF             TP-DCS data coding/message class: bit 2 clear GSM-7, set 8-bit
====================  =========================================================

Anything else (JIS, KS C 5601, pictogram, compressed TP-DCS, reserved values) raises
TextError(ESME_RSUBMITFAIL); the caller may map the status. Decoding a supported coding never
raises, whatever the octets.
"""

from __future__ import annotations

from ..constants import CommandStatus
from ..errors import TextError
from .gsm7 import gsm7_decode, gsm7_encode, gsm7_fits, gsm7_septets, pack_septets, unpack_septets

__all__ = [
    "DCS0_CHOICES",
    "choose_coding",
    "coding_kind",
    "decode_text",
    "encode_text",
    "is_binary",
    "units",
]

DCS0_CHOICES = ("gsm7", "latin1", "ascii")

# Kinds of coding; "gsm7" and "ucs2" have their own unit, every other kind counts octets.
GSM7 = "gsm7"
UCS2 = "ucs2"
BINARY = "binary"
_PYTHON_CODECS = {
    "ascii": "ascii",
    "latin1": "latin-1",
    "cyrillic": "iso8859-5",
    "hebrew": "iso8859-8",
}

_FIXED: dict[int, str] = {
    0x01: "ascii",
    0x02: BINARY,
    0x03: "latin1",
    0x04: BINARY,
    0x06: "cyrillic",
    0x07: "hebrew",
    0x08: UCS2,
}
_ALPHABET_BITS = (GSM7, BINARY, UCS2)  # TP-DCS bits 3-2: 00, 01, 10 (11 reserved)


def _kind_of(data_coding: int, dcs0: str) -> str | None:
    if data_coding == 0x00:
        return dcs0 if dcs0 in DCS0_CHOICES else None
    fixed = _FIXED.get(data_coding)
    if fixed is not None:
        return fixed
    if 0x10 <= data_coding <= 0x1F or 0x40 <= data_coding <= 0x5F:
        alphabet = (data_coding >> 2) & 0x03
        return _ALPHABET_BITS[alphabet] if alphabet < 3 else None
    if 0xC0 <= data_coding <= 0xDF:
        return GSM7
    if 0xE0 <= data_coding <= 0xEF:
        return UCS2
    if 0xF0 <= data_coding <= 0xFF:
        return BINARY if data_coding & 0x04 else GSM7
    return None


def coding_kind(data_coding: int, *, dcs0: str = "gsm7") -> str:
    """Kind of ``data_coding``: gsm7, ucs2, binary, ascii, latin1, cyrillic or hebrew.

    Raises TextError(ESME_RSUBMITFAIL) for a data_coding this gateway does not handle.
    """
    kind = _kind_of(data_coding, dcs0)
    if kind is None:
        raise TextError(
            f"unsupported data_coding 0x{data_coding:02X} (dcs0={dcs0!r})",
            CommandStatus.ESME_RSUBMITFAIL,
        )
    return kind


def is_binary(data_coding: int) -> bool:
    """True for 8-bit data codings (0x02, 0x04, TP-DCS 8-bit groups): bytes, not text."""
    return _kind_of(data_coding, GSM7) == BINARY


def encode_text(text: str, data_coding: int, *, dcs0: str = "gsm7", packed: bool = False) -> bytes:
    """Octets for ``text`` in ``data_coding``; ``packed`` applies to GSM-7 only.

    Raises TextError(ESME_RSUBMITFAIL) when the coding is binary or unsupported, or when a
    character does not fit the coding.
    """
    kind = coding_kind(data_coding, dcs0=dcs0)
    if kind == GSM7:
        septets = gsm7_encode(text)
        return pack_septets(septets) if packed else septets
    if kind == UCS2:
        try:
            return text.encode("utf-16-be")
        except UnicodeEncodeError as exc:
            raise TextError(
                f"lone surrogate at offset {exc.start} cannot be sent as UTF-16",
                CommandStatus.ESME_RSUBMITFAIL,
            ) from None
    if kind == BINARY:
        raise TextError(
            f"data_coding 0x{data_coding:02X} is binary, not text", CommandStatus.ESME_RSUBMITFAIL
        )
    try:
        return text.encode(_PYTHON_CODECS[kind])
    except UnicodeEncodeError as exc:
        raise TextError(
            f"character U+{ord(text[exc.start]):04X} at offset {exc.start} does not fit "
            f"data_coding 0x{data_coding:02X} ({kind})",
            CommandStatus.ESME_RSUBMITFAIL,
        ) from None


def decode_text(
    data: bytes,
    data_coding: int,
    *,
    dcs0: str = "gsm7",
    packed: bool = False,
    single_shift: int = 0,
    locking_shift: int = 0,
) -> str:
    """Text of ``data`` in ``data_coding``; never raises on any octets for supported codings.

    UCS2 is read as UTF-16BE: a lone surrogate or a dangling odd octet becomes U+FFFD.
    Binary codings give a Latin-1 view. ASCII and ISO-8859-8 octets without a character
    become U+FFFD. ``single_shift``/``locking_shift`` (UDH IEI 0x24/0x25) apply to GSM-7.
    Raises TextError(ESME_RSUBMITFAIL) only for an unsupported data_coding.
    """
    kind = coding_kind(data_coding, dcs0=dcs0)
    if kind == GSM7:
        if packed:
            data = unpack_septets(data)
        return gsm7_decode(data, single_shift=single_shift, locking_shift=locking_shift)
    if kind == UCS2:
        return data.decode("utf-16-be", "replace")
    if kind == BINARY:
        return data.decode("latin-1")
    return data.decode(_PYTHON_CODECS[kind], "replace")


def choose_coding(text: str, *, prefer_latin1: bool = False) -> int:
    """0 when all of ``text`` is GSM-7, else 3 if ``prefer_latin1`` and Latin-1 holds it, else 8.

    Reference section 9.3 rule 1: GSM-7 first, UCS2 otherwise, Latin-1 only by policy.
    """
    if gsm7_fits(text):
        return 0x00
    if prefer_latin1:
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            pass
        else:
            return 0x03
    return 0x08


def units(value: str | bytes, data_coding: int, *, dcs0: str = "gsm7") -> int:
    """Length in the unit that limits a message in ``data_coding``.

    GSM-7: septets (extension characters count two; for bytes, unpacked septets);
    UCS2: UTF-16 code units (astral characters count two); otherwise octets.
    """
    kind = coding_kind(data_coding, dcs0=dcs0)
    if isinstance(value, bytes):
        return (len(value) + 1) // 2 if kind == UCS2 else len(value)
    if kind == GSM7:
        return gsm7_septets(value)
    if kind == UCS2:
        return len(value.encode("utf-16-be", "surrogatepass")) // 2
    return len(value)  # single-octet codings
