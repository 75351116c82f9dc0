"""Replicated group publish: many writers, one flush of publishes, one future per batch.

The JetStream counterpart of ``routing.sqlite.committer``. Callers on the loop add
publications to the pending batch (``publish``) and take ``future()``, which resolves when
every publication of that batch has its acknowledgement from its stream: a quorum of the
stream's replicas stored it (with the servers' ``sync_interval: always``, on disk). So a
submit_sm_resp or an HTTP 200 that waits on it leaves only once the message is replicated.
A batch goes out at the end of the loop iteration that filled it (the client's flusher
writes its PUB frames together), its acknowledgements are awaited together, and while it is
in flight the next batch fills: the rate is bounded by the replicas, not by round trips.

Every publication carries its id as ``Nats-Msg-Id`` (for a message, its message id). A
publication whose acknowledgement does not come within ``timeout_s`` (a server killed, a
stream leader being elected) is sent again with the same id, and the stream, which
remembers ids for its duplicate window, keeps it once: a retry after a timeout never stores
a message twice. Acknowledgements marked duplicate are counted (``stats.duplicates``).
Publications are sent again (backing off up to a second) until at least ``attempts`` tries
and ``give_up_s`` have passed: a killed server's streams elect a new leader within a few
seconds, and meanwhile publishes find no responder at once (``NoStreamResponseError``), so a
count of tries alone would give up in a fraction of a second. Then the batch's future fails
with ``ReplicationError``, and whoever waited answers as for a failed commit (a system
error: the tenant may send again).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import NamedTuple

from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import APIError, NoStreamResponseError, ServiceUnavailableError

__all__ = ["JetStreamBatches", "ReplicationError", "Publication", "BatchStats"]

log = logging.getLogger(__name__)

_MSG_ID = "Nats-Msg-Id"  # JetStream's deduplication header
_UNAVAILABLE = 503  # JetStream's "temporarily unavailable" (no leader yet, catching up)


class ReplicationError(Exception):
    """A batch that the streams did not acknowledge; the message says how much and why."""


class Publication(NamedTuple):
    subject: str
    payload: bytes
    msg_id: str
    headers: dict[str, str] | None = None  # more headers (a log entry's chunk number)


class BatchStats:
    """Counters the metrics layer reads (plain numbers: routing does not import prometheus)."""

    __slots__ = ("batches", "duplicates", "failed", "last_ack_s", "last_batch_size",
                 "publications", "retries")

    def __init__(self) -> None:
        self.batches = 0
        self.publications = 0
        self.retries = 0  # publications sent again after a timeout or an unavailable stream
        self.duplicates = 0  # acknowledgements of ids the stream had already
        self.failed = 0  # batches given up after ``attempts``
        self.last_batch_size = 0
        self.last_ack_s = 0.0  # from the batch's first send to its last acknowledgement


def _retryable(exc: BaseException) -> bool:
    """Whether sending again may succeed: no answer, no stream leader yet, a reconnect."""
    if isinstance(exc, NoStreamResponseError | ServiceUnavailableError | NatsTimeoutError):
        return True
    if isinstance(exc, APIError):
        return exc.code == _UNAVAILABLE
    return isinstance(exc, NatsError | ConnectionError | asyncio.TimeoutError)


class JetStreamBatches:
    """Group publish over one JetStream context; ``close`` waits for batches in flight."""

    def __init__(self, js: JetStreamContext, loop: asyncio.AbstractEventLoop, *,
                 timeout_s: float = 2.0, attempts: int = 5, backoff_s: float = 0.05,
                 give_up_s: float = 15.0, min_interval_s: float = 0.0) -> None:
        self.js = js
        self.loop = loop
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.give_up_s = give_up_s
        # Pacing, as the group commit's: a batch goes out at the end of the loop iteration
        # that filled it if the last one went out at least this long ago, else when the
        # interval is up, so a moderate rate still makes batches of several publications
        # (the servers' cost is mostly per batch: BENCHMARKS.md, issue 14).
        self.min_interval_s = min_interval_s
        self._last_flush = float("-inf")
        self.stats = BatchStats()
        self._pending: list[Publication] = []
        self._future: asyncio.Future[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    def publish(self, subject: str, payload: bytes, msg_id: str,
                headers: dict[str, str] | None = None) -> None:
        """Add a publication to the pending batch; ``future()`` says when it is stored."""
        self._pending.append(Publication(subject, payload, msg_id, headers))

    def future(self) -> asyncio.Future[None]:
        """Resolves when everything published so far is acknowledged by its stream."""
        fut = self._future
        if fut is None:
            fut = self._future = self.loop.create_future()
            due = self._last_flush + self.min_interval_s
            if due <= self.loop.time():
                self.loop.call_soon(self._flush)
            else:
                self.loop.call_at(due, self._flush)
        return fut

    def _flush(self) -> None:
        batch, fut = self._pending, self._future
        self._pending, self._future = [], None
        self._last_flush = self.loop.time()
        if fut is None:
            return
        if not batch:
            fut.set_result(None)
            return
        task = self.loop.create_task(self._send(batch, fut))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _send(self, batch: list[Publication], fut: asyncio.Future[None]) -> None:
        started = time.perf_counter()
        left = batch
        reason = ""
        attempt = 0
        while attempt < self.attempts or time.perf_counter() - started < self.give_up_s:
            if attempt:
                self.stats.retries += len(left)
                await asyncio.sleep(min(1.0, self.backoff_s * (2 ** min(attempt - 1, 10))))
            attempt += 1
            left, reason, fatal = await self._round(left)
            if fatal:
                break
            if not left:
                self.stats.batches += 1
                self.stats.publications += len(batch)
                self.stats.last_batch_size = len(batch)
                self.stats.last_ack_s = time.perf_counter() - started
                if not fut.done():
                    fut.set_result(None)
                return
        self.stats.failed += 1
        error = ReplicationError(
            f"{len(left)} of {len(batch)} publications not acknowledged after "
            f"{attempt} attempt(s) in {time.perf_counter() - started:.1f} s: {reason}")
        log.error("%s", error)
        if not fut.done():
            fut.set_exception(error)

    async def _round(self, batch: list[Publication]
                     ) -> tuple[list[Publication], str, bool]:
        """Send ``batch`` once; (what to send again, why, whether it is hopeless)."""
        acks: list[asyncio.Future[PubAck] | None] = []
        reason = ""
        for p in batch:
            try:
                headers = {_MSG_ID: p.msg_id}
                if p.headers:
                    headers.update(p.headers)
                acks.append(await self.js.publish_async(p.subject, p.payload,
                                                        headers=headers))
            except Exception as exc:  # closed or reconnecting connection, stalled publishes
                acks.append(None)
                reason = repr(exc)
        waiting = [a for a in acks if a is not None]
        if waiting:
            _, late = await asyncio.wait(waiting, timeout=self.timeout_s)
            for t in late:
                t.cancel()  # frees the client's slot; a late answer is then ignored
            if late:
                reason = f"no acknowledgement within {self.timeout_s:g} s"
        again: list[Publication] = []
        for p, ack in zip(batch, acks, strict=True):
            if ack is None or ack.cancelled():
                again.append(p)
                continue
            error = ack.exception()
            if error is None:
                if ack.result().duplicate:
                    self.stats.duplicates += 1
            elif _retryable(error):
                again.append(p)
                reason = repr(error)
            else:
                return [p], repr(error), True
        return again, reason, False

    async def flush(self) -> None:
        """Wait until everything published so far is acknowledged (or failed)."""
        if self._pending or self._future is not None:
            fut = self.future()
            await asyncio.wait([fut])
        if self._in_flight:
            await asyncio.wait(list(self._in_flight))

    async def close(self) -> None:
        """Flush, then stop: the batches in flight finish (or fail) first."""
        await self.flush()
