"""Reads that see this process's own writes still waiting in the group commit.

Status changes and segments may wait a few milliseconds for a later commit than the rows
someone was answered after (``GroupCommitter``, ``defer_s``): a tenant that has its receipt
and asks at once (query_sm, ``GET /v1/messages/{id}``) must still see the message delivered.
So the record's reads lay the pending ``Ops`` over what the store returns: a dict lookup per
message read, nothing when no change waits.
"""

from __future__ import annotations

from typing import cast

import msgspec

from ..model import Message, Status
from ..repository import HistoryEntry, Segment
from .ops import Ops

__all__ = ["fresh_message", "fresh_segments", "fresh_history"]


def fresh_message(m: Message, ops: Ops) -> Message:
    """``m`` as read, with its status change still waiting in ``ops`` applied."""
    row = ops.message_status.get(m.id)
    if row is None or row[5] != m.status.value:  # none, or one that will not apply
        return m
    operator = cast(str, row[2])
    return msgspec.structs.replace(m, status=Status(cast(str, row[0])),
                                   error=cast(int, row[1]), operator=operator or m.operator,
                                   updated_at=cast(float, row[3]))


def fresh_segments(segments: list[Segment], ops: Ops, message_id: str) -> list[Segment]:
    """A message's segments as read, with the segment writes waiting in ``ops``."""
    if not ops.segments:
        return segments
    by_part = {s.part: s for s in segments}
    for (mid, part), row in ops.segments.items():
        if mid == message_id:
            by_part[part] = Segment(mid, part, cast(int, row[2]), cast(str, row[3]),
                                    cast(str, row[4]), Status(cast(str, row[5])),
                                    cast(int, row[6]))
    return [by_part[p] for p in sorted(by_part)]


def fresh_history(entries: list[HistoryEntry], ops: Ops, message_id: str,
                  stored: Message | None) -> list[HistoryEntry]:
    """A message's history as read, with the rows of its waiting status change."""
    row = ops.message_status.get(message_id)
    if row is None or stored is None or row[5] != stored.status.value:
        return entries
    return entries + [HistoryEntry(Status(cast(str, h[1])), cast(float, h[2]), cast(str, h[3]))
                      for h in ops.change_history if h[0] == message_id]
