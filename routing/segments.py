"""Turning a stored message into the submit_sm an operator receives (conversion, splitting).

Per-operator policy (reference sections 7.1, 9): data_coding 0 means what the operator says
(``dcs0``), so text the tenant sent as DCS 0 under another meaning is re-encoded (falling back
to UCS-2 when it does not fit); a message longer than one SMS is split with the operator's
method (UDH 8/16-bit reference, SAR TLVs, or one message_payload); parts a tenant split itself
(UDHI) pass through untouched unless a part is longer than the air interface allows, which is
re-split or refused as configured, never passed on to be truncated (TS 23.040 9.2.3.24).
A receipt is requested on every part (reference 9.3 rule 6) so the gateway learns each
message's outcome even when the tenant did not ask to be told.
"""

from __future__ import annotations

from config import OperatorConfig
from encoding.constants import CommandStatus, EsmClass, RegisteredDelivery
from encoding.errors import PduError, SmppError
from encoding.pdu import SubmitSm
from encoding.pdu.tlv import TlvMap, decode_tlvs
from encoding.text import (
    coding_kind,
    decode_text,
    encode_text,
    gsm7_fits,
    pack_septets,
    parse_udh,
    single_limit,
    split_user_data,
)

from .model import Message

__all__ = ["build_parts"]

_GSM7 = "gsm7"
_UCS2 = "ucs2"
_SAR_KEYS = ("sar_msg_ref_num", "sar_total_segments", "sar_segment_seqnum", "message_payload")


def _extra_tlvs(m: Message) -> TlvMap:
    if not m.tlvs:
        return {}
    try:
        return decode_tlvs(b"\x00" * 16 + m.tlvs, 16, 0, 0)
    except PduError:
        return {}


def _units(data: bytes, kind: str) -> int:
    return len(data) // 2 if kind == _UCS2 else len(data)


def _convert(user_data: bytes, data_coding: int, tenant_dcs0: str,
             operator_dcs0: str) -> tuple[bytes, int]:
    """Re-encode DCS-0 text when tenant and operator read DCS 0 differently."""
    if data_coding != 0 or tenant_dcs0 == operator_dcs0:
        return user_data, data_coding
    text = decode_text(user_data, 0, dcs0=tenant_dcs0)
    fits = gsm7_fits(text) if operator_dcs0 == _GSM7 else _charset_fits(text, operator_dcs0)
    if fits:
        return encode_text(text, 0, dcs0=operator_dcs0), 0
    return encode_text(text, 0x08), 0x08


def _charset_fits(text: str, dcs0: str) -> bool:
    try:
        text.encode("ascii" if dcs0 == "ascii" else "latin-1")
    except UnicodeEncodeError:
        return False
    return True


def build_parts(m: Message, op: OperatorConfig, *, tenant_dcs0: str,
                reference: int) -> list[SubmitSm] | int:
    """The submit_sm to send for ``m`` through ``op``, or a command_status to fail it with."""
    extra = _extra_tlvs(m)
    udhi = bool(m.esm_class & EsmClass.UDHI)
    try:
        if udhi:
            udh_bytes, user_data = _split_udh(m.body)
        else:
            udh_bytes, user_data = b"", m.body
        kind = coding_kind(m.data_coding, dcs0=tenant_dcs0)
        user_data, data_coding = (_convert(user_data, m.data_coding, tenant_dcs0, op.dcs0)
                                  if kind != "binary" else (user_data, m.data_coding))
        kind = coding_kind(data_coding, dcs0=op.dcs0)
        bodies: list[tuple[bytes, bool, tuple[int, int, int] | None]]
        if udhi and _fits_air(udh_bytes, user_data, kind):
            bodies = [(udh_bytes + user_data, True, None)]
        elif udhi and op.long_part == "refuse":
            return CommandStatus.ESME_RINVMSGLEN
        elif _units(user_data, kind) <= single_limit(data_coding, dcs0=op.dcs0):
            bodies = [(user_data, False, None)]
        elif op.split == "payload":
            return [_submit(m, b"", data_coding, m.esm_class & ~EsmClass.UDHI,
                            {**_without_sar(extra), "message_payload": user_data})]
        else:
            split = split_user_data(user_data, data_coding, method=op.split,
                                    reference=reference, max_parts=op.max_parts, dcs0=op.dcs0)
            bodies = [(s.short_message, s.udhi, s.sar) for s in split.segments]
    except SmppError as exc:
        return exc.command_status
    parts: list[SubmitSm] = []
    base_esm = m.esm_class & ~EsmClass.UDHI
    several = len(bodies) > 1
    for body, has_udh, sar in bodies:
        # A tenant's own SAR TLVs (it split the message itself) stay on a part sent as is.
        tlvs = _without_sar(extra) if several else dict(extra)
        if sar is not None:
            tlvs.update(sar_msg_ref_num=sar[0], sar_total_segments=sar[1],
                        sar_segment_seqnum=sar[2])
        if op.packed and kind == _GSM7:
            body = _pack(body, has_udh)
        parts.append(_submit(m, body, data_coding, base_esm | (EsmClass.UDHI if has_udh else 0),
                             tlvs))
    return parts


def _split_udh(body: bytes) -> tuple[bytes, bytes]:
    parse_udh(body)  # raises on a malformed header
    length = body[0] + 1
    return body[:length], body[length:]


def _fits_air(udh_bytes: bytes, user_data: bytes, kind: str) -> bool:
    """Does one part fit the 140-octet TP-UD with its header (TS 23.040 9.2.3.24)?"""
    if kind == _GSM7:
        header_septets = (len(udh_bytes) * 8 + 6) // 7
        return header_septets + len(user_data) <= 160
    return len(udh_bytes) + len(user_data) <= 140


def _pack(body: bytes, has_udh: bool) -> bytes:
    if not has_udh:
        return pack_septets(body)
    length = body[0] + 1
    fill = (7 - (8 * length) % 7) % 7  # reference 8.3: first character on a septet boundary
    return body[:length] + pack_septets(body[length:], fill_bits=fill)


def _without_sar(tlvs: TlvMap) -> TlvMap:
    return {k: v for k, v in tlvs.items() if k not in _SAR_KEYS}


def _submit(m: Message, body: bytes, data_coding: int, esm_class: int,
            tlvs: TlvMap) -> SubmitSm:
    registered = m.registered_delivery
    if registered & RegisteredDelivery.RECEIPT_MASK != RegisteredDelivery.RECEIPT_ALWAYS:
        registered = (registered & ~RegisteredDelivery.RECEIPT_MASK) | 1
    return SubmitSm(
        service_type=m.service_type, source_addr_ton=m.source_addr_ton,
        source_addr_npi=m.source_addr_npi, source_addr=m.source_addr,
        dest_addr_ton=m.dest_addr_ton, dest_addr_npi=m.dest_addr_npi,
        destination_addr=m.destination_addr, esm_class=esm_class, protocol_id=m.protocol_id,
        priority_flag=m.priority_flag, schedule_delivery_time=m.schedule_delivery_time,
        validity_period=m.validity_period, registered_delivery=registered,
        data_coding=data_coding, short_message=body, tlvs=tlvs)
