"""Which node sends a waiting message: the epoch that owns it.

A message is owned by the epoch in its id (routing.sqlite.ids: the node start that accepted
it) until a handoff names another (``messages.owner``, issue 14): a cluster node that holds
no bind to the message's operator hands the message to a node that holds one. Restart
recovery and the takeover of a dead node's messages read the waiting messages by owner, so a
message handed to a node that then dies is taken over with that node's own.
"""

from __future__ import annotations

import sqlite3

from ..model import Message, Status
from .ids import COUNTER_BITS
from .rows import MESSAGE_COLUMNS, message_of

__all__ = ["HAND_OVER", "messages_of_owner", "owner_epochs"]

_OWNER = f"COALESCE(owner, CAST(id AS INTEGER) >> {COUNTER_BITS})"
# (owner epoch, message id): only while the message still waits
HAND_OVER = "UPDATE messages SET owner = ? WHERE id = ? AND status = 'accepted'"


def messages_of_owner(conn: sqlite3.Connection, status: Status, after_id: str, limit: int,
                      epoch: int | None) -> list[Message]:
    """Messages in ``status`` in id order, owned by ``epoch`` only when given."""
    rows = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE status = ? AND id > ? AND "
        f"(? IS NULL OR {_OWNER} = ?) ORDER BY id LIMIT ?",
        (status.value, after_id, epoch, epoch, limit)).fetchall()
    return [message_of(r) for r in rows]


def owner_epochs(conn: sqlite3.Connection, status: Status) -> set[int]:
    """The epochs that own the messages now in ``status``."""
    return {int(r[0]) for r in conn.execute(
        f"SELECT DISTINCT {_OWNER} FROM messages WHERE status = ?", (status.value,))}
