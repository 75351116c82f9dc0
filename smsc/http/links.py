"""``GET /l/{code}``: a tracked link's redirect, and the click it records (http-api.md,
"Short links").

Public (no token: the recipient's phone follows it). Every GET of a known code answers 302
to the original URL and stores one click (its time; no IP address, no User-Agent); the
first and each later click make a ``message.clicked`` event on the tenant's webhook
channel (routing.channels), in the same commit as the click. HEAD requests and known
link-preview bots (routing.links.is_bot) are stored as bot fetches: they are redirected
too, but are not clicks and make no event. The redirect is answered once the click is
durable, and is marked ``no-store`` so that caches pass every click through; a store that
fails loses that click (logged, counted) but the recipient is still sent on to the URL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from litestar import Request, Response, get, head
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from routing.events import ClickEvent, TenantEvent
from routing.links import LinkBook, LinkClicks, is_bot, is_code
from routing.repository import Durable, MessageRecord

from .errors import PROBLEM
from .models import LinkStats, Problem
from .problems import ApiError
from .status import timestamp

__all__ = ["LinkDesk", "link_route", "link_stats"]

log = logging.getLogger(__name__)

Publish = Callable[[str, Sequence[TenantEvent], float], Durable]


class LinkDesk:
    """Resolves codes and records clicks; ``publish`` is the router's channels' (read at
    each click, so a reloaded tenant list is used)."""

    def __init__(self, links: LinkBook, record: MessageRecord, publish: Publish, *,
                 wall: Callable[[], float]) -> None:
        self.links = links
        self.record = record
        self.publish = publish
        self.wall = wall
        self.clicks = 0  # for metrics: people
        self.bot_fetches = 0
        self.lost = 0  # fetches the store failed to keep

    async def follow(self, code: str, *, head: bool, user_agent: str | None) -> str:
        """The URL behind ``code`` once its fetch is recorded; 404 for an unknown code."""
        link = self.links.resolve(code) if is_code(code) else None
        if link is None:
            raise ApiError(404, "not_found", "no such link")
        now = self.wall()
        bot = head or is_bot(user_agent)
        durable = self.links.record_click(link, now, bot=bot)
        if bot:
            self.bot_fetches += 1
        else:
            self.clicks += 1
            m = self.record.get(link.message_id)
            event = ClickEvent(message_id=link.message_id, url=link.url, clicked_at=now,
                               report_url=m.report_url if m is not None else "")
            self.publish(link.tenant, [event], now)  # the same commit as the click
        try:
            await asyncio.shield(durable)  # type: ignore[arg-type]
        except Exception as exc:  # the recipient still gets where the link goes
            self.lost += 1
            log.warning("a click of a tracked link was not stored: %s", exc)
        return link.url


def link_stats(clicks: Sequence[LinkClicks]) -> list[LinkStats]:
    """A message's links as its status shows them (``links`` of ``GET /v1/messages/{id}``)."""
    return [LinkStats(url=c.url, clicks=c.clicks,
                      first_clicked_at=timestamp(c.first_clicked_at)
                      if c.first_clicked_at is not None else None) for c in clicks]


def link_route(desk: LinkDesk) -> list[HTTPRouteHandler]:
    """The Litestar handlers of ``GET /l/{code}`` and ``HEAD /l/{code}``."""

    async def answer(request: Request[Any, Any, Any], code: str) -> Response[None]:
        url = await desk.follow(code, head=request.method == "HEAD",
                                user_agent=request.headers.get("user-agent"))
        return Response(None, status_code=302,
                        headers={"Location": url, "Cache-Control": "no-store",
                                 "Referrer-Policy": "no-referrer"})

    @get("/l/{code:str}", tags=["links"], summary="Follow a tracked link",
         operation_id="follow_link", security=[], opt={"public": True}, status_code=302,
         description="Public, no token. 302 to the original URL of a short link made by "
                     "track_links; each GET is one click (its time is stored, no IP "
                     "address) and a message.clicked event. HEAD requests and link-preview "
                     "bots (known User-Agents) are redirected too but counted apart, not "
                     "as clicks.",
         responses={302: ResponseSpec(None, description="Redirect to the original URL "
                                                        "(Location)"),
                    404: ResponseSpec(Problem, description="No such link",
                                      media_type=PROBLEM, generate_examples=False)})
    async def follow(request: Request[Any, Any, Any], code: FromPath[str]) -> Response[None]:
        return await answer(request, code)

    @head("/l/{code:str}", include_in_schema=False, opt={"public": True}, status_code=302)
    async def peek(request: Request[Any, Any, Any], code: FromPath[str]) -> Response[None]:
        return await answer(request, code)

    return [follow, peek]
