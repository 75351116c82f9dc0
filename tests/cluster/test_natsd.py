"""Smoke tests of the NATS harness (``bench/natsd.py``, ``bench/nats_node.py``) with a real
nats-server.

A 3-node JetStream cluster (``nats_cluster``) takes an R3 stream, stores a message published
twice under one ``Nats-Msg-Id`` once, and keeps acknowledging publishes with a node killed
(quorum 2 of 3) with every acknowledged message readable after the node is back. A single
server (``nats_server``) deduplicates too. Stopping leaves no process and frees the ports; a
port taken between its choice and the server's bind makes the harness start again on new
ports. Every client call has a timeout; every wait polls with a deadline.

Two transients of a fresh cluster are retried, bounded (both seen on 2.15.1 after ``start``
returned): creating a replicated stream in the first second may be refused with err_code
10005 "no suitable peers for placement, peer offline" (the meta leader has no statistics
from a peer yet, which no monitoring endpoint shows), and a publish right after the stream
is created may find no responder (the stream leader's interest has not reached the client's
server). A publish that timed out is retried with the same ``Nats-Msg-Id``, so a retry of a
message that was in fact stored is answered as a duplicate of the same sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import PubAck, StorageType, StreamInfo
from nats.js.errors import APIError, NoStreamResponseError

from bench import natsd
from bench.natsd import NatsCluster, NatsHarnessError

#: Seconds one JetStream API call or publish may take.
JS_TIMEOUT_S = 5.0
#: Seconds a whole scenario may take.
SCENARIO_TIMEOUT_S = 60.0
#: Seconds a transient refusal (placement, no responder, a lost publish) is retried for.
RETRY_FOR_S = 15.0
#: err_code of "no suitable peers for placement".
NO_SUITABLE_PEERS = 10005


def run(coro: Coroutine[Any, Any, None], timeout_s: float = SCENARIO_TIMEOUT_S) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout_s))


async def connect(servers: list[str]) -> Client:
    """A client of every server in ``servers`` that fails fast and reconnects at once."""
    return await nats.connect(servers=servers, connect_timeout=2, reconnect_time_wait=1,
                              max_reconnect_attempts=20, allow_reconnect=True,
                              name="smsc-natsd-smoke")


async def eventually(probe: Callable[[], Awaitable[str | None]], timeout_s: float,
                     what: str) -> None:
    """Await ``probe`` until it returns None; it returns what is still missing otherwise.
    Bounded in time and count."""
    deadline = time.monotonic() + timeout_s
    last = "not polled"
    for _ in range(int(timeout_s / 0.05) + 2):
        state = await probe()
        if state is None:
            return
        last = state
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.05)
    pytest.fail(f"{what}: not within {timeout_s} s (last: {last})")


async def add_stream(js: JetStreamContext, name: str, subjects: list[str],
                     replicas: int) -> StreamInfo:
    """Create a file stream, retrying (bounded) while placement finds a peer offline."""
    deadline = time.monotonic() + RETRY_FOR_S
    for _ in range(int(RETRY_FOR_S / 0.05) + 1):
        try:
            return await js.add_stream(name=name, subjects=subjects, num_replicas=replicas,
                                       storage=StorageType.FILE)
        except APIError as error:
            if error.err_code != NO_SUITABLE_PEERS or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(0.05)
    pytest.fail(f"stream {name}: no placement within {RETRY_FOR_S} s")


async def publish(js: JetStreamContext, subject: str, payload: bytes, msg_id: str) -> PubAck:
    """Publish until acknowledged (bounded): no responder means nothing stored; a timeout
    may have stored it, and the same ``Nats-Msg-Id`` then makes the retry a duplicate."""
    deadline = time.monotonic() + RETRY_FOR_S
    timed_out = False
    for _ in range(int(RETRY_FOR_S / 0.05) + 1):
        try:
            ack = await js.publish(subject, payload, timeout=JS_TIMEOUT_S,
                                   headers={"Nats-Msg-Id": msg_id})
        except (NoStreamResponseError, NatsTimeoutError) as error:
            timed_out = timed_out or isinstance(error, NatsTimeoutError)
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        assert timed_out or not ack.duplicate, (msg_id, ack)
        return ack
    pytest.fail(f"publish {msg_id}: no acknowledgement within {RETRY_FOR_S} s")


async def all_replicas_current(js: JetStreamContext, stream: str, size: int) -> None:
    """Wait until the stream has a leader and ``size - 1`` current replicas with no lag."""
    async def missing() -> str | None:
        info = await js.stream_info(stream)
        cluster = info.cluster
        if cluster is None or not cluster.leader:
            return f"no leader: {cluster}"
        replicas = cluster.replicas or []
        if len(replicas) != size - 1 or not all(p.current and not p.lag for p in replicas):
            return f"leader {cluster.leader}, replicas {replicas}"
        return None

    await eventually(missing, 20.0, f"stream {stream}: leader and current replicas")


def version_tuple(version: str) -> tuple[int, int, int]:
    found = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    assert found is not None, f"not a version: {version!r}"
    return int(found[1]), int(found[2]), int(found[3])


# --- the cluster ----------------------------------------------------------------------------


def test_cluster_starts_and_takes_an_r3_stream(nats_cluster: NatsCluster) -> None:
    servers = nats_cluster.servers
    assert len(servers) == 3
    assert all(re.fullmatch(r"nats://127\.0\.0\.1:\d+", url) for url in servers), servers
    assert len(set(servers)) == 3
    assert version_tuple(nats_cluster.version) >= (2, 10, 23), nats_cluster.version
    for node in nats_cluster.nodes:  # sync_interval: always, as every node reports it
        jsz = node.get_json("/jsz")
        assert jsz is not None and jsz["config"]["sync_always"] is True, (node.server_name, jsz)

    async def scenario() -> None:
        nc = await connect(servers)
        try:
            js = nc.jetstream(timeout=JS_TIMEOUT_S)
            info = await add_stream(js, "SMOKE_R3", ["smoke.r3.>"], 3)
            assert info.config.num_replicas == 3
            await all_replicas_current(js, "SMOKE_R3", 3)
            info = await js.stream_info("SMOKE_R3")
            assert info.cluster is not None and info.cluster.leader is not None
            names = {info.cluster.leader, *(p.name for p in info.cluster.replicas or [])}
            assert names == {"n1", "n2", "n3"}, info.cluster
        finally:
            await nc.close()

    run(scenario())


@pytest.mark.parametrize(("fixture", "replicas"), [("nats_cluster", 3), ("nats_server", 1)])
def test_a_message_id_published_twice_is_stored_once(request: pytest.FixtureRequest,
                                                     fixture: str, replicas: int) -> None:
    cluster: NatsCluster = request.getfixturevalue(fixture)
    stream = f"SMOKE_DEDUP_R{replicas}"

    async def scenario() -> None:
        nc = await connect(cluster.servers)
        try:
            js = nc.jetstream(timeout=JS_TIMEOUT_S)
            await add_stream(js, stream, [f"dedup.r{replicas}.>"], replicas)
            first = await publish(js, f"dedup.r{replicas}.a", b"one", "submit-1")
            second = await js.publish(f"dedup.r{replicas}.a", b"one", timeout=JS_TIMEOUT_S,
                                      headers={"Nats-Msg-Id": "submit-1"})
            assert second.duplicate is True
            assert second.seq == first.seq
            info = await js.stream_info(stream)
            assert info.state.messages == 1
            assert info.state.last_seq == first.seq
        finally:
            await nc.close()

    run(scenario())


def test_quorum_acknowledges_with_a_node_down_and_keeps_every_ack(
        nats_cluster: NatsCluster) -> None:
    """Node 1 (n2) is killed while it is a follower of the stream (its leadership, if it had
    it, is handed over first: this tests quorum, not the ~5 s leader election of 2.15.1)."""
    victim = nats_cluster.nodes[1].server_name
    stream, subject = "SMOKE_QUORUM", "quorum.msgs"

    async def publish_one(js: JetStreamContext, i: int, acked: dict[int, bytes]) -> None:
        payload = f"message {i}".encode()
        ack = await publish(js, subject, payload, f"quorum-{i}")
        assert ack.seq not in acked, (i, ack)
        acked[ack.seq] = payload

    async def scenario() -> None:
        nc = await connect(nats_cluster.servers)
        try:
            js = nc.jetstream(timeout=JS_TIMEOUT_S)
            await add_stream(js, stream, [subject], 3)
            await all_replicas_current(js, stream, 3)
            acked: dict[int, bytes] = {}
            for i in range(5):
                await publish_one(js, i, acked)

            info = await js.stream_info(stream)
            if info.cluster is not None and info.cluster.leader == victim:
                reply = await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", b"",
                                         timeout=JS_TIMEOUT_S)
                assert json.loads(reply.data).get("success") is True, reply.data

                async def moved() -> str | None:
                    cluster = (await js.stream_info(stream)).cluster
                    leader = cluster.leader if cluster is not None else None
                    return None if leader not in (None, victim) else f"leader {leader}"

                await eventually(moved, 10.0, f"stream leadership off {victim}")

            await asyncio.to_thread(nats_cluster.kill, 1)
            assert not nats_cluster.nodes[1].running
            for i in range(5, 15):
                await publish_one(js, i, acked)

            await asyncio.to_thread(nats_cluster.restart, 1)
            assert nats_cluster.meta_leader() is not None
            for node in nats_cluster.nodes:
                assert node.health() is None
            await all_replicas_current(js, stream, 3)

            info = await js.stream_info(stream)
            assert info.state.messages == len(acked) == 15
            assert sorted(acked) == list(range(1, 16))
            for seq, payload in sorted(acked.items()):
                msg = await js.get_msg(stream, seq)
                assert (msg.seq, msg.data) == (seq, payload)
        finally:
            await nc.close()

    run(scenario())


# --- the harness itself ---------------------------------------------------------------------


def _port_is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port: a listener can bind it (SO_REUSEADDR, as every
    server sets, so a connection of the old process in TIME_WAIT does not count)."""
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        return True
    except OSError:
        return False
    finally:
        sock.close()


