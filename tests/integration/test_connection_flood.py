"""Connection floods: ``smsc serve`` (uvloop) started with a small open-file limit, and a
gateway in-process (asyncio's loop) with a small ``max_connections`` and a TLS port.

Before: with the usual limit of 1,024 about a thousand idle connections made every accept
fail (uvloop closed the new ones without a word), a good tenant could not bind and the
gateway logged nothing. Now the gateway says its connection ceiling at start, keeps idle
connections within it by closing the oldest unbound one for each new one, closes idle ones
after ``session_init_s``, and counts and logs accepts that fail for lack of descriptors.
"""

from __future__ import annotations

import os
import re
import select
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from config import ListenConfig, TenantConfig, TlsListenConfig
from tests.conftest import make_config
from tests.gatewayproc import GatewayProcess
from tests.rawclient import RawClient
from tests.tlskit import Pki, client_context
from tests.waiting import wait_until

if TYPE_CHECKING:
    from tests.conftest import GatewayThread

NOFILE = 200  # the gateway's open-file limit (soft and hard)
SESSION_INIT_S = 3.0
IDLE = 300  # idle connections of the flood: more than the gateway has descriptors


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"[listen]\nhost = \"127.0.0.1\"\nport = 0\nsession_init_s = {SESSION_INIT_S}\n\n"
        f"[store]\npath = \"{tmp_path / 'smsc.db'}\"\n\n"
        "[metrics]\nhost = \"127.0.0.1\"\nport = 0\n\n"
        "[http]\nhost = \"127.0.0.1\"\nport = 0\n\n"
        "[[tenants]]\nsystem_id = \"good\"\npassword = \"secret\"\n")
    return path


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    before = _open_fds()
    proc = GatewayProcess(_config(tmp_path), tmp_path / "gateway.log", nofile=NOFILE)
    try:
        yield proc
    finally:
        try:
            proc.terminate(timeout=10)
        finally:
            proc.kill()
    assert _open_fds() == before, "the test left descriptors open"


class Idle:
    """Idle TCP connections (never a byte sent) and when each was seen closed."""

    def __init__(self, port: int, n: int) -> None:
        self.socks: list[socket.socket] = []
        self.opened: list[float] = []
        self.closed_at: dict[int, float] = {}
        for _ in range(n):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.setblocking(False)
            self.socks.append(sock)
            self.opened.append(time.monotonic())

    def poll(self) -> int:
        """Notes connections the peer closed (EOF or reset); returns how many are closed."""
        open_ = {s.fileno(): i for i, s in enumerate(self.socks) if i not in self.closed_at}
        if open_:
            readable, _, _ = select.select(list(open_), [], [], 0.05)
            for fd in readable:
                i = open_[fd]
                try:
                    data = self.socks[i].recv(4096)
                except ConnectionError:
                    data = b""
                except BlockingIOError:
                    continue
                if not data:
                    self.closed_at[i] = time.monotonic()
        return len(self.closed_at)

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def _binds(port: int) -> bool:
    """Whether a bind succeeds now (False when the gateway closes the connection)."""
    client = RawClient(port, timeout=5.0)
    try:
        return client.bind("good", "secret").command_status == 0
    except (AssertionError, OSError):
        return False
    finally:
        client.close()


def test_an_idle_flood_does_not_keep_a_good_tenant_out(gateway: GatewayProcess) -> None:
    log = gateway.log.read_text()
    found = re.search(r"tenant connections: ceiling (\d+) \(max_connections 10000; "
                      rf"open-file limit {NOFILE}", log)
    assert found, log
    ceiling = int(found.group(1))
    assert 0 < ceiling < IDLE
    assert "[listen] max_connections = 10000 is above what the open-file limit" in log

    idle = Idle(gateway.port, IDLE)
    client: RawClient | None = None
    try:
        flood_end = time.monotonic()
        # The gateway holds the newest connections up to its ceiling and has closed the
        # oldest ones to make room for them.
        wait_until(lambda: idle.poll() >= IDLE - ceiling, 5.0, "oldest idle ones closed")
        assert max(idle.closed_at) < idle.opened[-1] + SESSION_INIT_S
        client = RawClient(gateway.port, timeout=5.0)
        client.bind("good", "secret", expect_ok=True)
        assert time.monotonic() - flood_end < 5.0
        # The rest never bind: the session_init timer closes them (not before it is due).
        wait_until(lambda: idle.poll() == IDLE, SESSION_INIT_S + 10.0, "idle ones closed")
        late = [i for i, at in idle.closed_at.items() if at > idle.opened[-1] + 0.5]
        assert len(late) >= ceiling - 2, (len(late), ceiling)
        assert all(idle.closed_at[i] >= idle.opened[i] + SESSION_INIT_S - 0.5 for i in late)
        client.assert_alive()  # a bound session is never closed to make room

        metrics = _metrics(gateway.metrics_port)
        assert metrics["smsc_tenant_connection_ceiling"] == ceiling
        assert metrics["smsc_connections_evicted_total"] >= IDLE - ceiling
        assert metrics['smsc_tenant_connections{state="bound"}'] == 1
        assert metrics['smsc_tenant_connections{state="unbound"}'] == 0
        log = gateway.log.read_text()
        assert re.search(rf"at the ceiling of {ceiling}: closed the oldest unbound connection",
                         log), log
        assert "accept failed" not in log  # the ceiling kept descriptors for accept
    finally:
        if client is not None:
            client.close()
        idle.close()


