"""The router: accepted messages → route → per-operator queues; outcomes → tenant receipts.

``accepted`` is called once a batch of messages is durable. Each message becomes a ``Job``
on the queue of the first operator of its route that can take traffic (failover order);
the ESME pool takes jobs from there. ``finish`` records a final outcome and, when the tenant
asked for it (registered_delivery), puts a receipt in the tenant's outbox. Decisions here
are synchronous; the pool and the tenant side do the I/O.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable

from config import GatewayConfig, TenantConfig
from encoding.constants import CommandStatus

from .committer import GroupCommitter
from .model import Message, OutboxItem, OutboxKind, Status
from .receipts import build_receipt, receipt_due
from .routes import RouteTable
from .store import Store

__all__ = ["Job", "Router"]

log = logging.getLogger(__name__)


class Job:
    """One message on its way to an operator."""

    __slots__ = ("attempts", "cancelled", "message", "not_before", "operator_index",
                 "operators", "parts", "sent")

    def __init__(self, message: Message, operators: tuple[str, ...]) -> None:
        self.message = message
        self.operators = operators
        self.operator_index = 0
        self.attempts = 0
        self.not_before = 0.0
        self.cancelled = False
        self.sent = False  # at least one part left for an operator: no cancel/replace now
        self.parts: list[object] = []  # filled by the pool (segments and their outcomes)

    @property
    def operator(self) -> str:
        return self.operators[self.operator_index]


class Router:
    """One per gateway. ``deliver`` receives outbox items once they are durable."""

    def __init__(self, config: GatewayConfig, store: Store, committer: GroupCommitter,
                 deliver: Callable[[list[OutboxItem]], None]) -> None:
        self.config = config
        self.store = store
        self.committer = committer
        self.deliver = deliver
        self.routes = RouteTable(config.routes)
        self.tenants: dict[str, TenantConfig] = {t.system_id: t for t in config.tenants}
        self.queues: dict[str, deque[Job]] = {op.name: deque() for op in config.operators}
        self.jobs: dict[str, Job] = {}
        self.available: Callable[[str], bool] = lambda operator: True
        self.on_work: Callable[[str], None] = lambda operator: None

    # --- from the tenant side ---------------------------------------------------------------

    def accepted(self, messages: Iterable[Message]) -> None:
        touched: set[str] = set()
        now = time.time()
        for m in messages:
            operators = self.routes.lookup(m.destination_addr, m.tenant)
            if not operators:
                self.finish(m, Status.REJECTED, now, error=CommandStatus.ESME_RINVDSTADR,
                            detail="no route")
                continue
            job = Job(m, operators)
            self.jobs[m.id] = job
            touched.add(self.enqueue(job))
        for operator in touched:
            self.on_work(operator)

    def enqueue(self, job: Job, *, front: bool = False) -> str:
        """Queue ``job`` on the first operator of its route that is available (failover)."""
        ops = job.operators
        for i in range(len(ops)):
            index = (job.operator_index + i) % len(ops)
            if self.available(ops[index]):
                job.operator_index = index
                break
        queue = self.queues[job.operator]
        if front:
            queue.appendleft(job)
        else:
            queue.append(job)
        return job.operator

    def cancel(self, message_id: str) -> bool:
        job = self.jobs.get(message_id)
        if job is None or job.sent:
            return False
        job.cancelled = True
        del self.jobs[message_id]
        return True

    def replace(self, message: Message) -> bool:
        job = self.jobs.get(message.id)
        if job is None or job.sent:
            return False
        job.message = message
        return True

    def take(self, operator: str, limit: int, now: float) -> list[Job]:
        """Up to ``limit`` jobs ready for ``operator`` (cancelled ones are dropped here)."""
        queue = self.queues[operator]
        out: list[Job] = []
        deferred: list[Job] = []
        while queue and len(out) < limit:
            job = queue.popleft()
            if job.cancelled:
                continue
            if job.not_before > now:
                deferred.append(job)
                if len(deferred) > limit:
                    break
                continue
            out.append(job)
        queue.extendleft(reversed(deferred))
        return out

    def pending(self, operator: str) -> int:
        return len(self.queues[operator])

    # --- outcomes ---------------------------------------------------------------------------

    def finish(self, m: Message, status: Status, now: float, *, error: int = 0,
               detail: str = "") -> None:
        """Record a final outcome; queue a receipt for the tenant when one is due."""
        self.jobs.pop(m.id, None)
        ops = self.committer.pending
        ops.set_status(m.id, status, now, error=error, detail=detail)
        tenant = self.tenants.get(m.tenant)
        if tenant is None or not receipt_due(m.registered_delivery, status):
            self.committer.future()
            return
        item = OutboxItem(id=self.store.new_outbox_id(), tenant=m.tenant,
                          kind=OutboxKind.RECEIPT, message_id=m.id, created_at=now,
                          pdu=build_receipt(m, status, id_format=tenant.id_format,
                                            done_at=now, error=error, dcs0=tenant.dcs0))
        self.put_outbox([item])

    def put_outbox(self, items: list[OutboxItem]) -> None:
        """Persist outbox items; hand them to delivery once durable."""
        ops = self.committer.pending
        for item in items:
            ops.add_outbox(item)

        def durable(fut: object) -> None:
            if getattr(fut, "exception", lambda: None)() is None:
                self.deliver(items)
            else:
                log.error("outbox commit failed; %d deliver_sm stay undelivered", len(items))

        self.committer.future().add_done_callback(durable)