def _pid_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_stop_leaves_no_process_and_frees_the_ports(tmp_path: Path) -> None:
    cluster = NatsCluster(tmp_path / "single", size=1)
    try:
        cluster.start()
        node = cluster.nodes[0]
        pid, ports = node.pid, node.ports
        assert pid is not None and node.running
        assert not _port_is_free(ports.client)
        assert (tmp_path / "single" / "node-1" / "server.log").stat().st_size > 0
    finally:
        cluster.stop()
    cluster.stop()  # idempotent
    assert not node.running
    assert _pid_is_gone(pid), f"nats-server PID {pid} is still there"
    assert _port_is_free(ports.client), f"client port {ports.client} is still taken"
    assert _port_is_free(ports.monitor), f"monitor port {ports.monitor} is still taken"


def test_a_port_taken_before_the_bind_starts_the_cluster_on_new_ports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = int(holder.getsockname()[1])
    real_free_ports = natsd.free_ports
    calls: list[int] = []

    def racy_free_ports(count: int) -> list[int]:
        calls.append(count)
        ports = real_free_ports(count)
        return [taken, *ports[1:]] if len(calls) == 1 else ports

    monkeypatch.setattr(natsd, "free_ports", racy_free_ports)
    cluster = NatsCluster(tmp_path / "race", size=1)
    try:
        with holder:
            cluster.start()
        assert len(calls) == 2
        assert cluster.nodes[0].ports.client != taken
        assert "address already in use" in cluster.nodes[0].log_tail(100_000)
        assert cluster.nodes[0].health() is None
    finally:
        cluster.stop()


