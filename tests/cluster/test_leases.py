"""Operator bind slots shared out among nodes through a replicated bucket (issue 14): two
nodes split an operator's binds evenly and never both count a slot as theirs, a node that
dies loses its slots to the other within the lease time plus a round, an orderly stop hands
them over at the next round, and a node cut off from the cluster stops counting its own
before anyone else may take them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import nats
from nats.aio.client import Client

from routing.nats import ensure_bucket
from routing.nats.leases import BUCKET, SlotLeases, bucket_spec

if TYPE_CHECKING:
    from bench.natsd import NatsCluster

TTL_S, RENEW_S, MARGIN_S = 2.0, 0.4, 0.5
DEMAND = {"opA": 3, "op B/with odd chars": 2}
BODY_S = 60.0


async def _node(servers: list[str], name: str) -> tuple[Client, SlotLeases]:
    nc = await nats.connect(servers=servers, connect_timeout=5, max_reconnect_attempts=2,
                            reconnect_time_wait=0.1)
    kv = await nc.jetstream(timeout=2).key_value(BUCKET)
    return nc, SlotLeases(kv, name, ttl_s=TTL_S, renew_s=RENEW_S, margin_s=MARGIN_S)


@contextlib.asynccontextmanager
async def _two_nodes(servers: list[str]) -> AsyncIterator[tuple[SlotLeases, SlotLeases]]:
    """node-a and node-b, each on its own connection; node-a's is closed without a release
    (as a dead node's), node-b lets its slots go."""
    a_nc, a = await _node(servers, "node-a")
    b_nc, b = await _node(servers, "node-b")
    try:
        yield a, b
    finally:
        await a_nc.close()
        await b.release_all()
        await b_nc.close()


def _overlap(a: SlotLeases, b: SlotLeases) -> dict[str, frozenset[int]]:
    return {op: a.held(op) & b.held(op) for op in DEMAND if a.held(op) & b.held(op)}


def _holds_all(*nodes: SlotLeases) -> bool:
    return all(sorted(k for n in nodes for k in n.held(op)) == list(range(binds))
               for op, binds in DEMAND.items())


async def _rounds(nodes: list[SlotLeases], others: list[SlotLeases], until_s: float,
                  done: object) -> float:
    """Rounds of ``nodes`` every RENEW_S until ``done()`` (bounded by ``until_s``); after
    each round no slot is counted by two of ``nodes + others``. Seconds it took."""
    assert callable(done)
    started = time.monotonic()
    everyone = nodes + others
    while time.monotonic() - started < until_s:
        for n in nodes:
            await n.tick(DEMAND)
        for i, a in enumerate(everyone):
            for b in everyone[i + 1:]:
                assert not _overlap(a, b), f"{a.node} and {b.node}: {_overlap(a, b)}"
        if done():
            return time.monotonic() - started
        await asyncio.sleep(RENEW_S)
    raise AssertionError(f"not done within {until_s} s")


def _run_with_bucket(servers: list[str], body: object) -> None:
    assert callable(body)

    async def main() -> None:
        nc = await nats.connect(servers=servers, connect_timeout=5)
        js = nc.jetstream(timeout=5)
        try:
            try:
                await js.delete_key_value(BUCKET)
            except nats.js.errors.NotFoundError:
                pass
            await ensure_bucket(js, bucket_spec(TTL_S), 3)
            await asyncio.wait_for(body(), BODY_S)
        finally:
            await js.delete_key_value(BUCKET)
            await nc.close()
    asyncio.run(main())


def test_two_nodes_split_the_binds_and_a_dead_ones_are_taken_over(
        nats_cluster: NatsCluster) -> None:
    async def body() -> None:
        async with _two_nodes(nats_cluster.servers) as (a, b):
            await _rounds([a, b], [], 10.0, lambda: _holds_all(a, b)
                          and all(a.held(op) and b.held(op) for op in DEMAND))
            assert {len(a.held("opA")), len(b.held("opA"))} == {1, 2}
            assert len(a.held("op B/with odd chars")) == len(b.held("op B/with odd chars")) == 1
            # node-a dies: it stops renewing, its leases are left to expire
            took = await _rounds([b], [a], TTL_S + RENEW_S + 3.0, lambda: _holds_all(b))
            assert took <= TTL_S + RENEW_S + 1.5, f"took over after {took:.2f} s"
            assert not any(a.held(op) for op in DEMAND)  # lapsed by its own clock too
    _run_with_bucket(nats_cluster.servers, body)


def test_an_orderly_stop_hands_the_slots_over_at_the_next_round(
        nats_cluster: NatsCluster) -> None:
    async def body() -> None:
        async with _two_nodes(nats_cluster.servers) as (a, b):
            await _rounds([a, b], [], 10.0, lambda: _holds_all(a, b))
            await a.release_all()
            assert not any(a.held(op) for op in DEMAND)
            took = await _rounds([b], [a], TTL_S, lambda: _holds_all(b))
            assert took < TTL_S / 2, f"waited for expiry ({took:.2f} s) instead of the release"
    _run_with_bucket(nats_cluster.servers, body)


def test_a_node_cut_off_stops_counting_its_slots_before_they_expire(
        nats_cluster: NatsCluster) -> None:
    async def body() -> None:
        a_nc, a = await _node(nats_cluster.servers, "node-a")
        try:
            await _rounds([a], [], 10.0, lambda: _holds_all(a))
            await a_nc.close()  # every later round fails: nothing is renewed
            started = time.monotonic()
            while any(a.held(op) for op in DEMAND):
                assert time.monotonic() - started < TTL_S, "still counted at the lease's end"
                await a.tick(DEMAND)
                await asyncio.sleep(0.05)
            assert time.monotonic() - started <= TTL_S - MARGIN_S + RENEW_S
        finally:
            if not a_nc.is_closed:
                await a_nc.close()
    _run_with_bucket(nats_cluster.servers, body)
