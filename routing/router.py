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

import msgspec

from config import GatewayConfig, TenantConfig
from encoding.constants import CommandStatus
from encoding.pdu import encode_pdu
from encoding.receipt import Receipt

from .committer import GroupCommitter
from .model import FINAL, Message, OutboxItem, OutboxKind, Status
from .outcomes import Outcomes, PartState
from .receipts import receipt_due, receipt_pdu
from .retry import MAX_ATTEMPTS, MAX_FLOW_WAITS, Outcome, classify, retry_delay
from .routes import RouteTable
from .segments import build_parts
from .store import Store

__all__ = ["Job", "Router"]

log = logging.getLogger(__name__)


class Job(msgspec.Struct, gc=False):
    """One message on its way to an operator.

    ``gc=False``: jobs live for the message's whole trip (tens of thousands at a time) and
    hold no cycles, so keeping them out of the cyclic collector's walks keeps its full
    collections short (they were the submit_sm_resp latency tail)."""

    message: Message
    operators: tuple[str, ...]
    operator_index: int = 0
    attempts: int = 0  # failures so far (flow-control answers are counted in flow_waits)
    flow_waits: int = 0
    not_before: float = 0.0
    cancelled: bool = False
    sent: bool = False  # at least one part left for an operator: no cancel/replace now
    queued: bool = False
    parts: tuple[PartState, ...] = ()  # built on first dispatch, with their outcomes
    built_for: str = ""  # the operator whose policy (dcs0, split) built ``parts``

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
        self.operators = {op.name: op for op in config.operators}
        self.outcomes = Outcomes(self)
        self.available: Callable[[str], bool] = lambda operator: True
        self.on_work: Callable[[str], None] = lambda operator: None
        self._reference = 0

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
        job.queued = True
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
        wall = time.time()
        while queue and len(out) < limit:
            job = queue.popleft()
            if job.cancelled:
                job.queued = False
                continue
            if job.not_before > now:
                deferred.append(job)
                if len(deferred) > limit:
                    break
                continue
            job.queued = False
            m = job.message
            if m.expires_at and m.expires_at <= wall and not job.sent:
                self.finish(m, Status.EXPIRED, wall, detail="validity ran out in the queue")
                continue
            out.append(job)
        queue.extendleft(reversed(deferred))
        return out

    def next_ready(self, operator: str) -> float | None:
        """The earliest ``not_before`` of a deferred job at the head of the queue."""
        queue = self.queues[operator]
        return min((j.not_before for j in list(queue)[:64]), default=None)

    # --- from the ESME pool -----------------------------------------------------------------

    def parts_for(self, job: Job, now: float) -> list[int]:
        """Indexes of the job's parts still to send (builds them on first use)."""
        if (job.parts and job.built_for != job.operator
                and all(p.state == "pending" for p in job.parts)):
            job.parts = ()  # failed over before any part got through: rebuild for this one
        if not job.parts:
            m = job.message
            tenant = self.tenants.get(m.tenant)
            self._reference = (self._reference + 1) & 0xFF
            built = build_parts(m, self.operators[job.operator],
                                tenant_dcs0=tenant.dcs0 if tenant else "gsm7",
                                reference=self._reference)
            if isinstance(built, int):
                self.finish(m, Status.REJECTED, time.time(), error=built,
                            detail="cannot be sent as the operator requires")
                return []
            job.parts = tuple(PartState(p) for p in built)
            job.built_for = job.operator
        return [i for i, p in enumerate(job.parts) if p.state == "pending"]

    def part_sending(self, job: Job, index: int) -> None:
        job.parts[index].state = "sending"
        job.sent = True

    def part_acked(self, job: Job, index: int, operator: str, operator_id: str) -> None:
        self.outcomes.acked(job, index, operator, operator_id, time.time())

    def part_failed(self, job: Job, index: int, status: int | None, now: float) -> Outcome:
        """An operator refused a part or never answered; decide what happens next."""
        outcome = classify(status)
        part = job.parts[index]
        if isinstance(part.state, Status):
            return outcome  # its receipt already came (answer lost, receipt not)
        part.state = "pending"
        m = job.message
        if m.status in FINAL:
            return outcome
        wall = time.time()
        if outcome is Outcome.PERMANENT:
            self.finish(m, Status.REJECTED, wall, error=status or 0,
                        detail=f"refused by {job.operator}")
            return outcome
        if outcome is Outcome.FLOW:
            job.flow_waits += 1
            if m.expires_at and m.expires_at <= wall:
                self.finish(m, Status.EXPIRED, wall, error=status or 0,
                            detail=f"validity ran out while {job.operator} throttled")
                return outcome
            if job.flow_waits > MAX_FLOW_WAITS:
                self.finish(m, Status.UNDELIVERABLE, wall, error=status or 0,
                            detail=f"{job.operator} kept throttling")
                return outcome
            job.not_before = now + retry_delay(job.flow_waits)
        else:
            job.attempts += 1
            if job.attempts > MAX_ATTEMPTS:
                self.finish(m, Status.UNDELIVERABLE, wall,
                            error=status if status is not None else CommandStatus.ESME_RSYSERR,
                            detail="too many attempts")
                return outcome
            if outcome is Outcome.TEMPORARY and len(job.operators) > 1:
                job.operator_index = (job.operator_index + 1) % len(job.operators)
            job.not_before = now + retry_delay(1) * (job.attempts - 1)
        if not job.queued:
            self.on_work(self.enqueue(job, front=True))
        return outcome

    def receipt_timeouts(self, now: float, limit: int = 1000) -> dict[str, int]:
        """Messages an operator took but never sent a final receipt for, past that operator's
        ``receipt_timeout_s``, become UNKNOWN (an UNKNOWN receipt to the tenant); returns how
        many per operator (those with any). Their parts leave the receipt index, so a late
        receipt is matched from the store, where it sees UNKNOWN: the status is updated, no
        second receipt is sent."""
        done: dict[str, int] = {}
        for op in self.config.operators:
            if not op.receipt_timeout_s:
                continue
            for m in self.store.submitted_before(op.name, now - op.receipt_timeout_s, limit):
                if self.committer.status_uncommitted(m.id):
                    continue  # its receipt just came: that outcome is not committed yet
                for _, _, operator, operator_id, _, _ in self.store.segments_of(m.id):
                    self.outcomes.index.pop((operator, operator_id), None)
                self.finish(m, Status.UNKNOWN, now,
                            detail=f"no receipt from {op.name} within receipt_timeout_s")
                done[op.name] = done.get(op.name, 0) + 1
        return done

    def receipt(self, operator: str, receipt: Receipt, now: float) -> bool:
        """A delivery receipt from ``operator``; False when no message matches."""
        return self.outcomes.receipt(operator, self.operators[operator].id_format, receipt,
                                     now)

    def operator_down(self, operator: str) -> None:
        """No bind of ``operator`` is up: move its queue to the next operators of each route."""
        queue = self.queues[operator]
        if not queue:
            return
        jobs = list(queue)
        queue.clear()
        touched: set[str] = set()
        for job in jobs:
            job.queued = False
            if job.cancelled:
                continue
            touched.add(self.enqueue(job))
        for name in touched:
            if name != operator:
                self.on_work(name)

    def pending(self, operator: str) -> int:
        return len(self.queues[operator])

    def backlog(self) -> int:
        """Messages accepted and not yet handed to an operator (queued or in flight)."""
        return len(self.jobs)

    # --- outcomes ---------------------------------------------------------------------------

    def finish(self, m: Message, status: Status, now: float, *, error: int = 0,
               detail: str = "", notify: bool = True) -> None:
        """Record an outcome; queue a receipt for the tenant when one is due (``notify``
        False: the tenant already had its one receipt, an UNKNOWN at the receipt timeout)."""
        self.jobs.pop(m.id, None)
        m.status = status
        m.error = error
        ops = self.committer.pending
        ops.set_status(m.id, status, now, error=error, detail=detail)
        tenant = self.tenants.get(m.tenant)
        if not notify or tenant is None or not receipt_due(m.registered_delivery, status):
            self.committer.commit_later()
            return
        deliver = receipt_pdu(m, status, id_format=tenant.id_format, done_at=now, error=error,
                              dcs0=tenant.dcs0)
        item = OutboxItem(id=self.store.new_outbox_id(), tenant=m.tenant,
                          kind=OutboxKind.RECEIPT, message_id=m.id, created_at=now,
                          pdu=encode_pdu(deliver), deliver=deliver)
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
