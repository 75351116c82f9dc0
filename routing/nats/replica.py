"""Group commit over a replicated log: every node's writes, applied by every node in one order.

On a cluster, a node's writes still form ``Ops`` batches paced as group commit paces them
(``routing.sqlite.committer``: the same ``pending``, ``future()``, ``commit_soon``,
``commit_later``, deferral), but a batch is not applied to the local store when it is taken:
it is published as one entry of the log stream (``LOG_STREAM``, replicated ``replicas``
times; each entry's id, ``<node>.<epoch>.<n>``, is its ``Nats-Msg-Id``, so a publish sent
again after a timeout is stored once). Every node reads the whole log with an ordered
consumer and applies each entry, in the stream's order, to its own SQLite replica, writing
the entry's stream sequence into the replica's ``meta`` in the same transaction: a restarted
node goes on from the entry after the last one it applied, and no entry is applied twice.

A batch's future resolves when this node has applied the batch's entry. The stream hands an
entry to consumers only once a quorum of its replicas stored it, so that is after the
replicated acknowledgement (the promise behind submit_sm_resp and HTTP 200), and the writer
then reads its own writes: the records, events, consent and templates of the batch are in
its replica. Its own entries are applied from the batch in memory (no decoding); the others'
are decoded (``routing.nats.oplog``). Every entry is then told to the listeners
(``on_entry``), which refresh what they keep in memory (events that became claimable, in the
log's order; other nodes' consent and templates).

Replicas that apply the same entries in the same order hold the same rows: ``Store.apply``
depends only on the batch and the replica's rows (status changes are conditioned on the
status read, and one of two writers loses on every replica alike).

A publish that is not acknowledged after its attempts fails its batch's future
(``ReplicationError``: the tenant is answered as for a failed commit). The log keeps entries
for ``[cluster] log_retention_s`` (7 days by default; 0: for ever): every replica holds all
the state, so the log is only needed by a node that was away, or joins. A node whose replica
is older than the log's start, or empty after the log dropped its first entries, is refused
in one line and started from a copy of a running node's replica (``smsc copy-replica``): a
replica is the same on every node, and its position says where in the log it goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from ..sqlite.committer import GroupCommitter, settle
from ..sqlite.ops import Ops
from ..sqlite.store import Store
from .chunks import CHUNK_HEADER, Reassembly, parse_position, position, split
from .oplog import OplogError, decode_ops, encode_ops
from .provision import ClusterError, StreamSpec
from .publisher import JetStreamBatches, ReplicationError

__all__ = ["ReplicatedCommitter", "LOG_STREAM", "LOG_SUBJECT", "log_spec", "APPLIED_KEY"]

log = logging.getLogger(__name__)

LOG_STREAM = "SMSC_LOG"
LOG_SUBJECT = "smsc.log"
APPLIED_KEY = "log_seq"  # the replica's meta key: the last log entry applied
_MSG_ID = "Nats-Msg-Id"


def log_spec(retention_s: float = 0.0) -> StreamSpec:
    """The log stream; entries older than ``retention_s`` are dropped (0: kept whole). The
    duplicate window cannot pass the retention (the server refuses it)."""
    window = min(120.0, retention_s) if retention_s else 120.0
    return StreamSpec(LOG_STREAM, (f"{LOG_SUBJECT}.>",), duplicate_window_s=window,
                      max_age_s=retention_s,
                      description="smsc: every gateway node's writes, in the order applied")


class ReplicatedCommitter(GroupCommitter):
    """Group commit whose batches go through the log; ``open`` catches the replica up."""

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop, js: JetStreamContext,
                 *, node: str, epoch: int,
                 on_commit: Callable[[int, float], None] | None = None,
                 min_interval_s: float = 0.001, publish_timeout_s: float = 2.0,
                 max_entry_bytes: int = 960_000) -> None:
        super().__init__(store, loop, on_commit, threaded=False, min_interval_s=min_interval_s)
        self.js = js
        self.node = node
        self.epoch = epoch
        self.subject = f"{LOG_SUBJECT}.{node}"
        self.publisher = JetStreamBatches(js, loop, timeout_s=publish_timeout_s)
        # entry id -> (the batch, resolved once applied) for this node's entries in flight
        self._mine: dict[str, tuple[Ops, asyncio.Future[None]]] = {}
        self._batch_no = 0
        self.applied, self._resume_from = parse_position(store.meta(APPLIED_KEY))
        # An entry larger than this goes as several chunks (routing.nats.chunks): the
        # servers' max_payload, less room for the headers.
        self.max_entry_bytes = max_entry_bytes
        self._chunks = Reassembly()
        self.remote_entries = 0
        self.unreadable = 0
        self.gaps = 0  # runs of entries the log dropped before this replica read them
        self._seen = self.applied  # the last stream sequence read
        self._listeners: list[Callable[[Ops, bool], None]] = []
        self._caught_up = asyncio.Event()
        self._catch_up_to = 0
        self._barriers: list[tuple[int, asyncio.Event]] = []  # (log entry, set once applied)
        self._sub: object = None

    def on_entry(self, listener: Callable[[Ops, bool], None]) -> None:
        """Call ``listener(batch, mine)`` with every entry just after it is applied here
        (``mine``: this node wrote it), before its writer's future resolves."""
        self._listeners.append(listener)

    # --- the log's reader ---------------------------------------------------------------------

    async def open(self, timeout_s: float = 60.0) -> None:
        """Subscribe to the log after the last entry applied here, and wait until the entries
        the log held at this call are applied (a node serves from a current replica)."""
        info = await self.js.stream_info(LOG_STREAM)
        first, last = info.state.first_seq, info.state.last_seq
        if self.applied > last:
            raise ClusterError(
                f"store {self.store.path} applied log entry {self.applied} but stream "
                f"{LOG_STREAM} ends at {last}: the log was reset; move this node's store "
                "away so that it is rebuilt from the log")
        start = min(self.applied + 1, self._resume_from)
        if last and start < first:
            raise ClusterError(
                f"stream {LOG_STREAM} starts at entry {first}, after {start} that store "
                f"{self.store.path} needs next (the log keeps log_retention_s): copy a "
                f"running node's replica there with `smsc copy-replica <its store> "
                f"{self.store.path}`, then start this node again")
        self._seen = start - 1
        self._catch_up_to = last
        if self.applied >= last:
            self._caught_up.set()
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                opt_start_seq=start)
        self._sub = await self.js.subscribe(
            f"{LOG_SUBJECT}.>", stream=LOG_STREAM, cb=self._on_entry, ordered_consumer=True,
            config=config, idle_heartbeat=1.0, pending_msgs_limit=1_000_000,
            pending_bytes_limit=1 << 30)
        try:
            await asyncio.wait_for(self._caught_up.wait(), timeout_s)
        except TimeoutError:
            raise ClusterError(
                f"this node applied the log to entry {self.applied} of {last} in "
                f"{timeout_s:g} s: the store's disk is too slow or the cluster unreachable"
            ) from None
        if self.applied:
            log.info("replica at log entry %d (%d entries of other nodes applied)",
                     self.applied, self.remote_entries)

    async def _on_entry(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        if seq > self._seen + 1:
            # The log dropped entries before this replica read them (it lagged longer than
            # log_retention_s): it no longer holds what the others hold.
            self.gaps += 1
            log.error("log entries %d to %d were dropped before this node applied them: "
                      "its replica is incomplete; stop it and start it from a copy of "
                      "another node's replica (smsc copy-replica)", self._seen + 1, seq - 1)
        self._seen = max(self._seen, seq)
        headers = msg.headers or {}
        entry_id = headers.get(_MSG_ID, "")
        data = msg.data
        chunk = headers.get(CHUNK_HEADER)
        if chunk is not None:
            whole = self._chunk(entry_id, chunk, seq, msg)
            if whole is None:
                return  # a part of an entry not complete yet
            data, entry_id = whole, entry_id.partition("#")[0]
        elif seq <= self.applied:
            return  # a redelivery after the consumer was reset
        mine = self._mine.pop(entry_id, None)
        if mine is not None:
            ops = mine[0]
        else:
            try:
                ops = decode_ops(data)
            except OplogError as exc:
                # Applying a part of it, or stopping here, would be worse: every other
                # node reads it alike. Counted and logged; the position moves past it.
                self.unreadable += 1
                log.error("log entry %d (%s) skipped: %s", seq, entry_id, exc)
                ops = Ops()
        with self._write_gate:  # the checkpointer may be catching up
            error = self._commit(ops, (APPLIED_KEY,
                                       position(seq, self._chunks.resume_from(seq))))
        self.applied = seq
        if mine is None:
            self.remote_entries += 1
        if error is None:
            for listener in self._listeners:
                try:
                    listener(ops, mine is not None)
                except Exception:
                    log.exception("a listener of the log failed on entry %d", seq)
        if mine is not None:
            self._in_flight -= len(ops.messages)
            settle(mine[1], error)
        if seq >= self._catch_up_to:
            self._caught_up.set()
        if self._barriers:  # someone waits for the replica to reach an entry
            for target, reached in list(self._barriers):
                if seq >= target:
                    self._barriers.remove((target, reached))
                    reached.set()

    def _chunk(self, entry_id: str, chunk: str, seq: int, msg: Msg) -> bytes | None:
        """Keep a chunk of a large entry; the entry's bytes once its last chunk is here and
        it was not applied before (a replica reading again from an entry's first chunk)."""
        at = msg.metadata.timestamp.timestamp() if msg.metadata.timestamp else 0.0
        if self._chunks.expire(at):
            log.warning("chunks of a log entry whose last chunk never came were dropped")
        base = entry_id.partition("#")[0]
        data = self._chunks.add(base, chunk, seq, msg.data, at)
        last = base == entry_id  # the last chunk carries the entry's own id
        if last and seq <= self.applied:
            return None  # applied before this replica restarted
        if last and data is None:
            log.error("log entry %d (%s): its earlier chunks are missing; skipped", seq, base)
        return data

    async def barrier(self, timeout_s: float = 30.0) -> bool:
        """Wait until this replica has applied every entry the log holds now (what other
        nodes wrote before this call); False when that took longer than ``timeout_s`` or
        the log could not be asked."""
        try:
            target = (await self.js.stream_info(LOG_STREAM)).state.last_seq
        except Exception:  # cut off: not known to be current
            log.warning("the log's end could not be read", exc_info=True)
            return False
        if self.applied >= target:
            return True
        reached = asyncio.Event()
        self._barriers.append((target, reached))
        try:
            await asyncio.wait_for(reached.wait(), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            if (target, reached) in self._barriers:
                self._barriers.remove((target, reached))

    # --- the writer ---------------------------------------------------------------------------

    def _commit_inline(self) -> None:
        self._cancel_timer()
        ops, fut = self._next_batch()
        self._schedule_left_over()
        if not len(ops):
            if fut is not None:  # a flush: done once this node's entries in flight are
                self._after_in_flight(fut)
            return
        self._batch_no += 1
        entry_id = f"{self.node}.{self.epoch}.{self._batch_no}"
        done = fut if fut is not None else self.loop.create_future()
        if fut is None:  # nobody waits: a failure is logged by the publisher, not raised
            done.add_done_callback(_retrieve)
        self._mine[entry_id] = (ops, done)
        self._in_flight += len(ops.messages)
        payload = encode_ops(ops)
        if len(payload) <= self.max_entry_bytes:
            self.publisher.publish(self.subject, payload, entry_id)
            self.publisher.future().add_done_callback(
                lambda published: self._published(entry_id, published))
            return
        # Too large for one message: the chunks first, the last one (which commits the
        # entry) once they are all stored (routing.nats.chunks).
        parts = split(payload, self.max_entry_bytes)
        n = len(parts)
        for k, part in enumerate(parts[:-1]):
            self.publisher.publish(self.subject, part, f"{entry_id}#{k}",
                                   {CHUNK_HEADER: f"{k}/{n}"})
        self.publisher.future().add_done_callback(
            lambda stored: self._commit_chunks(entry_id, parts[-1], n, stored))

    def _commit_chunks(self, entry_id: str, last: bytes, n: int,
                       stored: asyncio.Future[None]) -> None:
        if stored.cancelled() or stored.exception() is not None:
            self._published(entry_id, stored)  # never committed: applied nowhere
            return
        self.publisher.publish(self.subject, last, entry_id, {CHUNK_HEADER: f"{n - 1}/{n}"})
        self.publisher.future().add_done_callback(
            lambda published: self._published(entry_id, published))

    def _published(self, entry_id: str, published: asyncio.Future[None]) -> None:
        if not published.cancelled() and published.exception() is None:
            return  # acknowledged: resolved when the reader applies it
        entry = self._mine.pop(entry_id, None)
        if entry is None:
            return  # applied already (an acknowledgement lost after the stream kept it)
        ops, done = entry
        self._in_flight -= len(ops.messages)
        error = published.exception() if not published.cancelled() else None
        settle(done, error or ReplicationError(f"log entry {entry_id} was not published"))

    def _after_in_flight(self, fut: asyncio.Future[None]) -> None:
        waiting = [done for _, done in self._mine.values()]
        if not waiting:
            settle(fut, None)
            return
        gathered = asyncio.gather(*waiting, return_exceptions=True)
        gathered.add_done_callback(lambda _: settle(fut, None))

    def status_uncommitted(self, message_id: str) -> bool:
        return (message_id in self._pending.message_status
                or any(message_id in ops.message_status for ops, _ in self._mine.values()))

    async def flush(self) -> None:
        """Wait until everything queued so far is applied here (this node's entries in
        flight too)."""
        if len(self._pending) or self._future is not None or self._mine:
            await asyncio.wait([self.future()])

    def stop(self) -> None:
        """Stop the checkpointer; what is still pending is published (``close`` waits)."""
        super().stop()

    async def close(self) -> None:
        """Publish what is pending, wait for it to be applied, stop reading the log."""
        await self.flush()
        await self.publisher.close()
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()  # type: ignore[attr-defined]
            except Exception:  # the connection is closing anyway
                log.debug("log subscription not closed", exc_info=True)


def _retrieve(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()
