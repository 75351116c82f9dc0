"""Delivery to tenants: deliver_sm (receipts, inbound messages) from the durable outbox.

Items reach ``enqueue`` only once committed. Each tenant has an in-memory queue (bounded;
the rest stays in the store and is read back in id order, so the oldest goes first). The
queue drains into the tenant's receiver binds, spread across them, within each bind's
window. A deliver_sm_resp ESME_ROK removes the item from the store; a temporary refusal or a
timeout retries it with back-off; a permanent refusal (ESME_RX_P_APPN, ESME_RX_R_APPN and
other non-temporary statuses) drops it (reference section 4, tenant side).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import msgspec

from encoding.constants import CommandStatus
from encoding.errors import PduError
from encoding.pdu import DeliverSm, Pdu, decode_pdu
from esme import Connection
from routing import GroupCommitter, OutboxItem, Store
from routing.throttle import backoff

from .registry import Registry

__all__ = ["Delivery", "TEMPORARY"]

log = logging.getLogger(__name__)

TEMPORARY = frozenset({
    CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL, CommandStatus.ESME_RX_T_APPN,
    CommandStatus.ESME_RSYSERR, CommandStatus.ESME_RUNKNOWNERR,
})
_RETRY_BASE_S = 1.0
_RETRY_CAP_S = 300.0


class _TenantQueue:
    __slots__ = ("in_flight", "loaded_to", "more_in_store", "queue", "waiting")

    def __init__(self) -> None:
        self.queue: deque[OutboxItem] = deque()
        self.loaded_to = 0  # highest outbox id read from the store or enqueued
        self.more_in_store = True  # items may wait in the store beyond loaded_to
        self.in_flight = 0
        self.waiting = 0  # items parked on a retry timer


class Delivery:
    """Moves outbox items to tenants' receiver binds; one per gateway."""

    def __init__(self, store: Store, committer: GroupCommitter, registry: Registry,
                 loop: asyncio.AbstractEventLoop, *, max_in_memory: int = 5000) -> None:
        self.store = store
        self.committer = committer
        self.registry = registry
        self.loop = loop
        self.max_in_memory = max_in_memory
        self.delivered = 0
        self.dropped = 0
        self.retried = 0
        self._queues: dict[str, _TenantQueue] = {}

    def _q(self, tenant: str) -> _TenantQueue:
        q = self._queues.get(tenant)
        if q is None:
            q = self._queues[tenant] = _TenantQueue()
        return q

    def depth(self, tenant: str) -> int:
        q = self._queues.get(tenant)
        return 0 if q is None else len(q.queue) + q.in_flight + q.waiting

    # --- input ------------------------------------------------------------------------------

    def enqueue(self, items: list[OutboxItem]) -> None:
        """Committed items, in id order; delivered now if the tenant has a receiver bound."""
        touched: set[str] = set()
        for item in items:
            q = self._q(item.tenant)
            if item.id <= q.loaded_to:
                # Already read back from the store by a refill that ran before this batch's
                # "durable" callback (ids are handed out and committed in order).
                touched.add(item.tenant)
                continue
            if q.more_in_store or len(q.queue) >= self.max_in_memory:
                q.more_in_store = True  # read back from the store in order later
            else:
                q.queue.append(item)
                q.loaded_to = max(q.loaded_to, item.id)
            touched.add(item.tenant)
        for tenant in touched:
            self.pump(tenant)

    def on_bound(self, tenant: str) -> None:
        self.pump(tenant)

    # --- output -----------------------------------------------------------------------------

    def pump(self, tenant: str) -> None:
        q = self._q(tenant)
        if not q.queue and q.more_in_store:
            self._refill(tenant, q)
        if not q.queue:
            return
        receivers = self.registry.receivers(tenant)
        if not receivers:
            return
        queue = q.queue
        progress = True
        while queue and progress:
            progress = False
            for conn in receivers:
                if not queue:
                    break
                if conn.session.window.room <= 0 or not conn.writable:
                    continue
                item = queue.popleft()
                if self._send(conn, item):
                    q.in_flight += 1
                    progress = True
            if not queue and q.more_in_store:
                self._refill(tenant, q)

    def _refill(self, tenant: str, q: _TenantQueue) -> None:
        items = self.store.outbox_for(tenant, after_id=q.loaded_to, limit=self.max_in_memory)
        if items:
            q.queue.extend(items)
            q.loaded_to = items[-1].id
        q.more_in_store = len(items) >= self.max_in_memory

    def _send(self, conn: Connection, item: OutboxItem) -> bool:
        pdu: Pdu | None = item.deliver
        if pdu is None:  # read back from the store
            try:
                pdu = decode_pdu(item.pdu)
            except PduError:
                log.error("outbox item %d of %s is not a PDU; dropping it", item.id,
                          item.tenant)
                self._finish(item)
                return False
        if not isinstance(pdu, DeliverSm):
            self._finish(item)
            return False
        binding = conn.context
        if binding.interface_version < 0x34 and pdu.tlvs:
            # reference 2.1 policy: 3.3 tenants get receipt text only (a copy: the item may
            # be retried on a 3.4 bind)
            pdu = msgspec.structs.replace(pdu, tlvs={})
        return conn.try_send(pdu, item) is not None

    # --- answers ----------------------------------------------------------------------------

    def on_response(self, item: OutboxItem, status: int) -> None:
        q = self._q(item.tenant)
        q.in_flight = max(0, q.in_flight - 1)
        if status == CommandStatus.ESME_ROK:
            self.delivered += 1
            self._finish(item)
        elif status in TEMPORARY:
            self._retry(item, q)
        else:
            self.dropped += 1
            log.warning("tenant %s refused deliver_sm for %s with 0x%X; dropped",
                        item.tenant, item.message_id or item.kind.value, status)
            self._finish(item)
        self.pump(item.tenant)

    def on_failed(self, item: OutboxItem, reason: str) -> None:
        """No answer (timeout) or the bind went away: try again."""
        q = self._q(item.tenant)
        q.in_flight = max(0, q.in_flight - 1)
        if reason == "response timeout":
            self._retry(item, q)
        else:
            q.queue.appendleft(item)
        self.pump(item.tenant)

    def _finish(self, item: OutboxItem) -> None:
        self.committer.pending.ack_outbox(item.id)
        self.committer.commit_later()

    def _retry(self, item: OutboxItem, q: _TenantQueue) -> None:
        self.retried += 1
        item.attempts += 1
        delay = backoff(item.attempts, _RETRY_BASE_S, _RETRY_CAP_S)
        item.next_attempt_at = self.loop.time() + delay
        self.committer.pending.retry_outbox(item.id, item.attempts, item.next_attempt_at)
        self.committer.commit_later()
        q.waiting += 1
        self.loop.call_later(delay, self._requeue, item)

    def _requeue(self, item: OutboxItem, *_: Any) -> None:
        q = self._q(item.tenant)
        q.waiting = max(0, q.waiting - 1)
        q.queue.appendleft(item)
        self.pump(item.tenant)
