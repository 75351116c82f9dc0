"""Durable accept under SIGKILL: an id that reached the client is in the store after a crash.

The gateway runs as a real subprocess (``python -m smsc serve --config FILE``) on an
ephemeral port read from its "listening on" line. A raw client (plain socket, the codec from
``encoding.pdu``) pipelines submit_sm with up to 50 outstanding, records every message_id
from submit_sm_resp, and the test SIGKILLs the process mid-burst. The store is then opened
and every recorded id must be in the messages table; a restarted gateway on the same store
must hand out ids that never collide with the old ones. Subprocesses are killed by PID in
``finally`` whatever happens.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from encoding.constants import CommandId
from encoding.pdu import SubmitSm, Unbind
from routing import Store
from tests.rawclient import RawClient

REPO = Path(__file__).resolve().parents[2]
WINDOW = 50
TOTAL = 5000
KILL_AFTER = 1200  # responses received before the SIGKILL (well inside the burst)

pytestmark = pytest.mark.timeout(60)


# --- the gateway process ------------------------------------------------------------------


def _write_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "smsc.toml"
    cfg.write_text(
        "[listen]\nhost = \"127.0.0.1\"\nport = 0\n\n"
        f"[store]\npath = \"{tmp_path / 'smsc.db'}\"\n\n"
        "[metrics]\nenabled = false\n\n"
        "[[tenants]]\nsystem_id = \"demo\"\npassword = \"demo\"\nwindow = 200\n"
    )
    return cfg


class GatewayProcess:
    """``smsc serve`` in a subprocess; ``port`` is parsed from its "listening on" line."""

    def __init__(self, config: Path, log: Path) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        self.log = log
        self._stderr = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smsc", "serve", "--config", str(config),
             "--log-level", "WARNING"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self.port = self._wait_listening(timeout=20.0)

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _wait_listening(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no 'listening on' line in {timeout}s; "
                                     f"stderr: {self.log.read_text()[-2000:]}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"gateway exited with {self.proc.wait(5)} before listening;"
                                     f" stderr: {self.log.read_text()[-2000:]}")
            if line.startswith("smsc listening on "):
                address = line.split()[3].rstrip(",")
                return int(address.rsplit(":", 1)[1])

    def kill(self) -> None:
        """SIGKILL by PID (idempotent) and reap."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self._reap(10.0)

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM by PID; the exit code (raises TimeoutExpired when it does not stop)."""
        os.kill(self.proc.pid, signal.SIGTERM)
        return self._reap(timeout)

    def _reap(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()
        return code


# --- a minimal pipelining client -----------------------------------------------------------


def _submit(i: int) -> SubmitSm:
    return SubmitSm(source_addr="4412345", destination_addr=f"447700{i:06d}",
                    short_message=f"durable {i}".encode())


def _burst_until_killed(client: RawClient, gw: GatewayProcess) -> tuple[list[str], int]:
    """Pipeline submits (WINDOW outstanding); SIGKILL after KILL_AFTER answers.

    Returns every message_id received (before and after the kill) and how many were sent.
    """
    ids: list[str] = []
    sent = 0
    outstanding = 0
    killed = False
    for _ in range(TOTAL * 3):  # bounded: each turn sends or reads at least one PDU
        if not killed and outstanding < WINDOW and sent < TOTAL:
            try:
                client.send(_submit(sent))
            except OSError:  # the process died under us
                killed = True
                continue
            sent += 1
            outstanding += 1
            continue
        resp = client.read_pdu()
        if resp is None:
            break
        if resp.command_id != CommandId.submit_sm_resp:
            continue
        assert resp.command_status == 0, f"submit refused: {resp}"
        outstanding -= 1
        ids.append(resp.message_id)  # type: ignore[attr-defined]
        if not killed and len(ids) >= KILL_AFTER:
            gw.kill()
            killed = True
        if killed and outstanding == 0:
            break
    assert killed, f"the burst ended ({sent} sent, {len(ids)} answered) before the kill"
    return ids, sent


def _stored_ids(path: Path) -> set[str]:
    store = Store(path)
    store.open()
    try:
        return {str(r[0]) for r in store.reader.execute("SELECT id FROM messages")}
    finally:
        store.close()


def test_sigkill_mid_burst_loses_no_acknowledged_message(tmp_path: Path) -> None:
    config = _write_config(tmp_path)
    db = tmp_path / "smsc.db"
    gw = GatewayProcess(config, tmp_path / "gateway1.log")
    try:
        client = RawClient(gw.port)
        try:
            client.bind(expect_ok=True)
            ids, sent = _burst_until_killed(client, gw)
        finally:
            client.close()
    finally:
        gw.kill()
    assert gw.proc.returncode == -signal.SIGKILL
    assert len(ids) >= KILL_AFTER and sent > len(ids) - 1
    assert len(set(ids)) == len(ids), "duplicate message ids handed out"
    assert all(0 < len(i) <= 20 and i.isdigit() for i in ids)

    stored = _stored_ids(db)
    missing = [i for i in ids if i not in stored]
    assert not missing, (f"{len(missing)} of {len(ids)} acknowledged messages lost after "
                         f"SIGKILL, e.g. {missing[:5]}")

    # Restart on the same store: the old messages are still there, new ids are fresh.
    gw2 = GatewayProcess(config, tmp_path / "gateway2.log")
    try:
        client = RawClient(gw2.port)
        try:
            client.bind(expect_ok=True)
            new_ids = []
            for i in range(50):
                resp = client.request(_submit(100_000 + i))
                assert resp.command_status == 0, resp
                new_ids.append(resp.message_id)  # type: ignore[attr-defined]
            unbind = client.request(Unbind())
            assert unbind.command_status == 0
        finally:
            client.close()
        assert gw2.terminate() == 0, (tmp_path / "gateway2.log").read_text()[-2000:]
    finally:
        gw2.kill()

    assert len(set(new_ids)) == len(new_ids)
    collisions = set(new_ids) & stored
    assert not collisions, f"ids reused after restart: {sorted(collisions)[:5]}"
    after = _stored_ids(db)
    assert set(ids) <= after, "acknowledged messages vanished after the restart"
    assert set(new_ids) <= after, "messages acknowledged before SIGTERM are not in the store"
