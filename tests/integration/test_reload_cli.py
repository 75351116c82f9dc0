"""Live reload as an operator of the gateway runs it: ``smsc serve`` in a subprocess, the config
file edited, then ``smsc reload --config FILE`` (or a SIGHUP sent by hand).

* ``smsc serve`` keeps its PID in ``pid_file`` (default ``var/smsc.pid`` beside the config)
  while it runs, and removes it when SIGTERM stops it;
* after a tenant's password is changed in the file, ``smsc reload`` exits 0, the gateway's log
  says the file was applied (without the password), the new password binds and the old one
  is refused;
* a file that does not load (TOML syntax, a route naming an unknown operator): ``smsc
  reload`` exits 2 with one line and sends nothing; a SIGHUP sent anyway is logged as
  "reload refused, nothing changed" and the old password still binds;
* ``smsc reload`` with no gateway running (no pid file): exit 2, one line.

Every process is stopped by PID (``GatewayProcess.kill`` in the fixture).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from encoding.constants import CommandStatus as S
from tests.gatewayproc import REPO, GatewayProcess
from tests.gatewaytoml import loopback_sections
from tests.rawclient import RawClient
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(60)

OLD_PW, NEW_PW = "old-pw-1", "new-pw-2"


def write_config(path: Path, password: str, *, extra: str = "", pid_file: str | None = None
                 ) -> Path:
    pid = "" if pid_file is None else f"pid_file = \"{pid_file}\"\n"
    path.write_text(pid + loopback_sections(path.parent)
                    + f"[[tenants]]\nsystem_id = \"acme\"\npassword = \"{password}\"\n"
                    + "\n[[tenants]]\nsystem_id = \"beta\"\npassword = \"beta\"\n" + extra)
    return path


def smsc_reload(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "smsc", "reload", "--config", str(config)],
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=30, check=False)


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got: {stderr!r}"
    assert "Traceback" not in stderr
    return lines[0]


def bind_status(port: int, password: str, system_id: str = "acme") -> int:
    client = RawClient(port, timeout=5.0)
    try:
        return int(client.bind(system_id, password).command_status)
    finally:
        client.close()


def log_text(gw: GatewayProcess) -> str:
    return gw.log.read_text(errors="replace")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[GatewayProcess]]:
    """Gateways started by the test; each killed (by PID) and reaped at the end."""
    procs: list[GatewayProcess] = []
    yield procs
    for p in procs:
        p.kill()


def start(procs: list[GatewayProcess], config: Path) -> GatewayProcess:
    gw = GatewayProcess(config, config.parent / "smsc.log")
    procs.append(gw)
    return gw


def test_reload_applies_an_edited_password(tmp_path: Path,
                                           serve: list[GatewayProcess]) -> None:
    config = write_config(tmp_path / "smsc.toml", OLD_PW)
    gw = start(serve, config)
    pid_file = tmp_path / "var" / "smsc.pid"  # the default, beside the config file
    assert pid_file.read_text().strip() == str(gw.proc.pid)
    assert bind_status(gw.port, OLD_PW) == S.ESME_ROK
    beta = RawClient(gw.port, timeout=5.0)
    try:
        beta.bind("beta", "beta", expect_ok=True)

        write_config(config, NEW_PW)
        result = smsc_reload(config)
        assert result.returncode == 0, result.stderr
        assert str(gw.proc.pid) in result.stdout, result.stdout
        wait_until(lambda: f"reload: {config} applied" in log_text(gw), 10.0,
                   "the gateway's log says the file was applied")

        assert bind_status(gw.port, NEW_PW) == S.ESME_ROK
        assert bind_status(gw.port, OLD_PW) == S.ESME_RINVPASWD
        beta.assert_alive()  # another tenant's bind did not drop
    finally:
        beta.close()
    log = log_text(gw)
    assert "reload: tenant acme changed" in log, log[-2000:]
    assert OLD_PW not in log and NEW_PW not in log, "a password in the log"

    assert gw.terminate() == 0
    assert not pid_file.exists(), "pid file left behind after SIGTERM"


INVALID = {
    "toml-syntax": "\n[[operators]\nname = \"A\"\n",
    "unknown-operator": "\n[[routes]]\noperators = [\"nobody\"]\n",
}


@pytest.mark.parametrize("broken", list(INVALID))
def test_an_invalid_file_changes_nothing(tmp_path: Path, serve: list[GatewayProcess],
                                         broken: str) -> None:
    config = write_config(tmp_path / "smsc.toml", OLD_PW)
    gw = start(serve, config)
    write_config(config, NEW_PW, extra=INVALID[broken])

    result = smsc_reload(config)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert str(config) in line and "nothing was reloaded" in line, line
    assert "SIGHUP: reloading" not in log_text(gw), "smsc reload signalled anyway"

    gw.signal(signal.SIGHUP)  # sent by hand: the gateway reads the bad file itself
    wait_until(lambda: "reload refused, nothing changed" in log_text(gw), 10.0,
               "the gateway's log says the reload was refused")
    refused = [line for line in log_text(gw).splitlines() if "reload refused" in line]
    assert len(refused) == 1, refused  # one line for the one problem
    assert bind_status(gw.port, OLD_PW) == S.ESME_ROK
    assert bind_status(gw.port, NEW_PW) == S.ESME_RINVPASWD
    assert "applied" not in log_text(gw)
    assert gw.terminate() == 0


def test_reload_without_a_running_gateway(tmp_path: Path) -> None:
    config = write_config(tmp_path / "smsc.toml", OLD_PW, pid_file=str(tmp_path / "none.pid"))
    result = smsc_reload(config)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "none.pid does not exist" in line and "running" in line, line
