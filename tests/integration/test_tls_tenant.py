"""TLS on the tenant side: SMPP over ``[listen_tls]`` and HTTPS on ``[http]``, as tenants see it.

Certificates come from ``trustme`` CAs made in each test (``tests.tlskit``). Checked over
real sockets on 127.0.0.1: python-smpplib binds over TLS (its ``ssl_context``), submits
with registered_delivery=1 and gets its receipt through the bundled simulator; a
``tls_only`` tenant is refused on the plain port (ESME_RBINDFAIL) and binds over TLS; with
``client_ca`` a client without a certificate, or with one of another CA, fails the
handshake and one signed by that CA binds; TLS 1.1 is refused and ``min_version = "1.3"``
refuses a TLS 1.2 client; a certificate from another CA loaded by ``ServerTls.reload`` is
what the next handshake sees while a bind made before goes on (on asyncio's loop and on
uvloop's); a ``[listen_tls]`` port in use is a ListenError naming that key; HTTPS answers a
POST verified against the test CA, plain HTTP to that port fails, and a reloaded HTTPS
certificate is served next. As a process (``smsc serve``, uvloop): SMPP over TLS and
HTTPS beside the plain port and alone (``[listen] enabled = false``), the ports in the
banner, and bad TLS material refused in one line by ``check-config`` and ``serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import pytest
import uvloop

from config import GatewayConfig, HttpConfig, TenantConfig, TlsListenConfig
from encoding.constants import CommandStatus
from encoding.pdu import BindTransceiver
from smsc.app import Gateway
from smsc.http import hash_token
from smsc.listeners import ListenError
from tests.gatewayproc import REPO, GatewayProcess
from tests.gatewaytoml import loopback_sections
from tests.integration.e2e_support import (
    SimThread,
    SmpplibTenant,
    Stack,
    check_receipts,
    gateway_config,
    operator,
    operator_bound,
    sent_texts,
    wait_until,
)
from tests.ports import taken_port
from tests.rawclient import RawClient
from tests.tlskit import Pki, client_context, old_tls_client

if TYPE_CHECKING:
    from tests.conftest import GatewayThread

pytestmark = pytest.mark.timeout(60)

TOKEN = "tok_tls_0123456789abcdef0123456789abcdef01"
TENANTS = (
    TenantConfig(system_id="demo", password="demo", numbers=("4479",),
                 api_keys=(hash_token(TOKEN),)),
    TenantConfig(system_id="secure", password="secret", tls_only=True),
)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path, "one")


@pytest.fixture
def other(tmp_path: Path) -> Pki:
    return Pki(tmp_path, "two")


def tls_config(tmp_path: Path, pki: Pki, sim: SimThread | None = None, *,
               http_tls: bool = False, **tls: Any) -> GatewayConfig:
    """Plain and TLS SMPP ports (0), one operator when ``sim`` is given, HTTPS if asked."""
    cert, key = pki.server()
    ops = [operator("A", sim.port)] if sim is not None else []
    base = gateway_config(tmp_path, ops, tenants=TENANTS, **({} if ops else {"routes": ()}))
    http = HttpConfig(host="127.0.0.1", port=0, cert=cert if http_tls else "",
                      key=key if http_tls else "")
    return msgspec.structs.replace(
        base, http=http,
        listen_tls=TlsListenConfig(host="127.0.0.1", port=0, cert=cert, key=key, **tls))


def start(stack: Stack, cfg: GatewayConfig) -> GatewayThread:
    gw = stack.gateway_factory(cfg)
    stack.gateways.append(gw)
    wait_until(lambda: all(operator_bound(gw, op.name) for op in cfg.operators), 10.0,
               "gateway bound to its operators")
    return gw


class TlsTenant(SmpplibTenant):
    """``SmpplibTenant`` over TLS: python-smpplib's ``ssl_context`` (no SNI; the chain is
    verified)."""

    def __init__(self, port: int, context: ssl.SSLContext, system_id: str = "demo",
                 password: str = "demo") -> None:
        super().__init__(port, system_id, password, ssl_context=context)

    def server_ca(self) -> str:
        """Organization of the CA that issued the certificate this connection verified."""
        return _issuer(self.client._socket.getpeercert())


def _issuer(cert: Any) -> str:
    assert cert, "no verified server certificate"
    return str(dict(rdn[0] for rdn in cert["issuer"])["organizationName"])


@contextlib.contextmanager
def tls_tenant(port: int, context: ssl.SSLContext, **kw: Any) -> Iterator[TlsTenant]:
    tenant = TlsTenant(port, context, **kw)
    try:
        yield tenant
    finally:
        tenant.close()


# How a refused handshake looks to the client. asyncio's and uvloop's TLS transports close
# the connection when the server's handshake fails without flushing OpenSSL's alert
# (CPython gh-98078, fixed in later Pythons): the
# client reads EOF in the middle of its handshake, or (TLS 1.3, where the client finishes
# before the server has checked its certificate) no answer to its first PDU. Should the
# alert ever be sent, its name is accepted too.
IN_HANDSHAKE = "UNEXPECTED_EOF_WHILE_READING"
AFTER_HANDSHAKE = "closed"


def tls_bind(port: int, context: ssl.SSLContext, system_id: str = "demo",
             password: str = "demo") -> int | str:
    """The bind_transceiver_resp status over TLS, or how TLS failed: the reason of the
    client's ``ssl.SSLError`` (``IN_HANDSHAKE``, ``CERTIFICATE_VERIFY_FAILED``, an alert),
    or ``AFTER_HANDSHAKE`` when the server closed without answering the bind."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock = context.wrap_socket(raw)
    except ssl.SSLError as exc:
        raw.close()
        return str(exc.reason)
    client = RawClient(port, sock=sock)
    try:
        seq = client.send(BindTransceiver(system_id=system_id, password=password))
        resp = client.read_pdu()
    except ssl.SSLError as exc:
        return str(exc.reason)
    finally:
        client.close()
    if resp is None:
        return AFTER_HANDSHAKE
    assert resp.sequence_number == seq and resp.is_response, resp
    return int(resp.command_status)


