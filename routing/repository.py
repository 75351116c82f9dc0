"""The storage interface of the message lifecycle, in the lifecycle's own verbs.

Three parts, each a Protocol that an engine implements (``routing.sqlite`` on one machine;
a replicated engine shared by several nodes later):

* ``MessageRecord``: the record of messages. Accept a batch; record a status change (with
  the status it was read in, so a row moves only from there and two writers never both
  win), a dispatch, an operator's id or a receipt per part; find by our id or by the
  operator's; query; load what a restart must recover.
* ``WorkQueue``: each operator's queue of messages to send. Put, claim up to N due ones,
  settle them, put one back to be retried at a given time.
* ``EventQueue``: each tenant's queue of events (receipts, inbound messages). Publish a
  batch, claim events for the channel that serves the tenant, settle, retry later, or
  release a claim at once (its bind ended).

Writes are batch-oriented and complete asynchronously: a verb that must be durable before
someone is answered returns a ``Durable`` (an asyncio future, or anything with the same two
methods) that completes when the engine has made the batch durable; other writes ride the
next batch. Claims are leases: a holder that dies loses them (after a restart, or when its
lease expires), and nothing here assumes the whole queue lives in this process's memory.
The values crossing the interface are Structs; no caller sees a column, SQL or a row tuple.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import msgspec

from .events import Claim, TenantEvent
from .jobs import Job
from .model import Message, Status

__all__ = ["Durable", "Segment", "HistoryEntry", "MoGroup", "MoPart", "MessageFilter",
           "KeptAnswer", "MessageRecord", "WorkQueue", "EventQueue"]


class Durable(Protocol):
    """Completion of a durable write: callbacks run once it is durable or has failed."""

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None: ...

    def exception(self) -> BaseException | None: ...


class Segment(msgspec.Struct, gc=False, frozen=True):
    """One part of a message as an operator took it."""

    message_id: str
    part: int  # 1-based
    parts: int
    operator: str = ""
    operator_id: str = ""
    status: Status = Status.SUBMITTED
    error: int = 0


class HistoryEntry(msgspec.Struct, gc=False, frozen=True):
    status: Status
    at: float
    detail: str = ""


class MoGroup(msgspec.Struct, gc=False, frozen=True):
    """One concatenated inbound message being reassembled (reference 9.5)."""

    operator: str
    source_addr: str
    destination_addr: str
    data_coding: int
    reference: int
    total: int


class MoPart(msgspec.Struct, gc=False, frozen=True):
    group: MoGroup
    seqnum: int
    user_data: bytes
    received_at: float


class MessageFilter(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """Which of a tenant's messages a listing wants (every field optional)."""

    request_id: str = ""
    status: Status | None = None
    recipient: str = ""  # destination_addr as stored (digits, no '+')
    since: float = 0.0  # created at or after (wall clock seconds)
    until: float = 0.0  # created before
    before_id: str = ""  # paging: ids below this one (newest first)
    limit: int = 100


class KeptAnswer(msgspec.Struct, gc=False, frozen=True):
    """The first answer to a request with an idempotency key, kept for replays."""

    fingerprint: str  # of the request body: a different body with the same key is refused
    status: int
    response: bytes
    created_at: float


