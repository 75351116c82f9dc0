"""Channel-neutral events for a tenant: what happened, not how a channel says it.

A message's final outcome becomes a ``ReceiptEvent`` and an operator's inbound message a
``MoEvent``; both wait in the tenant's event queue until a channel that serves the tenant
(an SMPP receiver bind today, a webhook later) renders and delivers them. ``StoredPdu`` is
what a store written before events existed holds: an already encoded deliver_sm, delivered
as it is. Events are stored as MessagePack (``encode_event`` / ``decode_event``).
"""

from __future__ import annotations

from typing import Final

import msgspec

from .model import Status

__all__ = ["ReceiptEvent", "MoEvent", "SentEvent", "ClickEvent", "ConsentEvent", "StoredPdu",
           "TenantEvent", "Claim", "encode_event", "decode_event", "EVENT_KIND"]


class ReceiptEvent(msgspec.Struct, tag="receipt", gc=False, kw_only=True, array_like=True):
    """A message reached a final status (or UNKNOWN at the receipt timeout)."""

    message_id: str  # the gateway's id (each channel formats it as the tenant asked)
    status: Status
    error: int = 0
    submitted_at: float = 0.0  # wall clock, seconds
    done_at: float = 0.0
    parts: int = 1
    # The original message's addresses (a receipt travels back from destination to source).
    source_addr: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    destination_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    preview: str = ""  # the first 20 characters of the text (receipt "text:" field)
    reference: str = ""  # the caller's own reference, when it gave one
    # Added with the HTTP door (trailing, so events stored before still decode):
    request_id: str = ""
    report_url: str = ""  # the message's own webhook URL, if it gave one
    operator: str = ""
    data_coding: int = 0


class SentEvent(msgspec.Struct, tag="sent", gc=False, kw_only=True, array_like=True):
    """Every part of a message was handed to an operator (webhooks: ``message.sent``)."""

    message_id: str
    operator: str
    at: float
    created_at: float = 0.0
    parts: int = 1
    source_addr: str = ""
    destination_addr: str = ""
    data_coding: int = 0
    reference: str = ""
    request_id: str = ""
    report_url: str = ""
    source_addr_ton: int = 0
    dest_addr_ton: int = 0


class MoEvent(msgspec.Struct, tag="mo", gc=False, kw_only=True, array_like=True):
    """An inbound (MO) message from an operator, whole or one part of a concatenation."""

    source_addr: str
    destination_addr: str
    body: bytes  # user data as received, in ``data_coding`` (with its UDH when ``esm_class``
    # has UDHI: a part passed on unjoined)
    data_coding: int = 0
    esm_class: int = 0
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    service_type: str = ""
    # Concatenation and port TLVs passed on with a part (sar_*, source_port, ...).
    tlvs: dict[str, int] = {}
    received_at: float = 0.0
    operator: str = ""
    parts: int = 1  # how many parts were joined into ``body``
    inbound_id: str = ""  # the gateway's id of this inbound message (consent records name it)


class ClickEvent(msgspec.Struct, tag="clicked", gc=False, kw_only=True, array_like=True):
    """A person followed a tracked link of a message (webhooks: ``message.clicked``; bots
    and HEAD requests make none; routing.links)."""

    message_id: str
    url: str
    clicked_at: float
    report_url: str = ""  # the message's own webhook URL, if it gave one


class ConsentEvent(msgspec.Struct, tag="consent", gc=False, kw_only=True, array_like=True):
    """A number's consent changed (webhooks: ``contact.opted_out`` / ``contact.opted_in``,
    rendered as the consent record; routing.consent)."""

    number: str  # digits, no '+'
    state: str  # "opted_out" | "opted_in"
    source: str  # "keyword" | "api"
    detail: str = ""
    inbound_id: str = ""
    at: float = 0.0


class StoredPdu(msgspec.Struct, tag="pdu", gc=False, array_like=True):
    """An encoded deliver_sm written by a release before events (schema 3 outboxes)."""

    pdu: bytes
    message_id: str = ""


TenantEvent = ReceiptEvent | MoEvent | SentEvent | ClickEvent | ConsentEvent | StoredPdu

EVENT_KIND: Final[dict[type, str]] = {ReceiptEvent: "receipt", MoEvent: "mo",
                                      SentEvent: "sent", ClickEvent: "clicked",
                                      ConsentEvent: "consent",
                                      StoredPdu: "pdu"}

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(TenantEvent)


def encode_event(event: TenantEvent) -> bytes:
    return _encoder.encode(event)


def decode_event(data: bytes) -> TenantEvent:
    """Raises ``msgspec.DecodeError`` for bytes that are not an event."""
    return _decoder.decode(data)


class Claim(msgspec.Struct, gc=False):
    """An event handed to one channel for delivery, until it is settled, retried or released.

    The holder must answer every claim with exactly one of ``EventQueue.settle``,
    ``retry`` or ``release``."""

    id: int
    tenant: str
    event: TenantEvent
    attempts: int = 0
    created_at: float = 0.0
