"""The ``smsc`` command as a user runs it: a subprocess, its exit code, stdout and stderr.

``check-config`` accepts the shipped example and refuses an unknown key with one stderr
line naming the file and the key; ``serve`` refuses a missing config file or a port already
in use with one line naming the key to change and exit code 2, at once, operators configured
or not (never a traceback); SIGTERM while starting undoes the start and exits 0; SIGTERM or
SIGINT unbinds a bound tenant, flushes the store and exits 0; a second signal exits at once.
Every subprocess is killed by PID in ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from encoding.constants import CommandId
from encoding.pdu import SubmitSm, encode_pdu
from routing import Store
from smsc.http import hash_token
from tests.gatewayproc import GatewayProcess
from tests.ports import blackhole_port, refusing_port, taken_port
from tests.rawclient import RawClient

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "examples" / "smsc.toml"

pytestmark = pytest.mark.timeout(60)

def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env

def _run(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "smsc", *args], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=timeout, check=False)

def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got: {stderr!r}"
    assert "Traceback" not in stderr
    return lines[0]

def _config(tmp_path: Path, *, port: int = 0, metrics: str = "port = 0",
            name: str = "smsc.toml", operator_port: int | None = None,
            http_port: int = 0) -> Path:
    cfg = tmp_path / name
    operator = ("" if operator_port is None else
                f"\n[[operators]]\nname = \"op\"\nhost = \"127.0.0.1\"\nport = {operator_port}\n"
                "system_id = \"gw\"\npassword = \"gw\"\nreconnect_min_s = 0.1\n"
                "\n[[routes]]\noperators = [\"op\"]\n")
    cfg.write_text(
        f"[listen]\nhost = \"127.0.0.1\"\nport = {port}\n\n"
        f"[store]\npath = \"{tmp_path / 'smsc.db'}\"\n\n"
        f"[metrics]\nhost = \"127.0.0.1\"\n{metrics}\n\n"
        f"[http]\nhost = \"127.0.0.1\"\nport = {http_port}\n\n"
        "[[tenants]]\nsystem_id = \"demo\"\npassword = \"demo\"\n" + operator
    )
    return cfg

@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[GatewayProcess]]:
    procs: list[GatewayProcess] = []
    yield procs
    for p in procs:
        p.kill()

def test_check_config_accepts_the_example() -> None:
    result = _run("check-config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
    # the demo tenant's plain password is the only thing worth a warning
    assert result.stderr.splitlines() == [
        "warning: tenants[0].password: stored in plain text; use password_hash "
        "(smsc hash-password)"], result.stderr

def test_check_config_refuses_an_unknown_key(tmp_path: Path) -> None:
    cfg = tmp_path / "typo.toml"
    cfg.write_text("[listen]\nport = 2775\nmax_conections = 5\n")
    result = _run("check-config", str(cfg))
    assert result.returncode == 2
    line = _one_line(result.stderr)
    assert "typo.toml" in line and "max_conections" in line, line

def test_check_config_refuses_a_bad_value(tmp_path: Path) -> None:
    cfg = tmp_path / "range.toml"
    cfg.write_text("[[tenants]]\nsystem_id = \"demo\"\npassword = \"demo\"\ntps = -1\n")
    result = _run("check-config", str(cfg))
    assert result.returncode == 2
    line = _one_line(result.stderr)
    assert "range.toml" in line and "tps" in line, line

# --- serve: refusals ----------------------------------------------------------------------

def test_serve_with_a_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    result = _run("serve", "--config", str(missing))
    assert result.returncode == 2
    line = _one_line(result.stderr)
    assert "nowhere.toml" in line

@pytest.mark.parametrize("operator", ["none", "unreachable", "refusing"])
@pytest.mark.parametrize("which", ["listen", "metrics", "http"])
def test_serve_on_a_port_in_use(tmp_path: Path, which: str, operator: str) -> None:
    """One line naming the key of the listener that failed, exit 2 at once; an operator
    that never answers (a blackhole) or refuses does not keep the process alive."""
    with contextlib.ExitStack() as held:
        port = held.enter_context(taken_port())
        operator_port = (None if operator == "none" else held.enter_context(
            blackhole_port() if operator == "unreachable" else refusing_port()))
        cfg = (_config(tmp_path, port=port, operator_port=operator_port) if which == "listen"
               else _config(tmp_path, http_port=port, operator_port=operator_port)
               if which == "http"
               else _config(tmp_path, metrics=f"port = {port}", operator_port=operator_port))
        started_at = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "smsc", "serve", "--config", str(cfg)],
                                cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.communicate(timeout=10)
        took = time.monotonic() - started_at
    assert proc.returncode == 2, err
    assert _one_line(err) == (
        f"smsc: cannot listen on 127.0.0.1:{port} ([{which}] port): Address already in use"
        f" — change [{which}] port in the config or stop the process using it")
    assert out == ""
    assert took < 5, f"took {took:.1f} s to give up"


def test_sigterm_while_starting_undoes_the_start_and_exits_0(
        tmp_path: Path, started: list[GatewayProcess]) -> None:
    with blackhole_port() as operator_port:
        gw = GatewayProcess(_config(tmp_path, operator_port=operator_port),
                            tmp_path / "gateway.log", module="tests.stalled_start",
                            ready="stalled: ")
        started.append(gw)
        started_at = time.monotonic()
        gw.signal(signal.SIGTERM)
        code = gw.wait(timeout=10)
    log = gw.log.read_text()
    assert code == 0, log[-2000:]
    assert time.monotonic() - started_at < 5
    assert "stopped while starting" in log and "Traceback" not in log, log[-2000:]


# --- serve: graceful stop -----------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_unbinds_tenants_flushes_and_exits_0(tmp_path: Path,
                                                    started: list[GatewayProcess],
                                                    sig: int) -> None:
    gw = GatewayProcess(_config(tmp_path), tmp_path / "gateway.log")
    started.append(gw)
    assert f"127.0.0.1:{gw.port}" in gw.banner and "/metrics" in gw.banner
    metrics_url = "http://" + gw.banner.split("metrics on ")[1]
    with urllib.request.urlopen(metrics_url, timeout=5) as r:
        assert "smsc_pdus_in" in r.read().decode()

    client = RawClient(gw.port)
    try:
        client.bind(expect_ok=True)
        ids = []
        for i in range(20):
            resp = client.request(SubmitSm(source_addr="4412345", destination_addr="447700900123",
                                           short_message=f"before stop {i}".encode()))
            assert resp.command_status == 0
            ids.append(resp.message_id)  # type: ignore[attr-defined]
        started_at = time.monotonic()
        gw.signal(sig)
        unbind = client.read_pdu()
        assert unbind is not None and unbind.command_id == CommandId.unbind, unbind
        client.sock.sendall(encode_pdu(unbind.response()))
        assert client.read_pdu() is None  # then the gateway closes the connection
    finally:
        client.sock.close()
    assert gw.wait(timeout=10) == 0, gw.log.read_text()[-2000:]
    assert time.monotonic() - started_at < 10
    assert "Traceback" not in gw.log.read_text()

    store = Store(tmp_path / "smsc.db")
    store.open()
    try:
        assert all(store.get_message(i) is not None for i in ids)
    finally:
        store.close()

def test_second_signal_exits_at_once(tmp_path: Path, started: list[GatewayProcess]) -> None:
    gw = GatewayProcess(_config(tmp_path, metrics="enabled = false"), tmp_path / "gateway.log")
    started.append(gw)
    assert "metrics" not in gw.banner
    client = RawClient(gw.port)
    try:
        client.bind(expect_ok=True)
        gw.signal(signal.SIGTERM)
        unbind = client.read_pdu()  # we never answer it: the gateway would wait its timeout
        assert unbind is not None and unbind.command_id == CommandId.unbind
        with pytest.raises(ConnectionRefusedError):  # it stopped accepting
            socket.create_connection(("127.0.0.1", gw.port), timeout=5).close()
        gw.signal(signal.SIGTERM)
        started_at = time.monotonic()
        code = gw.wait(timeout=3)
    finally:
        client.sock.close()
    assert code != 0
    assert time.monotonic() - started_at < 3


def test_api_key_new_prints_a_token_and_the_line_that_accepts_it() -> None:
    result = _run("api-key", "new")
    assert result.returncode == 0, result.stderr
    token = result.stdout.split("it is not stored anywhere): ")[1].split()[0]
    line = result.stdout.strip().splitlines()[-1]
    assert line == f'config line for the tenant: api_keys = ["{hash_token(token)}"]'
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    assert _run("api-key", "new").stdout != result.stdout  # fresh every time
