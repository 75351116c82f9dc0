"""The storage engines the contract suite runs against, behind one small ``Backend`` shape.

Each engine builds the three parts of ``routing.repository`` (``record``, ``work``,
``events``) on a real asyncio loop it owns; tests run coroutines on it with ``run``. Adding
an engine is one class and one entry in ``ENGINES`` (the ``backend`` fixture is
parametrized by its keys). What a test needs beyond the Protocol verbs, and what every
engine can do, is here too:

* ``restart()``: an orderly stop (everything written so far becomes durable) and a fresh
  engine on the same storage, as after a gateway restart;
* ``peer()``: the record opened a second time on the same storage while the engine keeps
  running (a second process, or on a cluster a second node with its own replica), to see
  what is durable without stopping anyone;
* ``storage_reads(fn)``: how many reads of the storage ``fn()`` made.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bench.natsd import NatsCluster
from config import ClusterConfig
from routing.nats.cluster import Cluster, join
from routing.repository import EventQueue, MessageRecord, WorkQueue
from routing.sqlite import GroupCommitter, Ops, SqliteEventQueue, SqliteRecord, Store
from routing.workqueue import MemoryWorkQueue
from tests.cluster.nodes import drop_streams

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

    async def peer(self) -> Peer:
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

    async def peer(self) -> Peer:
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


class NatsBackend(SqliteBackend):
    """A node of a cluster on one JetStream server: the record and the event queue over a
    replica whose writes go through the replicated log (``routing.nats``), as a gateway
    with ``[cluster]`` runs. ``peer()`` is a second node with its own replica, so a read
    there sees only what went through the log. Each test gets a cluster of its own name
    (streams and buckets are deleted at the end)."""

    name = "nats"

    def __init__(self, directory: Path, server: str) -> None:
        self.server = server
        self.directory = directory
        self._cluster: Cluster | None = None
        super().__init__(directory)

    def _config(self, node: str) -> ClusterConfig:
        return ClusterConfig(servers=(self.server,), node=node, replicas=1)

    def _open(self) -> None:
        self.loop.run_until_complete(self._join())

    async def _join(self) -> None:
        self.store = Store(self.path, synchronous="NORMAL")
        self.store.open()
        cluster = self._cluster = await join(self._config("n1"), self.store, self.loop,
                                             wanted=set)
        self.committer = cluster.committer
        self.committer.start()
        self.record = SqliteRecord(self.store, self.committer)
        events = SqliteEventQueue(self.store, self.committer, self.loop, max_in_memory=4)
        events.join_cluster(lambda tenant: True)  # one node: it delivers every tenant

        def entry(ops: Ops, mine: bool) -> None:
            if ops.event_adds:
                events.arrived(ops.event_adds)

        self.committer.on_entry(entry)
        self.events = events
        self.work = MemoryWorkQueue(OPERATORS)

    async def _leave(self) -> None:
        cluster, self._cluster = self._cluster, None
        if cluster is not None:
            await cluster.committer.flush()
            cluster.committer.stop()
            await cluster.close()
        self.store.close()

    def _shut(self) -> None:
        self.loop.run_until_complete(self._leave())

    async def restart(self) -> None:
        await self._leave()
        await self._join()

    async def peer(self) -> Peer:
        store = Store(self.directory / "peer.db", synchronous="NORMAL")
        store.open()
        cluster = await join(self._config("n2"), store, self.loop, wanted=set)

        def close() -> None:
            task = self.loop.create_task(cluster.close())
            task.add_done_callback(lambda _: store.close())

        return Peer(SqliteRecord(store, cluster.committer), close)

    def close(self) -> None:
        try:
            self._shut()
            self.loop.run_until_complete(drop_streams([self.server]))
        finally:
            Backend.close(self)


ENGINES: dict[str, Callable[..., Backend]] = {
    "sqlite": SqliteBackend,
    "nats": NatsBackend,
}


@pytest.fixture(scope="session")
def contract_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """One JetStream server for every test of the nats engine (started on first use)."""
    cluster = NatsCluster(tmp_path_factory.mktemp("contract-nats"), size=1)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=sorted(ENGINES))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "nats":
        server = request.getfixturevalue("contract_nats").servers[0]
        b: Backend = NatsBackend(tmp_path, server)
    else:
        b = ENGINES[request.param](tmp_path)
    try:
        yield b
    finally:
        b.close()
