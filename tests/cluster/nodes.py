"""Gateway nodes over one JetStream cluster, for the end-to-end cluster tests.

``Nodes`` starts what a test asks for (simulators, gateways in this process on their own loop
threads, gateways as ``smsc serve`` subprocesses for SIGKILL) and stops all of it in
``close``, by PID for the processes, then deletes the cluster's streams so the next test
starts clean. Every gateway has its own replica store and a ``[cluster]`` naming the
servers; the tenant ``demo`` binds with up to four sessions and posts with ``TOKEN``.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import nats
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import ServiceUnavailableError

from bench.natsd import NatsCluster
from config import ClusterConfig, GatewayConfig, HttpConfig, OperatorConfig, TenantConfig
from encoding.pdu import SubmitSm
from smsc.http import hash_token
from tests.conftest import GatewayThread
from tests.gatewayproc import GatewayProcess
from tests.gatewaytoml import loopback_sections
from tests.integration.e2e_support import (
    SimThread,
    gateway_config,
    operator,
    operator_bound,
    sim_config,
)
from tests.waiting import wait_until

__all__ = ["TOKEN", "BINDS", "Nodes", "tenant", "closed_port", "sim_operator", "drop_streams",
           "bound_here", "handed", "holders", "texts_at_operator"]

TOKEN = "cluster-token-0123456789abcdef"


def tenant(**fields: Any) -> TenantConfig:
    fields.setdefault("max_binds", 4)
    return TenantConfig(system_id="demo", password="demo", numbers=("4479",),
                        api_keys=(hash_token(TOKEN),), **fields)


def closed_port() -> int:
    """A loopback port nothing listens on (an operator that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Nodes:
    def __init__(self, nats: NatsCluster, tmp_path: Path, *, lease_ttl_s: float = 10.0,
                 log_retention_s: float = 604800.0) -> None:
        self.nats = nats
        self.tmp_path = tmp_path
        self.lease_ttl_s = lease_ttl_s
        self.log_retention_s = log_retention_s
        self.sims: list[SimThread] = []
        self.threads: list[GatewayThread] = []
        self.processes: list[GatewayProcess] = []

    def sim(self) -> SimThread:
        s = SimThread(sim_config())
        self.sims.append(s)
        return s

    def _cluster(self, node: str) -> ClusterConfig:
        return ClusterConfig(servers=tuple(self.nats.servers), node=node, replicas=3,
                             lease_ttl_s=self.lease_ttl_s,
                             log_retention_s=self.log_retention_s)

    def gateway(self, node: str, op: OperatorConfig, *, wait_bound: bool = True,
                tenants: tuple[TenantConfig, ...] | None = None,
                http: dict[str, Any] | None = None) -> GatewayThread:
        """A node in this process, routing everything to ``op`` (tenants: ``demo``;
        ``http``: fields of its [http] section)."""
        base: GatewayConfig = gateway_config(self.tmp_path / node, [op],
                                             tenants=tenants or (tenant(),))
        if http:
            base = msgspec.structs.replace(base, http=HttpConfig(host="127.0.0.1", port=0,
                                                                 **http))
        gw = GatewayThread(msgspec.structs.replace(base, cluster=self._cluster(node)))
        self.threads.append(gw)
        if wait_bound:
            wait_until(partial(operator_bound, gw, op.name), 15.0, f"node {node} bound")
        return gw

    def process(self, node: str, op: OperatorConfig) -> GatewayProcess:
        """A node as an ``smsc serve`` subprocess (for SIGKILL), routing everything to
        ``op``."""
        folder = self.tmp_path / node
        gw = GatewayProcess(self.config_file(node, op), folder / "gateway.log",
                            log_level="INFO")
        self.processes.append(gw)
        return gw

    def config_file(self, node: str, op: OperatorConfig) -> Path:
        """The TOML file of an ``smsc serve`` node (its store: ``<node>/smsc.db``)."""
        folder = self.tmp_path / node
        folder.mkdir(parents=True, exist_ok=True)
        servers = ", ".join(f'"{s}"' for s in self.nats.servers)
        config = folder / "smsc.toml"
        config.write_text(
            loopback_sections(folder)
            + f'[cluster]\nservers = [{servers}]\nnode = "{node}"\nreplicas = 3\n'
            f"lease_ttl_s = {self.lease_ttl_s}\nlog_retention_s = {self.log_retention_s}\n\n"
            f'[[tenants]]\nsystem_id = "demo"\npassword = "demo"\nmax_binds = 4\n\n'
            f'[[operators]]\nname = "{op.name}"\nhost = "{op.host}"\nport = {op.port}\n'
            f'system_id = "{op.system_id}"\npassword = "{op.password}"\nbinds = {op.binds}\n'
            "reconnect_min_s = 0.2\nreconnect_max_s = 1.0\n\n"
            f'[[routes]]\nprefix = ""\noperators = ["{op.name}"]\n')
        return config

    def close(self) -> None:
        try:
            for p in self.processes:
                p.kill()
            for gw in self.threads:
                gw.stop()
        finally:
            for s in self.sims:
                s.close()
            asyncio.run(drop_streams(self.nats.servers))


BINDS = 3  # an operator's binds: one for each of up to three nodes (routing.nats.bind_slots)


def sim_operator(sim: SimThread) -> OperatorConfig:
    return operator("sim", sim.port, binds=BINDS)

async def drop_streams(servers: list[str], timeout_s: float = 30.0) -> None:
    """Delete every stream (and so every key-value bucket) on the servers: what a test or a
    bench run made, so that the next one starts empty. JetStream may answer "temporarily
    unavailable" for a while after a server came back: tried again until ``timeout_s``."""
    nc = await nats.connect(servers)
    deadline = time.monotonic() + timeout_s
    try:
        jsm = nc.jsm()
        while True:
            try:
                for info in await jsm.streams_info():
                    if info.config.name:
                        await jsm.delete_stream(info.config.name)
                return
            except (ServiceUnavailableError, NatsTimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await nc.close()


def bound_here(gw: GatewayThread, name: str = "sim") -> int:
    """How many of operator ``name``'s binds this node holds and has bound."""
    def count() -> int:
        pool = gw.gateway.pool
        return 0 if pool is None else int(pool.bound_count().get(name, 0))
    return gw.run(count)


def handed(gw: GatewayThread) -> tuple[int, int]:
    """(messages this node handed over, messages handed to it)."""
    def read() -> tuple[int, int]:
        h = gw.gateway.cluster.handoff  # type: ignore[union-attr]
        assert h is not None
        return h.handed_out, h.handed_in
    return gw.run(read)


def holders(gw: GatewayThread) -> dict[str, tuple[int, ...]]:
    """The epochs this node hands each operator's messages to (operators it holds no bind
    of)."""
    def read() -> dict[str, tuple[int, ...]]:
        h = gw.gateway.cluster.handoff  # type: ignore[union-attr]
        return dict(h.holders) if h is not None else {}
    return gw.run(read)


def texts_at_operator(received: Sequence[object]) -> Counter[bytes]:
    """How many times the operator was sent each text."""
    return Counter(p.short_message for p in received if isinstance(p, SubmitSm))
