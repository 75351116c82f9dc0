"""User data header: parse and build information elements.

Implements 3GPP TS 23.040 section 9.2.3.24 (TP-User-Data-Header: UDHL, then IEI/IEDL/data
elements), with the elements the gateway reads: 9.2.3.24.1 concatenation with 8-bit reference
(IEI 0x00), 9.2.3.24.8 concatenation with 16-bit reference (IEI 0x08), 9.2.3.24.15/16
national language single/locking shift (IEI 0x24/0x25). Layouts in section 9.2 of the gateway's
SMPP reference; SMPP 3.4 section 5.2.12 (esm_class UDHI 0x40) says a header is present.

Unknown elements are kept in order. When an element that may appear once is repeated, the last
occurrence wins (23.040 section 9.2.3.24). A malformed header raises
TextError(ESME_RINVESMCLASS): the client set UDHI on data that does not carry one.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from ..constants import CommandStatus
from ..errors import TextError

__all__ = [
    "IEI_CONCAT_8",
    "IEI_CONCAT_16",
    "IEI_LOCKING_SHIFT",
    "IEI_PORT_8",
    "IEI_PORT_16",
    "IEI_SINGLE_SHIFT",
    "Udh",
    "build_udh",
    "concat_udh",
    "parse_udh",
]

IEI_CONCAT_8 = 0x00
IEI_PORT_8 = 0x04
IEI_PORT_16 = 0x05
IEI_CONCAT_16 = 0x08
IEI_SINGLE_SHIFT = 0x24
IEI_LOCKING_SHIFT = 0x25

_BAD = CommandStatus.ESME_RINVESMCLASS


class Udh(msgspec.Struct, frozen=True):
    """A parsed user data header (3GPP TS 23.040 section 9.2.3.24)."""

    elements: tuple[tuple[int, bytes], ...] = ()
    """(IEI, data) in order of appearance, unknown elements included."""
    concat: tuple[int, int, int] | None = None
    """(reference, total, seqnum) from IEI 0x00 or 0x08, None when absent."""
    ref16: bool = False
    """True when ``concat`` came from IEI 0x08 (16-bit reference)."""
    single_shift: int = 0
    """National language id of IEI 0x24, 0 when absent."""
    locking_shift: int = 0
    """National language id of IEI 0x25, 0 when absent."""


def parse_udh(short_message: bytes) -> tuple[Udh, bytes]:
    """Split ``short_message`` (UDHI set) into its header and the user data after it.

    Raises TextError(ESME_RINVESMCLASS) when the header runs past the message, an element
    runs past the header, or a concatenation element has the wrong length. Part numbers are
    returned as carried (0 or above the total included): :class:`Reassembler` rejects those.
    """
    if not short_message:
        raise TextError("UDHI set but short_message is empty", _BAD)
    udhl = short_message[0]
    end = 1 + udhl
    if end > len(short_message):
        raise TextError(f"UDHL {udhl} runs past short_message ({len(short_message)})", _BAD)
    elements: list[tuple[int, bytes]] = []
    concat: tuple[int, int, int] | None = None
    ref16 = False
    single_shift = 0
    locking_shift = 0
    pos = 1
    while pos < end:
        if pos + 2 > end:
            raise TextError(f"information element header at {pos} runs past UDHL {udhl}", _BAD)
        iei = short_message[pos]
        iedl = short_message[pos + 1]
        start = pos + 2
        pos = start + iedl
        if pos > end:
            raise TextError(f"IEI 0x{iei:02X} length {iedl} runs past UDHL {udhl}", _BAD)
        data = short_message[start:pos]
        elements.append((iei, data))
        if iei in (IEI_CONCAT_8, IEI_CONCAT_16):
            concat = _concat(iei, data)
            ref16 = iei == IEI_CONCAT_16
        elif iei == IEI_SINGLE_SHIFT and iedl == 1:
            single_shift = data[0]
        elif iei == IEI_LOCKING_SHIFT and iedl == 1:
            locking_shift = data[0]
    udh = Udh(
        elements=tuple(elements),
        concat=concat,
        ref16=ref16,
        single_shift=single_shift,
        locking_shift=locking_shift,
    )
    return udh, short_message[end:]


def _concat(iei: int, data: bytes) -> tuple[int, int, int]:
    if iei == IEI_CONCAT_8:
        if len(data) != 3:
            raise TextError(f"IEI 0x00 has length {len(data)}, not 3", _BAD)
        reference, total, seqnum = data
    else:
        if len(data) != 4:
            raise TextError(f"IEI 0x08 has length {len(data)}, not 4", _BAD)
        reference = int.from_bytes(data[:2], "big")
        total, seqnum = data[2], data[3]
    return reference, total, seqnum


def build_udh(elements: Sequence[tuple[int, bytes]]) -> bytes:
    """UDHL + elements. Raises TextError(ESME_RINVMSGLEN) when it cannot fit 140 octets."""
    body = bytearray()
    for iei, data in elements:
        if not 0 <= iei <= 0xFF or len(data) > 0xFF:
            raise TextError(f"information element 0x{iei:X} cannot be encoded", _BAD)
        body.append(iei)
        body.append(len(data))
        body += data
    if len(body) > 139:
        raise TextError(
            f"user data header of {len(body)} octets is too long", CommandStatus.ESME_RINVMSGLEN
        )
    return bytes((len(body),)) + bytes(body)


def concat_udh(reference: int, total: int, seqnum: int, *, ref16: bool = False) -> bytes:
    """Concatenation header: ``05 00 03 RR TT NN`` or, with ``ref16``, ``06 08 04 RH RL TT NN``.

    ``reference`` is taken modulo 256 (or 65536), so a rotating counter can be passed as is.
    Raises TextError(ESME_RINVMSGLEN) unless 1 <= seqnum <= total <= 255.
    """
    if not 1 <= seqnum <= total <= 255:
        raise TextError(
            f"part {seqnum} of {total} is outside 1..255", CommandStatus.ESME_RINVMSGLEN
        )
    if ref16:
        ref = reference & 0xFFFF
        return bytes((6, IEI_CONCAT_16, 4, ref >> 8, ref & 0xFF, total, seqnum))
    return bytes((5, IEI_CONCAT_8, 3, reference & 0xFF, total, seqnum))
