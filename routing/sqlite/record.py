"""``MessageRecord`` on SQLite: the lifecycle's verbs turned into rows of one group commit."""

from __future__ import annotations

from collections.abc import Sequence

from ..model import Message, Status
from ..repository import Durable, HistoryEntry, KeptAnswer, MessageFilter, MoGroup, MoPart, Segment
from .committer import GroupCommitter
from .fresh import fresh_history, fresh_message, fresh_segments
from .lookups import count_request, find_messages, kept_answer
from .store import Store

__all__ = ["SqliteRecord"]


class SqliteRecord:
    """Writes go to the pending group commit; reads go to the store's reader connection."""

    def __init__(self, store: Store, committer: GroupCommitter) -> None:
        self._store = store
        self._committer = committer

    # --- writes -----------------------------------------------------------------------------

    def new_message_id(self) -> str:
        return str(self._store.new_message_number())

    def accept(self, messages: Sequence[Message], now: float) -> Durable:
        pending = self._committer.pending
        for m in messages:
            pending.insert_message(m, now)
        return self._committer.future(deferrable=True)

    def replace(self, message: Message, now: float) -> Durable:
        self._committer.pending.replace_message(message, now)
        return self._committer.future()

    def record_change(self, message_id: str, old: Status, new: Status, now: float, *,
                      error: int = 0, operator: str = "", detail: str = "") -> None:
        self._committer.pending.set_status(message_id, old, new, now, error=error,
                                           operator=operator, detail=detail)
        self._committer.commit_later()

    def record_segment(self, message_id: str, part: int, parts: int, operator: str,
                       operator_id: str, status: Status, error: int = 0) -> None:
        self._committer.pending.put_segment(message_id, part, parts, operator, operator_id,
                                            status, error)
        self._committer.commit_later()

    def hand_over(self, message_ids: Sequence[str], operator: str, epoch: int) -> Durable:
        pending = self._committer.pending
        for message_id in message_ids:
            pending.hand_over(epoch, message_id, operator)
        return self._committer.future()

    def change_pending(self, message_id: str) -> bool:
        return self._committer.status_uncommitted(message_id)

    def sync(self, *, changes: bool = True) -> Durable:
        return self._committer.future(deferrable=not changes)

    def backlog(self) -> int:
        return self._committer.backlog

    def save_mo_part(self, part: MoPart) -> None:
        self._committer.pending.put_mo_part(part.group, part.seqnum, part.user_data,
                                            part.received_at)

    def drop_mo_group(self, group: MoGroup) -> None:
        self._committer.pending.drop_mo_group(group)
        self._committer.commit_later()

    def keep_answer(self, tenant: str, key: str, answer: KeptAnswer) -> None:
        self._committer.pending.keep_answer(tenant, key, answer.fingerprint, answer.status,
                                            answer.response, answer.created_at)

    def forget_answers(self, before: float) -> None:
        self._committer.pending.answers_before = before
        self._committer.commit_later()

    # --- reads ------------------------------------------------------------------------------

    # Reads lay the status changes and segments still waiting in the group commit over the
    # store's rows (``fresh``): this process always sees its own writes.

    def get(self, message_id: str) -> Message | None:
        m = self._store.get_message(message_id)
        return fresh_message(m, self._committer.pending) if m is not None else None

    def find_segment(self, operator: str, operator_id: str) -> Segment | None:
        return self._store.find_segment(operator, operator_id)

    def segments_of(self, message_id: str) -> list[Segment]:
        return fresh_segments(self._store.segments_of(message_id), self._committer.pending,
                              message_id)

    def history_of(self, message_id: str) -> list[HistoryEntry]:
        pending = self._committer.pending
        entries = self._store.history_of(message_id)
        if message_id not in pending.message_status:
            return entries
        return fresh_history(entries, pending, message_id, self._store.get_message(message_id))

    def query(self, *, tenant: str | None = None, status: Status | None = None,
              after_id: str = "", limit: int = 100) -> list[Message]:
        pending = self._committer.pending
        return [fresh_message(m, pending) for m in
                self._store.query(tenant=tenant, status=status, after_id=after_id, limit=limit)]

    def find(self, tenant: str, f: MessageFilter) -> list[Message]:
        pending = self._committer.pending
        return [fresh_message(m, pending) for m in find_messages(self._store.reader, tenant, f)]

    def request_counts(self, tenant: str, request_id: str) -> dict[Status, int]:
        return count_request(self._store.reader, tenant, request_id)

    def kept_answer(self, tenant: str, key: str) -> KeptAnswer | None:
        return kept_answer(self._store.reader, tenant, key)

    def recoverable(self, after_id: str = "", limit: int = 1000, epoch: int | None = None
                    ) -> list[Message]:
        return self._store.messages_with_status(Status.ACCEPTED, after_id, limit, epoch)

    def recoverable_epochs(self) -> set[int]:
        return self._store.epochs_with_status(Status.ACCEPTED)

    def overdue(self, operator: str, before: float, limit: int = 1000) -> list[Message]:
        return self._store.submitted_before(operator, before, limit)

    def mo_parts(self) -> list[MoPart]:
        return self._store.mo_parts()
