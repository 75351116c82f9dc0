"""The replicated log keeps entries for ``[cluster] log_retention_s`` (issue 14: the log must
not grow for ever); a node that needs entries the log dropped starts from a copy of a running
node's replica (``smsc copy-replica``).

Node a runs with a short retention and accepts messages; once the log has dropped their
entries, a new node with an empty store is refused in one line that says what to do, and
after ``smsc copy-replica`` of a's store it starts, holds a's messages, and follows the log
from there (a message sent on it afterwards is seen by a).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import msgspec
import nats
import pytest

from bench.natsd import NatsCluster
from tests.cluster.nodes import TOKEN, Nodes, sim_operator, tenant
from tests.conftest import GatewayThread
from tests.httpkit import api_client, message_body, post_json
from tests.integration.e2e_support import gateway_config
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(120)

RETENTION_S = 2.0


NODE_OPTIONS = {"log_retention_s": RETENTION_S}


def log_first_and_last(servers: list[str]) -> tuple[int, int]:
    async def ask() -> tuple[int, int]:
        nc = await nats.connect(servers=servers, connect_timeout=5)
        try:
            state = (await nc.jetstream(timeout=5).stream_info("SMSC_LOG")).state
            return state.first_seq, state.last_seq
        finally:
            await nc.close()
    return asyncio.run(ask())


def ids_of(gw: GatewayThread, ids: list[str]) -> bool:
    return gw.run(lambda: all(gw.gateway.record.get(i) is not None for i in ids))


def test_a_node_the_log_has_moved_past_starts_from_a_copied_replica(
        nodes: Nodes, nats_cluster: NatsCluster, tmp_path: Path) -> None:
    op = sim_operator(nodes.sim())
    a = nodes.gateway("a", op)
    with api_client(a.gateway.http_port, TOKEN) as http:
        r = post_json(http, message_body([f"+4477009005{i:02d}" for i in range(5)], "kept"))
        assert r.status_code == 200, r.text
    ids = [m["id"] for m in r.json()["messages"]]
    servers = nats_cluster.servers
    wait_until(lambda: log_first_and_last(servers)[0] > 1, 30.0,
               "the log dropped its first entries")
    # A new node with an empty store: refused in one line, told what to do.
    config = nodes.config_file("b", op)
    refused = subprocess.run([sys.executable, "-m", "smsc", "serve", "--config", str(config)],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2, refused.stderr[-2000:]
    last_line = refused.stderr.strip().splitlines()[-1]
    assert "copy-replica" in last_line and "Traceback" not in refused.stderr, last_line
    # A copy of a's replica, taken while a runs: b starts on it.
    store_b = tmp_path / "b2" / "smsc.db"
    store_b.parent.mkdir()
    a_store = a.gateway.config.store.path
    copied = subprocess.run([sys.executable, "-m", "smsc", "copy-replica", a_store,
                             str(store_b)], capture_output=True, text=True, timeout=60)
    assert copied.returncode == 0, copied.stderr
    assert "at log entry" in copied.stdout
    again = subprocess.run([sys.executable, "-m", "smsc", "copy-replica", a_store,
                            str(store_b)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "exists" in again.stderr  # never overwritten
    base = gateway_config(tmp_path / "b2", [op], tenants=(tenant(),))
    b = GatewayThread(msgspec.structs.replace(base, cluster=nodes._cluster("b")))
    nodes.threads.append(b)
    assert ids_of(b, ids)  # a's messages, from the copy
    with api_client(b.gateway.http_port, TOKEN) as http:
        r = post_json(http, message_body(["+447700900599"], "sent on b"))
        assert r.status_code == 200, r.text
    later = [m["id"] for m in r.json()["messages"]]
    wait_until(lambda: ids_of(a, later), 20.0, "b's message in a's replica")
