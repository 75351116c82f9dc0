"""The one owner of a message's status: every change goes through ``Lifecycle.move``.

``move`` checks the lifecycle table (``model.TRANSITIONS``): a legal change updates the
in-memory message and is recorded with the status it was read in, so the store applies it
only if nobody moved the row meanwhile; an illegal one changes nothing and goes to the
injected ``on_illegal`` (production: a log line and a metric; tests: an exception). A
legal change is also told to the optional ``observer`` (``routing.analytics.Analytics``:
the rollups, counted in the same group commit as the change).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .model import Message, Status, can_move
from .repository import MessageRecord

__all__ = ["Lifecycle", "IllegalTransition", "MoveObserver"]


class MoveObserver(Protocol):
    def moved(self, m: Message, old: Status, new: Status, now: float, *, error: int = 0,
              parts: int = 0, detail: str = "") -> None: ...


class IllegalTransition(Exception):
    """A status change the lifecycle table does not allow (a bug, or a late duplicate that
    a caller failed to recognise)."""

    def __init__(self, message_id: str, old: Status, new: Status, detail: str) -> None:
        super().__init__(f"message {message_id}: {old.value} -> {new.value} is not allowed"
                         + (f" ({detail})" if detail else ""))
        self.message_id = message_id
        self.old = old
        self.new = new


class Lifecycle:
    def __init__(self, record: MessageRecord,
                 on_illegal: Callable[[IllegalTransition], None],
                 observer: MoveObserver | None = None) -> None:
        self._record = record
        self._on_illegal = on_illegal
        self.observer = observer

    def move(self, m: Message, new: Status, now: float, *, error: int = 0,
             operator: str = "", detail: str = "", parts: int = 0) -> bool:
        """Move ``m`` to ``new``; False (and ``on_illegal``) when the table forbids it.
        ``parts``: how many parts operators acknowledged (analytics: parts billed)."""
        old = m.status
        if not can_move(old, new):
            self._on_illegal(IllegalTransition(m.id, old, new, detail))
            return False
        m.status = new
        m.error = error
        m.updated_at = now
        if operator:
            m.operator = operator
        self._record.record_change(m.id, old, new, now, error=error, operator=operator,
                                   detail=detail)
        if self.observer is not None:
            self.observer.moved(m, old, new, now, error=error, parts=parts, detail=detail)
        return True
