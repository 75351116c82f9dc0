"""Receipts for tenants as events: whether one is due, and what it says.

Whether a receipt is due follows registered_delivery bits 1-0 (SMPP 3.4 section 5.2.17).
The event carries everything any channel needs to say it: the gateway's id, the final
status and error, the submit and done times, the number of parts, the original addresses
and the first 20 characters of the text (Appendix B's "text:" field). Rendering it as a
deliver_sm (or JSON) is the channel's job.
"""

from __future__ import annotations

from encoding.constants import EsmClass, RegisteredDelivery
from encoding.errors import SmppError
from encoding.text import decode_text, parse_udh

from .events import ReceiptEvent
from .model import Message, Status

__all__ = ["receipt_due", "receipt_event", "preview"]

_PREVIEW_CHARS = 20


def receipt_due(registered_delivery: int, status: Status) -> bool:
    """1 = on any final outcome, 2 = on failure only (SMPP 3.4 section 5.2.17)."""
    wanted = registered_delivery & RegisteredDelivery.RECEIPT_MASK
    if wanted == RegisteredDelivery.RECEIPT_ALWAYS:
        return True
    return wanted == RegisteredDelivery.RECEIPT_ON_FAILURE and status is not Status.DELIVERED


def preview(m: Message, dcs0: str) -> str:
    """The first characters of the message's text ("" when it is not text)."""
    try:
        user_data = parse_udh(m.body)[1] if m.esm_class & EsmClass.UDHI else m.body
        return decode_text(user_data, m.data_coding, dcs0=dcs0)[:_PREVIEW_CHARS]
    except SmppError:
        return ""


def receipt_event(m: Message, status: Status, *, done_at: float, error: int = 0,
                  dcs0: str = "gsm7", parts: int = 1) -> ReceiptEvent:
    """The receipt event for ``m`` reaching ``status``."""
    return ReceiptEvent(
        message_id=m.id, status=status, error=error, submitted_at=m.created_at,
        done_at=done_at, parts=parts, source_addr=m.source_addr,
        source_addr_ton=m.source_addr_ton, source_addr_npi=m.source_addr_npi,
        destination_addr=m.destination_addr, dest_addr_ton=m.dest_addr_ton,
        dest_addr_npi=m.dest_addr_npi, preview=preview(m, dcs0), reference=m.reference,
        request_id=m.request_id, report_url=m.report_url, operator=m.operator,
        data_coding=m.data_coding)
