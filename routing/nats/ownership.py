"""Which node delivers a tenant's events: one lease per tenant, held by a node that can.

Every node applies every event to its replica (routing.nats.replica), but only one node may
claim a tenant's events, or two nodes would deliver each of them. The owner is the holder of
the tenant's lease in ``TENANTS_BUCKET``, a ``SlotLeases`` slot (routing.nats.leases: taken
with create, renewed with compare and set, valid for ``ttl_s - margin_s`` on the holder's
clock, released on an orderly stop). A node asks for the leases of the queues it can
deliver (``wanted``: a tenant with a receiver bind on this node; the webhook queue of a tenant
with a webhook, routing.channels, which any node can send and one does), and lets a lease go
when it no longer can (the tenant unbound here), so the tenant's events follow its
binds: bound on node B only, B takes the lease at its next round. A node that dies holding
leases loses them after ``ttl_s``; a node that wants them then takes them over, and reads
the tenant's waiting events from its replica (``on_gained``).

Duties of one node in the cluster at a time (``SCHEDULER``: releasing due scheduled messages)
are leases of the same kind that every node asks for: one holds each, and another takes it
over when that one stops or dies. Their names start with a NUL, which no SMPP system_id has.

Rounds run every ``renew_s`` (a fifth of ``ttl_s``), and at once after ``poke`` (a bind).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from nats.js.kv import KeyValue

from .leases import SlotLeases, end_rounds, run_rounds

__all__ = ["TENANTS_BUCKET", "SCHEDULER", "TenantOwnership"]

log = logging.getLogger(__name__)

TENANTS_BUCKET = "smsc-tenants"
SCHEDULER = "\0scheduler"
_DUTIES = (SCHEDULER,)


class TenantOwnership:
    """This node's tenant leases; ``start`` on the loop, ``stop`` releases them."""

    def __init__(self, kv: KeyValue, node: str, loop: asyncio.AbstractEventLoop,
                 wanted: Callable[[], set[str]], *, ttl_s: float = 10.0) -> None:
        self.leases = SlotLeases(kv, node, ttl_s=ttl_s, renew_s=ttl_s / 5, margin_s=ttl_s / 10)
        self.loop = loop
        self.wanted = wanted
        self.on_gained: Callable[[str], None] = lambda tenant: None
        self.on_lost: Callable[[str], None] = lambda tenant: None
        self.on_duty: Callable[[str], None] = lambda duty: None  # this node took a duty
        self._owned: set[str] = set()  # tenants
        self._duties: set[str] = set()
        self._poked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def owns(self, tenant: str) -> bool:
        """Whether this node may claim ``tenant``'s events now: it holds the lease, and
        ``on_gained`` has run (the queue read what waits in the store then; events arriving
        between the lease and that read are in the store, and read once)."""
        return tenant in self._owned and self.leases.holds(tenant, 0)

    def leads(self, duty: str) -> bool:
        """Whether this node does ``duty`` (``SCHEDULER``) now."""
        return self.leases.holds(duty, 0)

    def poke(self) -> None:
        """Run a round soon (a tenant bound or unbound here)."""
        self._poked.set()

    def start(self) -> None:
        self._task = self.loop.create_task(
            run_rounds(self.round, self.leases.renew_s, self._poked, "tenant lease"))

    async def round(self) -> None:
        """Take the leases of the tenants wanted here, let the others go, and tell what
        changed."""
        demand = dict.fromkeys(self.wanted(), 1)
        demand.update(dict.fromkeys(_DUTIES, 1))
        await self.leases.tick(demand)
        held = self.leases.holding()
        duties = held.intersection(_DUTIES)
        for duty in sorted(duties - self._duties):
            log.info("this node now does the cluster's duty %r", duty.lstrip("\0"))
            self.on_duty(duty)
        self._duties = duties
        owned = held - duties
        gained, lost = owned - self._owned, self._owned - owned
        self._owned = owned
        for tenant in sorted(lost):
            log.info("tenant %s: its events are now delivered by another node", tenant)
            self.on_lost(tenant)
        for tenant in sorted(gained):
            log.info("tenant %s: this node delivers its events", tenant)
            self.on_gained(tenant)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await end_rounds(task, self.leases)
        for tenant in sorted(self._owned):
            self.on_lost(tenant)
        self._owned, self._duties = set(), set()