def test_accept_out_of_descriptors_is_counted_and_logged(gateway: GatewayProcess) -> None:
    """Idle HTTP connections (the HTTP door has no ceiling) take every descriptor: a new
    SMPP connection is told at once (closed) instead of hanging, the failure is logged and
    counted, and once descriptors are free again a tenant binds."""
    http = Idle(gateway.http_port, NOFILE)
    try:
        # Past the limit the HTTP door's own accept drops connections: descriptors are out.
        wait_until(lambda: http.poll() > 0, 5.0, "HTTP connections dropped at the limit")
        smpp = Idle(gateway.port, 1)
        try:
            wait_until(lambda: smpp.poll() == 1, 3.0, "SMPP connection closed at once")
        finally:
            smpp.close()
        wait_until(lambda: "accept failed: [Errno 24]" in gateway.log.read_text(), 5.0,
                   "accept failure logged")
    finally:
        http.close()
    wait_until(lambda: _binds(gateway.port), 10.0, "a bind once the HTTP connections closed")
    metrics = _metrics(gateway.metrics_port)
    assert metrics['smsc_accept_errors_total{reason="EMFILE"}'] >= 1
    log = gateway.log.read_text()
    assert log.count("accept failed: [Errno 24]") <= 2  # once per interval, with a count


def test_idle_connections_on_both_ports_are_evicted_for_a_tls_tenant(
        tmp_path: Path, gateway_factory: Callable[..., GatewayThread]) -> None:
    """asyncio's loop: ``max_connections`` is the ceiling for the plain and the TLS port
    together; idle TCP connections to the TLS port (a handshake never started) are closed
    to make room like plain ones, and a tenant binds over TLS, then over plain TCP."""
    pki = Pki(tmp_path)
    cert, key = pki.server()
    cfg = make_config(tmp_path, tenants=(TenantConfig(system_id="good", password="secret"),),
                      listen=ListenConfig(host="127.0.0.1", port=0, max_connections=20,
                                          session_init_s=30.0),
                      listen_tls=TlsListenConfig(host="127.0.0.1", port=0, cert=cert, key=key))
    gw = gateway_factory(cfg)
    listener = gw.gateway.listener
    assert listener.ceiling == 20
    idle = Idle(gw.gateway.tls_port, 15)
    clients: list[RawClient] = []
    try:
        idle.socks += Idle(gw.port, 15).socks
        wait_until(lambda: idle.poll() >= 10, 5.0, "the oldest idle connections closed")
        # An evicted connection is shut down at once and forgotten when its transport has
        # closed: for that moment the listener holds one more than the ceiling.
        wait_until(lambda: gw.run(lambda: len(listener.connections)) <= 20, 5.0,
                   "at most the ceiling of connections")
        raw = socket.create_connection(("127.0.0.1", gw.gateway.tls_port), timeout=5)
        tls = client_context(pki).wrap_socket(raw)
        clients.append(RawClient(0, timeout=5.0, sock=tls))
        clients[-1].bind("good", "secret", expect_ok=True)
        clients.append(RawClient(gw.port, timeout=5.0))
        clients[-1].bind("good", "secret", expect_ok=True)
        assert gw.run(lambda: listener.stats.evicted) >= 12
        # Evicted handshakes are forgotten too: 2 bound and 18 idle, nothing leaked.
        wait_until(lambda: gw.run(lambda: (len(listener.connections), listener.counts()))
                   == (20, (2, 18, 20)), 5.0, "connections at the ceiling")
        for client in clients:
            client.assert_alive()
    finally:
        for client in clients:
            client.close()
        idle.close()
