"""``Gateway.start`` and ``stop`` in-process: the order of the steps, and undoing them.

A start that fails on a port in use (or is cancelled half-way, as SIGTERM does) undoes what
it had started: no task left on the loop, no commit thread, the store closed, the listeners
it had opened closed, no connection out to an operator; ``stop()`` afterwards is a no-op.
A good start opens the store, the metrics endpoint, the SMPP door and the pool, in that
order; ``stop`` closes intake first, then unbinds the operators, then the tenants, then the
metrics endpoint, and flushes and closes the store last. Real sockets on 127.0.0.1 (port 0,
or a port this test holds); every wait is bounded.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from config import (
    GatewayConfig,
    HttpConfig,
    ListenConfig,
    MetricsConfig,
    OperatorConfig,
    RouteConfig,
)
from encoding.constants import CommandId
from encoding.pdu import SubmitSm
from esme import Pool
from routing import Store, StoreError
from routing.admission import Admission
from routing.sqlite import GroupCommitter
from smsc import ListenError
from smsc.app import Gateway
from smsc.http import HttpServer
from smsc.metrics_http import MetricsEndpoint
from smsc.server import TenantListener
from smsc.webhooks import WebhookSender
from tests.conftest import GatewayThread, make_config
from tests.integration.e2e_support import SimThread, operator_bound, sim_config
from tests.ports import blackhole_port, taken_port
from tests.rawclient import RawClient
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(60)


def _operator(port: int) -> OperatorConfig:
    return OperatorConfig(name="op", host="127.0.0.1", port=port, system_id="gw",
                          password="pw", reconnect_min_s=0.2, reconnect_max_s=1.0)


def _with_operator(cfg: GatewayConfig, port: int) -> GatewayConfig:
    return msgspec.structs.replace(cfg, operators=(_operator(port),),
                                   routes=(RouteConfig(operators=("op",)),))


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def _store_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("smsc-")}


def _others() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


async def _check_undone(gw: Gateway, threads_before: set[threading.Thread]) -> None:
    """Nothing the failed start began is left: tasks, threads, store, listeners."""
    assert _others() == set()
    assert _store_threads() <= threads_before
    with pytest.raises(StoreError):
        gw.store.reader  # noqa: B018 - raises when the store is closed
    for port in (gw.port, gw.metrics_port):
        if port:
            assert _refused(port), f"port {port} still listening"
    await gw.stop()  # a no-op, twice
    await gw.stop()


@pytest.mark.parametrize("which", ["listen", "metrics", "http"])
@pytest.mark.parametrize("synchronous", ["normal", "full"])  # full: a commit thread too
def test_a_port_in_use_fails_start_and_leaves_nothing_running(
        tmp_path: Path, which: str, synchronous: str) -> None:
    async def scenario(cfg: GatewayConfig, port: int) -> None:
        threads_before = _store_threads()
        gw = Gateway(cfg)
        with pytest.raises(ListenError) as failed:
            await gw.start()
        error = failed.value
        assert (error.key, error.host, error.port, error.in_use) == (
            f"[{which}] port", "127.0.0.1", port, True)
        assert str(error) == (
            f"cannot listen on 127.0.0.1:{port} ([{which}] port): Address already in use"
            f" — change [{which}] port in the config or stop the process using it")
        if which == "listen":
            assert gw.metrics_port > 0  # it was listening before the SMPP door failed
        if which == "http":
            assert gw.port > 0  # the SMPP door was listening before the HTTP door failed
        await _check_undone(gw, threads_before)

    with taken_port() as port, blackhole_port() as operator_port:
        cfg = make_config(tmp_path, store=msgspec.structs.replace(
            make_config(tmp_path).store, synchronous=synchronous))
        if which == "listen":
            cfg = msgspec.structs.replace(cfg, listen=ListenConfig(host="127.0.0.1", port=port))
        elif which == "http":
            cfg = msgspec.structs.replace(cfg, http=HttpConfig(host="127.0.0.1", port=port))
        else:
            cfg = msgspec.structs.replace(cfg, metrics=MetricsConfig(host="127.0.0.1",
                                                                     port=port))
        asyncio.run(scenario(_with_operator(cfg, operator_port), port))


def test_a_cancelled_start_undoes_itself(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM while starting cancels start(): here while the SMPP door binds."""
    async def scenario(cfg: GatewayConfig) -> None:
        binding = asyncio.Event()

        async def stalled_start(self: TenantListener) -> int:
            binding.set()
            await asyncio.Event().wait()
            raise AssertionError("not reached")

        monkeypatch.setattr(TenantListener, "start", stalled_start)
        threads_before = _store_threads()
        gw = Gateway(cfg)
        starting = asyncio.create_task(gw.start())
        await asyncio.wait_for(binding.wait(), 10.0)
        assert gw.metrics_port > 0
        starting.cancel()
        done, _ = await asyncio.wait([starting], timeout=5.0)
        assert starting in done and starting.cancelled()
        await _check_undone(gw, threads_before)

    with blackhole_port() as operator_port:
        asyncio.run(scenario(_with_operator(make_config(tmp_path), operator_port)))


