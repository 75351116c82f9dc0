"""The gateway's own gauges and counters read at scrape time: webhooks, HTTP intake, bans,
binds, queues, reloads, lifecycle refusals, the scheduler, opt-outs and tracked links
(``smsc.metrics`` renders them).

Registered once by ``Gateway._wire`` over the parts it has built; each is a callable that
reads plain counters, so a scrape costs no work on the hot path.
"""

from __future__ import annotations

from typing import Protocol

from routing.consent import Consent
from routing.router import Router
from routing.schedule import Scheduler
from routing.sqlite import SqliteEventQueue
from routing.workqueue import MemoryWorkQueue

from .bans import Bans
from .http import SendService
from .http.links import LinkDesk
from .metrics import Metrics
from .registry import Registry
from .webhooks import WebhookSender

__all__ = ["register_gauges"]


class Measured(Protocol):
    """The parts of the gateway (``smsc.app.Gateway``) whose counters are exported."""

    reloads: dict[str, int]
    illegal_count: int

    @property
    def metrics(self) -> Metrics: ...
    @property
    def webhooks(self) -> WebhookSender: ...
    @property
    def sending(self) -> SendService: ...
    @property
    def bans(self) -> Bans: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def events(self) -> SqliteEventQueue: ...
    @property
    def router(self) -> Router: ...
    @property
    def work(self) -> MemoryWorkQueue: ...
    @property
    def scheduler(self) -> Scheduler: ...
    @property
    def consent(self) -> Consent: ...
    @property
    def link_desk(self) -> LinkDesk: ...

    def wall(self) -> float: ...


def register_gauges(gw: Measured) -> None:
    """Register the gauges of ``gw``'s parts with its ``Metrics``."""
    gw.metrics.gauge("smsc_webhook_events", "Webhook deliveries by outcome", "outcome",
                     lambda: {"delivered": float(gw.webhooks.sent),
                              "failed_attempt": float(gw.webhooks.failed_attempts),
                              "gave_up": float(gw.webhooks.gave_up)})
    gw.metrics.gauge("smsc_http_accepted", "Messages accepted over HTTP", "kind",
                     lambda: {"messages": float(gw.sending.accepted),
                              "requests": float(gw.sending.requests)})
    gw.metrics.counter("smsc_auth_failures", "Failed binds and bad tokens", "door",
                       lambda: dict(gw.bans.failures))
    gw.metrics.counter("smsc_auth_bans", "Addresses banned for failed authentications",
                       "door", lambda: dict(gw.bans.bans_given))
    gw.metrics.gauge("smsc_auth_banned", "Addresses banned now (by the door of the "
                     "failure that banned them)", "door",
                     lambda: gw.bans.current(gw.wall()))
    gw.metrics.gauge("smsc_binds", "Tenant binds", "tenant",
                     lambda: {k: float(v) for k, v in gw.registry.counts().items()})
    gw.metrics.gauge("smsc_outbox_depth", "Events (receipts, MO) waiting for tenants",
                     "tenant",
                     lambda: {k: float(v) for k, v in gw.events.depths().items()})
    gw.metrics.gauge("smsc_operator_queue", "Messages waiting for an operator",
                     "operator", lambda: {op: float(gw.router.pending(op))
                                          for op in gw.work.operators})
    gw.metrics.gauge("smsc_operator_claimed",
                     "Messages claimed by an operator's binds and not yet sent in full",
                     "operator", lambda: {op: float(gw.work.claimed(op))
                                          for op in gw.work.operators})
    gw.metrics.gauge("smsc_config_reloads", "Config reloads (SIGHUP) by result",
                     "result", lambda: {k: float(v) for k, v in gw.reloads.items()})
    gw.metrics.gauge("smsc_illegal_transitions", "Status changes the lifecycle refused",
                     "kind", lambda: {"total": float(gw.illegal_count)})
    sched = gw.scheduler
    gw.metrics.counter("smsc_scheduled_messages", "Scheduled messages released when "
                       "due, expired before that, or cancelled", "outcome",
                       lambda: {"released": float(sched.released),
                                "expired": float(sched.expired),
                                "cancelled": float(sched.cancelled)})
    gw.metrics.gauge("smsc_opted_out_numbers", "Numbers opted out, per tenant", "tenant",
                     lambda: {k: float(v) for k, v in gw.consent.count().items()})
    desk = gw.link_desk
    gw.metrics.counter("smsc_link_fetches", "Tracked link fetches (people's clicks, and "
                       "bots or HEAD requests apart)", "kind",
                       lambda: {"click": float(desk.clicks), "bot": float(desk.bot_fetches),
                                "lost": float(desk.lost)})