class MessageRecord(Protocol):
    """The record of every message: what was accepted and everything that happened to it."""

    def new_message_id(self) -> str:
        """An id never handed out before, by this node or any other, even across restarts."""
        ...

    def accept(self, messages: Sequence[Message], now: float) -> Durable:
        """Store new messages (status ACCEPTED); durable when the result completes."""
        ...

    def replace(self, message: Message, now: float) -> Durable:
        """New content for a message still ACCEPTED (never for one that moved on)."""
        ...

    def record_change(self, message_id: str, old: Status, new: Status, now: float, *,
                      error: int = 0, operator: str = "", detail: str = "") -> None:
        """A status change, applied only if the stored status is still ``old``. Rides the
        next batch; ``sync`` waits for it. Only ``Lifecycle.move`` calls this."""
        ...

    def record_segment(self, message_id: str, part: int, parts: int, operator: str,
                       operator_id: str, status: Status, error: int = 0) -> None:
        """A part's operator id and outcome (acked: SUBMITTED; a receipt: its status)."""
        ...

    def change_pending(self, message_id: str) -> bool:
        """Whether a status change of the message is recorded but not yet durable."""
        ...

    def sync(self, *, changes: bool = True) -> Durable:
        """Completes when everything recorded so far is durable; with ``changes=False``,
        when the new rows are (messages, events, MO parts, consent), while status changes
        and segments may follow a few milliseconds later (reads here see them at once)."""
        ...

    def backlog(self) -> int:
        """Writes recorded and not yet durable."""
        ...

    def get(self, message_id: str) -> Message | None: ...

    def find_segment(self, operator: str, operator_id: str) -> Segment | None:
        """The part an operator's (normalised) id stands for."""
        ...

    def segments_of(self, message_id: str) -> list[Segment]: ...

    def history_of(self, message_id: str) -> list[HistoryEntry]: ...

    def query(self, *, tenant: str | None = None, status: Status | None = None,
              after_id: str = "", limit: int = 100) -> list[Message]:
        """Messages matching the filters, in id order, after ``after_id`` (paging)."""
        ...

    def find(self, tenant: str, f: MessageFilter) -> list[Message]:
        """A tenant's messages matching ``f``, newest first (by id)."""
        ...

    def request_counts(self, tenant: str, request_id: str) -> dict[Status, int]:
        """How many messages of one request are in each status."""
        ...

    def keep_answer(self, tenant: str, key: str, answer: KeptAnswer) -> None:
        """Keep an idempotent answer; rides the next batch (call it before ``accept`` so the
        answer and the messages it names become durable together)."""
        ...

    def kept_answer(self, tenant: str, key: str) -> KeptAnswer | None: ...

    def forget_answers(self, before: float) -> None:
        """Retention of idempotent answers: drop those created before ``before``."""
        ...

    def hand_over(self, message_ids: Sequence[str], operator: str, epoch: int) -> Durable:
        """The messages, still waiting, are sent from now on by the node start ``epoch`` (a
        cluster node holding a bind to ``operator``, issue 14): they become that epoch's
        ``recoverable`` ones. A message no longer accepted is left as it is."""
        ...

    def recoverable(self, after_id: str = "", limit: int = 1000, epoch: int | None = None
                    ) -> list[Message]:
        """Messages accepted and not yet taken by an operator (restart recovery), in id
        order; only those ``epoch`` owns when given (a cluster node taking over a dead
        node's messages): the epoch whose start handed the id out, or the one they were
        last handed over to (``hand_over``)."""
        ...

    def recoverable_epochs(self) -> set[int]:
        """The epochs owning the ``recoverable`` messages (each node start takes a new
        one)."""
        ...

    def overdue(self, operator: str, before: float, limit: int = 1000) -> list[Message]:
        """Messages ``operator`` took whose last change is older than ``before``, oldest
        first (the receipt timeout)."""
        ...

    def save_mo_part(self, part: MoPart) -> None:
        """A part of a concatenated inbound message, kept until its group is complete."""
        ...

    def drop_mo_group(self, group: MoGroup) -> None: ...

    def mo_parts(self) -> list[MoPart]:
        """Stored parts of groups still open, oldest first."""
        ...


class WorkQueue(Protocol):
    """Per operator: messages waiting to be sent, in order, with retries due later."""

    def subscribe(self, on_work: Callable[[str], None]) -> None:
        """``on_work(operator)`` is called when an operator's queue gets due work."""
        ...

    def put(self, jobs: Iterable[Job], operator: str, *, front: bool = False) -> None: ...

    @property
    def operators(self) -> list[str]:
        """The operators that have a queue."""
        ...

    def add_operator(self, operator: str) -> None:
        """A queue for an operator added by a config reload (no-op when it has one)."""
        ...

    def notify(self, operator: str) -> None:
        """Wake the subscribers of ``operator``'s queue (after a batch of puts)."""
        ...

    def claim(self, operator: str, limit: int, now: float) -> list[Job]:
        """Up to ``limit`` jobs due at ``now`` (monotonic seconds); cancelled ones are
        dropped. The caller settles, retries or puts back each one."""
        ...

    def settle(self, job: Job) -> None:
        """A claimed job is done with the queue (sent, or final)."""
        ...

    def retry(self, job: Job, operator: str, at: float) -> None:
        """Put a claimed job back, due at monotonic time ``at``, ahead of newer work."""
        ...

    def drain(self, operator: str) -> list[Job]:
        """Take everything queued for ``operator`` (its last bind went down)."""
        ...

    def depth(self, operator: str) -> int: ...

    def next_due(self, operator: str) -> float | None:
        """When the first deferred job near the head of the queue becomes due."""
        ...


class EventQueue(Protocol):
    """Per tenant: events waiting for a channel, oldest first."""

    def subscribe(self, on_ready: Callable[[str], None]) -> None:
        """``on_ready(tenant)`` is called when a tenant has events to claim."""
        ...

    def publish(self, tenant: str, events: Sequence[TenantEvent], now: float) -> Durable:
        """Store events for ``tenant``; claimable once durable."""
        ...

    def claim(self, tenant: str, limit: int) -> list[Claim]: ...

    def settle(self, claim: Claim) -> None:
        """Delivered: never offered again."""
        ...

    def retry(self, claim: Claim, delay_s: float, *, attempted: bool = True) -> None:
        """Not delivered (refused for now, or no answer): offer again after ``delay_s``.
        ``attempted`` False: held back without a try (it counts no attempt)."""
        ...

    def release(self, claim: Claim) -> None:
        """The holder cannot deliver it (its bind ended): offer it again at once, first."""
        ...

    def fail(self, claim: Claim) -> None:
        """The channel gave up on it: kept as failed (listable), not offered again unless
        ``revive``d."""
        ...

    def failed(self, tenant: str, after_id: int = 0, limit: int = 100) -> list[Claim]:
        """Events kept as failed, oldest first (paging by id)."""
        ...

    def revive(self, tenant: str, event_id: int) -> bool:
        """Offer a failed event again (False when there is no such failed event)."""
        ...

    def depths(self) -> dict[str, int]:
        """Events waiting or in flight per tenant (cheap: no scan per call)."""
        ...

    def purge(self, older_than: float) -> Durable:
        """Retention: drop events created before ``older_than``."""
        ...