@pytest.fixture
def sim() -> Iterator[SimThread]:
    s = SimThread(sim_config())
    yield s
    s.close()


def _record(monkeypatch: pytest.MonkeyPatch, calls: list[str], cls: type,
            name: str, label: str) -> None:
    real: Callable[..., Any] = getattr(cls, name)
    if asyncio.iscoroutinefunction(real):
        async def async_wrapper(self: Any, *args: Any, **kw: Any) -> Any:
            calls.append(label)
            return await real(self, *args, **kw)
        monkeypatch.setattr(cls, name, async_wrapper)
    else:
        def wrapper(self: Any, *args: Any, **kw: Any) -> Any:
            calls.append(label)
            return real(self, *args, **kw)
        monkeypatch.setattr(cls, name, wrapper)


def test_start_and_stop_run_their_steps_in_order(
        tmp_path: Path, sim: SimThread, gateway_factory: Callable[..., GatewayThread],
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    for cls, name, label in [
            (Store, "open", "store open"), (Store, "close", "store close"),
            (GroupCommitter, "start", "commit start"), (GroupCommitter, "stop", "commit stop"),
            (MetricsEndpoint, "start", "metrics start"),
            (MetricsEndpoint, "close", "metrics close"),
            (TenantListener, "start", "smpp start"),
            (TenantListener, "stop_accepting", "smpp stop accepting"),
            (TenantListener, "close", "smpp close"),
            (HttpServer, "start", "http start"), (HttpServer, "close", "http close"),
            (WebhookSender, "start", "webhooks start"), (WebhookSender, "stop", "webhooks stop"),
            (Pool, "start", "pool start"), (Pool, "stop", "pool stop"),
            (Admission, "stop_accepting", "admission stop")]:
        _record(monkeypatch, calls, cls, name, label)
    closed_at_operator: list[str] = []
    real_closed = sim.sim.on_closed

    def on_closed(conn: Any, reason: str) -> None:
        closed_at_operator.append(reason)
        real_closed(conn, reason)

    monkeypatch.setattr(sim.sim, "on_closed", on_closed)  # before the gateway connects
    gw = gateway_factory(_with_operator(make_config(tmp_path), sim.port))
    assert calls == ["store open", "commit start", "metrics start", "smpp start",
                     "http start", "webhooks start", "pool start"]
    calls.clear()
    wait_until(lambda: operator_bound(gw, "op"), 10.0, "bound to the operator")

    client = RawClient(gw.port)  # the door accepts and serves
    try:
        client.bind(expect_ok=True)
        resp = client.request(SubmitSm(source_addr="4412345", destination_addr="447700900123",
                                       short_message=b"before stop"))
        assert resp.command_status == 0
        message_id: str = resp.message_id  # type: ignore[attr-defined]
        gw.call(gw.gateway.stop(timeout=0.5), timeout=15)
        assert calls == ["admission stop", "smpp stop accepting", "pool stop",
                         "webhooks stop", "http close", "smpp close", "metrics close",
                         "commit stop", "store close"]
        seen = []  # what the gateway sent until it closed: receipts maybe, then the unbind
        for _ in range(100):
            pdu = client.read_pdu(timeout=5)
            if pdu is None:
                break
            seen.append(pdu.command_id)
        assert CommandId.unbind in seen, seen
    finally:
        client.sock.close()
    assert closed_at_operator == ["unbound by peer"]  # the pool's bind unbound gracefully
    pool = gw.gateway.pool
    assert pool is not None and gw.run(pool.bound_count) == {"op": 0.0}
    assert _refused(gw.port) and _refused(gw.gateway.metrics_port)
    assert _refused(gw.gateway.http_port)
    with pytest.raises(StoreError):
        gw.gateway.store.reader  # noqa: B018 - closed
    store = Store(tmp_path / "smsc.db")
    store.open()
    try:
        assert store.get_message(message_id) is not None  # flushed before it closed
    finally:
        store.close()
    calls.clear()
    gw.call(gw.gateway.stop())  # idempotent
    assert calls == []
