"""Stand-ins for the group commit and the event loop in unit tests (no loop, no thread):
writes collect in ``pending`` and every commit has already succeeded; timers are recorded
and run by the test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routing.sqlite import Ops, Store


class DoneFuture:
    """Stands for a commit that has already succeeded: callbacks run at once."""

    def exception(self) -> BaseException | None:
        return None

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None:
        fn(self)


class FakeCommitter:
    """With a ``store``, ``future()`` first applies what is pending to it (as a real commit
    would before its future completes)."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store
        self.pending = Ops()
        self.lazy_commits = 0  # commit_later() calls: writes nobody waits on
        self.soon_commits = 0  # commit_soon() calls

    @property
    def backlog(self) -> int:
        return len(self.pending)

    def future(self, *, deferrable: bool = False) -> DoneFuture:
        """Commits everything, deferrable or not (the real deferral: test_routing_deferred)."""
        if self.store is not None:
            ops, self.pending = self.pending, Ops()
            self.store.apply(ops)
        return DoneFuture()

    def commit_later(self) -> None:
        self.lazy_commits += 1

    def commit_soon(self) -> None:
        self.soon_commits += 1

    def status_uncommitted(self, message_id: str) -> bool:
        return message_id in self.pending.message_status


class FakeLoop:
    """``call_soon`` / ``call_later`` recorded; ``run_soon`` and ``run_due`` run them."""

    def __init__(self) -> None:
        self.time = 0.0
        self.soon: list[tuple[Callable[..., object], tuple[Any, ...]]] = []
        self.later: list[tuple[float, Callable[..., object], tuple[Any, ...]]] = []

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        self.soon.append((callback, args))

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> None:
        self.later.append((self.time + delay, callback, args))

    def run_soon(self) -> None:
        soon, self.soon = self.soon, []
        for fn, args in soon:
            fn(*args)

    def advance(self, seconds: float) -> None:
        """Move time on and run every timer now due, in order."""
        self.time += seconds
        due = sorted((t for t in self.later if t[0] <= self.time), key=lambda t: t[0])
        self.later = [t for t in self.later if t[0] > self.time]
        for _, fn, args in due:
            fn(*args)
