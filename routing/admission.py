"""The admission service: one synchronous decision per submission, for every door.

``admit`` is asked once per request, before anything is parsed further: is the gateway
accepting, is its queue below ``[store] max_queue``, and is the tenant within its ``tps``
(one token bucket per tenant, shared by all its binds and all doors; on a cluster one budget
over every node, made by ``limiter``). ``decide`` validates
one submission (``validate.check_message``) and mints its id: a ``Message``, or the
command_status to refuse it with. ``accept`` stores a batch of decided messages and, once
they are durable, hands them to the router; the door answers from its ``on_durable``
callback, which runs first. A number that opted out of the tenant (``consent``) is refused
with ``OPTED_OUT_STATUS`` on every door, before anything is stored. A message whose send
time is in the future (SMPP schedule_delivery_time, HTTP ``send_at``), or that
``hold_until`` (the hook of holding rules) or quiet hours in the recipient's time zone
(``routing.quiet``) put later, is stored SCHEDULED and not given to the router; the
``routing.schedule.Scheduler`` releases it when due (``held`` wakes it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from config import GatewayConfig, TenantConfig
from encoding.constants import CommandStatus
from encoding.smpptime import parse_smpp_time

from .analytics import Analytics
from .consent import OPTED_OUT_STATUS, Consent
from .model import Message, Status
from .quiet import quiet_until
from .repository import Durable, MessageRecord
from .schedule import hold
from .submission import Submission
from .throttle import RateLimit, TokenBucket
from .validate import check_message, sender_allowed

__all__ = ["Admission", "MessageSink", "OPTED_OUT_STATUS"]

S = CommandStatus


class MessageSink(Protocol):
    """Where durable messages go (the router)."""

    def accepted(self, messages: list[Message]) -> None: ...

    def backlog(self) -> int: ...


class Admission:
    def __init__(self, config: GatewayConfig, record: MessageRecord, sink: MessageSink) -> None:
        self.max_queue = config.store.max_queue
        self.record = record
        self.analytics: Analytics | None = None  # rollups: accepted messages counted
        self.sink = sink
        self.consent: Consent | None = None  # opt-outs: a refused number never leaves
        self.accepting = True
        self._buckets: dict[str, RateLimit] = {}
        # A tenant's rate limit, made at its first submission (a cluster's budget instead).
        self.limiter: Callable[[TenantConfig, float], RateLimit] = (
            lambda tenant, now: TokenBucket(tenant.tps, now))
        self._decided = 0  # messages decided and not yet handed to ``accept``
        # Scheduled messages once durable (``Scheduler.held``: wakes its timer).
        self.held: Callable[[list[Message]], None] = lambda messages: None

    def reconfigure(self, config: GatewayConfig) -> None:
        """A reloaded config: the queue limit, and a new rate for tenants whose ``tps``
        changed (their bucket starts full at the new rate; removed tenants' go)."""
        self.max_queue = config.store.max_queue
        rates = {t.system_id: t.tps for t in config.tenants}
        for system_id in list(self._buckets):
            if rates.get(system_id) != self._buckets[system_id].rate:
                del self._buckets[system_id]

    def stop_accepting(self) -> None:
        self.accepting = False

    def admit(self, tenant: TenantConfig, now: float, count: int = 1) -> int:
        """ESME_ROK, ESME_RMSGQFUL (stopping, or the queue is full) or ESME_RTHROTTLED, for
        ``count`` messages asked for at once (an HTTP request for many recipients borrows
        from the tenant's rate: see ``TokenBucket.borrow``)."""
        backlog = self.record.backlog() + self.sink.backlog() + self._decided
        if not self.accepting or backlog + count > max(self.max_queue, count):
            return S.ESME_RMSGQFUL
        bucket = self._bucket(tenant, now)
        ok = bucket.take(now) if count == 1 else bucket.borrow(now, count)
        return S.ESME_ROK if ok else S.ESME_RTHROTTLED

    def _bucket(self, tenant: TenantConfig, now: float) -> RateLimit:
        bucket = self._buckets.get(tenant.system_id)
        if bucket is None:
            bucket = self._buckets[tenant.system_id] = self.limiter(tenant, now)
        return bucket

    def retry_after(self, tenant: TenantConfig, now: float) -> float:
        """Seconds until ``tenant`` may send again (0 when it may now)."""
        return self._bucket(tenant, now).delay(now)


    def decide(self, sub: Submission, tenant: TenantConfig, now: float) -> Message | int:
        """A new Message for ``sub`` (not stored yet), or the status to refuse it with."""
        status = check_message(
            source_addr=sub.source_addr, source_addr_ton=sub.source_addr_ton,
            destination_addr=sub.destination_addr, dest_addr_ton=sub.dest_addr_ton,
            esm_class=sub.esm_class, priority_flag=sub.priority_flag,
            registered_delivery=sub.registered_delivery,
            replace_if_present_flag=sub.replace_if_present_flag, data_coding=sub.data_coding,
            sm_default_msg_id=sub.sm_default_msg_id,
            schedule_delivery_time=sub.schedule_delivery_time,
            validity_period=sub.validity_period, body=sub.body,
            interface_version=sub.interface_version, dcs0=tenant.dcs0, now=now)
        if status:
            return status
        if not sender_allowed(tenant.senders, sub.source_addr):
            return S.ESME_RINVSRCADR
        destination = sub.destination_addr.lstrip("+")
        if self.consent is not None and self.consent.opted_out(tenant.system_id, destination):
            return OPTED_OUT_STATUS
        validity = sub.validity_period
        self._decided += 1
        return self._timed(Message(
            id=self.record.new_message_id(), tenant=tenant.system_id,
            source_addr=sub.source_addr, destination_addr=destination,
            source_addr_ton=sub.source_addr_ton, source_addr_npi=sub.source_addr_npi,
            dest_addr_ton=sub.dest_addr_ton, dest_addr_npi=sub.dest_addr_npi,
            service_type=sub.service_type, esm_class=sub.esm_class,
            protocol_id=sub.protocol_id, priority_flag=sub.priority_flag,
            registered_delivery=sub.registered_delivery, data_coding=sub.data_coding,
            schedule_delivery_time=sub.schedule_delivery_time, validity_period=validity,
            body=sub.body, tlvs=sub.tlvs, created_at=now, request_id=sub.request_id,
            reference=sub.reference, report_url=sub.report_url,
            expires_at=(parse_smpp_time(validity, now) or 0.0) if validity else 0.0),
            sub, tenant, now)

    # --- scheduling (routing.schedule) ------------------------------------------------------

    def _timed(self, m: Message, sub: Submission, tenant: TenantConfig, now: float
               ) -> Message:
        """``m`` held as SCHEDULED when ``hold_until`` says it is due later than ``now``."""
        if sub.schedule_delivery_time:  # checked by check_message (SMPP 3.4 7.1.1)
            m.send_at = parse_smpp_time(sub.schedule_delivery_time, now) or 0.0
        # then quiet hours in the recipient's time zone: the message's own, else the tenant's
        due = quiet_until(m, tenant, sub.quiet_hours, self.hold_until(m, tenant))
        if due > now:
            hold(m, due)
        else:
            m.send_at = 0.0
        return m

    def hold_until(self, message: Message, tenant: TenantConfig) -> float:
        """When ``message`` may leave (wall clock): its asked-for time (``send_at``, 0 when
        none was asked; ``created_at`` is now). A later time holds it as SCHEDULED until
        then. The hook for holding rules (quiet hours): replace it on the instance,
        ``admission.hold_until = rule``, or override it; a rule should start from
        ``max(message.send_at, message.created_at)``."""
        return message.send_at

    def accept(self, messages: list[Message], now: float,
               on_durable: Callable[[bool], None]) -> Durable:
        """Store ``messages``; once durable, ``on_durable(ok)`` runs, then the router gets
        them (only if ``ok``)."""
        def durable(fut: Any) -> None:
            ok = fut.exception() is None
            on_durable(ok)
            if ok:
                held = [m for m in messages if m.status is Status.SCHEDULED]
                if held:  # they wait in the store for the scheduler
                    self.held(held)
                    self.sink.accepted([m for m in messages
                                        if m.status is not Status.SCHEDULED])
                else:
                    self.sink.accepted(messages)

        self._decided = max(0, self._decided - len(messages))
        fut = self.record.accept(messages, now)
        if self.analytics is not None:  # in the same commit as the messages
            self.analytics.accepted(messages, now)
        fut.add_done_callback(durable)
        return fut
