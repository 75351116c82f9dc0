"""``EventQueue`` on SQLite: each tenant's events in the ``events`` table, a window in memory.

Events become claimable once their commit is durable. Each tenant has a bounded in-memory
queue; the rest stays in the store and is read back in id order, so the oldest goes first.
A claim is held by this process until it is settled (the row is deleted in the next paced
commit), retried (the row records the attempt; it is offered again after the delay) or
released (offered again at once, ahead of the rest). A process that dies holds no claims:
every row still in the table is offered again after a restart. Depths are counted in
memory (one scan at start), so the metrics scrape never scans the table.

On a cluster (routing.nats) the store is this node's replica of every node's writes, and
one node at a time delivers a tenant's events: ``owns`` says whether this node does. The
others keep nothing of that tenant in memory and claim nothing of it; its depth is counted
by its owner. Events other nodes publish reach the owner through ``arrived`` (the log's
entries, as they are applied); a node that becomes the owner reads what waits from its
replica (``gained``), and one that stops being it forgets what it held (``lost``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..events import EVENT_KIND, Claim, StoredPdu, TenantEvent, encode_event
from ..repository import Durable
from .committer import GroupCommitter
from .lookups import event_row, failed_events
from .rows import claim_of
from .store import Store

__all__ = ["SqliteEventQueue"]

log = logging.getLogger(__name__)


class Timers(Protocol):
    """The part of an event loop the queue uses (an asyncio loop, or a fake in tests)."""

    def call_soon(self, callback: Callable[..., object], *args: Any) -> object: ...

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any
                   ) -> object: ...


class _Tenant:
    __slots__ = ("in_flight", "loaded_to", "more_in_store", "ready", "waiting")

    def __init__(self) -> None:
        self.ready: deque[Claim] = deque()
        self.loaded_to = 0  # highest event id read from the store or published
        self.more_in_store = True  # events may wait in the store beyond loaded_to
        self.in_flight = 0
        self.waiting = 0  # retries not yet due


class SqliteEventQueue:
    def __init__(self, store: Store, committer: GroupCommitter,
                 loop: Timers, *, max_in_memory: int = 5000,
                 wall: Callable[[], float] = time.time) -> None:
        self._store = store
        self._committer = committer
        self._loop = loop
        self._wall = wall
        self.max_in_memory = max_in_memory
        self._tenants: dict[str, _Tenant] = {}
        self._counts: dict[str, int] = store.event_depths()
        self._subscribers: list[Callable[[str], None]] = []
        self._soon: set[str] = set()
        # Claims in flight or waiting for a retry whose rows retention purged: forgotten
        # when they come back (not counted twice, never offered again).
        self._purged_away: set[int] = set()
        self._batch_future: object = None  # the commit the claims in ``_batch`` wait for
        self._batch: dict[str, list[Claim]] = {}
        self.owns: Callable[[str], bool] = _everything
        self._from_log = False  # a cluster: events reach memory through ``arrived`` only

    def _t(self, tenant: str) -> _Tenant:
        t = self._tenants.get(tenant)
        if t is None:
            t = self._tenants[tenant] = _Tenant()
        return t

    def subscribe(self, on_ready: Callable[[str], None]) -> None:
        self._subscribers.append(on_ready)

    def _notify(self, tenant: str) -> None:
        for fn in self._subscribers:
            fn(tenant)

    def _notify_soon(self, tenant: str) -> None:
        if tenant not in self._soon:
            self._soon.add(tenant)
            self._loop.call_soon(self._run_soon, tenant)

    def _run_soon(self, tenant: str) -> None:
        self._soon.discard(tenant)
        self._notify(tenant)

    # --- publish ----------------------------------------------------------------------------

    def publish(self, tenant: str, events: Sequence[TenantEvent], now: float) -> Durable:
        pending = self._committer.pending
        claims: list[Claim] = []
        for event in events:
            eid = self._store.new_event_id()
            if type(event) is StoredPdu:
                pending.add_event(eid, tenant, "pdu", event.pdu, event.message_id, now)
            else:
                pending.add_event(eid, tenant, EVENT_KIND[type(event)], encode_event(event),
                                  getattr(event, "message_id", ""), now)
            claims.append(Claim(eid, tenant, event, 0, now))
        fut = self._committer.future(deferrable=True)
        # One callback per commit, not per publish (receipts are published one by one).
        if fut is not self._batch_future:
            batch: dict[str, list[Claim]] = {tenant: claims}
            self._batch_future = fut
            self._batch = batch
            fut.add_done_callback(lambda f: self._batch_durable(batch, f))
        else:
            waiting = self._batch.get(tenant)
            if waiting is None:
                self._batch[tenant] = claims
            else:
                waiting.extend(claims)
        return fut

    def _batch_durable(self, batch: dict[str, list[Claim]], fut: Any) -> None:
        if self._batch is batch:
            self._batch_future = None
            self._batch = {}
        for tenant, claims in batch.items():
            self._durable(tenant, claims, fut)

    def _durable(self, tenant: str, claims: list[Claim], fut: Any) -> None:
        if fut.exception() is not None:
            log.error("event commit failed; %d events for %s not stored", len(claims), tenant)
            return
        if not self._from_log:
            self._hold(tenant, claims, read_back=True)

    def _hold(self, tenant: str, claims: list[Claim], *, read_back: bool) -> None:
        """Durable claims of an owned tenant into memory (or left in the store, in order);
        ``read_back``: a refill may have read them already."""
        self._counts[tenant] = self._counts.get(tenant, 0) + len(claims)
        t = self._t(tenant)
        for claim in claims:
            if claim.id <= t.loaded_to:
                if read_back:
                    # Already read back by a refill that ran before this batch's "durable"
                    # callback (ids are handed out and committed in order).
                    continue
                # Another node's, created before what was read here (its clock is behind,
                # routing.sqlite.ids): a refill would not read it, so it is held now.
                t.ready.append(claim)
            elif t.more_in_store or len(t.ready) >= self.max_in_memory:
                t.more_in_store = True  # read back from the store in order later
            else:
                t.ready.append(claim)
                t.loaded_to = claim.id
        self._notify(tenant)

    # --- a cluster: other nodes' events, and the tenants this node delivers ----------------

    def join_cluster(self, owns: Callable[[str], bool]) -> None:
        """Deliver only the tenants ``owns`` says; take events from ``arrived``."""
        self.owns = owns
        self._from_log = True

    def arrived(self, rows: Sequence[Sequence[object]]) -> None:
        """Events of a log entry (``Ops.add_event`` rows), just applied here, in the log's
        order: this node's own as well as the others' (ids of two nodes need not come in
        order, routing.sqlite.ids, so the log's order decides what is read back)."""
        by_tenant: dict[str, list[Claim]] = {}
        for row in rows:
            claim = claim_of(row)
            if claim is not None and self.owns(claim.tenant):
                by_tenant.setdefault(claim.tenant, []).append(claim)
        for tenant, claims in by_tenant.items():
            self._hold(tenant, claims, read_back=False)
            self._notify(tenant)

    def gained(self, tenant: str) -> None:
        """This node now delivers ``tenant``'s events: read what waits from the store."""
        self._tenants[tenant] = _Tenant()
        self._counts[tenant] = self._store.count("events", "tenant = ? AND failed = 0",
                                                 (tenant,))
        self._notify(tenant)

    def lost(self, tenant: str) -> None:
        """Another node delivers ``tenant``'s events now; claims in flight still settle."""
        self._tenants.pop(tenant, None)

    # --- claims -----------------------------------------------------------------------------

    def claim(self, tenant: str, limit: int) -> list[Claim]:
        if not self.owns(tenant):
            return []
        t = self._t(tenant)
        ready = t.ready
        if not ready and t.more_in_store:
            self._refill(tenant, t)
        out: list[Claim] = []
        while ready and len(out) < limit:
            out.append(ready.popleft())
            if not ready and t.more_in_store:
                self._refill(tenant, t)
        t.in_flight += len(out)
        return out

    def _refill(self, tenant: str, t: _Tenant) -> None:
        claims = self._store.events_for(tenant, after_id=t.loaded_to, limit=self.max_in_memory)
        if claims:
            t.ready.extend(claims)
            t.loaded_to = claims[-1].id
        t.more_in_store = len(claims) >= self.max_in_memory

    def _purged_claim(self, claim: Claim) -> bool:
        if claim.id in self._purged_away:
            self._purged_away.discard(claim.id)
            return True
        return False

    def settle(self, claim: Claim) -> None:
        t = self._t(claim.tenant)
        t.in_flight = max(0, t.in_flight - 1)
        if self._purged_claim(claim):
            return  # its row is gone and its count went with it
        self._counts[claim.tenant] = max(0, self._counts.get(claim.tenant, 0) - 1)
        self._committer.pending.ack_event(claim.id)
        self._committer.commit_soon()

    def retry(self, claim: Claim, delay_s: float, *, attempted: bool = True) -> None:
        t = self._t(claim.tenant)
        t.in_flight = max(0, t.in_flight - 1)
        if self._purged_claim(claim):
            return
        t.waiting += 1
        if attempted:
            claim.attempts += 1
        self._committer.pending.retry_event(claim.id, claim.attempts, self._wall() + delay_s)
        self._committer.commit_later()
        self._loop.call_later(delay_s, self._due, claim)

    def _due(self, claim: Claim) -> None:
        t = self._t(claim.tenant)
        t.waiting = max(0, t.waiting - 1)
        if self._purged_claim(claim):
            return
        t.ready.appendleft(claim)
        self._notify(claim.tenant)

    def release(self, claim: Claim) -> None:
        t = self._t(claim.tenant)
        t.in_flight = max(0, t.in_flight - 1)
        if self._purged_claim(claim):
            return
        t.ready.appendleft(claim)
        self._notify_soon(claim.tenant)

    def fail(self, claim: Claim) -> None:
        t = self._t(claim.tenant)
        t.in_flight = max(0, t.in_flight - 1)
        if self._purged_claim(claim):
            return
        self._counts[claim.tenant] = max(0, self._counts.get(claim.tenant, 0) - 1)
        self._committer.pending.fail_event(claim.id, claim.attempts)
        self._committer.commit_later()

    def failed(self, tenant: str, after_id: int = 0, limit: int = 100) -> list[Claim]:
        return failed_events(self._store.reader, tenant, after_id, limit)

    def revive(self, tenant: str, event_id: int) -> bool:
        found = event_row(self._store.reader, tenant, event_id)
        if found is None or not found[1]:
            return False
        claim = found[0]
        claim.attempts = 0
        self._committer.pending.revive_event(event_id)
        self._committer.commit_later()
        self._counts[tenant] = self._counts.get(tenant, 0) + 1
        t = self._t(tenant)
        t.ready.appendleft(claim)
        self._notify_soon(tenant)
        return True

    # --- depth and retention ----------------------------------------------------------------

    def depths(self) -> dict[str, int]:
        owns = self.owns
        return {tenant: n for tenant, n in self._counts.items() if n and owns(tenant)}

    def purge(self, older_than: float) -> Durable:
        self._committer.pending.purge_before = older_than
        fut = self._committer.future()
        fut.add_done_callback(self._purged)
        return fut

    def _purged(self, fut: Any) -> None:
        rows, self._store.purged_rows = self._store.purged_rows, []
        if not rows or fut.exception() is not None:
            return
        gone: dict[str, set[int]] = {}
        for eid, tenant in rows:
            gone.setdefault(tenant, set()).add(eid)
            self._counts[tenant] = max(0, self._counts.get(tenant, 0) - 1)
        for tenant, ids in gone.items():
            t = self._tenants.get(tenant)
            if t is None:
                continue
            ready = {c.id for c in t.ready}
            t.ready = deque(c for c in t.ready if c.id not in ids)
            # the others are in flight or waiting for a retry: forget them when they return
            self._purged_away.update(i for i in ids if i not in ready and i <= t.loaded_to)
        log.warning("dropped %d events older than the retention period", len(rows))


def _everything(tenant: str) -> bool:
    return True
