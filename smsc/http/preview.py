"""``POST /v1/messages/preview``: what a message would be, without sending it.

For a content or a stored template, with ``vars`` and per-recipient ``vars``, the answer
gives the rendered text, its encoding, the parts, the units used and left in the last part,
and each character that forces UCS-2 with its positions, so a customer sees why a message
costs two parts. Rendering and encoding are the send path's own (``translate``: ``fill``,
``content_of``, ``encode_content``), the split the dispatcher's (``routing.cost`` over
``routing.segments.build_parts``, for the first operator of each recipient's route), so the
preview says what sending does; with ``track_links`` the URLs are replaced by short links
of the real length (``routing.links.rewrite``; example codes, nothing is stored). Per
recipient it also says whether the number is opted out and whether quiet hours would hold
the message (and until when), through hooks the composition root gives (``opted_out``,
``deferred_until``); without them both are false/null.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody

from config import OperatorConfig, TenantConfig
from routing.cost import cost_of, ucs2_forcing
from routing.links import rewrite
from routing.templates import TemplateBook

from .errors import documented_errors
from .models import (
    ErrorInfo,
    FieldProblem,
    PreviewRecipient,
    PreviewRequest,
    PreviewResponse,
    Recipient,
    Rendering,
    Ucs2Character,
)
from .problems import ApiError
from .replies import BEARER, json_response, require_json, tenant_of
from .status import timestamp
from .translate import content_of, encode_content, fill, normalise_number

__all__ = ["PreviewService", "preview_routes", "OptedOut", "DeferredUntil"]

# (tenant system_id, E.164 digits) -> opted out?
OptedOut = Callable[[str, str], bool]
# (tenant, E.164 digits, the request's quiet hours as ("21:00", "08:00") or None for the
# tenant's own, the time it would be due) -> when quiet hours would release it, or None
DeferredUntil = Callable[[TenantConfig, str, tuple[str, str] | None, float], float | None]


class PreviewService:
    def __init__(self, templates: TemplateBook | None,
                 operator_for: Callable[[str, str], OperatorConfig | None], *,
                 wall: Callable[[], float], opted_out: OptedOut | None = None,
                 deferred_until: DeferredUntil | None = None,
                 link_base: Callable[[], str] = lambda: "") -> None:
        self.templates = templates
        self.operator_for = operator_for  # (tenant, destination) -> first operator
        self.wall = wall
        self.opted_out = opted_out
        self.deferred_until = deferred_until
        self.link_base = link_base  # public_url, for track_links

    def preview(self, tenant: TenantConfig, req: PreviewRequest) -> PreviewResponse:
        """The preview of ``req``, or ApiError 400 naming every bad field."""
        problems: list[FieldProblem] = []
        book = self.templates
        content = content_of(
            req.content, req.template, lambda name: "/" + name,
            None if book is None else lambda name: book.content(tenant.system_id, name),
            problems)
        if content is None:
            raise ApiError(400, "invalid_request", "the request has invalid fields", problems)
        coding = req.data_coding or "auto"
        at = req.send_at.timestamp() if req.send_at is not None else self.wall()
        at = max(at, self.wall())
        window = (req.quiet_hours.start, req.quiet_hours.end) if req.quiet_hours else None
        first: Rendering | None = None
        links = self.link_base() if req.track_links else None
        out: list[PreviewRecipient] = []
        if not req.recipients:
            first = self._render(content, req.vars, coding, None, "/vars", "/content",
                                 problems, links)
        for j, r in enumerate(req.recipients):
            to, own = (r.to, r.vars) if isinstance(r, Recipient) else (r, {})
            here = f"/recipients/{j}"
            digits = normalise_number(to)
            if digits is None:
                out.append(PreviewRecipient(
                    recipient=to, rendering=None, opted_out=False, deferred=False,
                    deferred_until=None, error=ErrorInfo(
                        code="invalid_number", detail=f"{to!r} is not an E.164 number")))
                continue
            rendering = self._render(
                content, {**req.vars, **own}, coding,
                self.operator_for(tenant.system_id, digits), here,
                here if own else "/content", problems, links)
            if rendering is None:
                continue
            first = first or rendering
            until = (self.deferred_until(tenant, digits, window, at)
                     if self.deferred_until is not None else None)
            held = until is not None and until > at
            out.append(PreviewRecipient(
                recipient="+" + digits, rendering=rendering,
                opted_out=(self.opted_out(tenant.system_id, digits)
                           if self.opted_out is not None else False),
                deferred=held, deferred_until=timestamp(until) if held and until else None))
        if problems:
            raise ApiError(400, "invalid_request", "the request has invalid fields",
                           list(dict.fromkeys(problems)))
        if first is None:
            raise ApiError(400, "no_usable_recipient", "no recipient is a number",
                           [FieldProblem(pointer=f"/recipients/{j}", code="invalid_number",
                                         detail=p.error.detail if p.error else "")
                            for j, p in enumerate(out)])
        return PreviewResponse(
            text=first.text, encoding=first.encoding, parts=first.parts, units=first.units,
            per_part=first.per_part, chars_left=first.chars_left,
            ucs2_characters=first.ucs2_characters, recipients=out)

    @staticmethod
    def _render(content: str, values: dict[str, str], coding_name: str,
                op: OperatorConfig | None, var_at: str, text_at: str,
                problems: list[FieldProblem], link_base: str | None = None
                ) -> Rendering | None:
        """One text as sending would make it: filled (a missing variable is a problem at
        ``var_at``), its URLs made short links under ``link_base`` (track_links; None: no),
        encoded, split for ``op``."""
        text = fill(content, values)
        if isinstance(text, list):
            problems.append(FieldProblem(
                pointer=var_at, code="missing_variable",
                detail="no value for " + ", ".join(f"{{{{{n}}}}}" for n in text)))
            return None
        if link_base is not None:
            text, _ = rewrite(text, link_base)
        encoded = encode_content(text, coding_name)
        if encoded is None:
            problems.append(FieldProblem(
                pointer=text_at, code="not_gsm7",
                detail='a character does not fit GSM-7 (data_coding "text"); use "auto" '
                       'or "unicode"'))
            return None
        body, data_coding = encoded
        cost = cost_of(body, data_coding, op)
        if cost.error:
            problems.append(FieldProblem(pointer=text_at, code="content_too_long",
                                         detail=f"more than the {op.max_parts if op else 255}"
                                                " parts the route allows"))
            return None
        ucs2 = data_coding == 0x08
        forcing = ucs2_forcing(text) if ucs2 else {}
        return Rendering(
            text=text, encoding="ucs2" if ucs2 else "gsm7", parts=cost.parts, units=cost.units,
            per_part=cost.per_part, chars_left=cost.chars_left,
            ucs2_characters=[Ucs2Character(char=ch, code_point=f"U+{ord(ch):04X}",
                                           positions=where)
                             for ch, where in forcing.items()])


def preview_routes(service: PreviewService) -> list[HTTPRouteHandler]:
    @post("/v1/messages/preview", status_code=200, tags=["messages"],
          summary="Preview a message without sending it", security=BEARER,
          responses=documented_errors(400, 415), operation_id="preview_message",
          description="The rendered text (content or a stored template, with vars and each "
                      "recipient's vars), its encoding, parts, units used and left in the "
                      "last part, the characters that force UCS-2, and per recipient whether "
                      "it is opted out or quiet hours would hold it. Nothing is sent or "
                      "stored.")
    async def preview(request: Request[Any, Any, Any], data: JSONBody[PreviewRequest]
                      ) -> Response[PreviewResponse]:
        require_json(request)
        return json_response(service.preview(tenant_of(request), data))

    return [preview]
