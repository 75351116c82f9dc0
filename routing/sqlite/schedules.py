"""Reads of scheduled messages on SQLite (``routing.schedule.ScheduleBook``).

Every query goes through one of the partial indexes of migration 8, which hold only rows
still ``scheduled``: the next due ones by ``send_at`` (the scheduler's batches), the
earliest due time, and a tenant's scheduled messages to one destination (replace_if_present,
cancel_sm by address). A million scheduled messages stay in the store; none of these reads
scans them. Writes are the lifecycle's (status changes) and the record's (insert, replace),
through the group commit.
"""

from __future__ import annotations

from ..model import Message
from .rows import MESSAGE_COLUMNS, message_of
from .store import Store

__all__ = ["SqliteScheduleBook"]


class SqliteScheduleBook:
    """The scheduled messages of a ``Store`` (reader connection: event-loop thread)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def due(self, before: float, limit: int) -> list[Message]:
        """Scheduled messages due at or before ``before``, earliest first."""
        rows = self._store.reader.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages INDEXED BY messages_scheduled "
            "WHERE status = 'scheduled' AND send_at <= ? ORDER BY send_at LIMIT ?",
            (before, limit)).fetchall()
        return [message_of(r) for r in rows]

    def next_due(self) -> float | None:
        """When the earliest scheduled message is due (None: nothing is scheduled)."""
        row = self._store.reader.execute(
            "SELECT min(send_at) FROM messages INDEXED BY messages_scheduled "
            "WHERE status = 'scheduled'").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def scheduled_to(self, tenant: str, destination_addr: str, limit: int = 100
                     ) -> list[Message]:
        """A tenant's scheduled messages to ``destination_addr`` (stored digits), oldest
        first."""
        rows = self._store.reader.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages INDEXED BY messages_scheduled_to "
            "WHERE status = 'scheduled' AND tenant = ? AND destination_addr = ? "
            "ORDER BY CAST(id AS INTEGER) LIMIT ?",
            (tenant, destination_addr, limit)).fetchall()
        return [message_of(r) for r in rows]

    def count(self) -> int:
        """How many messages are scheduled (an index count: for metrics and tests)."""
        row = self._store.reader.execute(
            "SELECT count(*) FROM messages INDEXED BY messages_scheduled "
            "WHERE status = 'scheduled'").fetchone()
        return int(row[0])
