"""The HTTP API as a Litestar application: routes, bearer auth, problem+json errors.

Request and response bodies are the msgspec Structs of ``models``, so Litestar decodes and
validates them and ``/openapi.json`` is generated from the same types. Every error is
``application/problem+json``; when a body does not decode, it is walked again to name every
bad field (``problems.field_problems``). What the handlers do is the services' job
(``sending``, the record, the router, the event queue); this module only maps HTTP onto
them (http-api.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Litestar, Request, Response, delete, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, ValidationException
from litestar.middleware import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
    DefineMiddleware,
)
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.types import ASGIApp
from litestar.utils.scope.state import ScopeState

from config import GatewayConfig, TenantConfig
from routing.channels import webhook_queue
from routing.events import EVENT_KIND, SentEvent
from routing.model import Status, external_id, internal_id
from routing.repository import EventQueue, MessageFilter, MessageRecord

from . import models
from .models import (
    CancelResponse,
    EventInfo,
    EventPage,
    FieldProblem,
    Health,
    MessagePage,
    MessageStatus,
    Problem,
    RequestCounts,
    SendRequest,
    SendResponse,
    StatusName,
)
from .problems import ApiError, field_problems, problem_of
from .sending import SendService
from .status import STATUS_NAME, STATUS_OF_NAME, status_of, timestamp
from .tokens import Tokens

__all__ = ["HttpApi", "counted"]

log = logging.getLogger("smsc.http")
_PROBLEM = "application/problem+json"
_JSON = "application/json"
_encoder = msgspec.json.Encoder()
_CODE_OF_HTTP = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large",
                 415: "unsupported_media_type", 400: "bad_request"}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]  # every route but /health and docs
_EVENT_TYPE = {"receipt": "message.delivered", "mo": "message.inbound", "sent": "message.sent"}


def _problem_response(exc: ApiError) -> Response[Any]:
    return Response(_encoder.encode(problem_of(exc)), status_code=exc.status,
                    media_type=_PROBLEM, headers=exc.headers)


def _json(value: object, status: int = 200, headers: dict[str, str] | None = None
          ) -> Response[Any]:
    return Response(_encoder.encode(value), status_code=status, media_type=_JSON,
                    headers=headers)


def _raw(body: bytes, status: int, headers: dict[str, str] | None) -> Response[Any]:
    return Response(body, status_code=status, media_type=_JSON, headers=headers)


def _is_json(request: Request[Any, Any, Any]) -> bool:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media == _JSON or (media.startswith("application/") and media.endswith("+json"))


def _on_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """A body or a parameter did not validate: name every bad field."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    if any(isinstance(e, dict) and e.get("source") == "body" for e in extra) or not extra:
        body = ScopeState.from_scope(request.scope).body
        if request.method in ("POST", "PUT", "PATCH"):
            return _problem_response(_body_problem(request, body))
    problems = [FieldProblem(pointer="", code="invalid_parameter",
                             detail=f"{getattr(e.get('source'), 'value', 'query')} parameter "
                                    f"{e.get('key', '?')}: {e.get('message', 'invalid')}")
                for e in extra if isinstance(e, dict)]
    return _problem_response(ApiError(400, "invalid_request", "invalid parameters", problems))


def _body_problem(request: Request[Any, Any, Any], body: object) -> ApiError:
    if not _is_json(request):
        return ApiError(415, "unsupported_media_type", "send Content-Type: application/json")
    if not isinstance(body, bytes) or not body:
        return ApiError(400, "invalid_json", "the body is empty")
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError as e:
        return ApiError(400, "invalid_json", f"the body is not JSON: {e}")
    except RecursionError:
        return ApiError(400, "invalid_json", "the body nests too deeply")
    handler = request.route_handler
    field = handler.parsed_fn_signature.parameters.get("data")
    tp = field.annotation if field is not None else SendRequest
    problems = field_problems(raw, tp) or [FieldProblem(pointer="", code="invalid_value",
                                                        detail="invalid body")]
    return ApiError(400, "invalid_request", "the request has invalid fields", problems)


def _on_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status == 400 and request.method in ("POST", "PUT", "PATCH"):  # an unreadable body
        return _problem_response(_body_problem(request, ScopeState.from_scope(
            request.scope).body))
    return _problem_response(ApiError(status, _CODE_OF_HTTP.get(status, "http_error"),
                                      str(exc.detail)))


