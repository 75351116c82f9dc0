"""The HTTP API as a Litestar application: its routes and the generated OpenAPI document.

Request and response bodies are the msgspec Structs of ``models``, so Litestar decodes and
validates them and ``/openapi.json`` is generated from the same types. Errors are answered
by ``errors`` (problem+json), tokens checked by ``middleware.BearerAuth``. What the handlers
do is the services' job (``sending``, the record, the router, the event queue); this module
only maps HTTP onto them (http-api.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Litestar, Request, Response, delete, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import (
    DefineMiddleware,
)
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from config import GatewayConfig, TenantConfig
from routing.channels import webhook_queue
from routing.events import EVENT_KIND, SentEvent
from routing.model import Status, external_id, internal_id
from routing.repository import EventQueue, MessageFilter, MessageRecord
from routing.sqlite.rollups import SqliteAnalytics

from ..bans import Bans
from . import models
from .analytics import analytics_handlers
from .dashboard import dashboard_handlers
from .errors import EXCEPTION_HANDLERS, documented_errors
from .links import LinkDesk, link_route, link_stats
from .middleware import BearerAuth
from .models import (
    CancelResponse,
    EventInfo,
    EventPage,
    Health,
    MessagePage,
    MessageStatus,
    RequestCounts,
    SendRequest,
    SendResponse,
    StatusName,
)
from .problems import ApiError
from .replies import BEARER, JSON, json_response, raw_json, require_json, tenant_of
from .sending import SendService
from .status import STATUS_NAME, STATUS_OF_NAME, status_of, timestamp
from .tokens import Tokens

__all__ = ["HttpApi"]

_encoder = msgspec.json.Encoder()
_EVENT_TYPE = {"receipt": "message.delivered", "mo": "message.inbound", "sent": "message.sent",
               "clicked": "message.clicked"}


class HttpApi:
    """Builds the Litestar app over the gateway's services."""

    def __init__(self, config: GatewayConfig, sending: SendService, record: MessageRecord,
                 events: EventQueue, cancel: Callable[[str, float], bool], *,
                 wall: Callable[[], float], accepting: Callable[[], bool],
                 bans: Bans | None = None, links: LinkDesk | None = None,
                 routes: Sequence[HTTPRouteHandler] = ()) -> None:
        self.config = config
        self.sending = sending
        self.record = record
        self.events = events
        self.cancel = cancel  # the scheduler's: True when it was scheduled or queued
        # a cluster node: cancel a message another node's queue holds (routing.nats.control)
        self.elsewhere: Callable[[str], Awaitable[bool]] | None = None
        self.wall = wall
        self.accepting = accepting
        self.tokens = Tokens(config.tenants)
        self.bans = bans  # the gateway's ban table (shared with the SMPP door)
        self.links = links  # tracked links: GET /l/{code} and clicks in status
        self.routes = list(routes)  # built by their own modules (templates, preview, ...)
        self.analytics: SqliteAnalytics | None = None  # for GET /v1/analytics (set by app)
        self._openapi: bytes | None = None
        self.app = self._build()

    def reconfigure(self, config: GatewayConfig) -> None:
        """A reloaded config: tokens and tenants for the next requests (``max_body_bytes``
        is built into the app: it needs a restart)."""
        self.config = config
        self.tokens.reconfigure(config.tenants)

    async def cancel_elsewhere(self, message_id: str) -> bool:
        """A queued message this node's queue does not hold: cancelled on the node whose
        queue does (True once durable there)."""
        m = self.record.get(message_id)
        if m is None or m.status is not Status.ACCEPTED or self.elsewhere is None:
            return False
        return await self.elsewhere(message_id)

    def _own(self, tenant: TenantConfig, message_id: str) -> str:
        """Our id of a tenant's message, or 404 (never 403: another tenant's ids do not
        exist for this one)."""
        internal = internal_id(tenant.id_format, message_id)
        m = self.record.get(internal) if internal is not None else None
        if m is None or m.tenant != tenant.system_id:
            raise ApiError(404, "not_found", f"no message {message_id!r}")
        return m.id

    def _build(self) -> Litestar:
        api = self

        @post(["/v1/messages", "/messages/v1/send"], status_code=200, tags=["messages"],
              summary="Send messages", security=BEARER,
              responses=documented_errors(400, 403, 409, 413, 415, 429, 503),
              description="One request, 1 to max_recipients recipients. 200 only once every "
                          "accepted message is durably stored; per-recipient results in "
                          "request order. Idempotency-Key: a repeat within 24 h returns the "
                          "first answer (Idempotency-Replayed: true); another body, 409.")
        async def send(request: Request[Any, Any, Any], data: JSONBody[SendRequest],
                       idempotency_key: Annotated[str | None, HeaderParameter(
                           name="Idempotency-Key", max_length=255)] = None,
                       ) -> Response[SendResponse]:
            tenant = tenant_of(request)
            require_json(request)
            body = await request.body()
            answer = await api.sending.send(tenant, data, body, idempotency_key)
            headers = {"Idempotency-Replayed": "true"} if answer.replayed else None
            return raw_json(answer.body, answer.status, headers)

        @get("/v1/messages/{message_id:str}", tags=["messages"], summary="One message",
             security=BEARER, responses=documented_errors(404), operation_id="get_message")
        async def one(request: Request[Any, Any, Any], message_id: FromPath[str]
                      ) -> Response[MessageStatus]:
            tenant = tenant_of(request)
            mid = api._own(tenant, message_id)
            m = api.record.get(mid)
            assert m is not None
            shown = status_of(m, api.record.history_of(mid), tenant)
            if api.links is not None:
                shown.links = link_stats(api.links.links.clicks_of(mid)) or None
            return json_response(shown)

        @get("/v1/messages", tags=["messages"], summary="List messages, newest first",
             security=BEARER, responses=documented_errors(400), operation_id="list_messages")
        async def listing(
                request: Request[Any, Any, Any], request_id: FromQuery[str | None] = None,
                status: FromQuery[StatusName | None] = None,
                recipient: FromQuery[str | None] = None,
                since: FromQuery[datetime | None] = None,
                until: FromQuery[datetime | None] = None,
                limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
                cursor: Annotated[str | None, QueryParameter(max_length=64)] = None,
        ) -> Response[MessagePage]:
            tenant = tenant_of(request)
            before = ""
            if cursor:
                before = internal_id(tenant.id_format, cursor) or ""
                if not before.isdigit():
                    raise ApiError(400, "invalid_cursor", "cursor is not one this API gave")
            f = MessageFilter(
                request_id=request_id or "", recipient=(recipient or "").strip().lstrip("+"),
                status=STATUS_OF_NAME[status] if status else None,
                since=since.timestamp() if since else 0.0,
                until=until.timestamp() if until else 0.0, before_id=before, limit=limit)
            found = api.record.find(tenant.system_id, f)
            data = [status_of(m, api.record.history_of(m.id), tenant) for m in found]
            nxt = data[-1].id if len(found) == limit else None
            return json_response(MessagePage(data=data, next_cursor=nxt))

        @get("/v1/requests/{request_id:str}", tags=["messages"],
             summary="Counts by status of one send request", security=BEARER,
             responses=documented_errors(404),
             operation_id="get_request")
        async def counts(request: Request[Any, Any, Any], request_id: FromPath[str]
                         ) -> Response[RequestCounts]:
            tenant = tenant_of(request)
            got = api.record.request_counts(tenant.system_id, request_id)
            if not got:
                raise ApiError(404, "not_found", f"no request {request_id!r}")
            named = {STATUS_NAME[s]: n for s, n in got.items()}
            return json_response(RequestCounts(request_id=request_id, total=sum(got.values()),
                                       counts=named))

        @delete("/v1/messages/{message_id:str}", status_code=200, tags=["messages"],
                summary="Cancel a message not yet handed to an operator",
                security=BEARER, responses=documented_errors(404, 409),
                operation_id="cancel_message")
        async def cancel(request: Request[Any, Any, Any], message_id: FromPath[str]
                         ) -> Response[CancelResponse]:
            tenant = tenant_of(request)
            mid = api._own(tenant, message_id)
            if api.cancel(mid, api.wall()):
                await api.record.sync()  # type: ignore[misc]
            elif not await api.cancel_elsewhere(mid):
                m = api.record.get(mid)
                shown = STATUS_NAME[m.status] if m is not None else "unknown"
                raise ApiError(409, "not_cancellable",
                               f"the message is {shown}; only scheduled or queued "
                               "messages can be cancelled")
            return json_response(CancelResponse(id=message_id, status="cancelled"))

        @get("/v1/events", tags=["events"], summary="Webhook events that failed",
             security=BEARER, responses=documented_errors(400), operation_id="list_events")
        async def events(request: Request[Any, Any, Any],
                         event_state: Annotated[Literal["failed"], QueryParameter(
                             name="state")] = "failed",
                         limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
                         cursor: Annotated[str | None, QueryParameter(max_length=64)] = None,
                         ) -> Response[EventPage]:
            tenant = tenant_of(request)
            after = 0
            if cursor:
                try:
                    after = _event_number(cursor)
                except ApiError:
                    raise ApiError(400, "invalid_cursor",
                                   "cursor is not one this API gave") from None
            claims = api.events.failed(webhook_queue(tenant.system_id), after, limit)
            data = [EventInfo(id=f"evt_{c.id}", type=_type_of(c.event), state="failed",
                              attempts=c.attempts, created_at=timestamp(c.created_at),
                              message_id=_message_of(c.event, tenant))
                    for c in claims]
            nxt = data[-1].id if len(claims) == limit else None
            return json_response(EventPage(data=data, next_cursor=nxt))

        @post("/v1/events/{event_id:str}/retry", status_code=200, tags=["events"],
              summary="Send a failed event again", security=BEARER,
              responses=documented_errors(404), operation_id="retry_event")
        async def retry(request: Request[Any, Any, Any], event_id: FromPath[str]
                        ) -> Response[EventInfo]:
            tenant = tenant_of(request)
            number = _event_number(event_id)
            if not api.events.revive(webhook_queue(tenant.system_id), number):
                raise ApiError(404, "not_found", f"no failed event {event_id!r}")
            return json_response(EventInfo(id=event_id, type="", state="pending", attempts=0,
                                   created_at=timestamp(api.wall()), message_id=None))

        @get("/health", tags=["gateway"], summary="Liveness", operation_id="health",
             security=[], opt={"public": True})
        async def health() -> Response[Health]:
            return json_response(Health(status="ok" if api.accepting() else "stopping"))

        @get("/openapi.json", include_in_schema=False, opt={"public": True})
        async def openapi(request: Request[Any, Any, Any]) -> Response[Any]:
            if api._openapi is None:
                api._openapi = _encoder.encode(_strict(request.app.openapi_schema.to_schema()))
            return Response(api._openapi, media_type=JSON)

        return Litestar(
            route_handlers=[send, one, listing, counts, cancel, events, retry, health, openapi,
                            *dashboard_handlers(), *analytics_handlers(self),
                            *(link_route(self.links) if self.links is not None else []),
                            *self.routes],
            middleware=[DefineMiddleware(BearerAuth, tokens=self.tokens, bans=self.bans,
                                         wall=self.wall)],
            exception_handlers=EXCEPTION_HANDLERS,
            request_max_body_size=self.config.http.max_body_bytes,
            openapi_config=OpenAPIConfig(
                title="smsc HTTP API", version="1", path="/docs",
                description="Send SMS and follow them: the same tenants, limits, durable "
                            "accept and message lifecycle as the gateway's SMPP side. "
                            "Errors are application/problem+json (RFC 9457).",
                render_plugins=[ScalarRenderPlugin()],
                components=Components(security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer")})),
            logging_config=None, debug=False)


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The generated document, saying what the Structs enforce and Litestar leaves out:
    request bodies refuse unknown fields (``forbid_unknown_fields``)."""
    components = schema.get("components", {}).get("schemas", {})
    for name in dir(models):
        cls = getattr(models, name)
        if (isinstance(cls, type) and issubclass(cls, msgspec.Struct)
                and cls.__struct_config__.forbid_unknown_fields and name in components):
            components[name]["additionalProperties"] = False
    return schema


def _message_of(event: object, tenant: TenantConfig) -> str | None:
    """The message an event is about, by the id the tenant was given (None for MO)."""
    mid = getattr(event, "message_id", "")
    return external_id(tenant.id_format, mid) if mid else None


def _event_number(text: str) -> int:
    digits = text.removeprefix("evt_")
    if not (digits.isdigit() and digits.isascii() and len(digits) <= 19
            and int(digits) < 1 << 63):  # SQLite's INTEGER
        raise ApiError(404, "not_found", f"no event {text!r}")
    return int(digits)


def _type_of(event: object) -> str:
    kind = EVENT_KIND.get(type(event), "")
    if isinstance(event, SentEvent):
        return "message.sent"
    status = getattr(event, "status", None)
    if kind == "receipt" and status is not Status.DELIVERED:
        return "message.failed"
    if kind == "consent":
        return "contact." + str(getattr(event, "state", ""))
    return _EVENT_TYPE.get(kind, kind)
