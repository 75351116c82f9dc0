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

import signal
from pathlib import Path

import pytest

from encoding.constants import CommandId
from encoding.pdu import SubmitSm, Unbind
from routing import Store
from tests.gatewayproc import GatewayProcess
from tests.gatewaytoml import loopback_sections
from tests.rawclient import RawClient

WINDOW = 50
TOTAL = 5000
KILL_AFTER = 1200  # responses received before the SIGKILL (well inside the burst)

pytestmark = pytest.mark.timeout(60)


# --- the gateway process ------------------------------------------------------------------


def _write_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "smsc.toml"
    cfg.write_text(
        loopback_sections(tmp_path) +
        "[[tenants]]\nsystem_id = \"demo\"\npassword = \"demo\"\nwindow = 200\n"
    )
    return cfg


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
    gw = GatewayProcess(config, tmp_path / "gateway1.log", log_level="WARNING")
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
    gw2 = GatewayProcess(config, tmp_path / "gateway2.log", log_level="WARNING")
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
