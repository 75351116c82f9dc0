"""The gateway toward operators over TLS, and webhooks to https endpoints.

Certificates are made here with ``trustme`` (none is committed): a CA, a server certificate
for 127.0.0.1/localhost, one for "other.example", a client certificate from a second CA,
and a self-signed certificate. The bundled simulator plays the operator over TLS (its
``cert``/``key``/``client_ca``), on its own loop thread; the gateway runs in-process
(``gateway_factory``); a python-smpplib tenant sends. Checked as an operator's engineer
would see it: the bind is up (or not) and the log says why in one line; receipts come
back; a reconnect resumes the TLS session (RFC 8446 section 2.2); ``connect_timeout_s``
bounds a handshake that never finishes; https webhooks are verified against
``[http] webhook_ca``.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trustme

from config import HttpConfig, OperatorConfig, TenantConfig
from esme.tls import check_operator_tls
from tests.integration.e2e_support import (
    SimThread,
    Stack,
    check_receipts,
    gateway_config,
    gateway_idle,
    operator,
    operator_bound,
    smpplib_tenant,
    wait_until,
)
from tests.ports import blackhole_port, taken_port
from tests.webhook_receiver import WebhookReceiver

if TYPE_CHECKING:
    from tests.conftest import GatewayThread

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
OWNED = "447900000001"  # the demo tenant's numbers = ("4479",)
HANDSET = "447700900555"


class Pki:
    """PEM files under ``dir``: ``ca``, ``server``/``server_key`` (127.0.0.1, localhost),
    ``other``/``other_key`` (other.example), ``client``/``client_key`` signed by
    ``client_ca``, ``selfsigned``/``selfsigned_key``."""

    def __init__(self, dir: Path) -> None:
        self.dir = dir
        ca, client_ca, lone = trustme.CA(), trustme.CA(), trustme.CA()
        self.ca_obj = ca
        self.ca = self._write("ca.pem", ca.cert_pem)
        self.client_ca = self._write("client_ca.pem", client_ca.cert_pem)
        self.server, self.server_key = self._leaf("server", ca, "127.0.0.1", "localhost")
        self.other, self.other_key = self._leaf("other", ca, "other.example")
        self.client, self.client_key = self._leaf("client", client_ca, "gateway.example")
        self.selfsigned = self._write("selfsigned.pem", lone.cert_pem)
        self.selfsigned_key = self._write("selfsigned.key", lone.private_key_pem)

    def _write(self, name: str, blob: trustme.Blob) -> str:
        path = self.dir / name
        blob.write_to_path(str(path))
        return str(path)

    def _leaf(self, name: str, ca: trustme.CA, *hosts: str) -> tuple[str, str]:
        cert = ca.issue_cert(*hosts)
        path = self.dir / f"{name}.pem"
        path.write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
        return str(path), self._write(f"{name}.key", cert.private_key_pem)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def esme_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="esme")
    caplog.set_level(logging.INFO, logger="smsc.webhooks")
    return caplog


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in list(caplog.records) if text in r.getMessage()]


def events(gw: GatewayThread, operator: str, event: str) -> int:
    return gw.run(lambda: gw.gateway.metrics.operator_events.get((operator, event), 0))


def tls_sim(stack: Stack, cert: str, key: str, **fields: Any) -> SimThread:
    return stack.sim(cert=cert, key=key, **fields)


def tls_operator(port: int, **fields: Any) -> OperatorConfig:
    return operator("sim-tls", port, tls=True, **fields)


def never_bound(gw: GatewayThread, name: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if operator_bound(gw, name):
            return False
        time.sleep(0.05)
    return True


# --- binding over TLS ------------------------------------------------------------------------


def test_tls_bind_verified_carries_a_message_and_its_receipt(stack: Stack, pki: Pki) -> None:
    sim = tls_sim(stack, pki.server, pki.server_key)
    gw = stack.gateway([tls_operator(sim.port, ca=pki.ca)])
    assert sim.run(lambda: [c.tls for c in sim.sim.connections if c.session.bound]) == [True]
    with smpplib_tenant(gw.port) as tenant:
        ids = tenant.ids([tenant.submit(b"Hello over TLS")])
        tenant.wait_receipts(1, 20.0)
        wait_until(lambda: gateway_idle(gw), 10.0, "gateway idle")
        tenant.settle(quiet_s=0.3)
        check_receipts(ids, tenant.receipts())
    assert [getattr(p, "short_message", b"") for p in sim.received()] == [b"Hello over TLS"]


def test_a_reconnect_resumes_the_tls_session(stack: Stack, pki: Pki) -> None:
    sim = tls_sim(stack, pki.server, pki.server_key)
    gw = stack.gateway([tls_operator(sim.port, ca=pki.ca)])
    assert events(gw, "sim-tls", "tls_resumed") == 0
    assert sim.run(sim.sim.drop_all) == 1
    wait_until(lambda: events(gw, "sim-tls", "tls_resumed") == 1, 10.0, "a resumed session")
    wait_until(lambda: operator_bound(gw, "sim-tls"), 10.0, "bound again")


def test_a_certificate_for_another_host_is_refused_and_retried(
        stack: Stack, pki: Pki, esme_log: pytest.LogCaptureFixture) -> None:
    sim = tls_sim(stack, pki.other, pki.other_key)
    gw = stack.gateway([tls_operator(sim.port, ca=pki.ca)], wait_bound=False)
    wait_until(lambda: events(gw, "sim-tls", "tls_failed") >= 2, 10.0, "two handshakes failed")
    assert not operator_bound(gw, "sim-tls")
    assert sim.bound() == 0
    [first, *_] = lines(esme_log, "TLS handshake with")
    assert first.getMessage() == (
        f"sim-tls#0t: TLS handshake with 127.0.0.1:{sim.port} failed: certificate verify "
        "failed: IP address mismatch, certificate is not valid for '127.0.0.1'. (checked for "
        "'127.0.0.1'; set server_hostname to the name in the operator's certificate)")
    assert first.levelno == logging.WARNING


def test_server_hostname_names_the_host_in_the_certificate(stack: Stack, pki: Pki) -> None:
    sim = tls_sim(stack, pki.other, pki.other_key)
    stack.gateway([tls_operator(sim.port, ca=pki.ca, server_hostname="other.example")])
    assert sim.bound() == 1


def test_an_unknown_ca_is_refused_by_default(
        stack: Stack, pki: Pki, esme_log: pytest.LogCaptureFixture) -> None:
    """No ``ca``: the system trust store, which does not know the test CA."""
    sim = tls_sim(stack, pki.server, pki.server_key)
    gw = stack.gateway([tls_operator(sim.port)], wait_bound=False)
    wait_until(lambda: events(gw, "sim-tls", "tls_failed") >= 1, 10.0, "handshake failed")
    assert never_bound(gw, "sim-tls", 0.3)
    assert "set ca to the operator's CA bundle" in lines(esme_log, "TLS handshake")[0].getMessage()


def test_a_client_certificate_is_presented_when_configured(stack: Stack, pki: Pki) -> None:
    sim = tls_sim(stack, pki.server, pki.server_key, client_ca=pki.client_ca)
    stack.gateway([tls_operator(sim.port, ca=pki.ca, cert=pki.client, key=pki.client_key)])
    assert sim.bound() == 1


def test_without_the_required_client_certificate_there_is_no_bind(
        stack: Stack, pki: Pki, esme_log: pytest.LogCaptureFixture) -> None:
    sim = tls_sim(stack, pki.server, pki.server_key, client_ca=pki.client_ca)
    gw = stack.gateway([tls_operator(sim.port, ca=pki.ca)], wait_bound=False)
    wait_until(lambda: events(gw, "sim-tls", "tls_failed") >= 2, 10.0,
               "two refused TLS sessions")
    assert never_bound(gw, "sim-tls", 0.3)
    assert sim.bound() == 0
    [first, *_] = lines(esme_log, "sim-tls#0t:")
    assert "refuses a missing or unknown client certificate: check cert and key" in (
        first.getMessage())


def test_verify_false_binds_to_a_self_signed_operator_and_warns_at_every_connect(
        stack: Stack, pki: Pki, esme_log: pytest.LogCaptureFixture) -> None:
    sim = tls_sim(stack, pki.selfsigned, pki.selfsigned_key)
    gw = stack.gateway([tls_operator(sim.port, verify=False)])
    [warning] = lines(esme_log, "verify = false")
    assert warning.levelno == logging.WARNING
    assert sim.run(sim.sim.drop_all) == 1
    wait_until(lambda: len(lines(esme_log, "verify = false")) == 2, 10.0, "a second warning")
    wait_until(lambda: operator_bound(gw, "sim-tls"), 10.0, "bound again")


@pytest.mark.parametrize("where", ["tls-handshake", "tcp-connect"])
def test_connect_timeout_s_bounds_a_connect_that_never_completes(
        stack: Stack, where: str, esme_log: pytest.LogCaptureFixture) -> None:
    """A TLS port that takes the TCP connection and never answers the ClientHello (a socket
    that listens and never accepts), or a plain one whose SYNs are dropped."""
    hang = taken_port() if where == "tls-handshake" else blackhole_port()
    with hang as port:
        fields = {"tls": True, "verify": False} if where == "tls-handshake" else {}
        op = operator("slow", port, connect_timeout_s=0.5, reconnect_min_s=5.0,
                      reconnect_max_s=5.0, **fields)
        gw = stack.gateway([op], wait_bound=False)
        started = time.monotonic()
        wait_until(lambda: lines(esme_log, "connect_timeout_s = 0.5 s"), 5.0,
                   "the connect given up")
        took = time.monotonic() - started
        assert 0.3 < took < 1.3, took
        assert events(gw, "slow", "connect_timeout") == 1
        [record] = lines(esme_log, "connect_timeout_s = 0.5 s")
        assert record.getMessage() == (
            f"slow#0t: cannot connect to 127.0.0.1:{port}: no "
            f"{'TCP connection and TLS handshake' if op.tls else 'TCP connection'} within "
            "connect_timeout_s = 0.5 s")


# --- the simulator's command line ------------------------------------------------------------


def test_simulator_cli_serves_tls_with_cert_and_key(pki: Pki) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "bench.simulator", "--port", "0", "--cert",
                             pki.server, "--key", pki.server_key], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed at once, or the process exits
        assert line.startswith("smsc-sim listening on 127.0.0.1:") and "(TLS)" in line, line
        port = int(line.split()[3].rsplit(":", 1)[1])
        client = ssl.create_default_context(cafile=pki.ca)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                client.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    bad = subprocess.run([sys.executable, "-m", "bench.simulator", "--port", "0", "--cert",
                          pki.server, "--key", pki.other_key], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=20)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "cert: cannot use" in bad.stderr, bad.stderr


# --- check-config ----------------------------------------------------------------------------


def test_check_operator_tls_names_each_unusable_file(tmp_path: Path, pki: Pki) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cfg = gateway_config(tmp_path, [
        tls_operator(1, ca=pki.ca, cert=pki.client, key=pki.client_key),  # fine
        operator("b", 2, tls=True, ca=str(junk)),
        operator("c", 3, tls=True, cert=pki.client, key=pki.other_key),
        operator("d", 4, tls=True, cert=str(junk), key=pki.client_key),
        operator("e", 5, tls=True, cert=pki.client, key=str(junk)),
        operator("f", 6),  # plain: nothing to check
    ])
    problems = check_operator_tls(cfg)
    assert [p.split(":")[0] for p in problems] == [
        "operators[1].ca", "operators[2].key", "operators[3].cert", "operators[4].key"]
    assert "is not the key of the certificate" in problems[1]
    assert all(len(p.splitlines()) == 1 for p in problems)


# --- webhooks over https ---------------------------------------------------------------------


def server_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def hooked_gateway(stack: Stack, hook: WebhookReceiver, webhook_ca: str) -> GatewayThread:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    tenant = TenantConfig(system_id="acme", webhook_url=hook.url, webhook_secret=secret,
                          numbers=("4479",))
    sim = stack.sim()
    base = gateway_config(stack.tmp_path, [operator("A", sim.port)], tenants=(tenant,))
    http = HttpConfig(host="127.0.0.1", port=0, webhook_ca=webhook_ca,
                      webhook_retry_s=(0.05, 0.1), webhook_retry_for_s=30.0,
                      webhook_timeout_s=2.0)
    gw = stack.gateway_factory(msgspec.structs.replace(base, http=http))
    stack.gateways.append(gw)
    wait_until(lambda: operator_bound(gw, "A"), 10.0, "gateway bound to the simulator")
    sim.inject_mo(OWNED, HANDSET, "to an https webhook")
    return gw


def test_https_webhook_verified_with_webhook_ca_arrives(stack: Stack, pki: Pki) -> None:
    with WebhookReceiver(ssl_context=server_context(pki.server, pki.server_key)) as hook:
        assert hook.url.startswith("https://127.0.0.1:")
        gw = hooked_gateway(stack, hook, webhook_ca=pki.ca)
        [got] = hook.wait_ids(1, 15.0)
        assert got.json()["data"]["content"] == "to an https webhook"
        wait_until(lambda: gateway_idle(gw), 10.0, "event settled")


def test_https_webhook_with_a_wrong_ca_is_not_sent_and_kept_for_retry(
        stack: Stack, pki: Pki, esme_log: pytest.LogCaptureFixture) -> None:
    with WebhookReceiver(ssl_context=server_context(pki.server, pki.server_key)) as hook:
        gw = hooked_gateway(stack, hook, webhook_ca=pki.client_ca)  # not the server's CA
        wait_until(lambda: gw.run(lambda: gw.gateway.webhooks.failed_attempts) >= 3, 10.0,
                   "three failed attempts")
        assert hook.requests() == []
        assert gw.run(lambda: gw.gateway.store.count("events")) == 1  # kept, not dropped
        assert gw.run(lambda: gw.gateway.webhooks.gave_up) == 0
        assert lines(esme_log, "TLS certificate of 127.0.0.1:")
        assert "[http] webhook_ca" in lines(esme_log, "TLS certificate of")[0].getMessage()
