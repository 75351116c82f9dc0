"""A session as owners see it from outside: a window with room, bound or not, closed or not
(for unit tests of the tenant delivery and the ESME pool, without a real ``Session``)."""

from __future__ import annotations


class FakeWindow:
    def __init__(self, room: int) -> None:
        self.room = room


class FakeSession:
    def __init__(self, room: int) -> None:
        self.window = FakeWindow(room)
        self.bound = True
        self.closed = False
