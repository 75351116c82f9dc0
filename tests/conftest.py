"""Shared fixtures: a gateway running in-process on its own event-loop thread.

Interop clients (python-smpplib is blocking, aiosmpplib is asyncio) talk to it over real
sockets on 127.0.0.1 with ports chosen by the OS. ``GatewayThread.call`` runs a coroutine on
the gateway's loop (for example to put a deliver_sm in a tenant's outbox) and waits for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from config import (
    GatewayConfig,
    HttpConfig,
    ListenConfig,
    MetricsConfig,
    StoreConfig,
    TenantConfig,
)
from smsc.app import Gateway
from tests.loopthread import LoopThread

T = TypeVar("T")


class GatewayThread(LoopThread):
    """A started gateway on a private loop thread; ``stop()`` is idempotent."""

    def __init__(self, config: GatewayConfig) -> None:
        super().__init__("gateway-loop")
        self.config = config
        self.gateway = Gateway(config)
        self.call(self.gateway.start())

    @property
    def port(self) -> int:
        return self.gateway.port

    def stop(self) -> None:
        if self.thread.is_alive():
            try:
                self.call(self.gateway.stop(timeout=2.0), timeout=15)
            finally:
                self.end_loop()


def make_config(tmp_path: Path, *, tenants: tuple[TenantConfig, ...] | None = None,
                **overrides: Any) -> GatewayConfig:
    """A gateway config on ephemeral ports with its store under ``tmp_path``."""
    base = GatewayConfig(
        listen=ListenConfig(host="127.0.0.1", port=0),
        store=StoreConfig(path=str(tmp_path / "smsc.db")),
        metrics=MetricsConfig(host="127.0.0.1", port=0),
        http=HttpConfig(host="127.0.0.1", port=0),
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
    # The lifecycle refuses and logs an illegal status change in production; in tests it
    # is a failure.
    illegal = [str(e) for gw in started for e in gw.gateway.illegal_transitions]
    assert not illegal, f"illegal status changes: {illegal[:5]}"


@pytest.fixture
def gateway(gateway_factory: Callable[..., GatewayThread]) -> GatewayThread:
    return gateway_factory()
