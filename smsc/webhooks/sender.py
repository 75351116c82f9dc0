"""The webhook channel: each tenant's webhook queue as signed POSTs through one pooled client.

Events wait in the store (``routing.channels``: the tenant's webhook queue) until the
endpoint answers 2xx. Each tenant has at most ``[http] webhook_concurrency`` requests in
flight and claims no more than that from its queue, so a slow or dead endpoint holds only
its own events, never another tenant's nor any SMPP traffic. A non-2xx answer, a timeout
(``webhook_timeout_s``) or a refused connection is retried on ``webhook_retry_s`` (by
default http-api.md's 5 s, 1 min, 5 min, 30 min, 2 h, then every 5 h) with the same
``webhook-id``,
for as many attempts as span ``webhook_retry_for_s`` (counted from each event's own first
attempt, so an event that waited behind an earlier one still gets them all); then it is kept
as failed
(``GET /v1/events?state=failed``, ``POST /v1/events/{id}/retry``). Events of one message go
in lifecycle order: while one is in flight or waiting to be retried, the next waits too.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Final

import aiohttp
from yarl import URL

from config import HttpConfig, TenantConfig
from esme.tls import TlsSetupError, verifying_context
from routing.channels import tenant_of_queue, webhook_queue
from routing.events import Claim, ConsentEvent, MoEvent
from routing.repository import EventQueue

from .render import render_webhook
from .signing import Signer

__all__ = ["WebhookSender", "RETRY_SCHEDULE_S", "retry_delay", "attempts_for",
           "webhook_context"]

log = logging.getLogger("smsc.webhooks")
RETRY_SCHEDULE_S: Final = (5.0, 60.0, 300.0, 1800.0, 7200.0, 18_000.0)  # the default
_ORDER_GAP_S: Final = 0.05


def attempts_for(retry_for_s: float, schedule: tuple[float, ...]) -> int:
    """How many attempts span ``retry_for_s`` on ``schedule`` (its last delay repeating):
    an event gives up after that many, however long it first waited behind an earlier event
    of its message."""
    attempts, spent = 1, 0.0
    while spent < retry_for_s and attempts < 10_000:
        spent += schedule[min(attempts, len(schedule)) - 1]
        attempts += 1
    return attempts


def retry_delay(attempt: int, rng: Callable[[], float] = random.random,
                schedule: tuple[float, ...] = RETRY_SCHEDULE_S) -> float:
    """Delay before retry ``attempt`` (1-based), with up to 10% jitter; the schedule's last
    delay repeats."""
    base = schedule[min(attempt, len(schedule)) - 1]
    return base * (1.0 + 0.1 * rng())


def webhook_context(config: HttpConfig) -> ssl.SSLContext:
    """How https:// endpoints are verified: their certificate and name, against
    ``[http] webhook_ca`` or the system trust store (``TlsSetupError`` names the key)."""
    return verifying_context(config.webhook_ca, key="http.webhook_ca")


class _Endpoint:
    """One tenant's webhook state."""

    __slots__ = ("config", "held", "in_flight", "order", "retry_at", "signer", "url")

    def __init__(self, config: TenantConfig) -> None:
        self.config = config
        self.signer = Signer(config.secrets)
        self.url = URL(config.webhook_url) if config.webhook_url else None  # parsed once
        self.in_flight = 0
        self.order: dict[str, int] = {}  # message id -> the claim that goes first
        self.held: dict[str, deque[Claim]] = {}  # claims waiting for an earlier one
        self.retry_at: dict[str, float] = {}  # message id -> when its earlier one is due


def _key(claim: Claim) -> str:
    """What an event is ordered with: its message's events, a number's consent changes."""
    event = claim.event
    if isinstance(event, ConsentEvent):
        return f"consent:{event.number}"
    return f"mo:{claim.id}" if isinstance(event, MoEvent) else getattr(event, "message_id", "")