def test_no_binary_says_to_run_make_test(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NatsHarnessError, match="make test"):
        NatsCluster(tmp_path / "none", size=1)


def test_a_node_that_cannot_start_fails_with_its_log(tmp_path: Path) -> None:
    cluster = NatsCluster(tmp_path / "broken", size=1)
    node = cluster.nodes[0]
    node.store_dir.parent.mkdir(parents=True)
    node.store_dir.write_text("a file where the JetStream store directory should be\n")
    with contextlib.ExitStack() as stack:
        stack.callback(cluster.stop)
        with pytest.raises(NatsHarnessError) as raised:
            cluster.start(timeout_s=10.0)
    assert "n1 exited with" in str(raised.value)
    assert "server.log" in str(raised.value)
    assert not node.running


def test_a_start_that_times_out_stops_every_node_and_quotes_its_log(tmp_path: Path) -> None:
    cluster = NatsCluster(tmp_path / "slow", size=3)
    try:
        with pytest.raises(NatsHarnessError, match=r"not within 0\.001 s") as raised:
            cluster.start(timeout_s=0.001)  # nothing answers that fast
        assert "server.log" in str(raised.value)
        pids = [pid for pid in cluster.pids if pid is not None]
        assert len(pids) == 3
        assert not any(node.running for node in cluster.nodes)
        assert all(_pid_is_gone(pid) for pid in pids), pids
    finally:
        cluster.stop()
