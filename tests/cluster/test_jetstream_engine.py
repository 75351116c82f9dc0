"""The JetStream engine's foundations against real NATS servers on loopback: the start-up
checks refuse what would weaken the guarantees (old server, too few replicas, memory
storage, a foreign or short-windowed stream), and group publish acknowledges a batch only
once its stream has it, stores a retried id once, and loses nothing acknowledged when a
server of three is killed in the middle of the load."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from bench.natsd import free_ports
from routing.nats import (
    MIN_SERVER,
    BucketSpec,
    ClusterError,
    JetStreamBatches,
    ReplicationError,
    StreamSpec,
    check_server,
    connect,
    ensure_bucket,
    ensure_stream,
)

if TYPE_CHECKING:
    from bench.natsd import NatsCluster

T = TypeVar("T")
BODY_S = 60.0  # a whole test body; the waits inside are shorter


def _run(servers: list[str], body: Callable[[Client, JetStreamContext], Awaitable[T]]) -> T:
    async def main() -> T:
        nc = await nats.connect(servers=servers, connect_timeout=5, max_reconnect_attempts=60,
                                reconnect_time_wait=0.1)
        try:
            return await asyncio.wait_for(body(nc, nc.jetstream(timeout=5)), BODY_S)
        finally:
            await nc.close()
    return asyncio.run(main())


# --- start-up checks ----------------------------------------------------------------------


def test_the_server_version_is_checked_against_the_minimum(nats_server: NatsCluster) -> None:
    async def body(nc: Client, js: JetStreamContext) -> None:
        version = await check_server(nc, js)
        assert tuple(int(p) for p in version.split(".")[:3]) >= MIN_SERVER
        with pytest.raises(ClusterError, match=r"older than 99\.0\.0: upgrade every server"):
            await check_server(nc, js, (99, 0, 0))
    _run(nats_server.servers, body)


def test_streams_and_buckets_are_created_replicated_on_disk(nats_cluster: NatsCluster) -> None:
    async def body(nc: Client, js: JetStreamContext) -> None:
        info = await ensure_stream(js, StreamSpec("T_CREATE", ("t_create.>",)), 3)
        assert info.config.num_replicas == 3 and info.config.storage == StorageType.FILE
        assert info.config.duplicate_window == 120.0
        again = await ensure_stream(js, StreamSpec("T_CREATE", ("t_create.>",)), 3)
        assert again.config.num_replicas == 3  # checked, not created twice
        await ensure_bucket(js, BucketSpec("t-bucket"), 3)
        await ensure_bucket(js, BucketSpec("t-bucket"), 3)
        kv = await js.stream_info("KV_t-bucket")
        assert kv.config.num_replicas == 3 and kv.config.storage == StorageType.FILE
        await js.delete_stream("T_CREATE")
        await js.delete_key_value("t-bucket")
    _run(nats_cluster.servers, body)


def test_weaker_streams_are_refused_in_one_line(nats_cluster: NatsCluster) -> None:
    async def body(nc: Client, js: JetStreamContext) -> None:
        await js.add_stream(StreamConfig(name="T_R1", subjects=["t_r1.>"], num_replicas=1,
                                         storage=StorageType.FILE, duplicate_window=120))
        await js.add_stream(StreamConfig(name="T_MEM", subjects=["t_mem.>"], num_replicas=3,
                                         storage=StorageType.MEMORY, duplicate_window=120))
        await js.add_stream(StreamConfig(name="T_DUP", subjects=["t_dup.>"], num_replicas=3,
                                         storage=StorageType.FILE, duplicate_window=1))
        cases = [
            (StreamSpec("T_R1", ("t_r1.>",)), "has 1 replica.*replicas = 3"),
            (StreamSpec("T_MEM", ("t_mem.>",)), "kept in memory"),
            (StreamSpec("T_DUP", ("t_dup.>",)), "deduplicates over 1 s"),
            (StreamSpec("T_R1", ("other.>",)), None),  # checked after the replicas
        ]
        for spec, match in cases[:3]:
            with pytest.raises(ClusterError, match=match) as caught:
                await ensure_stream(js, spec, 3)
            assert "\n" not in str(caught.value)
        with pytest.raises(ClusterError, match="does not carry other"):
            await ensure_stream(js, cases[3][0], 1)
        with pytest.raises(ClusterError, match="key-value bucket t-r1 has 1 replica"):
            await js.create_key_value(bucket="t-r1", replicas=1)
            await ensure_bucket(js, BucketSpec("t-r1"), 3)
        for name in ("T_R1", "T_MEM", "T_DUP"):
            await js.delete_stream(name)
        await js.delete_key_value("t-r1")
    _run(nats_cluster.servers, body)


# --- group publish ------------------------------------------------------------------------


async def _stored_ids(js: JetStreamContext, stream: str) -> list[str]:
    """Every message's Nats-Msg-Id, in stream order."""
    info = await js.stream_info(stream)
    ids: list[str] = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        ids.append((msg.headers or {}).get("Nats-Msg-Id", ""))
    return ids