def plain_bind(port: int, system_id: str = "demo", password: str = "demo") -> int:
    client = RawClient(port)
    try:
        return int(client.bind(system_id, password).command_status)
    finally:
        client.close()


def submit_and_get_receipt(tenant: SmpplibTenant, text: bytes) -> None:
    """One submit with registered_delivery=1: accepted, and its receipt comes back."""
    before = len(tenant.receipts())
    ids = tenant.ids([tenant.submit(text, registered_delivery=1)])
    check_receipts(ids, tenant.wait_receipts(before + 1, 20.0)[before:])


# --- SMPP over TLS ---------------------------------------------------------------------------


def test_smpplib_over_tls_submits_and_gets_its_receipt(stack: Stack, tmp_path: Path,
                                                       pki: Pki) -> None:
    sim = stack.sim()
    gw = start(stack, tls_config(tmp_path, pki, sim))
    assert gw.gateway.tls_port and gw.gateway.tls_port != gw.port
    with tls_tenant(gw.gateway.tls_port, client_context(pki)) as tenant:
        assert tenant.server_ca() == "smsc test one"
        submit_and_get_receipt(tenant, b"hello over TLS")
    assert sent_texts(sim.received()) == ["hello over TLS"]


def test_tls_only_tenant_is_refused_on_the_plain_port_and_binds_over_tls(
        stack: Stack, tmp_path: Path, pki: Pki) -> None:
    gw = start(stack, tls_config(tmp_path, pki))
    tls_port = gw.gateway.tls_port
    assert plain_bind(gw.port, "secure", "secret") == CommandStatus.ESME_RBINDFAIL
    assert tls_bind(tls_port, client_context(pki), "secure", "secret") == CommandStatus.ESME_ROK
    assert tls_bind(tls_port, client_context(pki), "secure", "wrong") == \
        CommandStatus.ESME_RINVPASWD
    # a tenant without tls_only binds on either port
    assert plain_bind(gw.port) == CommandStatus.ESME_ROK
    assert tls_bind(tls_port, client_context(pki)) == CommandStatus.ESME_ROK


def test_client_ca_requires_a_certificate_signed_by_it(stack: Stack, tmp_path: Path,
                                                       pki: Pki, other: Pki) -> None:
    gw = start(stack, tls_config(tmp_path, pki, client_ca=other.ca_file()))
    port = gw.gateway.tls_port
    assert tls_bind(port, client_context(pki)) in {
        AFTER_HANDSHAKE, "TLSV13_ALERT_CERTIFICATE_REQUIRED"}
    assert tls_bind(port, client_context(pki, cert=pki.client("mallory"))) in {
        AFTER_HANDSHAKE, "TLSV1_ALERT_UNKNOWN_CA"}
    assert tls_bind(port, client_context(pki, cert=other.client("acme"))) == \
        CommandStatus.ESME_ROK
    # TLS 1.2: the refusal comes in the handshake itself
    assert tls_bind(port, client_context(pki, maximum=ssl.TLSVersion.TLSv1_2)) in {
        IN_HANDSHAKE, "SSLV3_ALERT_HANDSHAKE_FAILURE"}
    assert tls_bind(port, client_context(pki, cert=other.client("acme"),
                                         maximum=ssl.TLSVersion.TLSv1_2)) == \
        CommandStatus.ESME_ROK
    # The gateway counts each refusal by reason (a bounded label) for its metrics.
    wait_until(lambda: gw.gateway.flood.tls_failures.get("certificate", 0) >= 3, 5.0,
               "three handshakes refused for their certificate counted")


