"""A stand-in for ``routing.committer.GroupCommitter`` in unit tests of the router and of
inbound handling: writes collect in ``pending`` and every commit has already succeeded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routing.ops import Ops


class DoneFuture:
    """Stands for a commit that has already succeeded: callbacks run at once."""

    def exception(self) -> BaseException | None:
        return None

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        fn(self)


class FakeCommitter:
    def __init__(self) -> None:
        self.pending = Ops()
        self.lazy_commits = 0  # commit_later() calls: writes nobody waits on

    def future(self) -> DoneFuture:
        return DoneFuture()

    def commit_later(self) -> None:
        self.lazy_commits += 1

    def status_uncommitted(self, message_id: str) -> bool:
        return message_id in self.pending.message_status
