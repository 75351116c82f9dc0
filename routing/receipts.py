"""Building the deliver_sm a tenant receives: delivery receipts and inbound messages.

A receipt (SMPP 3.4 section 4.6.1 with esm_class 0x04, Appendix B text) swaps the original
addresses (source_addr = original destination), carries the tenant-facing message id in
the text and in receipted_message_id, and message_state as a TLV (reference section 10.1).
Whether a receipt is due follows registered_delivery bits 1-0 (section 5.2.17).
"""

from __future__ import annotations

import datetime as dt
import functools

from encoding.constants import EsmClass, RegisteredDelivery
from encoding.errors import SmppError
from encoding.pdu import DeliverSm, encode_pdu
from encoding.receipt import format_receipt
from encoding.text import decode_text, parse_udh

from .model import STAT_OF_STATUS, Message, Status, external_id, smpp_state

__all__ = ["receipt_due", "build_receipt", "receipt_pdu"]


def receipt_due(registered_delivery: int, status: Status) -> bool:
    """1 = on any final outcome, 2 = on failure only (SMPP 3.4 section 5.2.17)."""
    wanted = registered_delivery & RegisteredDelivery.RECEIPT_MASK
    if wanted == RegisteredDelivery.RECEIPT_ALWAYS:
        return True
    return wanted == RegisteredDelivery.RECEIPT_ON_FAILURE and status is not Status.DELIVERED


@functools.lru_cache(maxsize=64)
def _minute(minute: int) -> dt.datetime:
    """The UTC start of a minute since the epoch: receipt dates have minute precision, and
    one object per minute lets ``format_receipt`` reuse its text."""
    return dt.datetime.fromtimestamp(minute * 60, dt.UTC)


def build_receipt(m: Message, status: Status, *, id_format: str, done_at: float,
                  error: int = 0, dcs0: str = "gsm7") -> bytes:
    """The encoded deliver_sm receipt for ``m`` reaching ``status``."""
    return encode_pdu(receipt_pdu(m, status, id_format=id_format, done_at=done_at,
                                  error=error, dcs0=dcs0))


def receipt_pdu(m: Message, status: Status, *, id_format: str, done_at: float,
                error: int = 0, dcs0: str = "gsm7") -> DeliverSm:
    """The deliver_sm receipt for ``m`` reaching ``status``."""
    mid = external_id(id_format, m.id)
    try:
        user_data = parse_udh(m.body)[1] if m.esm_class & EsmClass.UDHI else m.body
        preview = decode_text(user_data, m.data_coding, dcs0=dcs0)[:20]
    except SmppError:
        preview = ""
    text = format_receipt(
        mid, STAT_OF_STATUS[status], err=f"{min(error, 999):03d}",
        submit_date=_minute(int(m.created_at // 60)),
        done_date=_minute(int(done_at // 60)), text=preview)
    pdu = DeliverSm(
        source_addr=m.destination_addr, source_addr_ton=m.dest_addr_ton,
        source_addr_npi=m.dest_addr_npi, destination_addr=m.source_addr,
        dest_addr_ton=m.source_addr_ton, dest_addr_npi=m.source_addr_npi,
        esm_class=EsmClass.TYPE_DELIVERY_RECEIPT, short_message=text,
        tlvs={"receipted_message_id": mid, "message_state": smpp_state(status)})
    return pdu