def test_tls_1_1_is_refused_and_1_2_binds(stack: Stack, tmp_path: Path, pki: Pki) -> None:
    gw = start(stack, tls_config(tmp_path, pki))
    port = gw.gateway.tls_port
    assert tls_bind(port, old_tls_client(pki)) in {IN_HANDSHAKE, "TLSV1_ALERT_PROTOCOL_VERSION"}
    assert tls_bind(port, client_context(pki, maximum=ssl.TLSVersion.TLSv1_2)) == \
        CommandStatus.ESME_ROK
    wait_until(lambda: gw.gateway.flood.tls_failures.get("version", 0) >= 1, 5.0,
               "the TLS 1.1 handshake counted as a version refusal")


def test_min_version_1_3_refuses_a_tls_1_2_client(stack: Stack, tmp_path: Path,
                                                  pki: Pki) -> None:
    gw = start(stack, tls_config(tmp_path, pki, min_version="1.3"))
    port = gw.gateway.tls_port
    assert tls_bind(port, client_context(pki, maximum=ssl.TLSVersion.TLSv1_2)) in {
        IN_HANDSHAKE, "TLSV1_ALERT_PROTOCOL_VERSION"}
    assert tls_bind(port, client_context(pki)) == CommandStatus.ESME_ROK


@contextlib.contextmanager
def loop_kind(kind: str) -> Iterator[None]:
    """New event loops are asyncio's or uvloop's (the gateway's production loop) inside."""
    if kind == "asyncio":
        yield
        return
    old = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(old)


@pytest.mark.parametrize("kind", ["asyncio", "uvloop"])
def test_a_reloaded_certificate_is_seen_by_new_handshakes_and_open_binds_go_on(
        stack: Stack, tmp_path: Path, pki: Pki, other: Pki, kind: str) -> None:
    sim = stack.sim()
    with loop_kind(kind):
        gw = start(stack, tls_config(tmp_path, pki, sim))
    assert type(gw.loop).__module__.startswith(kind)
    port = gw.gateway.tls_port
    tls = gw.gateway.smpp_tls
    assert tls is not None
    with tls_tenant(port, client_context(pki)) as before:
        submit_and_get_receipt(before, b"before the reload")

        new_cert, new_key = other.server()
        gw.run(lambda: tls.reload(new_cert, new_key))

        with tls_tenant(port, client_context(other), system_id="secure",
                        password="secret") as after:
            assert after.server_ca() == "smsc test two"
            submit_and_get_receipt(after, b"new handshake")
        assert tls_bind(port, client_context(pki)) == "CERTIFICATE_VERIFY_FAILED"
        submit_and_get_receipt(before, b"open bind after the reload")
    assert sorted(sent_texts(sim.received())) == [
        "before the reload", "new handshake", "open bind after the reload"]


def test_a_listen_tls_port_in_use_fails_start_naming_the_key(tmp_path: Path,
                                                             pki: Pki) -> None:
    async def scenario(cfg: GatewayConfig, port: int) -> None:
        gw = Gateway(cfg)
        with pytest.raises(ListenError) as failed:
            await gw.start()
        assert str(failed.value) == (
            f"cannot listen on 127.0.0.1:{port} ([listen_tls] port): Address already in use"
            " — change [listen_tls] port in the config or stop the process using it")
        assert gw.port > 0  # the plain port was listening, and is closed again
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", gw.port), timeout=2).close()

    with taken_port() as port:
        cfg = tls_config(tmp_path, pki)
        assert cfg.listen_tls is not None
        cfg = msgspec.structs.replace(cfg, listen_tls=msgspec.structs.replace(
            cfg.listen_tls, port=port))
        asyncio.run(scenario(cfg, port))


# --- HTTPS -----------------------------------------------------------------------------------


def https_client(port: int, trust: Pki) -> httpx.Client:
    verify = ssl.create_default_context()
    trust.ca.configure_trust(verify)  # host name checked too: the certificate names 127.0.0.1
    return httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=verify, timeout=20.0,
                        headers={"Authorization": f"Bearer {TOKEN}"}, trust_env=False)


