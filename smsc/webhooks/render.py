"""Events as webhook envelopes: ``{"type", "timestamp", "data"}`` (http-api.md, "Events").

``message.sent`` when every part was handed to an operator, ``message.delivered`` or
``message.failed`` at the final outcome, ``message.inbound`` for an MO message. Message data
is the status object's fields the event knows (ids as the tenant sees them); inbound data is
``{id, from, to, content, received_at, parts}``; a click of a tracked link,
``message.clicked`` with ``{message_id, url, clicked_at}``; a change of consent,
``contact.opted_out`` / ``contact.opted_in`` with the consent record ``{number, state,
source, detail, inbound_id, at}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import msgspec

from config import TenantConfig
from encoding.constants import EsmClass
from encoding.errors import SmppError
from encoding.text import decode_text, parse_udh
from routing.events import (
    ClickEvent,
    ConsentEvent,
    MoEvent,
    ReceiptEvent,
    SentEvent,
    TenantEvent,
)
from routing.model import Status, external_id, shown_number

__all__ = ["render_webhook", "Envelope", "MessageData", "InboundData", "ClickData",
           "ConsentData", "event_type"]

_STATUS = {s: s.value for s in Status} | {Status.SUBMITTED: "sent"}
_ENC = {0x00: "gsm7", 0x08: "ucs2", 0x03: "latin1"}


class WebhookError(msgspec.Struct, omit_defaults=True):
    code: str
    smpp_status: int | None = None


class MessageData(msgspec.Struct, omit_defaults=True, kw_only=True):
    id: str
    status: str
    recipient: str
    originator: str
    parts: int
    encoding: str
    request_id: str | None = None
    client_ref: str | None = None
    operator: str | None = None
    error: WebhookError | None = None
    created_at: datetime | None = None
    sent_at: datetime | None = None
    done_at: datetime | None = None


class InboundData(msgspec.Struct, kw_only=True):
    id: str
    from_: str = msgspec.field(name="from")
    to: str
    content: str
    received_at: datetime
    parts: int


class ClickData(msgspec.Struct, kw_only=True):
    message_id: str
    url: str
    clicked_at: datetime


class ConsentData(msgspec.Struct, kw_only=True):
    """A consent record (routing.consent), as ``GET /v1/opt-outs/{number}`` lists them."""

    number: str
    state: str
    source: str
    detail: str
    inbound_id: str | None
    at: datetime


class Envelope(msgspec.Struct, kw_only=True):
    type: Literal["message.sent", "message.delivered", "message.failed", "message.inbound",
                  "message.clicked", "contact.opted_out", "contact.opted_in"]
    timestamp: datetime
    data: MessageData | InboundData | ClickData | ConsentData


_encoder = msgspec.json.Encoder()


def _time(t: float) -> datetime | None:
    return datetime.fromtimestamp(t, UTC) if t else None


def event_type(event: TenantEvent) -> str:
    if isinstance(event, SentEvent):
        return "message.sent"
    if isinstance(event, ReceiptEvent):
        return "message.delivered" if event.status is Status.DELIVERED else "message.failed"
    if isinstance(event, ClickEvent):
        return "message.clicked"
    if isinstance(event, ConsentEvent):
        return "contact." + event.state
    return "message.inbound"


def _inbound_text(e: MoEvent) -> str:
    try:
        body = parse_udh(e.body)[1] if e.esm_class & EsmClass.UDHI else e.body
        return decode_text(body, e.data_coding)
    except SmppError:
        return e.body.decode("latin-1")


def render_webhook(event: TenantEvent, event_id: str, tenant: TenantConfig, now: float
                   ) -> bytes | None:
    """The JSON body for ``event``, or None when it has no webhook form."""
    data: MessageData | InboundData | ClickData | ConsentData
    if isinstance(event, ReceiptEvent):
        failed = event.status is not Status.DELIVERED
        data = MessageData(
            id=external_id(tenant.id_format, event.message_id), status=_STATUS[event.status],
            recipient=shown_number(event.destination_addr, event.dest_addr_ton),
            originator=shown_number(event.source_addr, event.source_addr_ton),
            parts=event.parts, encoding=_ENC.get(event.data_coding, "binary"),
            request_id=event.request_id or None, client_ref=event.reference or None,
            operator=event.operator or None,
            error=WebhookError(code=event.status.value, smpp_status=event.error or None)
            if failed else None,
            created_at=_time(event.submitted_at), done_at=_time(event.done_at))
    elif isinstance(event, SentEvent):
        data = MessageData(
            id=external_id(tenant.id_format, event.message_id), status="sent",
            recipient=shown_number(event.destination_addr, event.dest_addr_ton),
            originator=shown_number(event.source_addr, event.source_addr_ton),
            parts=event.parts, encoding=_ENC.get(event.data_coding, "binary"),
            request_id=event.request_id or None, client_ref=event.reference or None,
            operator=event.operator or None, created_at=_time(event.created_at),
            sent_at=_time(event.at))
    elif isinstance(event, MoEvent):
        data = InboundData(id=event.inbound_id or event_id,
                           from_=shown_number(event.source_addr, event.source_addr_ton),
                           to=shown_number(event.destination_addr, event.dest_addr_ton),
                           content=_inbound_text(event),
                           received_at=_time(event.received_at) or datetime.now(UTC),
                           parts=event.parts)
    elif isinstance(event, ClickEvent):
        data = ClickData(message_id=external_id(tenant.id_format, event.message_id),
                         url=event.url,
                         clicked_at=_time(event.clicked_at) or datetime.now(UTC))
    elif isinstance(event, ConsentEvent):
        data = ConsentData(number=shown_number(event.number, 1), state=event.state,
                           source=event.source, detail=event.detail,
                           inbound_id=event.inbound_id or None,
                           at=_time(event.at) or datetime.now(UTC))
    else:
        return None
    return _encoder.encode(Envelope(type=event_type(event),  # type: ignore[arg-type]
                                    timestamp=datetime.fromtimestamp(now, UTC), data=data))
