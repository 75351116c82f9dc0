"""A send request into submissions: globals, personalisation, numbers, encoding, parts.

Pure translation and checking (no I/O, the time is an argument): every problem of the
request is collected with its JSON pointer, so one 400 names them all. A recipient whose
number is not a number is refused alone (``invalid_number``) and the rest still go; the
request is a 400 when it is malformed or no recipient is usable. Text is GSM-7 when every
character fits (``data_coding = "auto"``), else UCS-2, and is split later, at the operator,
exactly as SMPP submissions are (routing.segments); ``parts`` here counts what that split
will make for the first operator of the destination's route. With ``track_links`` each
recipient's text has its URLs replaced by short links (``routing.links``) before it is
encoded, so ``parts`` counts the rewritten text; the links ride with the ``Planned`` entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

import msgspec
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from config import OperatorConfig, TenantConfig
from encoding.constants import RegisteredDelivery
from encoding.errors import TextError
from encoding.smpptime import format_smpp_time
from encoding.text import encode_text, gsm7_fits, split_user_data
from routing.links import Link, rewrite
from routing.submission import Door, Submission
from routing.validate import sender_allowed

from .models import ErrorInfo, FieldProblem, MessageGlobals, MessageSpec, Recipient, SendRequest
from .problems import pointer

__all__ = ["Planned", "Refused", "Plan", "plan_request", "normalise_number", "fill",
           "content_of", "encode_content"]

_PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
_OPTION_FIELDS: Final = tuple(f.name for f in msgspec.structs.fields(MessageGlobals))
_GSM7, _UCS2 = 0x00, 0x08
_MAX_AHEAD_S: Final = 366 * 86400  # send_at: SMPP's absolute time has a 2-digit year


class Planned(msgspec.Struct, gc=False):
    """A recipient that becomes a submission."""

    index: int  # in request order
    submission: Submission
    parts: int
    encoding: str  # "gsm7" | "ucs2"
    links: list[Link] = []  # track_links: the short links in the text, to store with it


class Refused(msgspec.Struct, gc=False):
    """A recipient refused alone; the rest of the request goes ahead."""

    index: int
    recipient: str
    error: ErrorInfo
    client_ref: str | None = None
    pointer: str = ""


class Plan(msgspec.Struct, gc=False):
    entries: list[Planned | Refused]
    problems: list[FieldProblem]  # non-empty: the whole request is a 400
    forbidden: list[FieldProblem]  # non-empty: 403 (an originator outside ``senders``)


def normalise_number(text: str) -> str | None:
    """E.164 digits without '+' (a missing '+' is tolerated), or None when ``text`` is not a
    number: 7 to 15 digits after a country calling code phonenumbers knows (ITU-T E.164)."""
    digits = text.strip().removeprefix("+")
    if not (digits.isdigit() and digits.isascii() and 7 <= len(digits) <= 15):
        return None
    # Country calling codes are prefix-free and 1 to 3 digits (ITU-T E.164): the lookup
    # phonenumbers.parse makes, without its 30 µs of general parsing per number.
    if not any(int(digits[:n]) in COUNTRY_CODE_TO_REGION_CODE for n in (1, 2, 3)):
        return None
    return digits


def fill(content: str, values: dict[str, str]) -> str | list[str]:
    """``content`` with each ``{{name}}`` replaced, or the names ``values`` lacks."""
    missing = [m[1] for m in _PLACEHOLDER.finditer(content) if m[1] not in values]
    if missing:
        return missing
    return _PLACEHOLDER.sub(lambda m: values[m[1]], content)


def content_of(content: str | None, template: str | None, where: Callable[[str], str],
               templates: Callable[[str], str | None] | None,
               problems: list[FieldProblem]) -> str | None:
    """The text to render: ``content``, or the stored template named ``template`` (one of
    the two, not both); None, with the problem appended, when there is none."""
    if content is not None and template is not None:
        problems.append(FieldProblem(pointer=where("template"), code="conflicting_fields",
                                     detail="give content or template, not both"))
        return None
    if content is not None:
        return content
    if template is None:
        problems.append(FieldProblem(pointer=where("content"), code="missing_field",
                                     detail="content (or template) is required"))
        return None
    found = templates(template) if templates is not None else None
    if found is None:
        problems.append(FieldProblem(pointer=where("template"), code="unknown_template",
                                     detail=f"no stored template {template!r}"))
    return found


def _merged(spec: MessageSpec, globals_: MessageGlobals | None
            ) -> tuple[MessageSpec, frozenset[str]]:
    """``spec`` with what it lacks from ``message_globals``, and which fields came from
    there (their problems point into ``/message_globals``)."""
    if globals_ is None:
        return spec, frozenset()
    changes = {name: getattr(globals_, name) for name in _OPTION_FIELDS
               if getattr(spec, name) is None and getattr(globals_, name) is not None}
    if not changes:
        return spec, frozenset()
    return msgspec.structs.replace(spec, **changes), frozenset(changes)


def _source(originator: str) -> tuple[str, int, int]:
    """source_addr, TON, NPI: alphanumeric (TON 5), international (TON 1) or short code."""
    digits = originator.removeprefix("+")
    if not digits.isdigit():
        return originator, 5, 0
    if originator.startswith("+") or len(digits) > 8:
        return digits, 1, 1
    return digits, 3, 0  # a short code: network specific


def encode_content(text: str, data_coding: str) -> tuple[bytes, int] | None:
    """The body and data_coding for ``text``, or None when ``"text"`` was asked and a
    character is not GSM-7."""
    if data_coding == "unicode" or (data_coding == "auto" and not gsm7_fits(text)):
        return encode_text(text, _UCS2), _UCS2
    if data_coding == "text" and not gsm7_fits(text):
        return None
    # DCS 0 in an HTTP message is GSM-7 whatever the tenant's SMPP dcs0 (routing.dcs0_of).
    return encode_text(text, _GSM7), _GSM7


def _unsupported(spec: MessageSpec, where: Callable[[str], str], now: float,
                 tenant: TenantConfig) -> list[FieldProblem]:
    out = []
    if spec.quiet_hours is not None and spec.quiet_hours.start == spec.quiet_hours.end:
        out.append(FieldProblem(pointer=where("quiet_hours") + "/end", code="invalid_value",
                                detail="quiet_hours: end must differ from start"))
    if spec.send_at is not None and spec.send_at.timestamp() > now + _MAX_AHEAD_S:
        out.append(FieldProblem(pointer=where("send_at"), code="invalid_send_at",
                                detail="send_at is at most 366 days ahead"))
    if spec.report_url and not tenant.secrets:
        out.append(FieldProblem(pointer=where("report_url"), code="no_webhook_secret",
                                detail="events are signed: the account needs a "
                                       "webhook_secret before report_url can be used"))
    return out


def plan_request(req: SendRequest, tenant: TenantConfig, now: float, *,
                 operator_for: Callable[[str], OperatorConfig | None],
                 link_base: str = "",
                 templates: Callable[[str], str | None] | None = None) -> Plan:
    """Check and translate ``req`` for ``tenant``; ``operator_for(destination)`` is the first
    operator of its route (for counting parts), or None when there is no route;
    ``link_base`` is the gateway's ``public_url`` (short links are ``{link_base}/l/...``);
    ``templates(name)`` is the content of the tenant's stored template (None: no such one)."""
    entries: list[Planned | Refused] = []
    problems: list[FieldProblem] = []
    forbidden: list[FieldProblem] = []
    index = 0
    for i, raw_spec in enumerate(req.messages):
        spec, inherited = _merged(raw_spec, req.message_globals)
        at = pointer("messages", i)

        def where(name: str, at: str = at, inherited: frozenset[str] = inherited) -> str:
            return pointer("message_globals", name) if name in inherited else f"{at}/{name}"

        problems.extend(_unsupported(spec, where, now, tenant))
        content = content_of(spec.content, spec.template, where, templates, problems)
        if content is None:
            index += len(spec.recipients)
            continue
        originator = spec.originator or (tenant.senders[0] if tenant.senders else "")
        if not sender_allowed(tenant.senders, originator):
            forbidden.append(FieldProblem(
                pointer=where("originator"), code="sender_not_allowed",
                detail=f"{originator!r} is not one of this account's senders"))
        source, ston, snpi = _source(originator) if originator else ("", 0, 0)
        if ston == 5 and len(source) > 11:
            problems.append(FieldProblem(pointer=where("originator"), code="invalid_originator",
                                         detail="an alphanumeric sender has 11 characters "
                                                "at most"))
        # A future send_at is SMPP's schedule_delivery_time (routing.schedule holds it);
        # validity_s counts from when the message is due.
        send_at = spec.send_at.timestamp() if spec.send_at is not None else 0.0
        schedule = format_smpp_time(send_at) if send_at > now else ""
        validity = (format_smpp_time(max(now, send_at) + spec.validity_s)
                    if spec.validity_s else "")
        coding_name = spec.data_coding or "auto"
        # routing.quiet applies it (or else the tenant's quiet_hours) at admission
        qh = spec.quiet_hours
        quiet = f"{qh.start}-{qh.end}" if qh is not None else ""
        for j, r in enumerate(spec.recipients):
            to, values = (r.to, r.vars) if isinstance(r, Recipient) else (r, {})
            here = f"{at}/recipients/{j}"
            text = fill(content, values)
            if isinstance(text, list):
                problems.append(FieldProblem(
                    pointer=here, code="missing_variable",
                    detail="no value for " + ", ".join(f"{{{{{n}}}}}" for n in text)))
                index += 1
                continue
            digits = normalise_number(to)
            if digits is None:
                entries.append(Refused(index, to, ErrorInfo(
                    code="invalid_number", detail=f"{to!r} is not an E.164 number"),
                    spec.client_ref, here))
                index += 1
                continue
            links: list[Link] = []
            if spec.track_links:
                text, links = rewrite(text, link_base)
            encoded = encode_content(text, coding_name)
            if encoded is None:
                problems.append(FieldProblem(
                    pointer=here if values else where("content"), code="not_gsm7",
                    detail='a character does not fit GSM-7 (data_coding "text"); use '
                           '"auto" or "unicode"'))
                index += 1
                continue
            body, coding = encoded
            op = operator_for(digits)
            try:
                parts = len(split_user_data(
                    body, coding,
                    method="udh8" if op is None or op.split == "payload" else op.split,
                    max_parts=op.max_parts if op is not None else 255).segments)
            except TextError as exc:
                problems.append(FieldProblem(pointer=here if values else where("content"),
                                             code="content_too_long", detail=str(exc)))
                index += 1
                continue
            entries.append(Planned(index, Submission(
                tenant=tenant.system_id, source_addr=source, source_addr_ton=ston,
                source_addr_npi=snpi, destination_addr=digits, dest_addr_ton=1,
                dest_addr_npi=1, data_coding=coding, body=body,
                registered_delivery=RegisteredDelivery.RECEIPT_ALWAYS,
                validity_period=validity, schedule_delivery_time=schedule, door=Door.HTTP,
                reference=spec.client_ref or "",
                report_url=spec.report_url or "", quiet_hours=quiet), parts,
                "gsm7" if coding == _GSM7 else "ucs2", links))
            index += 1
    # a field inherited by several messages is one problem, at /message_globals
    return Plan(entries, list(dict.fromkeys(problems)), list(dict.fromkeys(forbidden)))