def send(client: httpx.Client, text: str) -> httpx.Response:
    return client.post("/v1/messages", json={"messages": [
        {"originator": "Acme", "recipients": ["+447700900123"], "content": text}]})


def test_https_answers_a_verified_client_and_plain_http_fails(stack: Stack, tmp_path: Path,
                                                              pki: Pki, other: Pki) -> None:
    sim = stack.sim()
    gw = start(stack, tls_config(tmp_path, pki, sim, http_tls=True))
    port = gw.gateway.http_port
    with https_client(port, pki) as client:
        r = send(client, "over https")
        assert r.status_code == 200, r.text
        assert r.json()["messages"][0]["status"] == "accepted"
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0,
                      trust_env=False) as plain, pytest.raises(httpx.TransportError):
        send(plain, "plain text to a TLS port")
    # a reloaded certificate is what the next HTTPS connection gets
    tls = gw.gateway.http_tls
    assert tls is not None
    new_cert, new_key = other.server()
    gw.run(lambda: tls.reload(new_cert, new_key))
    with https_client(port, other) as client:
        assert send(client, "after the reload").status_code == 200
    with https_client(port, pki) as client, pytest.raises(httpx.ConnectError):
        send(client, "old CA")
    wait_until(lambda: len(sim.received()) == 2, 10.0, "two messages at the operator")


# --- as a process: uvloop, the banner, check-config ------------------------------------------


def _toml(tmp_path: Path, cert: str, key: str, *, plain: bool = False) -> Path:
    path = tmp_path / "smsc.toml"
    path.write_text(
        loopback_sections(tmp_path).replace(
            "[listen]\n", f"[listen]\nenabled = {str(plain).lower()}\n").replace(
            "[http]\n", f"[http]\ncert = \"{cert}\"\nkey = \"{key}\"\n")
        + f"[listen_tls]\nhost = \"127.0.0.1\"\nport = 0\ncert = \"{cert}\"\nkey = \"{key}\"\n\n"
        + "[[tenants]]\nsystem_id = \"secure\"\npassword = \"secret\"\ntls_only = true\n"
        + f"api_keys = [\"{hash_token(TOKEN)}\"]\n")
    return path


@pytest.mark.parametrize("plain", [False, True])
def test_serve_over_tls_with_and_without_a_plain_port(tmp_path: Path, pki: Pki,
                                                      plain: bool) -> None:
    proc = GatewayProcess(_toml(tmp_path, *pki.server(), plain=plain), tmp_path / "gw.log")
    try:
        words = proc.banner.split()
        assert words[:3] == ["smsc", "listening", "on"], proc.banner
        assert (words[4] == "(tls),") is not plain, proc.banner
        assert "(https)" in proc.banner and proc.tls_port > 0
        assert (proc.tls_port == proc.port) is not plain
        assert tls_bind(proc.tls_port, client_context(pki), "secure", "secret") == \
            CommandStatus.ESME_ROK
        if plain:
            assert plain_bind(proc.port, "secure", "secret") == CommandStatus.ESME_RBINDFAIL
        with https_client(proc.http_port, pki) as client:
            r = client.get("/v1/messages/m_nonexistent")
            assert r.status_code == 404, r.text  # TLS, then the API's own answer
    finally:
        proc.kill()


def _smsc(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "smsc", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=30, check=False)


def test_bad_tls_material_is_one_line_from_check_config_and_serve(
        tmp_path: Path, pki: Pki, other: Pki) -> None:
    cert, _ = pki.server()
    _, wrong_key = other.server()
    cfg = _toml(tmp_path, cert, wrong_key)
    checked = _smsc("check-config", str(cfg))
    lines = checked.stderr.strip().splitlines()
    assert checked.returncode == 2 and checked.stdout == ""
    assert lines == [
        f"smsc: {cfg}: listen_tls.key: {wrong_key} does not match the certificate in {cert}"
        " — give that certificate's key (and put the server's certificate first in the chain)",
        f"smsc: {cfg}: http.key: {wrong_key} does not match the certificate in {cert}"
        " — give that certificate's key (and put the server's certificate first in the chain)",
    ], checked.stderr
    served = _smsc("serve", "--config", str(cfg))
    assert served.returncode == 2
    assert served.stderr.strip().splitlines()[-1].startswith(
        f"smsc: listen_tls.key: {wrong_key} does not match"), served.stderr
    assert "Traceback" not in served.stderr
    good = _smsc("check-config", str(_toml(tmp_path, *pki.server())))
    assert good.returncode == 0 and good.stdout.endswith(": ok (1 tenants, 0 operators, "
                                                         "0 routes)\n"), good
