"""The HTTP API's errors as Litestar sees them: its exception handlers, every answer
``application/problem+json`` (RFC 9457), and the error answers each route documents.

A body that does not decode is walked again to name every bad field
(``problems.field_problems``); an unreadable or non-JSON body is ``invalid_json`` or 415;
parameter errors name the parameter; anything unexpected is a logged 500 problem.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.types import ExceptionHandlersMap
from litestar.utils.scope.state import ScopeState

from .models import FieldProblem, Problem, SendRequest
from .problems import ApiError, field_problems, problem_of

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM", "documented_errors", "is_json",
           "problem_response"]

log = logging.getLogger("smsc.http")
PROBLEM = "application/problem+json"
_JSON = "application/json"
_encoder = msgspec.json.Encoder()
_CODE_OF_HTTP = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large",
                 415: "unsupported_media_type", 400: "bad_request"}


def problem_response(exc: ApiError) -> Response[Any]:
    return Response(_encoder.encode(problem_of(exc)), status_code=exc.status,
                    media_type=PROBLEM, headers=exc.headers)


def is_json(request: Request[Any, Any, Any]) -> bool:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media == _JSON or (media.startswith("application/") and media.endswith("+json"))


def _on_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """A body or a parameter did not validate: name every bad field."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    if any(isinstance(e, dict) and e.get("source") == "body" for e in extra) or not extra:
        body = ScopeState.from_scope(request.scope).body
        if request.method in ("POST", "PUT", "PATCH"):
            return problem_response(_body_problem(request, body))
    problems = [FieldProblem(pointer="", code="invalid_parameter",
                             detail=f"{getattr(e.get('source'), 'value', 'query')} parameter "
                                    f"{e.get('key', '?')}: {e.get('message', 'invalid')}")
                for e in extra if isinstance(e, dict)]
    return problem_response(ApiError(400, "invalid_request", "invalid parameters", problems))


def _body_problem(request: Request[Any, Any, Any], body: object) -> ApiError:
    if not is_json(request):
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
        return problem_response(_body_problem(request, ScopeState.from_scope(
            request.scope).body))
    return problem_response(ApiError(status, _CODE_OF_HTTP.get(status, "http_error"),
                                      str(exc.detail)))


def _on_api(request: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    return problem_response(exc)


def _on_any(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, RecursionError):  # msgspec decoding a body nested thousands deep
        return problem_response(ApiError(400, "invalid_json", "the body nests too deeply"))
    log.exception("HTTP %s %s failed", request.method, request.url.path)
    return problem_response(ApiError(500, "internal_error", "the gateway failed; retry"))


def documented_errors(*codes: int) -> dict[int, ResponseSpec]:
    """The problem+json answers a route documents (401 and 429 on every authenticated
    one: 429 also answers an address banned after too many failed authentications)."""
    why = {400: "Invalid request: every bad field named in errors[] by JSON pointer",
           401: "Missing or unknown bearer token", 403: "Not allowed for this token",
           404: "No such resource for this tenant", 409: "Conflict",
           413: "Body over [http] max_body_bytes", 415: "Not application/json",
           429: "Over the tenant's rate (Retry-After, RateLimit headers), or code "
                "too_many_auth_failures: this address sent [auth] max_auth_failures bad "
                "tokens or binds within auth_failure_window_s and is refused for "
                "auth_ban_s (Retry-After)",
           503: "Queue full or stopping (Retry-After)"}
    return {c: ResponseSpec(Problem, description=why[c], media_type=PROBLEM,
                            generate_examples=False) for c in sorted({401, 429, *codes})}


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ApiError: _on_api, ValidationException: _on_validation, HTTPException: _on_http,
    Exception: _on_any}
