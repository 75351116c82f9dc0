"""Tenant events as deliver_sm: how an SMPP receiver bind says a receipt or an MO message.

A receipt (SMPP 3.4 section 4.6.1 with esm_class 0x04, Appendix B text) swaps the original
addresses (source_addr = original destination), carries the tenant-facing message id in
the text and in receipted_message_id, and message_state as a TLV (reference section 10.1).
An inbound message is passed on as received; user data longer than short_message's 254
octets travels in message_payload. An event stored before events existed is an encoded
deliver_sm already. Tenants bound with interface_version 3.3 get no TLVs (reference 2.1).
"""

from __future__ import annotations

import datetime as dt
import functools

import msgspec

from config import TenantConfig
from encoding.constants import EsmClass
from encoding.errors import PduError
from encoding.pdu import DeliverSm, decode_pdu
from encoding.pdu.tlv import TlvMap
from encoding.receipt import format_receipt
from routing.events import MoEvent, ReceiptEvent, StoredPdu, TenantEvent
from routing.model import STAT_OF_STATUS, external_id, smpp_state

__all__ = ["render_deliver", "receipt_deliver"]

_SHORT_MESSAGE_MAX = 254


@functools.lru_cache(maxsize=64)
def _minute(minute: int) -> dt.datetime:
    """The UTC start of a minute since the epoch: receipt dates have minute precision, and
    one object per minute lets ``format_receipt`` reuse its text."""
    return dt.datetime.fromtimestamp(minute * 60, dt.UTC)


def receipt_deliver(e: ReceiptEvent, id_format: str) -> DeliverSm:
    mid = external_id(id_format, e.message_id)
    text = format_receipt(
        mid, STAT_OF_STATUS[e.status], err=f"{min(e.error, 999):03d}",
        submit_date=_minute(int(e.submitted_at // 60)),
        done_date=_minute(int(e.done_at // 60)), text=e.preview)
    return DeliverSm(
        source_addr=e.destination_addr, source_addr_ton=e.dest_addr_ton,
        source_addr_npi=e.dest_addr_npi, destination_addr=e.source_addr,
        dest_addr_ton=e.source_addr_ton, dest_addr_npi=e.source_addr_npi,
        esm_class=EsmClass.TYPE_DELIVERY_RECEIPT, short_message=text,
        tlvs={"receipted_message_id": mid, "message_state": smpp_state(e.status)})


def _mo_deliver(e: MoEvent) -> DeliverSm:
    tlvs: TlvMap = {k: v for k, v in e.tlvs.items()}
    short = e.body
    if len(short) > _SHORT_MESSAGE_MAX:
        tlvs["message_payload"] = short
        short = b""
    return DeliverSm(
        service_type=e.service_type, source_addr_ton=e.source_addr_ton,
        source_addr_npi=e.source_addr_npi, source_addr=e.source_addr,
        dest_addr_ton=e.dest_addr_ton, dest_addr_npi=e.dest_addr_npi,
        destination_addr=e.destination_addr, esm_class=e.esm_class,
        protocol_id=e.protocol_id, priority_flag=e.priority_flag, data_coding=e.data_coding,
        short_message=short, tlvs=tlvs)


def render_deliver(event: TenantEvent, tenant: TenantConfig,
                   interface_version: int) -> DeliverSm | str:
    """The deliver_sm for ``event``, or why it cannot be one (a corrupt stored PDU, a long
    message for a bind that cannot carry message_payload)."""
    pdu: DeliverSm
    if type(event) is ReceiptEvent:
        pdu = receipt_deliver(event, tenant.id_format)
    elif type(event) is MoEvent:
        pdu = _mo_deliver(event)
    elif type(event) is StoredPdu:
        try:
            decoded = decode_pdu(event.pdu)
        except PduError as exc:
            return f"stored PDU unreadable: {exc}"
        if not isinstance(decoded, DeliverSm):
            return f"stored PDU is a {decoded.command_name}"
        pdu = decoded
    else:  # the SMPP channel's queue holds no other kind (routing.channels)
        return f"a {type(event).__name__} has no deliver_sm form"
    if interface_version < 0x34 and pdu.tlvs:
        if "message_payload" in pdu.tlvs:
            return "user data longer than short_message, and a 3.3 bind has no TLVs"
        pdu = msgspec.structs.replace(pdu, tlvs={})
    return pdu
