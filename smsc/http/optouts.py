"""``/v1/opt-outs``: a tenant's consent records over HTTP (http-api.md, "Two-way, consent and
opt-out").

* ``GET /v1/opt-outs?cursor=&limit=``: the numbers opted out now, by number, each with its
  latest record; ``next_cursor`` while there may be more.
* ``GET /v1/opt-outs/{number}``: the number's state and its whole history, oldest first (a
  number never seen is ``opted_in`` with an empty history).
* ``PUT /v1/opt-outs/{number}``: opt it out by API (``source: api``, ``detail``: the caller,
  as ``api key sha256:<first 12 hex digits>`` of its token's digest, never the token).
* ``DELETE /v1/opt-outs/{number}``: opt it back in.

``PUT`` and ``DELETE`` are idempotent: a number already in the asked state gets no new
record and no event; a change is answered once durable and emits ``contact.opted_out`` /
``contact.opted_in`` like a keyword. Numbers are E.164, with or without '+'.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, put
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, QueryParameter

from routing.consent import OPTED_IN, OPTED_OUT, Consent, ConsentRecord, State
from routing.events import ConsentEvent, TenantEvent
from routing.repository import Durable

from .errors import documented_errors
from .problems import ApiError
from .replies import BEARER, await_durable, json_response, tenant_of
from .status import timestamp
from .translate import normalise_number

__all__ = ["OptOut", "OptOutPage", "OptOutState", "optout_handlers"]

Publish = Callable[[str, list[TenantEvent], float], Durable]


class OptOut(msgspec.Struct, kw_only=True):
    """One consent record."""

    number: str  # E.164 with '+'
    state: str  # "opted_out" | "opted_in"
    source: str  # "keyword" | "api"
    detail: str  # the keyword, or the API caller
    inbound_id: str | None  # the inbound message of a keyword change
    at: datetime


class OptOutState(msgspec.Struct, kw_only=True):
    number: str
    state: str
    history: list[OptOut]


class OptOutPage(msgspec.Struct, kw_only=True):
    data: list[OptOut]
    next_cursor: str | None


def _shown(r: ConsentRecord) -> OptOut:
    return OptOut(number="+" + r.number, state=r.state, source=r.source, detail=r.detail,
                  inbound_id=r.inbound_id or None, at=timestamp(r.at))


def _number(text: str) -> str:
    digits = normalise_number(text)
    if digits is None:
        raise ApiError(400, "invalid_number", f"{text!r} is not an E.164 number")
    return digits


def _caller(request: Request[Any, Any, Any]) -> str:
    """Which API key made the change: a prefix of its digest (as configured), not the
    token."""
    _, _, token = (request.headers.get("authorization") or "").partition(" ")
    digest = hashlib.sha256(token.strip().encode("utf-8", "surrogateescape")).hexdigest()
    return "api key sha256:" + digest[:12]




def optout_handlers(consent: Consent, publish: Publish, *,
                    wall: Callable[[], float]) -> list[HTTPRouteHandler]:
    """The four routes over ``consent``; changes publish their event with ``publish``."""

    def state_of(tenant: str, number: str) -> OptOutState:
        state, history = consent.current(tenant, number)
        return OptOutState(number="+" + number, state=state,
                           history=[_shown(r) for r in history])

    async def change(request: Request[Any, Any, Any], number: str, state: State
                     ) -> Response[OptOutState]:
        tenant = tenant_of(request).system_id
        digits = _number(number)
        now = wall()
        record, durable = consent.change(tenant, digits, state, "api", now,
                                         detail=_caller(request))
        if record is not None and durable is not None:
            publish(tenant, [ConsentEvent(number=digits, state=state, source="api",
                                          detail=record.detail, at=now)], now)
            await await_durable(durable)
        return json_response(state_of(tenant, digits))

    @get("/v1/opt-outs", tags=["consent"], summary="Numbers opted out now, by number",
         security=BEARER, responses=documented_errors(400), operation_id="list_opt_outs")
    async def listing(request: Request[Any, Any, Any],
                      limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
                      cursor: Annotated[str | None, QueryParameter(max_length=20)] = None,
                      ) -> Response[OptOutPage]:
        tenant = tenant_of(request).system_id
        after = (cursor or "").removeprefix("+")
        if after and not (after.isdigit() and after.isascii()):
            raise ApiError(400, "invalid_cursor", "cursor is not one this API gave")
        found: Sequence[ConsentRecord] = consent.page(tenant, after, limit)
        data = [_shown(r) for r in found]
        nxt = found[-1].number if len(found) == limit else None
        return json_response(OptOutPage(data=data, next_cursor=nxt))

    @get("/v1/opt-outs/{number:str}", tags=["consent"],
         summary="A number's consent and its history", security=BEARER,
         responses=documented_errors(400), operation_id="get_opt_out")
    async def one(request: Request[Any, Any, Any], number: FromPath[str]
                  ) -> Response[OptOutState]:
        return json_response(state_of(tenant_of(request).system_id, _number(number)))

    @put("/v1/opt-outs/{number:str}", tags=["consent"], status_code=200,
         summary="Opt a number out of this account's messages", security=BEARER,
         responses=documented_errors(400, 503), operation_id="put_opt_out")
    async def opt_out(request: Request[Any, Any, Any], number: FromPath[str]
                      ) -> Response[OptOutState]:
        return await change(request, number, OPTED_OUT)

    @delete("/v1/opt-outs/{number:str}", tags=["consent"], status_code=200,
            summary="Opt a number back in", security=BEARER,
            responses=documented_errors(400, 503), operation_id="delete_opt_out")
    async def opt_in(request: Request[Any, Any, Any], number: FromPath[str]
                     ) -> Response[OptOutState]:
        return await change(request, number, OPTED_IN)

    return [listing, one, opt_out, opt_in]
