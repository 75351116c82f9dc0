"""The pool opens only the operator binds whose slot this node holds (issue 14, "Operator
binds are shared out"), over real sockets to the bundled simulator.

The slots are a plain set here (the cluster's leases are tested in tests/cluster): a bind
connects once its slot is held, closes when it lapses (a node cut off from the cluster), and
when its slot is let go it has unbound before ``let_go`` returns (the next holder never binds
beside it). Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import cast

import pytest

from bench.simulator import Simulator
from config import GatewayConfig, OperatorConfig
from config.simulator import SimulatorConfig
from esme import Pool
from esme.pool import PoolRouter
from routing.inbound import Inbound
from routing.repository import MessageRecord
from routing.workqueue import MemoryWorkQueue
from tests.pool_fakes import HeldSlots, IdleRouter

pytestmark = pytest.mark.timeout(30)

WAIT_S = 5.0




async def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_S} s: {what}")
        await asyncio.sleep(0.02)


def open_binds(sim: Simulator) -> int:
    return sum(1 for c in sim.connections if c.context is not None)


def with_simulator(test: Callable[[Simulator], Awaitable[None]]) -> None:
    """Run ``test`` on a fresh loop with a started simulator, stopped after it."""
    async def main() -> None:
        sim = Simulator(SimulatorConfig(host="127.0.0.1", port=0))
        await sim.start()
        try:
            await test(sim)
        finally:
            await sim.stop()

    asyncio.run(main())


def pool_for(sim: Simulator, slots: HeldSlots, **fields: object) -> Pool:
    op = OperatorConfig(name="op", host="127.0.0.1", port=sim.port, system_id="gw",
                        password="pw", binds=2, reconnect_min_s=0.05, reconnect_max_s=0.2,
                        **fields)  # type: ignore[arg-type]
    pool = Pool(GatewayConfig(operators=(op,)), cast(PoolRouter, IdleRouter()),
                MemoryWorkQueue(["op"]), cast(Inbound, None), cast(MessageRecord, None),
                wall=time.time)
    pool.slots = slots
    return pool


def test_only_the_held_slot_binds_and_a_lapsed_one_closes() -> None:
    with_simulator(_held_and_lapsed)


async def _held_and_lapsed(sim: Simulator) -> None:
    slots = HeldSlots(("op", 1))
    pool = pool_for(sim, slots)
    await pool.start()
    try:
        first, second = pool.binds["op"]
        await until(lambda: second.bound, "the bind of the held slot bound")
        assert open_binds(sim) == 1 and first.conn is None
        slots.held.add(("op", 0))  # gained at a round: the pool is told
        pool.slots_changed()
        await until(lambda: first.bound, "the bind of the gained slot bound")
        slots.held.clear()  # both leases lapse (cut off): no round tells the pool
        await until(lambda: open_binds(sim) == 0, "both binds closed by the pool's check")
        assert not first.bound and not second.bound
        assert not pool.available("op")
    finally:
        await pool.stop()
    assert sim.stats["bound_peak"] == 2


def test_a_slot_let_go_is_unbound_before_let_go_returns() -> None:
    with_simulator(_let_go)


async def _let_go(sim: Simulator) -> None:
    slots = HeldSlots(("op", 0), ("op", 1))
    pool = pool_for(sim, slots)
    await pool.start()
    try:
        await until(lambda: open_binds(sim) == 2, "both binds bound")
        await pool.let_go("op", 1)
        slots.held.discard(("op", 1))  # what the leases do once let_go returns
        assert not pool.binds["op"][1].bound
        await until(lambda: open_binds(sim) == 1, "the simulator saw the unbind")
        assert pool.binds["op"][0].bound  # the other slot's bind is untouched
        await asyncio.sleep(0.3)  # the pool's slot check runs meanwhile: it stays closed
        assert open_binds(sim) == 1 and pool.binds["op"][1].conn is None
    finally:
        await pool.stop()
