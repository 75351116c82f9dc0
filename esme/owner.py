"""What an operator bind needs of the rest (esme.bind): the router as it sees it
(``Dispatch``: claim jobs, report each part's outcome and receipts) and the pool that runs it
(``BindOwner``: lifecycle, TLS, inbound messages, durability, and on a cluster whether the
bind's slot is this node's). Kept apart from the bind so that the pool, the router and their
stand-ins in tests depend on these shapes, not on the bind's code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from config import OperatorConfig
from encoding.pdu import DataSm, DeliverSm
from encoding.receipt import Receipt
from routing.jobs import Job
from routing.repository import Durable
from routing.retry import Outcome

from .tls import OperatorContext

__all__ = ["Dispatch", "BindOwner", "Slotted"]


class Slotted(Protocol):
    """A bind as the wait for its slot sees it: which operator, which slot, retired."""

    @property
    def op(self) -> OperatorConfig: ...

    @property
    def slot(self) -> int: ...

    @property
    def retired(self) -> bool: ...


class Dispatch(Protocol):
    """The router as a bind sees it: claim jobs, report what happened to each part."""

    def take(self, operator: str, limit: int, now: float) -> list[Job]: ...

    def put_back(self, jobs: Iterable[Job], operator: str) -> None: ...

    def parts_for(self, job: Job, now: float) -> list[int]: ...

    def part_sending(self, job: Job, index: int) -> None: ...

    def part_acked(self, job: Job, index: int, operator: str, operator_id: str) -> None: ...

    def part_failed(self, job: Job, index: int, status: int | None, now: float) -> Outcome: ...

    def pending(self, operator: str) -> int: ...

    def next_due(self, operator: str) -> float | None: ...

    def receipt(self, operator: str, receipt: Receipt, now: float) -> bool: ...


class BindOwner(Protocol):
    """What a bind needs of the pool that runs it."""

    @property
    def running(self) -> bool: ...

    @property
    def dispatch(self) -> Dispatch: ...

    async def sleep(self, seconds: float) -> None: ...

    def bound_changed(self, operator: str) -> None: ...

    def holds(self, operator: str, slot: int) -> bool:
        """Whether this bind's slot may be open and send on this node (a cluster shares an
        operator's binds out among its nodes)."""
        ...

    async def until_held(self, b: Slotted) -> None:
        """Return once ``b``'s slot is this node's (or the pool stops, or ``b`` retires)."""
        ...

    def count(self, operator: str, event: str) -> None: ...

    def tls_context(self, op: OperatorConfig) -> OperatorContext:
        """The operator's client TLS context, built once (``TlsSetupError`` when its files
        cannot be used)."""
        ...

    def inbound_message(self, operator: str, pdu: DeliverSm | DataSm, now: float) -> int: ...

    def durable(self) -> Durable:
        """Completes when what the bind's inbound PDUs recorded is durable."""
        ...

    def wall(self) -> float: ...
