"""Splitting text or user data into SMS parts (MT, gateway -> operator), losslessly.

Implements 3GPP TS 23.040 section 9.2.3.24.1/9.2.3.24.8 (concatenated short messages) and the
SMPP 3.4 alternatives of section 5.3.2.22-24 (sar_msg_ref_num, sar_total_segments,
sar_segment_seqnum) and 5.3.2.32 (message_payload), following sections 9.1-9.4 of the
gateway's SMPP reference.

Limits (reference section 9.1), in the unit of the coding (septets, UTF-16 code units, octets):

=========  ======  =========================  ==========================
coding     single  part, 8-bit ref (``udh8``)  part, 16-bit ref (``udh16``)
=========  ======  =========================  ==========================
GSM-7      160     153                        152
UCS2       70      67                         66
8-bit      140     134                        133
=========  ======  =========================  ==========================

A text that fits one message is sent as one part with no UDH and no SAR, whatever the method.

``sar`` parts carry no UDH, but the operator's SMSC builds one from the SAR TLVs before the
air interface (reference section 9.4). sar_msg_ref_num is a 16-bit value, so the SMSC may well
build the 7-octet IEI 0x08 header: SAR parts therefore use the 16-bit-reference limits
(152 / 66 / 133), which fit whichever header the SMSC chooses. This costs one unit per part
compared with 153 / 67 / 134 and never makes an SMSC cut or reject a part.

``payload`` gives one segment carrying the whole encoded text for message_payload (TLV 0x0424,
at most 65535 octets); the SMSC splits.

Cutting rules (reference section 9.3): GSM-7 (unpacked, one septet per octet) is never cut
between ESC 0x1B and its code; UCS2 is cut only at even offsets and never between a high and a
low surrogate. More parts than ``max_parts`` (at most 255) raise TextError(ESME_RINVMSGLEN);
nothing is ever truncated.
"""

from __future__ import annotations

import msgspec

from ..constants import CommandStatus
from ..errors import TextError
from .codec import GSM7, UCS2, choose_coding, coding_kind, encode_text
from .udh import concat_udh

__all__ = [
    "METHODS",
    "Segment",
    "Split",
    "part_limit",
    "single_limit",
    "split_text",
    "split_user_data",
]

METHODS = ("udh8", "udh16", "sar", "payload")

_MAX_PAYLOAD = 0xFFFF
_ESC = 0x1B

# Octets of user data (unpacked GSM-7: one octet per septet; UCS2: two per unit).
_SINGLE_OCTETS = {GSM7: 160, UCS2: 140}
_UDH8_OCTETS = {GSM7: 153, UCS2: 134}
_UDH16_OCTETS = {GSM7: 152, UCS2: 132}
_OTHER_SINGLE, _OTHER_UDH8, _OTHER_UDH16 = 140, 134, 133


class Segment(msgspec.Struct, frozen=True):
    """One part as it goes into a submit_sm."""

    short_message: bytes
    """UDH (if any) + user data, as carried in short_message (message_payload for payload)."""
    udhi: bool = False
    """The caller sets esm_class |= 0x40 when True."""
    sar: tuple[int, int, int] | None = None
    """(sar_msg_ref_num, sar_total_segments, sar_segment_seqnum) for method "sar"."""


class Split(msgspec.Struct, frozen=True):
    """The parts of one message, all in ``data_coding``."""

    data_coding: int
    segments: tuple[Segment, ...]
    method: str


def single_limit(data_coding: int, *, dcs0: str = "gsm7") -> int:
    """Units (septets / UTF-16 units / octets) one unconcatenated message can carry."""
    kind = coding_kind(data_coding, dcs0=dcs0)
    octets = _SINGLE_OCTETS.get(kind, _OTHER_SINGLE)
    return octets // 2 if kind == UCS2 else octets


def part_limit(data_coding: int, method: str = "udh8", *, dcs0: str = "gsm7") -> int:
    """Units one part of a concatenated message can carry with ``method`` (see module doc)."""
    kind = coding_kind(data_coding, dcs0=dcs0)
    octets = _part_octets(kind, _check_method(method))
    return octets // 2 if kind == UCS2 else octets


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise TextError(f"unknown split method {method!r}", CommandStatus.ESME_RSYSERR)
    return method


def _part_octets(kind: str, method: str) -> int:
    if method == "udh8":
        return _UDH8_OCTETS.get(kind, _OTHER_UDH8)
    return _UDH16_OCTETS.get(kind, _OTHER_UDH16)  # udh16 and sar (see module doc)