def _on_api(request: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    return _problem_response(exc)


def _on_any(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, RecursionError):  # msgspec decoding a body nested thousands deep
        return _problem_response(ApiError(400, "invalid_json", "the body nests too deeply"))
    log.exception("HTTP %s %s failed", request.method, request.url.path)
    return _problem_response(ApiError(500, "internal_error", "the gateway failed; retry"))


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    """The problem+json answers a route documents (401 on every authenticated one)."""
    why = {400: "Invalid request: every bad field named in errors[] by JSON pointer",
           401: "Missing or unknown bearer token", 403: "Not allowed for this token",
           404: "No such resource for this tenant", 409: "Conflict",
           413: "Body over [http] max_body_bytes", 415: "Not application/json",
           429: "Over the tenant's rate (Retry-After, RateLimit headers)",
           503: "Queue full or stopping (Retry-After)"}
    return {c: ResponseSpec(Problem, description=why[c], media_type=_PROBLEM,
                            generate_examples=False) for c in (401, *codes)}


class BearerAuth(AbstractAuthenticationMiddleware):
    """Authenticates every request before anything else runs (the body is not read for a
    bad token); the tenant becomes the connection's ``user``. Routes with ``opt={"public":
    True}`` and the API reference pages need no token."""

    def __init__(self, app: ASGIApp, tokens: Tokens) -> None:
        super().__init__(app, exclude=["^/docs"], exclude_from_auth_key="public")
        self.tokens = tokens

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]
                                   ) -> AuthenticationResult:
        peer = connection.client.host if connection.client else ""
        tenant = self.tokens.tenant(connection.headers.get("authorization"), peer)
        return AuthenticationResult(user=tenant, auth=None)


