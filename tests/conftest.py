"""Shared fixtures: a gateway running in-process on its own event-loop thread.

Interop clients (python-smpplib is blocking, aiosmpplib is asyncio) talk to it over real
sockets on 127.0.0.1 with ports chosen by the OS. ``GatewayThread.call`` runs a coroutine on
the gateway's loop (for example to put a deliver_sm in a tenant's outbox) and waits for it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from config import GatewayConfig, ListenConfig, MetricsConfig, StoreConfig, TenantConfig
from smsc.app import Gateway

T = TypeVar("T")


class GatewayThread:
    """A started gateway on a private loop thread; ``stop()`` is idempotent."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="gateway-loop",
                                       daemon=True)
        self.thread.start()
        self.gateway = Gateway(config)
        self.call(self.gateway.start())

    @property
    def port(self) -> int:
        return self.gateway.port

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run a plain function on the gateway loop (to read its state safely)."""
        async def wrapper() -> T:
            return fn()

        return self.call(wrapper(), timeout)

    def stop(self) -> None:
        if self.thread.is_alive():
            try:
                self.call(self.gateway.stop(timeout=2.0), timeout=15)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(timeout=10)
                self.loop.close()


def make_config(tmp_path: Path, *, tenants: tuple[TenantConfig, ...] | None = None,
                **overrides: Any) -> GatewayConfig:
    """A gateway config on ephemeral ports with its store under ``tmp_path``."""
    base = GatewayConfig(
        listen=ListenConfig(host="127.0.0.1", port=0),
        store=StoreConfig(path=str(tmp_path / "smsc.db")),
        metrics=MetricsConfig(host="127.0.0.1", port=0),
        tenants=tenants if tenants is not None else (
            TenantConfig(system_id="demo", password="demo"),
        ),
    )
    return msgspec.structs.replace(base, **overrides) if overrides else base


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., GatewayThread]]:
    started: list[GatewayThread] = []

    def start(config: GatewayConfig | None = None, **kw: Any) -> GatewayThread:
        gw = GatewayThread(config or make_config(tmp_path, **kw))
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture
def gateway(gateway_factory: Callable[..., GatewayThread]) -> GatewayThread:
    return gateway_factory()
