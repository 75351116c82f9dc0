"""One tps budget per tenant across nodes (issue 14): two nodes that both try to send far
more than the tenant's tps admit, together, no more than tps in any second and at least
90 % of it, whichever node the traffic comes to."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import TYPE_CHECKING

import nats

from routing.nats import ensure_bucket
from routing.nats.budget import BUCKET, ClusterBudget, bucket_spec

if TYPE_CHECKING:
    from bench.natsd import NatsCluster

TPS = 300.0
SECONDS = 3  # whole seconds measured, after the one the load starts in


def _admitted_per_second(servers: list[str], shares: tuple[float, float]) -> Counter[int]:
    """Two nodes offered load in the ratio ``shares`` (each trying every millisecond while
    it has a share) for SECONDS whole seconds; what they admitted, by second."""
    admitted: Counter[int] = Counter()

    async def node(budget: ClusterBudget, share: float, until: float) -> None:
        credit = 0.0
        while (now := time.time()) < until:
            credit += share
            while credit >= 1.0:
                credit -= 1.0
                if budget.take(now):
                    admitted[int(now)] += 1
            await asyncio.sleep(0.001)

    async def main() -> None:
        admin = await nats.connect(servers=servers, connect_timeout=5)
        a_nc = await nats.connect(servers=servers, connect_timeout=5)
        b_nc = await nats.connect(servers=servers, connect_timeout=5)
        try:
            js = admin.jetstream(timeout=5)
            await ensure_bucket(js, bucket_spec(), 3)
            loop = asyncio.get_running_loop()
            a = ClusterBudget(await a_nc.jetstream().key_value(BUCKET), "acme", TPS, loop)
            b = ClusterBudget(await b_nc.jetstream().key_value(BUCKET), "acme", TPS, loop)
            until = int(time.time()) + SECONDS + 1.0
            await asyncio.wait_for(asyncio.gather(node(a, shares[0], until),
                                                  node(b, shares[1], until)), SECONDS + 10)
            await js.delete_key_value(BUCKET)
        finally:
            for nc in (a_nc, b_nc, admin):
                await nc.close()

    asyncio.run(main())
    return admitted


def _check(admitted: Counter[int]) -> None:
    first = min(admitted)
    whole = [admitted[s] for s in range(first + 1, first + 1 + SECONDS)]
    assert max(admitted.values()) <= TPS, f"a second admitted more than {TPS:g}: {admitted}"
    assert all(n >= 0.9 * TPS for n in whole), f"below 90 % of {TPS:g} in a second: {whole}"


def test_two_busy_nodes_share_the_budget_within_ten_percent(nats_cluster: NatsCluster) -> None:
    _check(_admitted_per_second(nats_cluster.servers, (2.0, 2.0)))  # 2,000 offered a second


def test_traffic_on_one_node_can_use_the_whole_budget(nats_cluster: NatsCluster) -> None:
    _check(_admitted_per_second(nats_cluster.servers, (4.0, 0.05)))


def test_a_budget_below_one_a_second_admits_one_message_per_window(
        nats_cluster: NatsCluster) -> None:
    """0.5 tps: one message in each 2-second window, over both nodes together."""
    admitted: Counter[int] = Counter()

    async def main() -> None:
        a_nc = await nats.connect(servers=nats_cluster.servers, connect_timeout=5)
        b_nc = await nats.connect(servers=nats_cluster.servers, connect_timeout=5)
        try:
            await ensure_bucket(a_nc.jetstream(timeout=5), bucket_spec(), 3)
            loop = asyncio.get_running_loop()
            nodes = [ClusterBudget(await nc.jetstream().key_value(BUCKET), "slow", 0.5, loop)
                     for nc in (a_nc, b_nc)]
            start = time.time()
            first = int(start // 2) + 1  # the first whole window
            while (now := time.time()) < (first + 2) * 2:
                for budget in nodes:
                    if budget.take(now):
                        admitted[int(now // 2)] += 1
                await asyncio.sleep(0.005)
            await a_nc.jetstream(timeout=5).delete_key_value(BUCKET)
            assert admitted[first] == admitted[first + 1] == 1, admitted
            assert max(admitted.values()) == 1, admitted
        finally:
            await a_nc.close()
            await b_nc.close()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_a_quiet_tenants_first_message_goes_on_credit_and_is_charged(
        nats_cluster: NatsCluster) -> None:
    """The first message of a quiet tenant is admitted at once (not refused until a chunk
    is reserved), and the reservation that follows charges it to the shared counter."""
    async def main() -> None:
        nc = await nats.connect(servers=nats_cluster.servers, connect_timeout=5)
        try:
            js = nc.jetstream(timeout=5)
            await ensure_bucket(js, bucket_spec(), 3)
            kv = await js.key_value(BUCKET)
            budget = ClusterBudget(kv, "quiet", 100.0, asyncio.get_running_loop())
            now = time.time()
            if now % 1 > 0.8:  # keep the message and its charge in one second
                await asyncio.sleep(1.05 - now % 1)
                now = time.time()
            assert budget.take(now)  # nothing reserved yet: on credit
            assert budget.debt == 1
            deadline = time.monotonic() + 5
            while budget.debt and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert budget.debt == 0
            used = int((await kv.get(budget._key(int(now)))).value or b"0")
            assert used == budget.chunk + 1  # the chunk reserved, and the message on credit
            await js.delete_key_value(BUCKET)
        finally:
            await nc.close()

    asyncio.run(asyncio.wait_for(main(), 20))
