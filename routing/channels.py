"""Which channels of a tenant get which events: one queue per (tenant, channel).

A tenant may have an SMPP receiver bind, a webhook, or both, and every event reaches each
channel it has (http-api.md, "Events"). Each channel reads its own queue of the one event
store, so a slow webhook never holds back a receiver bind or the other way round. The SMPP
channel's queue is named by the tenant's system_id alone (as stores written before webhooks
name it); the webhook's is ``webhook_queue(system_id)``. A tenant without a password has no
SMPP channel; one without ``webhook_url`` has no webhook channel, except for the events of
messages sent with their own ``report_url``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from config import TenantConfig

from .events import (
    ClickEvent,
    ConsentEvent,
    MoEvent,
    ReceiptEvent,
    SentEvent,
    StoredPdu,
    TenantEvent,
)
from .repository import Durable, EventQueue

__all__ = ["Channels", "webhook_queue", "tenant_of_queue", "WEBHOOK_SUFFIX"]

WEBHOOK_SUFFIX = "/webhook"
_SMPP_KINDS = (ReceiptEvent, MoEvent, StoredPdu)
_WEBHOOK_KINDS = (ReceiptEvent, MoEvent, SentEvent, ClickEvent, ConsentEvent)


def webhook_queue(system_id: str) -> str:
    return system_id + WEBHOOK_SUFFIX


def tenant_of_queue(queue: str) -> tuple[str, str]:
    """(system_id, channel) of a queue name: channel "smpp" or "webhook"."""
    if queue.endswith(WEBHOOK_SUFFIX):
        return queue[: -len(WEBHOOK_SUFFIX)], "webhook"
    return queue, "smpp"


def _report_url(event: TenantEvent) -> str:
    return (event.report_url if isinstance(event, (ReceiptEvent, SentEvent, ClickEvent))
            else "")


class _Done:
    """A Durable that is already complete (nothing needed storing)."""

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None:
        fn(self)

    def exception(self) -> BaseException | None:
        return None


_DONE = _Done()


class Channels:
    """Publishes each event to the queues of the channels that want it."""

    def __init__(self, events: EventQueue, tenants: Sequence[TenantConfig]) -> None:
        self.events = events
        self.smpp = {t.system_id for t in tenants if t.binds}
        self.webhook = {t.system_id for t in tenants if t.webhook_url}
        # Events are signed: without a secret nobody can send them (report_url is refused).
        self.signed = {t.system_id for t in tenants if t.secrets}

    def wants_sent(self, tenant: str, report_url: str) -> bool:
        """Whether a "handed to an operator" event has a channel (webhooks only)."""
        return tenant in self.webhook or (bool(report_url) and tenant in self.signed)

    def publish(self, tenant: str, events: Sequence[TenantEvent], now: float) -> Durable:
        done: Durable = _DONE
        if tenant in self.smpp:
            smpp = [e for e in events if isinstance(e, _SMPP_KINDS)]
            if smpp:
                done = self.events.publish(tenant, smpp, now)
        if tenant not in self.signed:  # the usual SMPP tenant: no webhook channel at all
            return done
        hooks = [e for e in events if isinstance(e, _WEBHOOK_KINDS)
                 and (tenant in self.webhook or _report_url(e))]
        if hooks:
            # The same group commit carries both, so either future says it is durable.
            done = self.events.publish(webhook_queue(tenant), hooks, now)
        return done
