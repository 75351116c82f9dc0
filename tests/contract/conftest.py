"""The storage engines the contract suite runs against, behind one small ``Backend`` shape.

Each engine builds the three parts of ``routing.repository`` (``record``, ``work``,
``events``) on a real asyncio loop it owns; tests run coroutines on it with ``run``. Adding
an engine is one class and one entry in ``ENGINES`` (the ``backend`` fixture is
parametrized by its keys). What a test needs beyond the Protocol verbs, and what every
engine can do, is here too:

* ``restart()``: an orderly stop (everything written so far becomes durable) and a fresh
  engine on the same storage, as after a gateway restart;
* ``peer()``: the record opened a second time on the same storage while the engine keeps
  running (a second process or node), to see what is durable without stopping anyone;
* ``storage_reads(fn)``: how many reads of the storage ``fn()`` made.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from routing.repository import EventQueue, MessageRecord, WorkQueue
from routing.sqlite import GroupCommitter, SqliteEventQueue, SqliteRecord, Store
from routing.workqueue import MemoryWorkQueue

__all__ = ["Backend", "OPERATORS", "Peer"]

T = TypeVar("T")

OPERATORS = ("opA", "opB")
_TIMEOUT_S = 30.0  # a whole test body; waits inside it are shorter


class Peer:
    """A second view of the same storage, to read the record only (claiming events there
    would take leases from the engine under test); ``close`` when done."""

    def __init__(self, record: MessageRecord, close: Callable[[], None]) -> None:
        self.record = record
        self.close = close


class Backend:
    """One engine under test. Subclasses set ``record``, ``work`` and ``events``."""

    name = ""
    record: MessageRecord
    work: WorkQueue
    events: EventQueue

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, _TIMEOUT_S))

    async def restart(self) -> None:
        raise NotImplementedError

    def peer(self) -> Peer:
        raise NotImplementedError

    def storage_reads(self, fn: Callable[[], object]) -> int:
        raise NotImplementedError

    def close(self) -> None:
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


class SqliteBackend(Backend):
    """A Store on disk (synchronous NORMAL), a real GroupCommitter in inline mode with its
    checkpoint thread, as the gateway runs by default; the in-memory work queue.

    ``max_in_memory`` is small so that claims also cross from the queue's memory window to
    rows read back from the store."""

    name = "sqlite"

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.path = directory / "smsc.db"
        try:
            self._open()
        except BaseException:
            super().close()
            raise

    def _open(self) -> None:
        self.store = Store(self.path, synchronous="NORMAL")
        self.store.open()
        self.committer = GroupCommitter(self.store, self.loop, threaded=False)
        self.committer.start()
        self.record = SqliteRecord(self.store, self.committer)
        self.events = SqliteEventQueue(self.store, self.committer, self.loop, max_in_memory=4)
        self.work = MemoryWorkQueue(OPERATORS)

    def _shut(self) -> None:
        self.committer.stop()  # commits what is pending
        self.store.close()

    async def restart(self) -> None:
        self._shut()
        self._open()

    def peer(self) -> Peer:
        store = Store(self.path, synchronous="NORMAL")
        store.open()
        committer = GroupCommitter(store, self.loop, threaded=False)  # never started
        return Peer(SqliteRecord(store, committer), store.close)

    def storage_reads(self, fn: Callable[[], object]) -> int:
        statements: list[str] = []
        reader: sqlite3.Connection = self.store.reader
        reader.set_trace_callback(statements.append)
        try:
            fn()
        finally:
            reader.set_trace_callback(None)
        return len(statements)

    def close(self) -> None:
        self._shut()
        super().close()


ENGINES: dict[str, Callable[[Path], Backend]] = {
    "sqlite": SqliteBackend,
}


@pytest.fixture(params=sorted(ENGINES))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = ENGINES[request.param](tmp_path)
    try:
        yield b
    finally:
        b.close()
