"""Stand-ins for the ESME pool's tests: ``IdleRouter``, the router as binds with nothing to
send see it (operators up or down ignored, never a job to take), and ``HeldSlots``, a
cluster's bind slots as a plain set of the (operator, slot) pairs this node holds."""

from __future__ import annotations

from routing.jobs import Job

__all__ = ["IdleRouter", "HeldSlots"]


class IdleRouter:
    def operator_up(self, operator: str) -> None: ...

    def operator_down(self, operator: str) -> None: ...

    def take(self, operator: str, limit: int, now: float) -> list[Job]:
        return []

    def pending(self, operator: str) -> int:
        return 0


class HeldSlots:
    def __init__(self, *held: tuple[str, int]) -> None:
        self.held = set(held)
        self.pokes = 0

    def holds(self, operator: str, slot: int) -> bool:
        return (operator, slot) in self.held

    def poke(self) -> None:
        self.pokes += 1
