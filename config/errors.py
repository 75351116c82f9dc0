"""Config errors: one line, "FILE: KEY: REASON", built from msgspec's decode errors.

msgspec reports a validation failure as ``"<reason> - at `$.tenants[0].tps`"``. This module
turns that into a ``ConfigError`` whose key is ``tenants[0].tps``; it adds the offending value
when msgspec leaves it out, the allowed values of a Literal, and the allowed keys (with a
close match) for an unknown key. ``__post_init__`` checks write their reason as
``"field: reason"`` (field a lower-case name, maybe indexed); the field is folded into the key.
The value of a secret key (passwords, password hashes, webhook secrets, API keys: someone
may have pasted the token itself) is never shown, only its length.
"""

from __future__ import annotations

import difflib
import re
import typing
from typing import Any, Literal, get_args, get_origin

import msgspec

__all__ = ["ConfigError", "from_validation_error"]

_AT_RE = re.compile(r"^(?P<reason>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_SEGMENT_RE = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\.`([^`]*)`")
_FIELD_PREFIX_RE = re.compile(r"^(?P<field>[a-z_][a-z0-9_]*(?:\[\d+\])?): (?P<reason>.+)$")
_UNKNOWN_RE = re.compile(r"^Object contains unknown field `(?P<name>[^`]*)`$")
_MISSING_RE = re.compile(r"^Object missing required field `(?P<name>[^`]*)`$")
_SECRET_KEYS = frozenset({"password", "password_hash", "webhook_secret", "api_keys"})


class ConfigError(Exception):
    """A config problem in one file at one key; ``str()`` is a single line."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        self.file = file
        self.key = key
        self.reason = " ".join(reason.split())
        super().__init__(f"{file}: {key}: {self.reason}")


def _segments(path: str) -> list[str | int]:
    out: list[str | int] = []
    for name, index, quoted in _SEGMENT_RE.findall(path):
        if index:
            out.append(int(index))
        else:
            out.append(name or quoted)
    return out


def _key(segments: list[str | int]) -> str:
    text = ""
    for seg in segments:
        text += f"[{seg}]" if isinstance(seg, int) else (f".{seg}" if text else seg)
    return text


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is typing.Annotated:
        tp = get_args(tp)[0]
    return tp


def _type_at(root: type, segments: list[str | int]) -> Any:
    """The declared type at a path of Structs and tuples, or None when it cannot be told."""
    tp: Any = root
    for seg in segments:
        tp = _unwrap(tp)
        if isinstance(seg, int):
            args = get_args(tp)
            if get_origin(tp) is not tuple or not args:
                return None
            tp = args[0]
        elif isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            hints = typing.get_type_hints(tp, include_extras=True)
            if seg not in hints:
                return None
            tp = hints[seg]
        else:
            return None
    return _unwrap(tp)


def _lookup(raw: Any, segments: list[str | int]) -> tuple[bool, Any]:
    for seg in segments:
        try:
            raw = raw[seg]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, raw


def _is_secret(segments: list[str | int]) -> bool:
    names = [seg for seg in segments if isinstance(seg, str)]
    return bool(names) and names[-1] in _SECRET_KEYS


def _show(value: Any, secret: bool = False) -> str:
    if secret and isinstance(value, str):
        return f"a string of {len(value)} characters (not shown: a secret)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, int | float):
        return str(value)
    return f"a {type(value).__name__}"


def from_validation_error(
    file: str, error: msgspec.ValidationError, root: type, raw: Any
) -> ConfigError:
    """Turn msgspec's message into a ConfigError; ``raw`` is the untyped TOML document."""
    text = str(error)
    match = _AT_RE.match(text)
    reason, path = (match["reason"], match["path"]) if match else (text, "")
    segments = _segments(path)
    if unknown := _UNKNOWN_RE.match(reason):
        name = unknown["name"]
        where = _type_at(root, segments)
        reason = "unknown key"
        if isinstance(where, type) and issubclass(where, msgspec.Struct):
            allowed = list(where.__struct_fields__)
            close = difflib.get_close_matches(name, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            reason = f"unknown key ({hint}allowed: {', '.join(allowed)})"
        return ConfigError(file, _key([*segments, name]), reason)
    if missing := _MISSING_RE.match(reason):
        return ConfigError(file, _key([*segments, missing["name"]]), "missing required key")
    if prefixed := _FIELD_PREFIX_RE.match(reason):
        segments += _segments("." + prefixed["field"])
        reason = prefixed["reason"]
    elif reason.startswith("Invalid enum value"):
        leaf = _type_at(root, segments)
        if get_origin(leaf) is Literal:
            reason += " (expected one of: " + ", ".join(repr(a) for a in get_args(leaf)) + ")"
    elif reason.startswith("Expected") and ", got" not in reason:
        found, value = _lookup(raw, segments)
        if found:
            reason += f", got {_show(value, _is_secret(segments))}"
    key = _key(segments) or "(top level)"
    return ConfigError(file, key, reason)
