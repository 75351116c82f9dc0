"""Delivery to tenants over SMPP: events from the tenant's event queue as deliver_sm.

The event queue (``routing.repository.EventQueue``) says when a tenant has events; this
channel claims as many as its receiver binds have window room for, renders each as a
deliver_sm (``render``) and spreads them across the binds. A deliver_sm_resp ESME_ROK
settles the event; a temporary refusal or a timeout retries it with back-off; a permanent
refusal (ESME_RX_P_APPN, ESME_RX_R_APPN and other non-temporary statuses) drops it
(reference section 4, tenant side), as does an event that cannot be a deliver_sm at all
(a field too long for it, a long MO for a 3.3 bind: logged and counted, never sent empty
or cut). A deliver_sm that fails because its bind ended (closed, unbound, reset) is
released at once, to go out on the tenant's next bind; one answered with a garbled or
mismatched response is retried with back-off like a timeout.
"""

from __future__ import annotations

import logging

from config import TenantConfig
from encoding.constants import CommandStatus
from encoding.errors import SessionError, SmppError
from encoding.session import FailureReason
from esme import Connection
from routing.events import Claim
from routing.repository import EventQueue
from routing.throttle import backoff

from .registry import Registry
from .render import render_deliver

__all__ = ["Delivery", "TEMPORARY"]

log = logging.getLogger(__name__)

TEMPORARY = frozenset({
    CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL, CommandStatus.ESME_RX_T_APPN,
    CommandStatus.ESME_RSYSERR, CommandStatus.ESME_RUNKNOWNERR,
})
_RETRY_BASE_S = 1.0
_RETRY_CAP_S = 300.0


class Delivery:
    """Moves tenants' events to their receiver binds; one per gateway."""

    def __init__(self, events: EventQueue, registry: Registry,
                 tenants: dict[str, TenantConfig]) -> None:
        self.events = events
        self.registry = registry
        self.tenants = tenants
        self.delivered = 0
        self.dropped = 0
        self.retried = 0
        self.released = 0
        events.subscribe(self.pump)

    def reconfigure(self, tenants: dict[str, TenantConfig]) -> None:
        """A reloaded config's tenants (deliver_window, formats) for what is sent next."""
        self.tenants = tenants
        for tenant in tenants:
            self.pump(tenant)

    def on_bound(self, tenant: str) -> None:
        self.pump(tenant)

    # --- output -----------------------------------------------------------------------------

    def pump(self, tenant: str) -> None:
        receivers = self.registry.receivers(tenant)
        if not receivers:
            return
        config = self.tenants.get(tenant)
        if config is None:
            return
        open_binds: list[Connection] = []
        room = 0
        for c in receivers:
            r = c.session.window.room
            if r > 0 and c.writable:
                open_binds.append(c)
                room += r
        if not room:
            return
        claims = self.events.claim(tenant, room)
        if len(open_binds) == 1:  # the usual case: one receiver bind with room for all
            conn = open_binds[0]
            for claim in claims:
                self._send(conn, config, claim)
            return
        i = 0
        for claim in claims:
            # round robin over the binds that still have room
            for _ in range(len(open_binds)):
                conn = open_binds[i % len(open_binds)]
                i += 1
                if conn.session.window.room > 0:
                    self._send(conn, config, claim)
                    break
            else:
                self.events.release(claim)

    def _send(self, conn: Connection, tenant: TenantConfig, claim: Claim) -> None:
        rendered = render_deliver(claim.event, tenant, conn.context.interface_version)
        if isinstance(rendered, str):
            self._drop(claim, rendered)
            return
        try:
            conn.send(rendered, claim)
        except SessionError:  # the session closed or is unbinding: another bind takes it
            self.events.release(claim)
        except SmppError as exc:  # a field does not fit a deliver_sm, and never will
            self._drop(claim, str(exc))

    def _drop(self, claim: Claim, why: str) -> None:
        log.error("event %d of %s cannot be sent as deliver_sm (%s); dropping it", claim.id,
                  claim.tenant, why)
        self.dropped += 1
        self.events.settle(claim)

    # --- answers ----------------------------------------------------------------------------

    def on_response(self, claim: Claim, status: int) -> None:
        if status == CommandStatus.ESME_ROK:
            self.delivered += 1
            self.events.settle(claim)
        elif status in TEMPORARY:
            self._retry(claim)
        else:
            self.dropped += 1
            log.warning("tenant %s refused deliver_sm of event %d with 0x%X; dropped",
                        claim.tenant, claim.id, status)
            self.events.settle(claim)
        self.pump(claim.tenant)

    def on_failed(self, claim: Claim, reason: FailureReason) -> None:
        """The bind ended: release at once. No usable answer (none in time, or a garbled
        one on a live bind): retry later."""
        if reason is FailureReason.SESSION_CLOSED:
            self.released += 1
            self.events.release(claim)
        else:
            self._retry(claim)

    def _retry(self, claim: Claim) -> None:
        self.retried += 1
        self.events.retry(claim, backoff(claim.attempts + 1, _RETRY_BASE_S, _RETRY_CAP_S))
