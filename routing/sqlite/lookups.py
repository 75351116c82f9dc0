"""Reads the HTTP door needs beyond the lifecycle's own: filtered pages of messages, counts
per request, kept idempotent answers and failed events. Each function takes the store's
reader connection (event-loop thread) and returns values, never rows."""

from __future__ import annotations

import sqlite3

from ..events import Claim
from ..model import Message, Status
from ..repository import KeptAnswer, MessageFilter
from .rows import EVENT_COLUMNS, MESSAGE_COLUMNS, STATUS_TEXT, claim_of, message_of

__all__ = ["find_messages", "count_request", "kept_answer", "failed_events", "event_row"]


def find_messages(conn: sqlite3.Connection, tenant: str, f: MessageFilter) -> list[Message]:
    """A tenant's messages matching ``f``, newest (highest id number) first, ids below
    ``f.before_id`` (digits)."""
    where = ["tenant = ?"]
    params: list[object] = [tenant]
    if f.before_id:
        where.append("CAST(id AS INTEGER) < ?")
        params.append(int(f.before_id))
    if f.request_id:  # "!= ''" lets SQLite use the partial index of HTTP requests
        where.append("request_id = ? AND request_id != ''")
        params.append(f.request_id)
    if f.status is not None:
        where.append("status = ?")
        params.append(STATUS_TEXT[f.status])
    if f.recipient:
        where.append("destination_addr = ?")
        params.append(f.recipient)
    if f.since:
        where.append("created_at >= ?")
        params.append(f.since)
    if f.until:
        where.append("created_at < ?")
        params.append(f.until)
    # A request's messages through its own index (without statistics SQLite would walk
    # the tenant's whole history instead).
    table = "messages INDEXED BY messages_request" if f.request_id else "messages"
    rows = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM {table} WHERE {' AND '.join(where)} "
        "ORDER BY tenant DESC, CAST(id AS INTEGER) DESC LIMIT ?",
        (*params, f.limit)).fetchall()
    return [message_of(r) for r in rows]


def count_request(conn: sqlite3.Connection, tenant: str, request_id: str) -> dict[Status, int]:
    rows = conn.execute(
        "SELECT status, count(*) FROM messages INDEXED BY messages_request "
        "WHERE request_id = ? AND request_id != '' "
        "AND tenant = ? GROUP BY status", (request_id, tenant)).fetchall()
    return {Status(r[0]): int(r[1]) for r in rows}


def kept_answer(conn: sqlite3.Connection, tenant: str, key: str) -> KeptAnswer | None:
    row = conn.execute(
        "SELECT fingerprint, status, response, created_at FROM idempotency "
        "WHERE tenant = ? AND key = ?", (tenant, key)).fetchone()
    if row is None:
        return None
    return KeptAnswer(str(row[0]), int(row[1]), bytes(row[2]), float(row[3]))


def failed_events(conn: sqlite3.Connection, queue: str, after_id: int, limit: int
                  ) -> list[Claim]:
    """Events of ``queue`` kept as failed, oldest first, ids above ``after_id``."""
    rows = conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE tenant = ? AND failed = 1 AND id > ? "
        "ORDER BY id LIMIT ?", (queue, after_id, limit)).fetchall()
    return [c for c in map(claim_of, rows) if c is not None]


def event_row(conn: sqlite3.Connection, queue: str, event_id: int) -> tuple[Claim, bool] | None:
    """One event of ``queue`` and whether it is kept as failed."""
    row = conn.execute(f"SELECT {EVENT_COLUMNS}, failed FROM events WHERE tenant = ? AND id = ?",
                       (queue, event_id)).fetchone()
    if row is None:
        return None
    claim = claim_of(row)
    return (claim, bool(row[8])) if claim is not None else None
