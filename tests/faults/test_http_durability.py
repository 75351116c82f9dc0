"""Durable accept over HTTP under SIGKILL: every id in a 200 survives, and so does its answer.

The gateway is a real subprocess (``python -m smsc serve``, ``tests.gatewayproc``) with its
HTTP door on an ephemeral port; the operator is the bundled simulator on a loop thread of the
test process. During the first run the operator's port refuses connections, so accepted
messages wait in the gateway's queue; the gateway is SIGKILLed right after the last 200.
Then the store must hold every id the client was given, a restarted gateway must answer
``GET /v1/messages/{id}`` for each, send every one of them to the operator once it is back
(each exactly once), and answer a retry with the same Idempotency-Key with the first answer
(``Idempotency-Replayed: true``) without creating anything. Processes are stopped by PID in
``finally`` whatever happens.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from routing import Store
from smsc.http import hash_token
from tests.gatewayproc import GatewayProcess
from tests.gatewaytoml import loopback_sections
from tests.httpkit import api_client, message_body, post_json
from tests.integration.e2e_support import SimThread, sent_texts, sim_config
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(90)

TOKEN = "tok_durable_0123456789abcdef0123456789abcd"
REQUESTS = 8
PER_REQUEST = 25


def _write_config(tmp_path: Path, operator_port: int) -> Path:
    cfg = tmp_path / "smsc.toml"
    cfg.write_text(
        loopback_sections(tmp_path) +
        "[[tenants]]\nsystem_id = \"demo\"\npassword = \"demo\"\n"
        f"api_keys = [\"{hash_token(TOKEN)}\"]\n\n"
        "[[operators]]\nname = \"A\"\nhost = \"127.0.0.1\"\n"
        f"port = {operator_port}\nsystem_id = \"gw\"\npassword = \"pw\"\n"
        "reconnect_min_s = 0.2\nreconnect_max_s = 0.5\nwindow = 50\n\n"
        "[[routes]]\nprefix = \"\"\noperators = [\"A\"]\n"
    )
    return cfg


def _body(n: int) -> bytes:
    numbers = [f"+44770{n:02d}{i:05d}" for i in range(PER_REQUEST)]
    return json.dumps(message_body(numbers, f"durable request {n}",
                                   originator="ACME")).encode()


def _stored(path: Path) -> dict[str, str]:
    """id -> status of every message in the store (opened after the process died)."""
    store = Store(path)
    store.open()
    try:
        return {str(r[0]): str(r[1])
                for r in store.reader.execute("SELECT id, status FROM messages")}
    finally:
        store.close()


def _post(port: int, n: int) -> tuple[int, bytes, dict[str, str]]:
    with api_client(port, TOKEN) as client:
        r = client.post("/v1/messages", content=_body(n), headers={
            "Content-Type": "application/json", "Idempotency-Key": f"job-{n}"})
        return r.status_code, r.content, dict(r.headers)


def _send_all(port: int) -> dict[int, bytes]:
    """Every request once, each with its own Idempotency-Key; the 200 answers by number."""
    answers: dict[int, bytes] = {}
    with api_client(port, TOKEN) as client:
        for n in range(REQUESTS):
            r = client.post("/v1/messages", content=_body(n), headers={
                "Content-Type": "application/json", "Idempotency-Key": f"job-{n}"})
            assert r.status_code == 200, r.text
            answers[n] = r.content
    return answers


def _wait_delivered(client: httpx.Client, answers: dict[int, bytes]) -> None:
    """Every message of every answered request is delivered (after the restart)."""
    for n in range(REQUESTS):
        rid = json.loads(answers[n])["request_id"]

        def delivered(rid: str = rid) -> bool:
            r = client.get(f"/v1/requests/{rid}")
            assert r.status_code == 200, r.text
            return bool(r.json()["counts"] == {"delivered": PER_REQUEST})

        wait_until(delivered, 30.0, f"request {rid} delivered after the restart")


def test_sigkill_after_200_loses_no_id_and_no_answer(tmp_path: Path) -> None:
    sim = SimThread(sim_config())
    try:
        sim.stop()  # the operator is down during the first run: messages wait in the queue
        config = _write_config(tmp_path, sim.port)
        db = tmp_path / "smsc.db"

        answers: dict[int, bytes] = {}
        gw = GatewayProcess(config, tmp_path / "gateway1.log", log_level="ERROR")
        try:
            assert gw.http_port, gw.banner
            answers.update(_send_all(gw.http_port))
            gw.kill()  # right after the last 200
        finally:
            gw.kill()
        assert gw.proc.returncode == -signal.SIGKILL

        ids: dict[str, int] = {}  # id -> request
        for n, raw in answers.items():
            entries = json.loads(raw)["messages"]
            assert [e["status"] for e in entries] == ["accepted"] * PER_REQUEST
            ids.update((e["id"], n) for e in entries)
        assert len(ids) == REQUESTS * PER_REQUEST, "an id was handed out twice"
        stored = _stored(db)
        missing = sorted(set(ids) - set(stored))
        assert not missing, f"{len(missing)} ids answered 200 are not in the store: {missing[:5]}"
        assert len(stored) == len(ids), "the store holds messages nobody was told about"
        assert set(stored.values()) == {"accepted"}, Counter(stored.values())

        # Restart on the same store with the operator back.
        sim.start()
        gw2 = GatewayProcess(config, tmp_path / "gateway2.log", log_level="ERROR")
        try:
            with api_client(gw2.http_port, TOKEN) as client:
                for mid in ids:
                    r = client.get(f"/v1/messages/{mid}")
                    assert r.status_code == 200, (mid, r.text)
                _wait_delivered(client, answers)

                # A retry with the same key after the restart: the first answer, nothing new.
                status, content, headers = _post(gw2.http_port, 3)
                assert status == 200, content
                assert headers.get("idempotency-replayed") == "true", headers
                assert content == answers[3]
                r = post_json(client, message_body(["+447700900100"], "another body"),
                              headers={"Idempotency-Key": "job-3"})
                assert r.status_code == 409, r.text
            assert gw2.terminate() == 0, (tmp_path / "gateway2.log").read_text()[-2000:]
        finally:
            gw2.kill()

        assert set(_stored(db)) == set(ids), "the retries created messages"
        received: list[Any] = sim.received()
        per_destination = Counter(p.destination_addr for p in received)
        assert len(per_destination) == len(ids)
        assert set(per_destination.values()) == {1}, "a message reached the operator twice"
        assert sorted(sent_texts(received)) == sorted(
            f"durable request {n}" for n in range(REQUESTS) for _ in range(PER_REQUEST))
    finally:
        sim.close()


def test_sigkill_with_the_operator_up_every_id_still_ends_delivered(tmp_path: Path) -> None:
    """Killed while messages are on their way to the operator: after the restart every id
    is known and ends delivered (a part whose answer was lost is sent again: at least
    once at the operator)."""
    sim = SimThread(sim_config())
    try:
        config = _write_config(tmp_path, sim.port)
        answers: dict[int, bytes] = {}
        gw = GatewayProcess(config, tmp_path / "gateway1.log", log_level="ERROR")
        try:
            wait_until(lambda: sim.bound() >= 1, 10.0, "gateway bound to the simulator")
            answers.update(_send_all(gw.http_port))
            gw.kill()
        finally:
            gw.kill()
        ids = {e["id"] for raw in answers.values() for e in json.loads(raw)["messages"]}
        assert len(ids) == REQUESTS * PER_REQUEST
        assert ids <= set(_stored(tmp_path / "smsc.db"))

        gw2 = GatewayProcess(config, tmp_path / "gateway2.log", log_level="ERROR")
        try:
            with api_client(gw2.http_port, TOKEN) as client:
                _wait_delivered(client, answers)
                status, content, headers = _post(gw2.http_port, REQUESTS - 1)
                assert (status, headers.get("idempotency-replayed")) == (200, "true")
                assert content == answers[REQUESTS - 1]
            assert gw2.terminate() == 0, (tmp_path / "gateway2.log").read_text()[-2000:]
        finally:
            gw2.kill()
        assert set(_stored(tmp_path / "smsc.db")) == ids
        received: list[Any] = sim.received()
        reached = {p.destination_addr for p in received}
        assert len(reached) == len(ids), "a message never reached the operator"
    finally:
        sim.close()
