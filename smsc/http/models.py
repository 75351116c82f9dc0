"""The HTTP API's request and response bodies as msgspec Structs (``docs: http-api.md``).

The same types decode and validate requests (unknown fields are errors, constraints are
``Meta`` on the fields) and describe them in the generated ``/openapi.json``. Optional fields
the caller leaves out are ``None`` here, so ``message_globals`` can fill what a message
lacks. Fields the API names for later features (``template``, ``quiet_hours``,
``track_links``, a future ``send_at``) are accepted by name and refused with a clear error
until those features exist, never silently ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "Recipient", "QuietHours", "MessageSpec", "MessageGlobals", "SendRequest", "ErrorInfo",
    "RecipientResult", "SendResponse", "StatusEvent", "MessageStatus", "MessagePage",
    "RequestCounts", "CancelResponse", "FieldProblem", "Problem", "EventInfo", "EventPage",
    "Health", "DataCoding", "STATUS_NAMES",
]

Number = Annotated[str, Meta(min_length=1, max_length=32, examples=["+447700900100"],
                              description="E.164; a missing leading '+' is added")]
Originator = Annotated[str, Meta(min_length=1, max_length=21, examples=["SignOTP"],
                                 description="up to 11 alphanumeric characters, or a number")]
ClientRef = Annotated[str, Meta(max_length=64, description="the caller's own reference")]
Url = Annotated[str, Meta(pattern=r"^https?://", max_length=2048)]
ClockTime = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["21:00"])]
DataCoding = Literal["auto", "text", "unicode"]
Vars = dict[Annotated[str, Meta(max_length=64)], Annotated[str, Meta(max_length=10_000)]]

# Status names shared with the SMPP side's query_sm mapping (http-api.md, "Status").
STATUS_NAMES = ("scheduled", "accepted", "sent", "delivered", "undeliverable", "expired",
                "rejected", "cancelled", "unknown")
StatusName = Literal["scheduled", "accepted", "sent", "delivered", "undeliverable", "expired",
                     "rejected", "cancelled", "unknown"]


class _Request(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    pass


class Recipient(_Request, kw_only=True):
    """A recipient with its own values for the content's ``{{name}}`` placeholders."""

    to: Number
    vars: Vars = {}


class QuietHours(_Request, kw_only=True):
    start: ClockTime
    end: ClockTime


class _Options(_Request, kw_only=True):
    """What a message may say and ``message_globals`` may give for every message."""

    originator: Originator | None = None
    content: Annotated[str, Meta(min_length=1, max_length=100_000)] | None = None
    template: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    msg_type: Literal["text"] | None = None
    data_coding: DataCoding | None = None
    send_at: Annotated[datetime, Meta(tz=True)] | None = None  # with its offset
    validity_s: Annotated[int, Meta(ge=1, le=604_800)] | None = None
    quiet_hours: QuietHours | None = None
    track_links: bool | None = None
    report_url: Url | None = None
    client_ref: ClientRef | None = None


class MessageSpec(_Options, kw_only=True):
    """One message: its content to each of its recipients."""

    # A bare number is checked per recipient (not by the schema): one that is not a number
    # is refused alone (``invalid_number``) while the others go.
    recipients: Annotated[list[str | Recipient], Meta(min_length=1)]


class MessageGlobals(_Options, kw_only=True):
    """Fields that apply to every message lacking them."""


class SendRequest(_Request, kw_only=True):
    """``POST /v1/messages``: one or more messages, up to ``[http] max_recipients``
    recipients in all."""

    messages: Annotated[list[MessageSpec], Meta(min_length=1)]
    message_globals: MessageGlobals | None = None


class ErrorInfo(msgspec.Struct, kw_only=True):
    code: str
    detail: str = ""
    smpp_status: int | None = None


class RecipientResult(msgspec.Struct, kw_only=True):
    """One recipient's outcome, in request order."""

    id: str | None
    recipient: str
    status: Literal["accepted", "rejected"]
    parts: int | None = None
    encoding: Literal["gsm7", "ucs2"] | None = None
    client_ref: str | None = None
    error: ErrorInfo | None = None


class SendResponse(msgspec.Struct, kw_only=True):
    request_id: str
    status: Literal["accepted"]
    created_at: datetime
    messages: list[RecipientResult]


class StatusEvent(msgspec.Struct, kw_only=True):
    status: StatusName
    at: datetime


class MessageStatus(msgspec.Struct, kw_only=True):
    """``GET /v1/messages/{id}``, and the ``data`` of message webhooks."""

    id: str
    request_id: str | None
    client_ref: str | None
    originator: str
    recipient: str
    status: StatusName
    parts: int
    encoding: Literal["gsm7", "ucs2", "latin1", "binary"]
    operator: str | None
    error: ErrorInfo | None
    created_at: datetime
    send_at: datetime | None
    sent_at: datetime | None
    done_at: datetime | None
    events: list[StatusEvent]
    door: Literal["smpp", "http"]


class MessagePage(msgspec.Struct, kw_only=True):
    data: list[MessageStatus]
    next_cursor: str | None


class RequestCounts(msgspec.Struct, kw_only=True):
    request_id: str
    total: int
    counts: dict[str, int]


class CancelResponse(msgspec.Struct, kw_only=True):
    id: str
    status: Literal["cancelled"]


class EventInfo(msgspec.Struct, kw_only=True):
    """A webhook event kept by the gateway (``GET /v1/events``)."""

    id: str
    type: str
    state: Literal["failed", "pending"]
    attempts: int
    created_at: datetime
    message_id: str | None


class EventPage(msgspec.Struct, kw_only=True):
    data: list[EventInfo]
    next_cursor: str | None


class FieldProblem(msgspec.Struct, kw_only=True, frozen=True):
    pointer: str  # RFC 6901 JSON pointer into the request body
    code: str
    detail: str


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An error answer, ``application/problem+json`` (RFC 9457)."""

    type: str
    title: str
    status: int
    code: str
    detail: str = ""
    errors: list[FieldProblem] = []


class Health(msgspec.Struct, kw_only=True):
    status: Literal["ok", "stopping"]
