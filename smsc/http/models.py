"""The HTTP API's request and response bodies as msgspec Structs (``docs: http-api.md``).

The same types decode and validate requests (unknown fields are errors, constraints are
``Meta`` on the fields) and describe them in the generated ``/openapi.json``. Optional fields
the caller leaves out are ``None`` here, so ``message_globals`` can fill what a message
lacks.
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
    "Health", "DataCoding", "STATUS_NAMES", "LinkStats", "TemplateIn", "TemplateUpdate", "Template",
    "TemplatePage", "PreviewRequest", "Ucs2Character", "Rendering", "PreviewRecipient",
    "PreviewResponse",
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
    """Quiet hours on the recipient's wall clock (its time zones from the number; all of
    them for a region with several): a message due inside [start, end) is held, status
    scheduled, until end. start later than end crosses midnight; start and end differ.
    Absent: the account's quiet_hours, if it has them."""

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
    # "scheduled": accepted and held in the store until ``send_at`` (the asked-for time, or
    # the end of the recipient's quiet hours).
    status: Literal["accepted", "scheduled", "rejected"]
    send_at: datetime | None = None
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


class LinkStats(msgspec.Struct, kw_only=True):
    """One tracked link of a message (``track_links``) and its clicks."""

    url: Annotated[str, Meta(description="the original URL the short link redirects to")]
    clicks: Annotated[int, Meta(ge=0, description="GET requests of the short link by people; "
                                                 "HEAD requests and link-preview bots are "
                                                 "not counted")]
    first_clicked_at: datetime | None


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
    links: Annotated[list[LinkStats] | None, Meta(
        description="GET /v1/messages/{id} only, for a message sent with track_links: each "
                    "tracked URL with its clicks and first click time (null elsewhere)")
    ] = None


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


# --- stored templates and preview (http-api.md "Templates, links, analytics") -------------

TemplateName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                                   examples=["welcome"],
                                   description="letters, digits, '_', '.', '-'; 64 at most")]
TemplateContent = Annotated[str, Meta(min_length=1, max_length=100_000,
                                      examples=["Hi {{name}}, your code is {{code}}"])]


class TemplateIn(_Request, kw_only=True):
    """``POST /v1/templates``: a new template."""

    name: TemplateName
    content: TemplateContent


class TemplateUpdate(_Request, kw_only=True):
    """``PUT /v1/templates/{name}``: the template's new content."""

    content: TemplateContent


class Template(msgspec.Struct, kw_only=True):
    name: str
    content: str
    created_at: datetime
    updated_at: datetime


class TemplatePage(msgspec.Struct, kw_only=True):
    data: list[Template]


class PreviewRequest(_Request, kw_only=True):
    """``POST /v1/messages/preview``: a message as it would be sent, without sending it.
    ``vars`` apply to every recipient (a recipient's own ``vars`` win)."""

    content: Annotated[str, Meta(min_length=1, max_length=100_000)] | None = None
    template: TemplateName | None = None
    vars: Vars = {}
    recipients: Annotated[list[str | Recipient], Meta(max_length=1000)] = []
    originator: Originator | None = None
    data_coding: DataCoding | None = None
    send_at: Annotated[datetime, Meta(tz=True)] | None = None
    quiet_hours: QuietHours | None = None
    # URLs become short links of the real length (example codes: the real ones are made
    # when the message is sent), so parts count them as sending will
    track_links: bool | None = None


class Ucs2Character(msgspec.Struct, kw_only=True):
    """A character that does not fit GSM-7, so the whole message goes as UCS-2."""

    char: str
    code_point: str  # "U+1F600"
    positions: list[int]  # character offsets in the rendered text, from 0


class Rendering(msgspec.Struct, kw_only=True):
    """What one rendered text costs, split as the operator's submit_sm will be."""

    text: str
    encoding: Literal["gsm7", "ucs2"]
    parts: int
    units: int  # septets (GSM-7 extension characters count two) or UTF-16 code units
    per_part: int  # units one part carries (160/153 GSM-7, 70/67 UCS-2 with udh8)
    chars_left: int  # units left in the last part
    ucs2_characters: list[Ucs2Character]


class PreviewRecipient(msgspec.Struct, kw_only=True):
    recipient: str
    rendering: Rendering | None  # None when the number is not a number
    opted_out: bool
    deferred: bool  # quiet hours would hold it
    deferred_until: datetime | None
    error: ErrorInfo | None = None


class PreviewResponse(msgspec.Struct, kw_only=True):
    """The first recipient's rendering (or, without recipients, the request's ``vars``'),
    then each recipient's."""

    text: str
    encoding: Literal["gsm7", "ucs2"]
    parts: int
    units: int
    per_part: int
    chars_left: int
    ucs2_characters: list[Ucs2Character]
    recipients: list[PreviewRecipient]
