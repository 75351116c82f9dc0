"""What a text costs in SMS parts, computed by the split the operator's submit_sm will get.

The preview (``POST /v1/messages/preview``) must say exactly what sending does, so this
module does not count by itself: it builds the parts with ``segments.build_parts`` (the
dispatcher's own conversion and split, reference sections 7.1 and 9) and reads the count and
the last part's length off them. Two settings that do not change what a handset gets are
neutralised first: ``packed`` (septets per part are the same, packing only squeezes octets)
and ``split = "payload"`` (one message_payload that the operator's SMSC cuts; counted here
as the 8-bit-reference parts a handset receives, as the send answer counts them).
"""

from __future__ import annotations

from typing import Final

import msgspec

from config import OperatorConfig
from encoding.constants import EsmClass
from encoding.text import coding_kind, gsm7_fits, part_limit, single_limit

from .model import Message
from .segments import build_parts

__all__ = ["Cost", "cost_of", "ucs2_forcing", "DEFAULT_OPERATOR"]

# Splitting when the destination has no route: the defaults of ``[[operators]]``.
DEFAULT_OPERATOR: Final = OperatorConfig(name="default", host="127.0.0.1", port=1,
                                         system_id="default", password="")


class Cost(msgspec.Struct, frozen=True, gc=False):
    """Parts as an operator gets them, or the command_status the split refuses with."""

    parts: int
    data_coding: int  # of the parts (after the operator's DCS 0 conversion)
    kind: str  # "gsm7", "ucs2", "latin1", ...
    units: int  # septets / UTF-16 units / octets in all
    per_part: int  # units a part carries (single-message limit when there is one part)
    chars_left: int  # units left in the last part
    error: int = 0  # non-zero: refused (ESME_RINVMSGLEN: too many parts)


def cost_of(body: bytes, data_coding: int, op: OperatorConfig | None, *,
            tenant_dcs0: str = "gsm7") -> Cost:
    """The cost of ``body`` (unpacked GSM-7 septets or UCS-2 in ``data_coding``, as the
    record stores it) through ``op`` (``DEFAULT_OPERATOR`` when None)."""
    op = op or DEFAULT_OPERATOR
    split = "udh8" if op.split == "payload" else op.split
    if op.packed or split != op.split:
        op = msgspec.structs.replace(op, packed=False, split=split)
    m = Message(id="preview", tenant="", source_addr="", destination_addr="",
                data_coding=data_coding, body=body, request_id="preview")
    built = build_parts(m, op, tenant_dcs0=tenant_dcs0, reference=0)
    if isinstance(built, int):
        return Cost(0, data_coding, coding_kind(data_coding, dcs0=tenant_dcs0), 0, 0, 0,
                    error=built)
    coding = built[0].data_coding
    kind = coding_kind(coding, dcs0=op.dcs0)
    width = 2 if kind == "ucs2" else 1
    lengths = []
    for part in built:
        data = part.short_message
        if part.esm_class & EsmClass.UDHI:
            data = data[data[0] + 1:]  # the UDH (TS 23.040 9.2.3.24): UDHL then the IEs
        lengths.append(len(data) // width)
    per_part = (single_limit(coding, dcs0=op.dcs0) if len(built) == 1
                else part_limit(coding, split, dcs0=op.dcs0))
    return Cost(len(built), coding, kind, sum(lengths), per_part, per_part - lengths[-1])


def ucs2_forcing(text: str) -> dict[str, list[int]]:
    """Each distinct character of ``text`` that GSM-7 (default alphabet and its extension
    table, TS 23.038 6.2.1) cannot carry, with its offsets in ``text``, in order of first
    appearance."""
    out: dict[str, list[int]] = {}
    for i, ch in enumerate(text):
        if ch in out:
            out[ch].append(i)
        elif not gsm7_fits(ch):
            out[ch] = [i]
    return out