class WebhookSender:
    def __init__(self, events: EventQueue, tenants: list[TenantConfig], config: HttpConfig,
                 *, wall: Callable[[], float] = time.time) -> None:
        self.events = events
        self.config = config
        self.wall = wall
        self._endpoints = {t.system_id: _Endpoint(t) for t in tenants if t.secrets}
        self.max_attempts = attempts_for(config.webhook_retry_for_s, config.webhook_retry_s)
        self._ssl = webhook_context(config)  # built once; rebuilt by reconfigure
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed_attempts = 0
        self.gave_up = 0
        self.latency: deque[float] = deque(maxlen=10_000)  # seconds, event made -> 2xx
        events.subscribe(self.on_ready)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout_s),
            trust_env=False, auto_decompress=False, skip_auto_headers=("User-Agent",),
            headers={"User-Agent": "smsc-webhooks/1"},
            # No cookies: one tenant's endpoint must never see another's, and filtering a
            # jar costs every request.
            cookie_jar=aiohttp.DummyCookieJar())
        for tenant in self._endpoints:
            self.on_ready(webhook_queue(tenant))

    def reconfigure(self, tenants: list[TenantConfig], config: HttpConfig) -> None:
        """A reloaded config: endpoints of added tenants start, removed ones stop taking
        events (requests in flight finish; what waits stays in the store), changed ones get
        the new URL and secrets for the next attempt; retry and concurrency settings apply
        from the next event (the request timeout is the pool's: it needs a restart)."""
        self.config = config
        self.max_attempts = attempts_for(config.webhook_retry_for_s, config.webhook_retry_s)
        try:  # webhook_ca reread: the next connection uses it
            self._ssl = webhook_context(config)
        except TlsSetupError as exc:
            log.error("webhooks: keeping the previous trust store: %s", exc)
        old, self._endpoints = self._endpoints, {}
        for t in tenants:
            if not t.secrets:
                continue
            ep = old.get(t.system_id)
            if ep is None:
                ep = _Endpoint(t)
            elif ep.config is not t:
                ep.config = t
                ep.signer = Signer(t.secrets)
                ep.url = URL(t.webhook_url) if t.webhook_url else None
            self._endpoints[t.system_id] = ep
            self.on_ready(webhook_queue(t.system_id))

    async def stop(self) -> None:
        """Cancel requests in flight (their events stay in the store) and close the pool."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- claiming ---------------------------------------------------------------------------

    def on_ready(self, queue: str) -> None:
        tenant, channel = tenant_of_queue(queue)
        if channel != "webhook" or self._session is None:
            return
        ep = self._endpoints.get(tenant)
        if ep is None:
            return
        room = self.config.webhook_concurrency - ep.in_flight
        if room <= 0:
            return
        for claim in self.events.claim(queue, room):
            self._route(ep, claim)

    def _route(self, ep: _Endpoint, claim: Claim) -> None:
        key = _key(claim)
        first = ep.order.get(key)
        if first is None or first == claim.id:
            ep.order[key] = claim.id
            ep.retry_at.pop(key, None)
            self._start(ep, claim)
            return
        due = ep.retry_at.get(key)
        if due is not None:  # the earlier one waits for a retry: go right after it
            self.events.retry(claim, max(0.0, due - self.wall()) + _ORDER_GAP_S,
                              attempted=False)
            return
        ep.held.setdefault(key, deque()).append(claim)

    def _start(self, ep: _Endpoint, claim: Claim) -> None:
        ep.in_flight += 1
        task = asyncio.get_running_loop().create_task(self._deliver(ep, claim))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- one request ------------------------------------------------------------------------

    async def _deliver(self, ep: _Endpoint, claim: Claim) -> None:
        ok = False
        try:
            ok = await self._post(ep, claim)
        except asyncio.CancelledError:
            ep.in_flight -= 1
            self.events.release(claim)
            raise
        except Exception:  # a bug in rendering must not stop the channel
            log.exception("webhook event %d of %s failed", claim.id, claim.tenant)
        ep.in_flight -= 1
        self._finish(ep, claim, ok)
        self.on_ready(webhook_queue(ep.config.system_id))

    async def _post(self, ep: _Endpoint, claim: Claim) -> bool:
        event = claim.event
        url: URL | str | None = getattr(event, "report_url", "") or ep.url
        now = self.wall()
        body = render_webhook(event, f"evt_{claim.id}", ep.config, now)
        if body is None or not url or self._session is None:
            return True  # nothing to send: settle it
        headers = ep.signer.headers(f"evt_{claim.id}", int(now), body)
        try:
            async with self._session.post(url, data=body, headers=headers, ssl=self._ssl,
                                          allow_redirects=False) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    self.latency.append(self.wall() - claim.created_at)
                    return True
                log.info("webhook %s answered %d for event %d", ep.config.system_id,
                         resp.status, claim.id)
        except aiohttp.ClientConnectorCertificateError as exc:
            cert_error = exc.certificate_error
            reason = getattr(cert_error, "verify_message", "") or str(cert_error)
            log.warning("webhook %s: TLS certificate of %s:%s not accepted: %s (checked "
                        "against %s) for event %d", ep.config.system_id, exc.host, exc.port,
                        reason, "[http] webhook_ca" if self.config.webhook_ca
                        else "the system trust store", claim.id)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("webhook %s: %s for event %d", ep.config.system_id,
                     type(exc).__name__, claim.id)
        return False

    def _finish(self, ep: _Endpoint, claim: Claim, ok: bool) -> None:
        key = _key(claim)
        if ok:
            self.sent += 1
            self.events.settle(claim)
        else:
            self.failed_attempts += 1
            if claim.attempts + 1 >= self.max_attempts:
                claim.attempts += 1  # this one counts
                self.gave_up += 1
                log.warning("webhook %s: event %d kept as failed after %d attempts",
                            ep.config.system_id, claim.id, claim.attempts)
                self.events.fail(claim)
            else:
                delay = retry_delay(claim.attempts + 1, schedule=self.config.webhook_retry_s)
                ep.retry_at[key] = self.wall() + delay
                self.events.retry(claim, delay)
                return  # still first in line for its message
        if ep.order.get(key) == claim.id:
            del ep.order[key]
            ep.retry_at.pop(key, None)
            waiting = ep.held.get(key)
            if waiting:
                nxt = waiting.popleft()
                if not waiting:
                    del ep.held[key]
                ep.order[key] = nxt.id
                self._start(ep, nxt)
