"""The lifecycle: every status change goes through ``Lifecycle.move`` and its table."""

from __future__ import annotations

import itertools

import pytest

from routing.lifecycle import IllegalTransition, Lifecycle
from routing.model import FINAL, TRANSITIONS, Message, Status


class Changes:
    """A MessageRecord as far as the lifecycle uses it: the changes it records."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, Status, Status, float, int, str, str]] = []

    def record_change(self, message_id: str, old: Status, new: Status, now: float, *,
                      error: int = 0, operator: str = "", detail: str = "") -> None:
        self.changes.append((message_id, old, new, now, error, operator, detail))


def message(status: Status) -> Message:
    return Message(id="7", tenant="acme", source_addr="ACME", destination_addr="4477",
                   status=status)


@pytest.mark.parametrize(("old", "new"), list(itertools.product(Status, Status)))
def test_every_pair_follows_the_table(old: Status, new: Status) -> None:
    record = Changes()
    refused: list[IllegalTransition] = []
    life = Lifecycle(record, refused.append)  # type: ignore[arg-type]
    m = message(old)
    moved = life.move(m, new, 5.0, error=3, operator="opA", detail="why")
    if new in TRANSITIONS[old]:
        assert moved and not refused
        assert (m.status, m.error, m.operator, m.updated_at) == (new, 3, "opA", 5.0)
        # recorded with the status it was read in: the store's precondition
        assert record.changes == [("7", old, new, 5.0, 3, "opA", "why")]
    else:
        assert not moved and record.changes == []
        assert m.status is old
        [exc] = refused
        assert (exc.message_id, exc.old, exc.new) == ("7", old, new)
        assert "why" in str(exc)


def test_final_states_are_terminal_and_unknown_can_still_end() -> None:
    for status in FINAL:
        assert TRANSITIONS[status] == frozenset()
    assert Status.DELIVERED in TRANSITIONS[Status.UNKNOWN]


def test_an_illegal_move_raises_when_the_handler_raises() -> None:
    def strict(exc: IllegalTransition) -> None:
        raise exc

    life = Lifecycle(Changes(), strict)  # type: ignore[arg-type]
    with pytest.raises(IllegalTransition, match="delivered -> accepted"):
        life.move(message(Status.DELIVERED), Status.ACCEPTED, 1.0)
