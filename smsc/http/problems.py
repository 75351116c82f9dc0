"""Errors of the HTTP API as ``application/problem+json`` (RFC 9457), every bad field named.

``ApiError`` carries the HTTP status, a stable ``code`` and the field problems; the app turns
it into a ``Problem`` body. msgspec stops at the first bad field, so when a body does not
decode, ``field_problems`` walks it against the same Struct types to name every bad field
at once, each with an RFC 6901 JSON pointer (``/messages/0/recipients/3``).
"""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec

from .models import FieldProblem, Problem

__all__ = ["ApiError", "field_problems", "problem_of", "pointer", "TITLES"]

TITLES: dict[int, str] = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 413: "Payload too large",
    415: "Unsupported media type", 422: "Unprocessable content", 429: "Too many requests",
    500: "Internal error", 503: "Service unavailable",
}


class ApiError(Exception):
    """An answer other than success; ``headers`` go out with it (Retry-After, ...)."""

    def __init__(self, status: int, code: str, detail: str = "",
                 errors: list[FieldProblem] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


def problem_of(exc: ApiError) -> Problem:
    return Problem(type=f"urn:smsc:problem:{exc.code.replace('_', '-')}",
                   title=TITLES.get(exc.status, "Error"), status=exc.status, code=exc.code,
                   detail=exc.detail, errors=exc.errors)


def pointer(*parts: object) -> str:
    """A JSON pointer from path parts (RFC 6901 escapes ``~`` and ``/``)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$")
_STEP = re.compile(r"\[(\d+|\.\.\.)\]|\.([A-Za-z_][A-Za-z0-9_]*)")


def _problem(exc: msgspec.ValidationError, base: str) -> FieldProblem:
    m = _AT.match(str(exc))
    msg, path = (m["msg"], m["path"] or "") if m else (str(exc), "")
    steps = [a if a else b for a, b in _STEP.findall(path)]
    where = base + pointer(*steps)
    unknown = re.match(r"Object contains unknown field `(.*)`", msg)
    if unknown:
        return FieldProblem(pointer=where + pointer(unknown[1]), code="unknown_field",
                            detail="unknown field")
    missing = re.match(r"Object missing required field `(.*)`", msg)
    if missing:
        return FieldProblem(pointer=where + pointer(missing[1]), code="missing_field",
                            detail="required")
    return FieldProblem(pointer=where, code="invalid_value", detail=msg)


def _struct_of(tp: Any) -> list[type[msgspec.Struct]]:
    """The Struct types a (possibly Annotated, optional or union) type admits."""
    if get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in (Union, types.UnionType):
        return [s for a in get_args(tp) for s in _struct_of(a)]
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return [tp]
    return []


def _unwrap(tp: Any) -> Any:
    """``tp`` without Annotated and without None in an optional union."""
    if get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return tp


def _list_item(tp: Any) -> Any | None:
    tp = _unwrap(tp)
    return get_args(tp)[0] if get_origin(tp) is list else None


def _dict_value(tp: Any) -> Any | None:
    tp = _unwrap(tp)
    return get_args(tp)[1] if get_origin(tp) is dict else None


def field_problems(raw: Any, tp: Any, base: str = "") -> list[FieldProblem]:
    """Every problem of ``raw`` (decoded JSON) against ``tp``, each at its pointer."""
    try:
        msgspec.convert(raw, tp)
        return []
    except msgspec.ValidationError as exc:
        first = exc
    structs = _struct_of(tp)
    if structs and isinstance(raw, dict):
        return _struct_problems(raw, structs[0], base)
    item = _list_item(tp)
    if item is not None and isinstance(raw, list):
        out = [p for i, v in enumerate(raw) for p in field_problems(v, item, f"{base}/{i}")]
        return out or [_problem(first, base)]  # a length constraint on the list itself
    value = _dict_value(tp)
    if value is not None and isinstance(raw, dict):
        out = [p for k, v in raw.items() for p in field_problems(v, value, base + pointer(k))]
        return out or [_problem(first, base)]  # a key, or the size, is what is wrong
    return [_problem(first, base)]


def _struct_problems(raw: dict[str, Any], cls: type[msgspec.Struct], base: str
                     ) -> list[FieldProblem]:
    out: list[FieldProblem] = []
    fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
    for key in raw:
        if key not in fields:
            out.append(FieldProblem(pointer=base + pointer(key), code="unknown_field",
                                    detail="unknown field"))
    for name, f in fields.items():
        if name not in raw:
            if f.required:
                out.append(FieldProblem(pointer=base + pointer(name), code="missing_field",
                                        detail="required"))
            continue
        out.extend(field_problems(raw[name], f.type, base + pointer(name)))
    return out
