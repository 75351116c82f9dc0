"""``POST /v1/messages``: admission, durable accept and idempotent replay of one request.

The request's recipients are planned (``translate``), admitted as one batch (the tenant's
``tps`` is one budget with its SMPP binds: a bulk request borrows from it), decided one by
one, and accepted in one group commit; the answer leaves only once that commit is durable.
With an ``Idempotency-Key`` the answer is kept in the same commit as the messages it names,
so a repeat, even after a restart, gets the first answer and sends nothing; concurrent
repeats wait for the first one. A repeat with another body is a 409. Tracked links
(``track_links``) are put in the batch before the messages they belong to, so they are
durable no later than them (the same commit, except in threaded mode, where the writer may
take the links a batch early: never a message without its links).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
from collections.abc import Callable
from typing import Final

import msgspec

from config import GatewayConfig, OperatorConfig, TenantConfig
from encoding.constants import CommandStatus
from routing.admission import OPTED_OUT_STATUS, Admission
from routing.consent import Consent
from routing.links import LinkBook
from routing.model import Message, Status, external_id
from routing.repository import KeptAnswer, MessageRecord
from routing.routes import RouteTable
from routing.templates import TemplateBook

from .models import ErrorInfo, FieldProblem, RecipientResult, SendRequest, SendResponse
from .problems import ApiError
from .replies import await_durable
from .status import timestamp
from .translate import Planned, Refused, plan_request

__all__ = ["Answer", "SendService"]

S = CommandStatus
_CODE_OF_STATUS: Final[dict[int, str]] = {
    S.ESME_RINVDSTADR: "invalid_number", S.ESME_RINVSRCADR: "invalid_originator",
    S.ESME_RINVMSGLEN: "content_too_long", S.ESME_RINVEXPIRY: "invalid_validity",
    OPTED_OUT_STATUS: "opted_out",
}
_encoder = msgspec.json.Encoder()


class Answer(msgspec.Struct, gc=False):
    """A response ready to go: status, JSON body, and whether it is a replay."""

    status: int
    body: bytes
    replayed: bool = False


class SendService:
    def __init__(self, config: GatewayConfig, admission: Admission, record: MessageRecord,
                 *, wall: Callable[[], float]) -> None:
        self.config = config
        self.admission = admission
        self.record = record
        self.wall = wall
        self.routes = RouteTable(config.routes)
        self.operators = {op.name: op for op in config.operators}
        self._in_flight: dict[tuple[str, str], asyncio.Future[Answer]] = {}
        self._fingerprints: dict[tuple[str, str], str] = {}
        self.accepted = 0  # messages, for metrics
        self.requests = 0
        # Tracked links: where they are kept and the base of short links (public_url,
        # known once the HTTP port is bound); set by the composition root.
        self.links: LinkBook | None = None
        self.link_base: Callable[[], str] = lambda: ""
        self.consent: Consent | None = None  # opt-outs (routing.consent); set by the app
        self.templates: TemplateBook | None = None  # stored templates; set by the app

    def reconfigure(self, config: GatewayConfig) -> None:
        """A reloaded config: limits, routes and operators for the next requests."""
        self.config = config
        self.routes = RouteTable(config.routes)
        self.operators = {op.name: op for op in config.operators}

    # --- idempotency ------------------------------------------------------------------------

    async def send(self, tenant: TenantConfig, request: SendRequest, body: bytes,
                   key: str | None) -> Answer:
        if key is None:
            return await self._send(tenant, request, None)
        fingerprint = hashlib.sha256(body).hexdigest()
        slot = (tenant.system_id, key)
        running = self._in_flight.get(slot)
        if running is not None:
            first_fingerprint = self._fingerprints[slot]  # gone once the first one ends
            first = await asyncio.shield(running)
            return self._replay(first, fingerprint, first_fingerprint)
        kept = self.record.kept_answer(tenant.system_id, key)
        if kept is not None and kept.created_at > self.wall() - self.config.http.idempotency_s:
            return self._replay(Answer(kept.status, kept.response), fingerprint,
                                kept.fingerprint)
        fut: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._in_flight[slot] = fut
        self._fingerprints[slot] = fingerprint
        try:
            answer = await self._send(tenant, request, (key, fingerprint))
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        else:
            fut.set_result(answer)
            return answer
        finally:
            del self._in_flight[slot]
            del self._fingerprints[slot]

    @staticmethod
    def _replay(first: Answer, fingerprint: str, first_fingerprint: str) -> Answer:
        if fingerprint != first_fingerprint:
            raise ApiError(409, "idempotency_key_reused",
                           "this Idempotency-Key was used with another request body")
        return Answer(first.status, first.body, replayed=True)

    # --- one request ------------------------------------------------------------------------

    def template_lookup(self, tenant: str) -> Callable[[str], str | None] | None:
        """A tenant's stored templates by name (content), for ``plan_request``."""
        book = self.templates
        return None if book is None else lambda name: book.content(tenant, name)

    def operator_for(self, tenant: str, destination: str) -> OperatorConfig | None:
        """The first operator of ``destination``'s route for ``tenant`` (None: no route)."""
        return self._operator_for(tenant)(destination)

    def _operator_for(self, tenant: str) -> Callable[[str], OperatorConfig | None]:
        def first(destination: str) -> OperatorConfig | None:
            names = self.routes.lookup(destination, tenant)
            return self.operators.get(names[0]) if names else None
        return first

    async def _send(self, tenant: TenantConfig, request: SendRequest,
                    keep: tuple[str, str] | None) -> Answer:
        now = self.wall()
        total = sum(len(m.recipients) for m in request.messages)
        limit = self.config.http.max_recipients
        if total > limit:
            raise ApiError(400, "too_many_recipients",
                           f"{total} recipients in one request; at most {limit}")
        plan = plan_request(request, tenant, now,
                            operator_for=self._operator_for(tenant.system_id),
                            link_base=self.link_base(),
                            templates=self.template_lookup(tenant.system_id))
        if plan.problems:
            raise ApiError(400, "invalid_request", "the request has invalid fields",
                           plan.problems)
        if plan.forbidden:
            raise ApiError(403, "sender_not_allowed", plan.forbidden[0].detail, plan.forbidden)
        if self.consent is not None:
            plan.entries = _refuse_opted_out(plan.entries, self.consent, tenant.system_id)
        planned = [e for e in plan.entries if isinstance(e, Planned)]
        if not planned:
            raise ApiError(400, "no_usable_recipient", "no recipient can be sent to",
                           [FieldProblem(pointer=e.pointer, code=e.error.code,
                                         detail=e.error.detail)
                            for e in plan.entries if isinstance(e, Refused)])
        self._admit(tenant, now, len(planned))
        request_id = "r_" + secrets.token_urlsafe(12)
        results: list[RecipientResult] = []
        messages: list[Message] = []
        for entry in plan.entries:
            if isinstance(entry, Refused):
                results.append(RecipientResult(id=None, recipient=_shown(entry.recipient),
                                               status="rejected", error=entry.error,
                                               client_ref=entry.client_ref))
                continue
            sub = entry.submission
            sub.request_id = request_id
            decided = self.admission.decide(sub, tenant, now)
            if isinstance(decided, int):
                results.append(RecipientResult(
                    id=None, recipient="+" + sub.destination_addr, status="rejected",
                    client_ref=sub.reference or None, error=ErrorInfo(
                        code=_CODE_OF_STATUS.get(decided, "rejected"),
                        smpp_status=decided, detail=S(decided).name)))
                continue
            if entry.links and self.links is not None:
                self.links.remember(tenant.system_id, decided.id, entry.links, now)
            messages.append(decided)
            held = decided.status is Status.SCHEDULED
            results.append(RecipientResult(
                id=external_id(tenant.id_format, decided.id),
                recipient="+" + decided.destination_addr,
                status="scheduled" if held else "accepted",
                send_at=timestamp(decided.send_at) if held else None,
                parts=entry.parts, encoding=entry.encoding,  # type: ignore[arg-type]
                client_ref=sub.reference or None))
        body = _encoder.encode(SendResponse(request_id=request_id, status="accepted",
                                            created_at=timestamp(now), messages=results))
        answer = Answer(200, body)
        if keep is not None:  # in the same commit as the messages it names
            self.record.keep_answer(tenant.system_id, keep[0],
                                    KeptAnswer(keep[1], 200, body, now))
        if messages:
            await await_durable(self.admission.accept(messages, now, lambda ok: None))
        elif keep is not None:
            await asyncio.shield(self.record.sync())  # type: ignore[arg-type]
        self.requests += 1
        self.accepted += len(messages)
        return answer

    def _admit(self, tenant: TenantConfig, now: float, count: int) -> None:
        status = self.admission.admit(tenant, now, count)
        if status == S.ESME_RMSGQFUL:
            raise ApiError(503, "queue_full", "the gateway's queue is full; retry shortly",
                           headers={"Retry-After": "1"})
        if status == S.ESME_RTHROTTLED:
            wait = max(1, math.ceil(self.admission.retry_after(tenant, now)))
            raise ApiError(429, "rate_limited",
                           f"over this account's rate of {tenant.tps:g} messages/s",
                           headers={"Retry-After": str(wait),
                                    "RateLimit-Policy": f'"tps";q={tenant.tps:g};w=1',
                                    "RateLimit": f'"tps";r=0;t={wait}'})


def _shown(number: str) -> str:
    digits = number.strip()
    return digits if digits.startswith("+") or not digits.isdigit() else "+" + digits


def _refuse_opted_out(entries: list[Planned | Refused], consent: Consent, tenant: str
                      ) -> list[Planned | Refused]:
    """Recipients that opted out of ``tenant`` refused alone (``opted_out``), like an
    invalid number: the rest still go, and a request with none left is a 400. Admission
    checks again (both doors); this makes the refusal count as "no usable recipient"."""
    out: list[Planned | Refused] = []
    for e in entries:
        if isinstance(e, Planned) and consent.opted_out(tenant, e.submission.destination_addr):
            out.append(Refused(e.index, "+" + e.submission.destination_addr, ErrorInfo(
                code="opted_out", smpp_status=OPTED_OUT_STATUS,
                detail="the recipient opted out of this account's messages"),
                e.submission.reference or None))
        else:
            out.append(e)
    return out