class HttpApi:
    """Builds the Litestar app over the gateway's services."""

    def __init__(self, config: GatewayConfig, sending: SendService, record: MessageRecord,
                 events: EventQueue, cancel: Callable[[str, float], bool], *,
                 wall: Callable[[], float], accepting: Callable[[], bool]) -> None:
        self.config = config
        self.sending = sending
        self.record = record
        self.events = events
        self.cancel = cancel  # the router's: True when the message was still queued
        self.wall = wall
        self.accepting = accepting
        self.tokens = Tokens(config.tenants)
        self._openapi: bytes | None = None
        self.app = self._build()

    @staticmethod
    def _tenant(request: Request[Any, Any, Any]) -> TenantConfig:
        tenant: TenantConfig = request.scope["user"]  # set by BearerAuth
        return tenant

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
              summary="Send messages", security=_BEARER,
              responses=_errors(400, 403, 409, 413, 415, 429, 503),
              description="One request, 1 to max_recipients recipients. 200 only once every "
                          "accepted message is durably stored; per-recipient results in "
                          "request order. Idempotency-Key: a repeat within 24 h returns the "
                          "first answer (Idempotency-Replayed: true); another body, 409.")
        async def send(request: Request[Any, Any, Any], data: JSONBody[SendRequest],
                       idempotency_key: Annotated[str | None, HeaderParameter(
                           name="Idempotency-Key", max_length=255)] = None,
                       ) -> Response[SendResponse]:
            tenant = api._tenant(request)
            if not _is_json(request):
                raise ApiError(415, "unsupported_media_type",
                               "send Content-Type: application/json")
            body = await request.body()
            answer = await api.sending.send(tenant, data, body, idempotency_key)
            headers = {"Idempotency-Replayed": "true"} if answer.replayed else None
            return _raw(answer.body, answer.status, headers)

        @get("/v1/messages/{message_id:str}", tags=["messages"], summary="One message",
             security=_BEARER, responses=_errors(404), operation_id="get_message")
        async def one(request: Request[Any, Any, Any], message_id: FromPath[str]
                      ) -> Response[MessageStatus]:
            tenant = api._tenant(request)
            mid = api._own(tenant, message_id)
            m = api.record.get(mid)
            assert m is not None
            return _json(status_of(m, api.record.history_of(mid), tenant))

        @get("/v1/messages", tags=["messages"], summary="List messages, newest first",
             security=_BEARER, responses=_errors(400), operation_id="list_messages")
        async def listing(
                request: Request[Any, Any, Any], request_id: FromQuery[str | None] = None,
                status: FromQuery[StatusName | None] = None,
                recipient: FromQuery[str | None] = None,
                since: FromQuery[datetime | None] = None,
                until: FromQuery[datetime | None] = None,
                limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
                cursor: Annotated[str | None, QueryParameter(max_length=64)] = None,
        ) -> Response[MessagePage]:
            tenant = api._tenant(request)
            before = ""
            if cursor:
                before = internal_id(tenant.id_format, cursor) or ""
                if not before.isdigit():
                    raise ApiError(400, "invalid_cursor", "cursor is not one this API gave")
            if status == "scheduled":  # nothing is scheduled before scheduling exists
                return _json(MessagePage(data=[], next_cursor=None))
            f = MessageFilter(
                request_id=request_id or "", recipient=(recipient or "").strip().lstrip("+"),
                status=STATUS_OF_NAME[status] if status else None,
                since=since.timestamp() if since else 0.0,
                until=until.timestamp() if until else 0.0, before_id=before, limit=limit)
            found = api.record.find(tenant.system_id, f)
            data = [status_of(m, api.record.history_of(m.id), tenant) for m in found]
            nxt = data[-1].id if len(found) == limit else None
            return _json(MessagePage(data=data, next_cursor=nxt))

        @get("/v1/requests/{request_id:str}", tags=["messages"],
             summary="Counts by status of one send request", security=_BEARER,
             responses=_errors(404),
             operation_id="get_request")
        async def counts(request: Request[Any, Any, Any], request_id: FromPath[str]
                         ) -> Response[RequestCounts]:
            tenant = api._tenant(request)
            got = api.record.request_counts(tenant.system_id, request_id)
            if not got:
                raise ApiError(404, "not_found", f"no request {request_id!r}")
            named = {STATUS_NAME[s]: n for s, n in got.items()}
            return _json(RequestCounts(request_id=request_id, total=sum(got.values()),
                                       counts=named))

        @delete("/v1/messages/{message_id:str}", status_code=200, tags=["messages"],
                summary="Cancel a message not yet handed to an operator",
                security=_BEARER, responses=_errors(404, 409),
                operation_id="cancel_message")
        async def cancel(request: Request[Any, Any, Any], message_id: FromPath[str]
                         ) -> Response[CancelResponse]:
            tenant = api._tenant(request)
            mid = api._own(tenant, message_id)
            if not api.cancel(mid, api.wall()):
                m = api.record.get(mid)
                shown = STATUS_NAME[m.status] if m is not None else "unknown"
                raise ApiError(409, "not_cancellable",
                               f"the message is {shown}; only queued messages can be "
                               "cancelled")
            await api.record.sync()  # type: ignore[misc]
            return _json(CancelResponse(id=message_id, status="cancelled"))

        @get("/v1/events", tags=["events"], summary="Webhook events that failed",
             security=_BEARER, responses=_errors(400), operation_id="list_events")
        async def events(request: Request[Any, Any, Any],
                         event_state: Annotated[Literal["failed"], QueryParameter(
                             name="state")] = "failed",
                         limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
                         cursor: Annotated[str | None, QueryParameter(max_length=64)] = None,
                         ) -> Response[EventPage]:
            tenant = api._tenant(request)
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
            return _json(EventPage(data=data, next_cursor=nxt))

        @post("/v1/events/{event_id:str}/retry", status_code=200, tags=["events"],
              summary="Send a failed event again", security=_BEARER, responses=_errors(404),
              operation_id="retry_event")
        async def retry(request: Request[Any, Any, Any], event_id: FromPath[str]
                        ) -> Response[EventInfo]:
            tenant = api._tenant(request)
            number = _event_number(event_id)
            if not api.events.revive(webhook_queue(tenant.system_id), number):
                raise ApiError(404, "not_found", f"no failed event {event_id!r}")
            return _json(EventInfo(id=event_id, type="", state="pending", attempts=0,
                                   created_at=timestamp(api.wall()), message_id=None))

        @get("/health", tags=["gateway"], summary="Liveness", operation_id="health",
             security=[], opt={"public": True})
        async def health() -> Response[Health]:
            return _json(Health(status="ok" if api.accepting() else "stopping"))

        @get("/openapi.json", include_in_schema=False, opt={"public": True})
        async def openapi(request: Request[Any, Any, Any]) -> Response[Any]:
            if api._openapi is None:
                api._openapi = _encoder.encode(_strict(request.app.openapi_schema.to_schema()))
            return Response(api._openapi, media_type=_JSON)

        return Litestar(
            route_handlers=[send, one, listing, counts, cancel, events, retry, health, openapi],
            middleware=[DefineMiddleware(BearerAuth, tokens=self.tokens)],
            exception_handlers={ApiError: _on_api, ValidationException: _on_validation,
                                HTTPException: _on_http, Exception: _on_any},
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
    return _EVENT_TYPE.get(kind, kind)


def counted(app: Any, count: Callable[[int], None]) -> Any:
    """``app`` with every response's status passed to ``count`` (the metrics)."""
    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def counting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                count(int(message["status"]))
            await send(message)

        await app(scope, receive, counting_send)

    return wrapper