def _choose(text: str, dcs0: str, prefer_latin1: bool) -> int:
    coding = choose_coding(text, prefer_latin1=prefer_latin1)
    if coding == 0 and dcs0 != GSM7:
        # DCS 0 is not GSM-7 on this bind: use it only if its charset holds the text.
        try:
            text.encode("ascii" if dcs0 == "ascii" else "latin-1")
        except UnicodeEncodeError:
            coding = 0x08
    return coding


def split_text(
    text: str,
    *,
    data_coding: int | None = None,
    method: str = "udh8",
    reference: int = 0,
    max_parts: int = 255,
    dcs0: str = "gsm7",
    prefer_latin1: bool = False,
) -> Split:
    """Encode ``text`` (choosing data_coding when None) and split it into parts.

    GSM-7 parts are unpacked septets. Raises TextError: ESME_RINVMSGLEN for more than
    ``max_parts`` parts, ESME_RSUBMITFAIL when the text does not fit the coding or the coding
    is binary or unsupported.
    """
    _check_method(method)
    coding = _choose(text, dcs0, prefer_latin1) if data_coding is None else data_coding
    data = encode_text(text, coding, dcs0=dcs0)
    return split_user_data(
        data, coding, method=method, reference=reference, max_parts=max_parts, dcs0=dcs0
    )


def split_user_data(
    user_data: bytes,
    data_coding: int,
    *,
    method: str = "udh8",
    reference: int = 0,
    max_parts: int = 255,
    dcs0: str = "gsm7",
) -> Split:
    """Split already-encoded user data (no UDH) into parts; binary codings are allowed.

    GSM-7 data must be unpacked. ``reference`` is taken modulo 256 for ``udh8`` and modulo
    65536 for ``udh16``/``sar``. Raises TextError(ESME_RINVMSGLEN) for more than
    ``max_parts`` parts (or a payload above 65535 octets).
    """
    _check_method(method)
    kind = coding_kind(data_coding, dcs0=dcs0)
    n = len(user_data)
    if method == "payload":
        if n > _MAX_PAYLOAD:
            raise TextError(
                f"message_payload of {n} octets exceeds {_MAX_PAYLOAD}",
                CommandStatus.ESME_RINVMSGLEN,
            )
        return Split(data_coding, (Segment(user_data),), method)
    if n <= _SINGLE_OCTETS.get(kind, _OTHER_SINGLE):
        return Split(data_coding, (Segment(user_data),), method)
    limit = _part_octets(kind, method)
    max_parts = min(max_parts, 255)
    if n > limit * max_parts:
        raise _too_many(n, limit, max_parts)
    chunks = _cut(user_data, limit, kind, max_parts)
    total = len(chunks)
    if method == "sar":
        ref = reference & 0xFFFF
        segments = tuple(
            Segment(chunk, False, (ref, total, seq)) for seq, chunk in enumerate(chunks, 1)
        )
    else:
        ref16 = method == "udh16"
        segments = tuple(
            Segment(concat_udh(reference, total, seq, ref16=ref16) + chunk, True)
            for seq, chunk in enumerate(chunks, 1)
        )
    return Split(data_coding, segments, method)


def _too_many(n: int, limit: int, max_parts: int) -> TextError:
    return TextError(
        f"{n} octets of user data need more than {max_parts} parts of {limit}",
        CommandStatus.ESME_RINVMSGLEN,
    )


def _cut(data: bytes, limit: int, kind: str, max_parts: int) -> list[bytes]:
    """Cut ``data`` into chunks of at most ``limit`` octets on character boundaries."""
    n = len(data)
    chunks: list[bytes] = []
    pos = 0
    while pos < n:
        end = pos + limit
        if end < n:
            if kind == GSM7:
                # A run of ESC octets ending at end-1 starts on a character boundary (any
                # other octet ends a character); an odd run leaves ESC without its code.
                j = end - 1
                while j >= pos and data[j] == _ESC:
                    j -= 1
                if (end - 1 - j) % 2:
                    end -= 1
            elif kind == UCS2 and 0xD8 <= data[end - 2] <= 0xDB:
                end -= 2  # high surrogate: keep the pair together
        else:
            end = n
        chunks.append(data[pos:end])
        if len(chunks) > max_parts:
            raise _too_many(n, limit, max_parts)
        pos = end
    return chunks
