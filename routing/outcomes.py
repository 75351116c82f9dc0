"""What happened to each part: operator acks, refusals and delivery receipts, combined.

A message may go out as several parts; each gets its own operator id and its own receipt.
The tenant gets exactly one receipt per message id it was given: with ``aggregate`` the
message is delivered when every part is and failed as soon as one part fails; ``first`` and
``last`` follow one part's receipt (reference 9.3 rule 6, section 11 pitfall 23). Receipts
are matched by operator and normalised id (``correlation``); a receipt that overtakes its
submit_sm_resp is parked briefly and matched when the id arrives (reference 10.4).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Protocol

from config import OperatorConfig, TenantConfig
from encoding.constants import MessageState
from encoding.receipt import Receipt

from .correlation import id_variants, normalise
from .jobs import Job, PartState
from .model import FINAL, Message, Status
from .repository import MessageRecord

__all__ = ["Outcomes", "OutcomeSink", "status_of_receipt"]

log = logging.getLogger(__name__)

_STATE_STATUS = {
    MessageState.DELIVERED: Status.DELIVERED,
    MessageState.EXPIRED: Status.EXPIRED,
    MessageState.DELETED: Status.UNDELIVERABLE,
    MessageState.UNDELIVERABLE: Status.UNDELIVERABLE,
    MessageState.REJECTED: Status.REJECTED,
    MessageState.SKIPPED: Status.UNDELIVERABLE,
}
# The base a receipt's id may use, given the base of the operator's submit_sm_resp ids.
_RECEIPT_BASE = {"hex": "decimal", "decimal": "hex"}
_MAX_TRACKED = 50_000  # recent parts kept in memory for receipts; older ones are read from disk
_MAX_PARKED = 10_000
_PARK_S = 120.0


def status_of_receipt(r: Receipt) -> Status | None:
    """The final Status a receipt reports, or None for an intermediate one (ENROUTE, ...)."""
    state = r.message_state
    return _STATE_STATUS.get(state) if state is not None else None  # type: ignore[call-overload]


def _error_code(r: Receipt) -> int:
    return int(r.err) if r.err and r.err.isdigit() else 0


class OutcomeSink(Protocol):
    """What outcomes are reported to (the router)."""

    def submitted(self, job: Job, operator: str, now: float) -> None: ...

    def finish(self, m: Message, status: Status, now: float, *, error: int = 0,
               detail: str = "", notify: bool = True, parts: int = 0) -> None: ...


class Outcomes:
    """Correlation index and receipt combination; owned by the Router."""

    def __init__(self, record: MessageRecord, sink: OutcomeSink,
                 tenants: Mapping[str, TenantConfig],
                 operators: Mapping[str, OperatorConfig]) -> None:
        self.record = record
        self.sink = sink
        self.tenants = tenants
        self.operators = operators
        self.index: OrderedDict[tuple[str, str], tuple[Job, int]] = OrderedDict()
        self.parked: OrderedDict[tuple[str, str], tuple[Receipt, float]] = OrderedDict()
        self.unmatched = 0

    # --- acks -------------------------------------------------------------------------------

    def acked(self, job: Job, index: int, operator: str, operator_id: str, now: float) -> None:
        part = job.parts[index]
        part.pdu = None  # never sent again; the index keeps the job for its receipt only
        part.operator = operator
        part.operator_id = normalise(operator_id)
        if isinstance(part.state, Status):  # its receipt came first (parked and matched)
            return
        part.state = "acked"
        m = job.message
        self.record.record_segment(m.id, index + 1, len(job.parts), operator,
                                   part.operator_id, Status.SUBMITTED)
        key = (operator, part.operator_id)
        self._track(key, job, index)
        if m.status is Status.ACCEPTED and all(p.state not in ("pending", "sending")
                                               for p in job.parts):
            self.sink.submitted(job, operator, now)
        if self.parked and (parked := self._unpark(operator, operator_id)) is not None:
            self._apply(job.message, job, index, parked, now, operator)

    def _unpark(self, operator: str, operator_id: str) -> Receipt | None:
        """The receipt parked for ``operator_id`` of ``operator``, taken out (None: none). A
        receipt that came first may carry the id in the other base (reference 10.4)."""
        op = self.operators.get(operator)
        fmt = op.id_format if op is not None else "opaque"
        for v in id_variants(operator_id, _RECEIPT_BASE.get(fmt, fmt)):
            parked = self.parked.pop((operator, v), None)
            if parked is not None:
                return parked[0]
        return None

    def sent_elsewhere(self, operator: str, operator_id: str, now: float) -> None:
        """Another node recorded that ``operator`` took a part as ``operator_id`` (a
        cluster: its segment came through the log). An operator sends a receipt to any bind
        of ours, so one may have come here first and been parked: it applies now."""
        if self.parked and (parked := self._unpark(operator, operator_id)) is not None:
            op = self.operators.get(operator)
            self.receipt(operator, op.id_format if op is not None else "opaque", parked, now)

    def _track(self, key: tuple[str, str], job: Job, index: int) -> None:
        self.index[key] = (job, index)
        if len(self.index) > _MAX_TRACKED:
            self.index.popitem(last=False)

    # --- receipts ---------------------------------------------------------------------------

    def receipt(self, operator: str, id_format: str, r: Receipt, now: float) -> bool:
        """Apply a receipt from ``operator``; False when no part matches (yet)."""
        status = status_of_receipt(r)
        if status is None:
            return True  # intermediate notification: nothing to record
        variants = [normalise(r.id)]
        if (operator, variants[0]) not in self.index:  # else the usual case: same id and base
            variants = id_variants(r.id, id_format)
        for v in variants:
            hit = self.index.get((operator, v))
            if hit is not None:
                job, index = hit
                # Kept (first in line for eviction) so a duplicate that arrives before this
                # receipt's writes are durable is recognised in memory.
                self.index.move_to_end((operator, v), last=False)
                self._apply(job.message, job, index, r, now, operator)
                return True
        for v in variants:
            found = self.record.find_segment(operator, v)
            if found is not None:
                m = self.record.get(found.message_id)
                if m is None or m.status in FINAL:
                    return True  # duplicate or late: already final
                job = self._from_store(m, found.parts)
                self._apply(m, job, found.part - 1, r, now, operator)
                return True
        self._park(operator, normalise(r.id), r, now)
        return False

    def _park(self, operator: str, key_id: str, r: Receipt, now: float) -> None:
        while self.parked and (len(self.parked) >= _MAX_PARKED
                               or next(iter(self.parked.values()))[1] < now - _PARK_S):
            self.parked.popitem(last=False)
            self.unmatched += 1
        self.parked[(operator, key_id)] = (r, now)

    def _apply(self, m: Message, job: Job, index: int, r: Receipt, now: float,
               operator: str) -> None:
        status = status_of_receipt(r)
        assert status is not None
        part = job.parts[index]
        if isinstance(part.state, Status):
            return  # duplicate receipt for this part
        part.state = status
        self.record.record_segment(m.id, index + 1, len(job.parts), operator,
                                   part.operator_id or normalise(r.id), status, _error_code(r))
        states = [p.state for p in job.parts]
        self._combine(m, index, states, status, _error_code(r), now)

    def _from_store(self, m: Message, parts: int) -> Job:
        """Rebuild a sent message's parts from its segment rows (after a restart) and track
        them in memory, so its other receipts and duplicates see what was already applied
        even before those writes are durable."""
        job = Job(m, (m.operator,))
        job.sent = True
        job.parts = tuple(PartState(None) for _ in range(parts))
        for seg in self.record.segments_of(m.id):
            state = job.parts[seg.part - 1]
            state.operator, state.operator_id = seg.operator, seg.operator_id
            state.state = seg.status if seg.status in FINAL else "acked"
            self._track((seg.operator, seg.operator_id), job, seg.part - 1)
        for state in job.parts:
            if state.state == "pending":
                state.state = "acked"
        return job

    def _combine(self, m: Message, index: int, states: list[str | Status], status: Status,
                 error: int, now: float) -> None:
        if m.status in FINAL:
            return
        tenant = self.tenants.get(m.tenant)
        policy = tenant.multipart_receipt if tenant is not None else "aggregate"
        last = len(states) - 1
        final: Status | None = None
        if (policy == "first" and index == 0) or (policy == "last" and index == last):
            final = status
        elif policy == "aggregate":
            if status is not Status.DELIVERED:
                final = status
            elif all(s is Status.DELIVERED for s in states):
                final = Status.DELIVERED
        if final is not None:
            told = m.status is Status.UNKNOWN  # the tenant had its receipt at the timeout
            self.sink.finish(m, final, now, error=error, detail="receipt", notify=not told,
                             parts=len(states))

    def forget(self, message_id: str) -> None:
        """Drop a message's parts from the in-memory index (a late receipt is then matched
        from the record, where it finds the status as stored)."""
        for seg in self.record.segments_of(message_id):
            self.index.pop((seg.operator, seg.operator_id), None)
