"""The router: accepted messages → route → per-operator work queues; outcomes → tenant events.

``accepted`` is called once a batch of messages is durable. Each message becomes a ``Job``
on the work queue of the first operator of its route that can take traffic (failover
order); the ESME pool claims jobs from there. ``finish`` moves a message to its outcome
through the lifecycle and, when the tenant asked for it (registered_delivery), publishes a
receipt event to the tenant's event queue. Decisions here are synchronous and take the
time as an argument (monotonic ``now`` for retry timing) or from the injected wall clock;
the pool and the tenant side do the I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from config import GatewayConfig, OperatorConfig, TenantConfig
from encoding.constants import CommandStatus
from encoding.receipt import Receipt

from .channels import Channels
from .consent import OPTED_OUT_STATUS, Consent
from .events import SentEvent, TenantEvent
from .jobs import Job, PartState
from .lifecycle import Lifecycle
from .model import FINAL, Message, Status, dcs0_of
from .outcomes import Outcomes
from .receipts import receipt_due, receipt_event
from .repository import Durable, EventQueue, MessageRecord, WorkQueue
from .retry import MAX_ATTEMPTS, MAX_FAILOVERS, MAX_FLOW_WAITS, Outcome, classify, retry_delay
from .routes import RouteTable
from .segments import build_parts

__all__ = ["Job", "Router"]

log = logging.getLogger(__name__)


class Router:
    """One per gateway."""

    def __init__(self, config: GatewayConfig, record: MessageRecord, work: WorkQueue,
                 events: EventQueue, lifecycle: Lifecycle, *,
                 wall: Callable[[], float]) -> None:
        self.config = config
        self.record = record
        self.work = work
        # Events go to every channel of the tenant (SMPP receiver bind, webhook).
        self.channels = Channels(events, config.tenants)
        self.lifecycle = lifecycle
        self.wall = wall
        self.routes = RouteTable(config.routes)
        self.tenants: dict[str, TenantConfig] = {t.system_id: t for t in config.tenants}
        self.operators = {op.name: op for op in config.operators}
        self.jobs: dict[str, Job] = {}
        self.removed: dict[str, OperatorConfig] = {}  # operators a reload took away
        self.outcomes = Outcomes(record, self, self.tenants, self.operators)
        self._up: set[str] = set()
        # Operators whose binds are all on other cluster nodes: counted as up, their work
        # is handed to those nodes (routing.handoff)
        self.elsewhere: frozenset[str] = frozenset()
        self._reference = 0
        # Opt-outs (routing.consent): a message that was decided before its number opted
        # out (scheduled, or recovered after a restart) is refused here, before any operator.
        self.consent: Consent | None = None

    def reconfigure(self, config: GatewayConfig) -> None:
        """A reloaded config (``smsc reload``): tenants, operators and routes take effect for
        what is still waiting. Every unfinished job gets the operators of its route under the
        new table; when that changed, queued jobs are queued again in order (their parts are
        rebuilt for a new operator, ``parts_for``); a job in flight to an operator that stays
        is left to finish there. A job that has no route any more is REJECTED if no part of
        it left yet; one in flight keeps its operator. The dicts are updated in place:
        ``Outcomes`` shares them."""
        self.config = config
        self.channels = Channels(self.channels.events, config.tenants)
        self.tenants.clear()
        self.tenants.update((t.system_id, t) for t in config.tenants)
        for name, op in self.operators.items():
            if all(o.name != name for o in config.operators):
                self.removed[name] = op  # its messages still time out (receipt_timeouts)
        self.operators.clear()
        self.operators.update((op.name, op) for op in config.operators)
        for name in self.operators:
            self.removed.pop(name, None)
        self._up &= set(self.operators)
        self.routes = RouteTable(config.routes)
        for name in self.operators:
            self.work.add_operator(name)
        moved: list[Job] = []
        for job in list(self.jobs.values()):
            if not job.queued and job.operator in self.operators:
                continue  # in flight to an operator that stays: it finishes there
            m = job.message
            operators = self.routes.lookup(m.destination_addr, m.tenant)
            if operators == job.operators:
                continue
            if not operators:
                if not job.sent:
                    job.cancelled = True  # skipped (and dropped) where it is queued
                    self.finish(m, Status.REJECTED, self.wall(),
                                error=CommandStatus.ESME_RINVDSTADR, detail="no route after reload")
                continue
            job.operators = operators
            job.operator_index = 0
            moved.append(job)
        if not moved:
            return
        touched: set[str] = set()
        for name in self.work.operators:
            for job in self.work.drain(name):
                if not job.cancelled:
                    touched.add(self.enqueue(job))
        for name in touched:
            self.work.notify(name)

    # --- from the tenant side ---------------------------------------------------------------

    def accepted(self, messages: Iterable[Message]) -> None:
        touched: set[str] = set()
        now = self.wall()
        consent = self.consent
        for m in messages:
            if consent is not None and consent.opted_out(m.tenant, m.destination_addr):
                self.finish(m, Status.REJECTED, now, error=OPTED_OUT_STATUS,
                            detail="the recipient opted out")
                continue
            operators = self.routes.lookup(m.destination_addr, m.tenant)
            if not operators:
                self.finish(m, Status.REJECTED, now, error=CommandStatus.ESME_RINVDSTADR,
                            detail="no route")
                continue
            job = Job(m, operators)
            self.jobs[m.id] = job
            touched.add(self.enqueue(job))
        for operator in touched:
            self.work.notify(operator)

    def reply(self, m: Message, operator: str) -> None:
        """The gateway's own answer to an inbound message (a keyword's reply), once stored:
        queued on the operator the inbound came from, whatever the routes say (the route
        table when a reload took that operator away)."""
        operators = ((operator,) if operator in self.operators
                     else self.routes.lookup(m.destination_addr, m.tenant))
        if not operators:
            self.finish(m, Status.REJECTED, self.wall(), error=CommandStatus.ESME_RINVDSTADR,
                        detail="no route")
            return
        job = Job(m, operators)
        self.jobs[m.id] = job
        self.work.notify(self.enqueue(job))

    def enqueue(self, job: Job, *, front: bool = False) -> str:
        """Queue ``job`` on the first operator of its route that is up (failover), here or
        on another node (``elsewhere``)."""
        self._choose(job)
        self.work.put((job,), job.operator, front=front)
        return job.operator

    def _choose(self, job: Job) -> None:
        ops = job.operators
        for i in range(len(ops)):
            index = (job.operator_index + i) % len(ops)
            if ops[index] in self._up or ops[index] in self.elsewhere:
                job.operator_index = index
                return

    def cancel(self, message_id: str, now: float) -> bool:
        """cancel_sm before the message left the gateway: CANCELLED, no receipt."""
        job = self.jobs.get(message_id)
        if job is None or job.sent or job.message.status is not Status.ACCEPTED:
            return False
        job.cancelled = True
        self.finish(job.message, Status.CANCELLED, now, detail="cancel_sm", notify=False)
        return True

    def replace(self, message: Message, now: float) -> Durable | None:
        """replace_sm before the message left the gateway: the new content, once durable."""
        job = self.jobs.get(message.id)
        if job is None or job.sent or job.message.status is not Status.ACCEPTED:
            return None
        job.message = message
        return self.record.replace(message, now)

    # --- from the ESME pool -----------------------------------------------------------------

    def operator_up(self, operator: str) -> None:
        self._up.add(operator)
        self.work.notify(operator)

    def operator_down(self, operator: str) -> None:
        """No bind of ``operator`` is up: move its queue to the next operators of each route."""
        self._up.discard(operator)
        touched: set[str] = set()
        for job in self.work.drain(operator):
            if not job.cancelled:
                touched.add(self.enqueue(job))
        for name in touched:
            if name != operator:
                self.work.notify(name)

    def take(self, operator: str, limit: int, now: float) -> list[Job]:
        """Up to ``limit`` jobs ready for ``operator``; those whose validity ran out while
        they waited are finished EXPIRED here."""
        jobs = self.work.claim(operator, limit, now)
        wall = self.wall()
        out: list[Job] = []
        for job in jobs:
            m = job.message
            if m.expires_at and m.expires_at <= wall and not job.sent:
                self.work.settle(job)
                self.finish(m, Status.EXPIRED, wall, detail="validity ran out in the queue")
                continue
            out.append(job)
        return out

    def put_back(self, jobs: Iterable[Job], operator: str) -> None:
        """Claimed jobs the bind had no room or rate for: first in line again."""
        for job in reversed(list(jobs)):
            self.work.retry(job, operator, job.not_before)

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
                                tenant_dcs0=dcs0_of(m, tenant.dcs0 if tenant else "gsm7"),
                                reference=self._reference)
            if isinstance(built, int):
                self.work.settle(job)
                self.finish(m, Status.REJECTED, self.wall(), error=built,
                            detail="cannot be sent as the operator requires")
                return []
            job.parts = tuple(PartState(p) for p in built)
            job.built_for = job.operator
        pending = [i for i, p in enumerate(job.parts) if p.state == "pending"]
        if not pending:
            self.work.settle(job)  # its parts are all out already
        return pending

    def next_due(self, operator: str) -> float | None:
        return self.work.next_due(operator)

    def part_sending(self, job: Job, index: int) -> None:
        parts = job.parts
        parts[index].state = "sending"
        job.sent = True
        if len(parts) == 1 or all(p.state != "pending" for p in parts):
            self.work.settle(job)  # every part is out: off the queue until an outcome

    def part_acked(self, job: Job, index: int, operator: str, operator_id: str) -> None:
        self.outcomes.acked(job, index, operator, operator_id, self.wall())

    def submitted(self, job: Job, operator: str, now: float) -> None:
        """Every part of ``job`` was acknowledged: the message waits for its receipts."""
        m = job.message
        moved = self.lifecycle.move(m, Status.SUBMITTED, now, operator=operator,
                                    parts=len(job.parts) or 1)
        # Out of the router's queue accounting; receipts find it through the index.
        self.jobs.pop(m.id, None)
        if moved and self.channels.wants_sent(m.tenant, m.report_url):
            self.publish(m.tenant, [SentEvent(
                message_id=m.id, operator=operator, at=self.wall(), created_at=m.created_at,
                parts=len(job.parts) or 1, source_addr=m.source_addr,
                destination_addr=m.destination_addr, data_coding=m.data_coding,
                source_addr_ton=m.source_addr_ton, dest_addr_ton=m.dest_addr_ton,
                reference=m.reference, request_id=m.request_id, report_url=m.report_url)],
                self.wall())

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
        wall = self.wall()
        error = status if status is not None else CommandStatus.ESME_RSYSERR
        if outcome is Outcome.PERMANENT or (
                outcome is Outcome.FAILOVER
                and (job.failovers >= MAX_FAILOVERS or len(job.operators) < 2)):
            self.finish(m, Status.REJECTED, wall, error=error,
                        detail=f"refused by {job.operator}")
            return outcome
        if outcome is Outcome.FAILOVER:
            job.failovers += 1
            job.operator_index = (job.operator_index + 1) % len(job.operators)
            job.not_before = now
        elif outcome is Outcome.FLOW:
            job.flow_waits += 1
            if m.expires_at and m.expires_at <= wall:
                self.finish(m, Status.EXPIRED, wall, error=error,
                            detail=f"validity ran out while {job.operator} throttled")
                return outcome
            if job.flow_waits > MAX_FLOW_WAITS:
                self.finish(m, Status.UNDELIVERABLE, wall, error=error,
                            detail=f"{job.operator} kept throttling")
                return outcome
            job.not_before = now + retry_delay(job.flow_waits)
        else:
            job.attempts += 1
            if job.attempts > MAX_ATTEMPTS:
                self.finish(m, Status.UNDELIVERABLE, wall, error=error,
                            detail="too many attempts")
                return outcome
            if outcome is Outcome.TEMPORARY and len(job.operators) > 1:
                job.operator_index = (job.operator_index + 1) % len(job.operators)
            job.not_before = now + retry_delay(1) * (job.attempts - 1)
        if not job.queued:
            self.work.notify(self.enqueue(job, front=True))
        return outcome

    def receipt_timeouts(self, now: float, limit: int = 1000) -> dict[str, int]:
        """Messages an operator took but never sent a final receipt for, past that operator's
        ``receipt_timeout_s``, become UNKNOWN (an UNKNOWN receipt to the tenant); returns how
        many per operator (those with any). Their parts leave the receipt index, so a late
        receipt is matched from the store, where it sees UNKNOWN: the status is updated, no
        second receipt is sent."""
        done: dict[str, int] = {}
        for op in (*self.config.operators, *self.removed.values()):
            if not op.receipt_timeout_s:
                continue
            for m in self.record.overdue(op.name, now - op.receipt_timeout_s, limit):
                if self.record.change_pending(m.id):
                    continue  # its receipt just came: that outcome is not committed yet
                self.outcomes.forget(m.id)
                self.finish(m, Status.UNKNOWN, now,
                            detail=f"no receipt from {op.name} within receipt_timeout_s")
                done[op.name] = done.get(op.name, 0) + 1
        return done

    def receipt(self, operator: str, receipt: Receipt, now: float) -> bool:
        """A delivery receipt from ``operator``; False when no message matches."""
        op = self.operators.get(operator)  # None: removed by a reload, binds still retiring
        return self.outcomes.receipt(operator, op.id_format if op else "auto", receipt, now)

    def pending(self, operator: str) -> int:
        return self.work.depth(operator)

    def backlog(self) -> int:
        """Messages accepted and not yet handed to an operator (queued or in flight)."""
        return len(self.jobs)

    # --- outcomes ---------------------------------------------------------------------------

    def finish(self, m: Message, status: Status, now: float, *, error: int = 0,
               detail: str = "", notify: bool = True, parts: int = 0) -> None:
        """Record an outcome; publish a receipt for the tenant when one is due (``notify``
        False: the tenant already had its one receipt, an UNKNOWN at the receipt timeout,
        or asked for none, a cancel)."""
        job = self.jobs.pop(m.id, None)
        # A message an operator refused (or kept failing) ends with that operator's name,
        # so its failure is counted against the operator (analytics, status).
        operator = job.operator if job is not None and job.sent and not m.operator else ""
        if not self.lifecycle.move(m, status, now, error=error, detail=detail,
                                   operator=operator):
            return
        tenant = self.tenants.get(m.tenant)
        if not notify or tenant is None or not receipt_due(m.registered_delivery, status):
            return
        if not parts:
            parts = len(job.parts) if job is not None and job.parts else 1
        self.publish(m.tenant, [receipt_event(m, status, done_at=now, error=error,
                                              dcs0=dcs0_of(m, tenant.dcs0), parts=parts)],
                     now)

    def publish(self, tenant: str, events: list[TenantEvent], now: float) -> Durable:
        """Events for a tenant, delivered by its channels once durable (the event queue
        logs a batch it could not store)."""
        return self.channels.publish(tenant, events, now)
