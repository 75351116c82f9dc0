"""A bind task toward an operator ends promptly when cancelled, wherever it waits.

Real sockets on 127.0.0.1 and a real ``Pool`` whose binds connect out; every test runs on
the asyncio loop and on uvloop (the CLI's loop). The places a bind waits: in the connect
(an operator that never answers the SYN: ``blackhole_port``), at the very moment the connect
fails (the outcome and the cancel in the same loop iteration: ``asyncio.wait_for`` used to
return the connect's error there and the reconnect loop went on), in the reconnect back-off,
and bound-or-binding (TCP accepted, no bind answer). Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, cast

import pytest
import uvloop

from config import GatewayConfig, OperatorConfig
from esme import Pool
from esme.pool import PoolRouter
from routing.inbound import Inbound
from routing.repository import MessageRecord
from routing.workqueue import MemoryWorkQueue
from tests.pool_fakes import IdleRouter
from tests.ports import blackhole_port, refusing_port

pytestmark = pytest.mark.timeout(30)

_LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
PROMPT_S = 1.0  # "promptly": far below the 10 s connect timeout and the back-off



Run = Callable[[Coroutine[Any, Any, None]], None]


@pytest.fixture(params=sorted(_LOOPS))
def run(request: pytest.FixtureRequest) -> Iterator[Run]:
    def runner(coro: Coroutine[Any, Any, None]) -> None:
        with asyncio.Runner(loop_factory=_LOOPS[request.param]) as r:
            r.run(coro)
    yield runner


def make_pool(port: int, **fields: Any) -> Pool:
    fields.setdefault("reconnect_min_s", 30.0)  # a swallowed cancel would sleep this long
    fields.setdefault("reconnect_max_s", 60.0)
    op = OperatorConfig(name="op", host="127.0.0.1", port=port, system_id="gw", password="pw",
                        **fields)
    return Pool(GatewayConfig(operators=(op,)), cast(PoolRouter, IdleRouter()),
                MemoryWorkQueue(["op"]), cast(Inbound, None), cast(MessageRecord, None),
                wall=time.time)


def bind_tasks() -> list[asyncio.Task[Any]]:
    """The pool's bind tasks still alive (the pool names them ``op#<n><type>``)."""
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("op#") and not t.done()]


def watch_connects(monkeypatch: pytest.MonkeyPatch,
                   connect: Callable[..., Coroutine[Any, Any, Any]] | None = None
                   ) -> asyncio.Event:
    """An event set when a bind enters ``loop.create_connection`` (then the real one runs,
    or ``connect`` when given)."""
    loop = asyncio.get_running_loop()
    entered = asyncio.Event()
    real = connect or loop.create_connection

    async def create_connection(*args: Any, **kw: Any) -> Any:
        entered.set()
        return await real(*args, **kw)

    monkeypatch.setattr(loop, "create_connection", create_connection)
    return entered


async def cancel_and_wait(task: asyncio.Task[Any]) -> float:
    """Cancel ``task``; it must end (cancelled) within PROMPT_S. Returns how long it took."""
    started = time.monotonic()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=PROMPT_S)
    assert task in done, f"{task.get_name()} still running {PROMPT_S} s after the cancel"
    assert task.cancelled(), task
    return time.monotonic() - started


def test_cancel_while_connecting_to_a_blackhole(run: Run,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        with blackhole_port() as port:
            pool = make_pool(port)
            entered = watch_connects(monkeypatch)
            await pool.start()
            try:
                await asyncio.wait_for(entered.wait(), 5.0)
                (task,) = bind_tasks()
                _, still = await asyncio.wait([task], timeout=0.2)
                assert task in still, "the connect did not hang: not a blackhole"
                await cancel_and_wait(task)
            finally:
                await pool.stop(timeout=0.5)
            assert bind_tasks() == []

    run(scenario())


@pytest.mark.parametrize("failure", [ConnectionRefusedError, TimeoutError])
def test_cancel_as_the_connect_fails_is_not_swallowed(
        run: Run, monkeypatch: pytest.MonkeyPatch, failure: type[OSError]) -> None:
    """The connect's error and the cancel land in the same loop iteration: the cancel wins."""
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[Any] = loop.create_future()

        async def connect(*args: Any, **kw: Any) -> Any:
            return await outcome

        pool = make_pool(1)
        entered = watch_connects(monkeypatch, connect)
        await pool.start()
        try:
            await asyncio.wait_for(entered.wait(), 5.0)
            (task,) = bind_tasks()
            outcome.set_exception(failure())
            await cancel_and_wait(task)
        finally:
            await pool.stop(timeout=0.5)

    run(scenario())


def test_cancel_during_the_reconnect_back_off(run: Run,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        with refusing_port() as port:
            pool = make_pool(port)
            backing_off = asyncio.Event()
            real_sleep = pool.sleep

            async def sleep(seconds: float) -> None:
                assert seconds >= 15.0  # the 30 s back-off with its jitter
                backing_off.set()
                await real_sleep(seconds)

            monkeypatch.setattr(pool, "sleep", sleep)
            await pool.start()
            try:
                await asyncio.wait_for(backing_off.wait(), 5.0)
                (task,) = bind_tasks()
                await cancel_and_wait(task)
            finally:
                await pool.stop(timeout=0.5)

    run(scenario())


def test_cancel_while_waiting_for_the_bind_answer_drops_the_connection(run: Run) -> None:
    async def scenario() -> None:
        got_bind = asyncio.Event()
        peer_closed = asyncio.Event()

        async def operator(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if await reader.read(4096):  # the bind PDU, never answered
                got_bind.set()
            while await reader.read(4096):
                pass
            peer_closed.set()
            writer.close()

        server = await asyncio.start_server(operator, "127.0.0.1", 0)
        pool = make_pool(int(server.sockets[0].getsockname()[1]))
        await pool.start()
        try:
            await asyncio.wait_for(got_bind.wait(), 5.0)
            (task,) = bind_tasks()
            await cancel_and_wait(task)
            await asyncio.wait_for(peer_closed.wait(), PROMPT_S)  # the socket is not left open
        finally:
            await pool.stop(timeout=0.5)
            server.close()
            await server.wait_closed()

    run(scenario())


def test_pool_stop_does_not_wait_for_binds_that_are_connecting(
        run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing to unbind: the stop cancels them at once instead of waiting its timeout."""
    async def scenario() -> None:
        with blackhole_port() as port:
            pool = make_pool(port, bind="transmitter+receiver", binds=2)
            entered = watch_connects(monkeypatch)
            await pool.start()
            await asyncio.wait_for(entered.wait(), 5.0)
            assert len(bind_tasks()) == 4
            started = time.monotonic()
            await pool.stop(timeout=5.0)
            assert time.monotonic() - started < PROMPT_S
            assert bind_tasks() == []

    run(scenario())