def test_a_batch_is_acknowledged_once_stored_and_a_retried_id_is_stored_once(
        nats_cluster: NatsCluster) -> None:
    async def body(nc: Client, js: JetStreamContext) -> None:
        await ensure_stream(js, StreamSpec("T_PUB", ("t_pub.>",)), 3)
        batches = JetStreamBatches(js, asyncio.get_running_loop())
        for i in range(300):
            batches.publish("t_pub.m", f"message {i}".encode(), f"m{i}")
        fut = batches.future()
        assert batches.future() is fut  # one batch, one future
        await asyncio.wait_for(fut, 10)
        assert batches.stats.batches == 1 and batches.stats.publications == 300
        batches.publish("t_pub.m", b"sent again after a timeout", "m7")
        await asyncio.wait_for(batches.future(), 10)
        assert batches.stats.duplicates == 1
        assert await _stored_ids(js, "T_PUB") == [f"m{i}" for i in range(300)]
        await batches.close()
        await js.delete_stream("T_PUB")
    _run(nats_cluster.servers, body)


def test_a_batch_nobody_stores_fails_after_its_attempts(nats_server: NatsCluster) -> None:
    async def body(nc: Client, js: JetStreamContext) -> None:
        batches = JetStreamBatches(js, asyncio.get_running_loop(), timeout_s=0.2, attempts=2,
                                   backoff_s=0.01, give_up_s=0.0)
        batches.publish("no_stream_here.x", b"lost", "x1")
        with pytest.raises(ReplicationError, match="1 of 1 publications not acknowledged "
                                                   "after 2 attempt"):
            await asyncio.wait_for(batches.future(), 10)
        assert batches.stats.failed == 1 and batches.stats.retries == 1
    _run(nats_server.servers, body)


def test_killing_one_server_of_three_loses_no_acknowledged_publication(
        nats_cluster: NatsCluster) -> None:
    """Batches keep coming while a server is killed: each batch is acknowledged (two of
    three replicas are a quorum), retried publications are stored once, and afterwards the
    stream holds exactly the acknowledged ids."""
    acknowledged: list[str] = []
    killed: list[int] = []

    async def body(nc: Client, js: JetStreamContext) -> None:
        await ensure_stream(js, StreamSpec("T_KILL", ("t_kill.>",)), 3)
        batches = JetStreamBatches(js, asyncio.get_running_loop(), timeout_s=1.0, attempts=10)
        loop = asyncio.get_running_loop()
        for n in range(60):
            ids = [f"b{n}-{i}" for i in range(50)]
            for mid in ids:
                batches.publish("t_kill.m", mid.encode(), mid)
            fut = batches.future()
            if n == 20:  # the stream's leader, with this batch on its way to it
                leader = (await js.stream_info("T_KILL")).cluster
                assert leader is not None and leader.leader is not None
                killed.append(int(leader.leader.lstrip("n")) - 1)
                await loop.run_in_executor(None, nats_cluster.kill, killed[0])
            try:
                await asyncio.wait_for(fut, 30)
            except ReplicationError:
                continue  # not acknowledged: the tenant would have been told so
            acknowledged.extend(ids)
        stored = await _stored_ids(js, "T_KILL")
        assert len(stored) == len(set(stored)), "an id was stored twice"
        missing = set(acknowledged) - set(stored)
        assert not missing, f"{len(missing)} acknowledged ids lost, e.g. {sorted(missing)[:3]}"
        assert len(acknowledged) >= 50 * 50, "too few batches were acknowledged with 2 of 3"
        assert batches.stats.retries > 0, "the leader's death sent nothing again"
        await batches.close()
        await js.delete_stream("T_KILL")

    try:
        _run(nats_cluster.servers, body)
    finally:
        for index in killed:
            nats_cluster.restart(index)


def test_a_paced_publisher_holds_the_next_batch_for_the_interval(
        nats_server: NatsCluster) -> None:
    """With ``min_interval_s``, a batch right after another waits for the interval (and
    gathers what comes meanwhile); the first after a quiet spell goes at once."""
    async def body(nc: Client, js: JetStreamContext) -> None:
        await ensure_stream(js, StreamSpec("T_PACE", ("t_pace.>",)), 1)
        loop = asyncio.get_running_loop()
        batches = JetStreamBatches(js, loop, min_interval_s=0.3)
        batches.publish("t_pace.m", b"first", "p1")
        started = loop.time()
        await asyncio.wait_for(batches.future(), 5)
        assert loop.time() - started < 0.25, "the first batch waited for the interval"
        batches.publish("t_pace.m", b"second", "p2")
        second = batches.future()
        await asyncio.sleep(0.1)
        batches.publish("t_pace.m", b"third", "p3")
        assert batches.future() is second and not second.done()
        await asyncio.wait_for(second, 5)
        assert loop.time() - started >= 0.3
        assert batches.stats.batches == 2 and batches.stats.last_batch_size == 2
        await js.delete_stream("T_PACE")
    _run(nats_server.servers, body)


def test_a_cluster_nobody_answers_for_is_refused_in_one_line() -> None:

    [port] = free_ports(1)  # nothing listens there

    async def main() -> None:
        with pytest.raises(ClusterError, match=r"cannot reach any NATS server of "
                                               rf"\[nats://127\.0\.0\.1:{port}\]"):
            await connect([f"nats://127.0.0.1:{port}"], name="t", connect_timeout_s=0.5)
    asyncio.run(asyncio.wait_for(main(), 10))
