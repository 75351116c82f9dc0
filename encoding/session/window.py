"""Sequence numbers and the window of our requests still awaiting a response.

SMPP 3.4 section 3.2 / reference 5.3: each side numbers its own requests 1..0x7FFFFFFF,
wrapping back to 1; a number is unique among the sender's outstanding requests; responses
match by sequence_number and may arrive in any order (v5 section 2.6.4). Every request gets
the same response timeout, so deadlines are in insertion order and the oldest is first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..constants import SEQUENCE_MAX
from ..pdu import Pdu

__all__ = ["Outstanding", "Window"]


class Outstanding:
    __slots__ = ("context", "deadline", "request")

    def __init__(self, request: Pdu, context: Any, deadline: float) -> None:
        self.request = request
        self.context = context
        self.deadline = deadline


class Window:
    """Outstanding requests by sequence_number, oldest first, with a size limit."""

    __slots__ = ("_items", "_next", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: dict[int, Outstanding] = {}
        self._next = 1

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Outstanding]:
        return iter(self._items.values())

    @property
    def room(self) -> int:
        return max(0, self.size - len(self._items))

    def next_sequence(self) -> int:
        seq = self._next
        while seq in self._items:  # only after a full wrap with an old request still pending
            seq = seq + 1 if seq < SEQUENCE_MAX else 1
        self._next = seq + 1 if seq < SEQUENCE_MAX else 1
        return seq

    def add(self, request: Pdu, context: Any, deadline: float) -> None:
        self._items[request.sequence_number] = Outstanding(request, context, deadline)

    def pop(self, sequence_number: int) -> Outstanding | None:
        return self._items.pop(sequence_number, None)

    def first_deadline(self) -> float | None:
        for item in self._items.values():
            return item.deadline
        return None

    def pop_expired(self, now: float) -> list[Outstanding]:
        expired: list[Outstanding] = []
        items = self._items
        for seq, item in list(items.items()):
            if item.deadline > now:
                break
            del items[seq]
            expired.append(item)
        return expired

    def pop_all(self) -> list[Outstanding]:
        items = list(self._items.values())
        self._items.clear()
        return items
