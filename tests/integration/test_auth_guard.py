"""Credential guessing, hashed passwords and secrets in logs, over real sockets (issue 13).

A tenant with ``password_hash`` binds with its password and gets ESME_RINVPASWD with
another. ``max_auth_failures`` wrong passwords (or bad tokens) from one address ban that
address on both doors — bind_resp ESME_RBINDFAIL, HTTP 429 with Retry-After — even with the
right password, while the same tenant binds from another address (Linux routes all of
127/8 to lo: the clients bind their source address). The ban shows on /metrics, ends after
``auth_ban_s``, and no password or token appears in the log of the whole test.
``smsc hash-password --stdin`` makes a hash ``check-config`` accepts without a warning.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from config import AuthConfig, TenantConfig
from encoding.constants import CommandStatus
from encoding.pdu import BindTransceiver, Pdu, encode_pdu
from smsc.http import hash_token
from smsc.passwords import hash_password, verify_password
from tests.conftest import GatewayThread, make_config
from tests.gatewayproc import REPO
from tests.rawclient import RawClient
from tests.waiting import wait_until

S = CommandStatus
# Distinctive, so the log can be searched for them; at most 8 characters (SMPP 3.4's
# password field, which our encoder keeps to).
PASSWORD = "C0rr3ct!"
TOKEN = "tok_" + secrets.token_urlsafe(24)
WRONG = [f"gs{i:02d}xq!z" for i in range(20)]
BAD_TOKENS = [f"badtok_{i:02d}_" + secrets.token_hex(8) for i in range(20)]
MAX_FAILURES = 10


@pytest.fixture
def secrets_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record of the test (debug included); at the end none may hold a secret."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    text = caplog.text
    for secret in (PASSWORD, TOKEN, *WRONG, *BAD_TOKENS):
        assert secret not in text, f"a secret in the log: {secret!r}"


def _gateway(factory: Callable[..., GatewayThread], tmp_path: Path,
             ban_s: float = 300.0) -> GatewayThread:
    tenant = TenantConfig(system_id="acme", password_hash=hash_password(PASSWORD),
                          api_keys=(hash_token(TOKEN),))
    return factory(make_config(tmp_path, tenants=(tenant,), auth=AuthConfig(
        max_auth_failures=MAX_FAILURES, auth_failure_window_s=60.0, auth_ban_s=ban_s)))


def _smpp(gw: GatewayThread, source: str) -> RawClient:
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10.0,
                                    source_address=(source, 0))
    return RawClient(gw.port, sock=sock)


def _bind_status(gw: GatewayThread, source: str, password: str) -> int:
    client = _smpp(gw, source)
    try:
        resp: Pdu = client.bind("acme", password)
        return resp.command_status
    finally:
        client.close()


def _http(gw: GatewayThread, source: str) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{gw.gateway.http_port}", timeout=20.0,
                        trust_env=False,
                        transport=httpx.HTTPTransport(local_address=source))


def _list(client: httpx.Client, token: str) -> httpx.Response:
    return client.get("/v1/messages", headers={"Authorization": f"Bearer {token}"})


def _metrics(gw: GatewayThread) -> str:
    return httpx.get(f"http://127.0.0.1:{gw.gateway.metrics_port}/metrics",
                     timeout=10.0, trust_env=False).text


def test_hashed_password_binds_and_a_wrong_one_is_refused(
        gateway_factory: Callable[..., GatewayThread], tmp_path: Path,
        secrets_log: pytest.LogCaptureFixture) -> None:
    gw = _gateway(gateway_factory, tmp_path)
    assert _bind_status(gw, "127.0.0.1", "not-it") == S.ESME_RINVPASWD
    assert _bind_status(gw, "127.0.0.1", "") == S.ESME_RINVPASWD
    client = _smpp(gw, "127.0.0.1")
    try:
        client.bind("acme", PASSWORD, expect_ok=True)
        client.assert_alive()
        # a second bind, answered from the verifier's memory of the first
        assert _bind_status(gw, "127.0.0.1", PASSWORD) == S.ESME_ROK
    finally:
        client.close()


def test_guessing_over_smpp_bans_that_address_on_both_doors(
        gateway_factory: Callable[..., GatewayThread], tmp_path: Path,
        secrets_log: pytest.LogCaptureFixture) -> None:
    gw = _gateway(gateway_factory, tmp_path)
    good = _smpp(gw, "127.0.0.2")  # a good tenant bound from another address all along
    good.bind("acme", PASSWORD, expect_ok=True)
    try:
        # (a refused bind ends its connection: each guess is a new one, as attackers do)
        statuses = [_bind_status(gw, "127.0.0.1", pw) for pw in WRONG]
        assert statuses == [S.ESME_RINVPASWD] * MAX_FAILURES + [S.ESME_RBINDFAIL] * 10
        # the right password from the banned address: refused before any check
        assert _bind_status(gw, "127.0.0.1", PASSWORD) == S.ESME_RBINDFAIL
        # ... and from another address it binds; the bind that was up is untouched
        assert _bind_status(gw, "127.0.0.2", PASSWORD) == S.ESME_ROK
        good.assert_alive()
        # the same ban on the HTTP door, with the right token
        with _http(gw, "127.0.0.1") as banned, _http(gw, "127.0.0.2") as other:
            r = _list(banned, TOKEN)
            assert r.status_code == 429, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "too_many_auth_failures"
            assert 290 <= int(r.headers["Retry-After"]) <= 300
            assert _list(other, TOKEN).status_code == 200
    finally:
        good.close()
    text = _metrics(gw)
    assert 'smsc_auth_banned{door="smpp"} 1.0' in text, text
    assert 'smsc_auth_bans_total{door="smpp"} 1.0' in text
    assert f'smsc_auth_failures_total{{door="smpp"}} {float(MAX_FAILURES)}' in text
    bans = [r.getMessage() for r in secrets_log.records if r.name == "smsc.bans"]
    assert len(bans) == 1 and "127.0.0.1 banned" in bans[0], bans


def test_guessing_tokens_over_http_bans_that_address_on_both_doors(
        gateway_factory: Callable[..., GatewayThread], tmp_path: Path,
        secrets_log: pytest.LogCaptureFixture) -> None:
    gw = _gateway(gateway_factory, tmp_path)
    with _http(gw, "127.0.0.1") as guesser, _http(gw, "127.0.0.2") as other:
        codes = [_list(guesser, token).status_code for token in BAD_TOKENS]
        assert codes == [401] * MAX_FAILURES + [429] * 10
        r = _list(guesser, TOKEN)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        assert _list(other, TOKEN).status_code == 200
        # no token at all is not a guess: 401 from another address, nothing counted
        assert other.get("/v1/messages").status_code == 401
    assert _bind_status(gw, "127.0.0.1", PASSWORD) == S.ESME_RBINDFAIL
    assert _bind_status(gw, "127.0.0.2", PASSWORD) == S.ESME_ROK
    text = _metrics(gw)
    assert 'smsc_auth_banned{door="http"} 1.0' in text, text
    assert f'smsc_auth_failures_total{{door="http"}} {float(MAX_FAILURES)}' in text


def test_the_ban_ends_after_auth_ban_s(gateway_factory: Callable[..., GatewayThread],
                                       tmp_path: Path,
                                       secrets_log: pytest.LogCaptureFixture) -> None:
    gw = _gateway(gateway_factory, tmp_path, ban_s=2.0)
    for pw in WRONG[:MAX_FAILURES]:
        _bind_status(gw, "127.0.0.1", pw)
    assert _bind_status(gw, "127.0.0.1", PASSWORD) == S.ESME_RBINDFAIL  # within 2 s of it
    wait_until(lambda: _bind_status(gw, "127.0.0.1", PASSWORD) == S.ESME_ROK,
               timeout=10.0, interval=0.2, what="a bind once the ban is over")
    wait_until(lambda: 'smsc_auth_banned{door="smpp"} 0.0' in _metrics(gw), timeout=5.0,
               what="the gauge back at 0")
    assert 'smsc_auth_bans_total{door="smpp"} 1.0' in _metrics(gw)


def test_a_token_limited_to_one_address(gateway_factory: Callable[..., GatewayThread],
                                        tmp_path: Path) -> None:
    """``allowed_ips`` on HTTP: the token works from its address only (403 elsewhere)."""
    tenant = TenantConfig(system_id="near", api_keys=(hash_token(TOKEN),),
                          allowed_ips=("127.0.0.2/32",))
    gw = gateway_factory(make_config(tmp_path, tenants=(tenant,)))
    with _http(gw, "127.0.0.1") as outside, _http(gw, "127.0.0.2") as inside:
        r = _list(outside, TOKEN)
        assert r.status_code == 403 and r.json()["code"] == "address_not_allowed", r.text
        assert _list(inside, TOKEN).status_code == 200


# --- the command line -------------------------------------------------------------------------


def _smsc(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "smsc", *args], cwd=REPO, input=stdin,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def test_hash_password_then_check_config(tmp_path: Path) -> None:
    made = _smsc("hash-password", "--stdin", stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    line = made.stdout.strip()
    assert line.startswith('password_hash = "scrypt$14$8$1$') and PASSWORD not in line
    hashed = tmp_path / "hashed.toml"
    hashed.write_text(f'[[tenants]]\nsystem_id = "acme"\n{line}\n')
    ok = _smsc("check-config", str(hashed))
    assert ok.returncode == 0 and ok.stdout.startswith(f"{hashed}: ok (1 tenants"), ok
    assert "warning" not in ok.stderr, ok.stderr
    plain = tmp_path / "plain.toml"
    plain.write_text(f'[[tenants]]\nsystem_id = "acme"\npassword = "{PASSWORD}"\n')
    warned = _smsc("check-config", str(plain))
    assert warned.returncode == 0 and warned.stdout.startswith(f"{plain}: ok"), warned
    assert warned.stderr.strip() == ("warning: tenants[0].password: stored in plain text; "
                                     "use password_hash (smsc hash-password)")
    # and the hash really is this password's
    assert verify_password(line.split('"')[1], PASSWORD)


def test_a_bad_password_value_is_not_echoed(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[[tenants]]\nsystem_id = "acme"\npassword_hash = "{PASSWORD}"\n')
    result = _smsc("check-config", str(bad))
    assert result.returncode == 2 and "tenants[0].password_hash" in result.stderr
    assert PASSWORD not in result.stderr + result.stdout


def test_pdus_after_a_hashed_bind_wait_for_its_answer(
        gateway_factory: Callable[..., GatewayThread], tmp_path: Path) -> None:
    """Two binds in one write: the first is answered once its password is checked, the
    second after it (ESME_RALYBND: the connection is bound by then), never a second bind."""
    gw = _gateway(gateway_factory, tmp_path)
    client = _smpp(gw, "127.0.0.1")
    try:
        first, second = (BindTransceiver(system_id="acme", password=PASSWORD)
                         for _ in range(2))
        first.sequence_number, second.sequence_number = 1, 2
        client.send_raw(encode_pdu(first) + encode_pdu(second))
        answers = [client.read_pdu(), client.read_pdu()]
        assert [(a.sequence_number, a.command_status) for a in answers if a] == [
            (1, S.ESME_ROK), (2, S.ESME_RALYBND)], answers
        client.assert_alive()
        assert gw.gateway.registry.count("acme") == 1
    finally:
        client.close()
