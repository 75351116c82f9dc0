"""``smsc.tls``: server contexts from config, live reload, and errors naming the config key.

Handshakes run in memory (``ssl.MemoryBIO`` pairs, no socket, no event loop): the client
and server ``SSLObject`` are pumped until both finish or one fails, so every check is about
what OpenSSL decided with our context (certificate served, version, client certificate).
"""

from __future__ import annotations

import ssl
import warnings
from pathlib import Path
from typing import Any

import msgspec
import pytest

from config import GatewayConfig, HttpConfig, OperatorConfig, TlsListenConfig
from smsc.tls import ServerTls, TlsError, check_tls, http_tls, listen_tls
from tests.tlskit import Pki, client_context, old_tls_client


class Handshake:
    """A client and a server ``SSLObject`` joined by memory BIOs."""

    def __init__(self, server: ssl.SSLContext, client: ssl.SSLContext,
                 server_hostname: str | None = None,
                 session: ssl.SSLSession | None = None) -> None:
        self._c_in, self._c_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._s_in, self._s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.client = client.wrap_bio(self._c_in, self._c_out, server_hostname=server_hostname,
                                      session=session)
        self.server = server.wrap_bio(self._s_in, self._s_out, server_side=True)

    def _move(self) -> None:
        self._s_in.write(self._c_out.read())
        self._c_in.write(self._s_out.read())

    def run(self) -> None:
        """Handshake both ends; raises the first side's ``ssl.SSLError`` (the server's is
        tagged ``server_side``). TLS 1.3 clients finish before the server has checked
        their certificate: a server refusal then shows on the server side."""
        done = {"client": False, "server": False}
        for _ in range(20):
            for side, obj in (("client", self.client), ("server", self.server)):
                if done[side]:
                    continue
                try:
                    obj.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError as exc:
                    exc.server_side = side == "server"  # type: ignore[attr-defined]
                    raise
                self._move()
            if all(done.values()):
                return
        raise AssertionError("handshake did not finish in 20 rounds")

    def exchange(self, data: bytes) -> bytes:
        """Client writes ``data``; what the server reads."""
        self.client.write(data)
        self._move()
        return self.server.read(len(data))

    def served_ca(self) -> str:
        """The organization of the issuer of the certificate the server presented."""
        return _name(self.client.getpeercert(), "issuer", "organizationName")


def _name(cert: Any, part: str, attribute: str) -> str:
    """One attribute of a ``getpeercert()`` subject or issuer (a verified certificate)."""
    assert cert, "no verified peer certificate"
    return str(dict(rdn[0] for rdn in cert[part])[attribute])


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path, "one")


@pytest.fixture
def other(tmp_path: Path) -> Pki:
    return Pki(tmp_path, "two")


def test_a_client_without_sni_gets_the_certificate_and_talks(pki: Pki) -> None:
    tls = ServerTls(*pki.server())
    hs = Handshake(tls.context, client_context(pki))
    hs.run()
    assert hs.served_ca() == "smsc test one"
    assert hs.exchange(b"bind") == b"bind"
    assert hs.client.version() == "TLSv1.3"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_a_reconnecting_client_resumes_its_session(pki: Pki, version: ssl.TLSVersion) -> None:
    """Session resumption (RFC 8446 section 2.2; RFC 5077 for 1.2) survives the context
    swap of the callback: a reconnect skips the full handshake."""
    tls = ServerTls(*pki.server())
    client = client_context(pki, maximum=version)
    first = Handshake(tls.context, client)
    first.run()
    first.server.write(b"ok")  # TLS 1.3 tickets come after the handshake, with data
    assert first.exchange(b"bind") == b"bind" and first.client.read(2) == b"ok"
    again = Handshake(tls.context, client, session=first.client.session)
    again.run()
    assert again.client.session_reused and again.server.session_reused
    assert again.exchange(b"bind") == b"bind"


def test_reload_new_handshakes_see_the_new_certificate_open_sessions_stay(
        pki: Pki, other: Pki) -> None:
    tls = ServerTls(*pki.server())
    before = Handshake(tls.context, client_context(pki))
    before.run()

    tls.reload(*other.server())

    for server_hostname in (None, "localhost"):  # with SNI and without: the callback runs
        fresh = Handshake(tls.context, client_context(other), server_hostname)
        fresh.run()
        assert fresh.served_ca() == "smsc test two"
        with pytest.raises(ssl.SSLCertVerificationError):  # the old CA no longer fits
            Handshake(tls.context, client_context(pki), server_hostname).run()
    assert before.exchange(b"still here") == b"still here"  # the session made before
    assert tls.reloads == 1


def test_reload_with_bad_material_changes_nothing(pki: Pki, tmp_path: Path) -> None:
    tls = ServerTls(*pki.server())
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(TlsError, match=r"^listen_tls\.cert: no PEM certificate in "):
        tls.reload(str(junk), str(junk))
    hs = Handshake(tls.context, client_context(pki))
    hs.run()
    assert hs.served_ca() == "smsc test one" and tls.reloads == 0


def test_tls_below_1_2_is_refused_by_the_server(pki: Pki) -> None:
    tls = ServerTls(*pki.server())
    old_client = old_tls_client(pki)
    # The client can speak TLS 1.1: a server that allows it shakes hands with it ...
    lax = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    lax.load_cert_chain(*pki.server("lax"))
    lax.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        lax.minimum_version = ssl.TLSVersion.TLSv1
    control = Handshake(lax, old_client)
    control.run()
    assert control.client.version() == "TLSv1.1"
    # ... ours refuses it.
    with pytest.raises(ssl.SSLError) as refused:
        Handshake(tls.context, old_client).run()
    assert refused.value.server_side  # type: ignore[attr-defined]
    assert "UNSUPPORTED_PROTOCOL" in str(refused.value) or "VERSION" in str(refused.value)
    ok = Handshake(tls.context, client_context(pki, maximum=ssl.TLSVersion.TLSv1_2))
    ok.run()
    assert ok.client.version() == "TLSv1.2"


def test_min_version_1_3_refuses_a_1_2_client_and_reload_can_lower_it(pki: Pki) -> None:
    files = pki.server()
    tls = ServerTls(*files, min_version="1.3")
    capped = client_context(pki, maximum=ssl.TLSVersion.TLSv1_2)
    with pytest.raises(ssl.SSLError):
        Handshake(tls.context, capped).run()
    tls.reload(*files, min_version="1.2")
    hs = Handshake(tls.context, capped)
    hs.run()
    assert hs.client.version() == "TLSv1.2"
    tls.reload(*files, min_version="1.3")
    with pytest.raises(ssl.SSLError):
        Handshake(tls.context, capped).run()


def _client_cert_refused(hs: Handshake) -> bool:
    try:
        hs.run()
        hs.exchange(b"x")  # TLS 1.3: the server's verdict arrives after the client's end
    except ssl.SSLError:
        return True
    return False


def test_client_ca_requires_a_certificate_signed_by_it(pki: Pki, other: Pki) -> None:
    tls = ServerTls(*pki.server(), client_ca=other.ca_file())
    assert _client_cert_refused(Handshake(tls.context, client_context(pki)))  # none given
    stranger = client_context(pki, cert=pki.client("mallory"))  # signed by another CA
    assert _client_cert_refused(Handshake(tls.context, stranger))
    good = Handshake(tls.context, client_context(pki, cert=other.client("acme")))
    good.run()
    assert good.exchange(b"bind") == b"bind"
    assert _name(good.server.getpeercert(), "subject", "commonName") == "acme"


def test_reload_changes_the_client_ca_and_can_drop_it(pki: Pki, other: Pki) -> None:
    files = pki.server()
    tls = ServerTls(*files, client_ca=other.ca_file())
    tls.reload(*files, client_ca=pki.ca_file())  # now clients of CA one
    assert _client_cert_refused(Handshake(tls.context, client_context(
        pki, cert=other.client("acme"))))
    assert not _client_cert_refused(Handshake(tls.context, client_context(
        pki, cert=pki.client("acme"))))
    tls.reload(*files)  # no client_ca: no certificate asked for
    assert not _client_cert_refused(Handshake(tls.context, client_context(pki)))


# --- errors: one line, naming the key -------------------------------------------------------


def test_a_key_of_another_certificate_is_named(pki: Pki, other: Pki) -> None:
    cert, _ = pki.server()
    _, wrong_key = other.server()
    with pytest.raises(TlsError) as err:
        ServerTls(cert, wrong_key, section="http")
    text = str(err.value)
    assert text.startswith(f"http.key: {wrong_key} does not match the certificate in {cert}")
    assert "\n" not in text and err.value.key == "http.key"


def test_unreadable_or_wrong_files_are_named(pki: Pki, tmp_path: Path) -> None:
    cert, key = pki.server()
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    encrypted = tmp_path / "enc.key"
    encrypted.write_text("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n"
                         "-----END ENCRYPTED PRIVATE KEY-----\n")
    cases = {
        "listen_tls.cert: cannot read /nonexistent.pem": ("/nonexistent.pem", key, ""),
        "listen_tls.cert: no PEM certificate in": (key, key, ""),
        "listen_tls.key: no PEM private key in": (cert, str(junk), ""),
        "listen_tls.key: cannot read /nonexistent.key": (cert, "/nonexistent.key", ""),
        "listen_tls.key: " + str(encrypted) + " is encrypted": (cert, str(encrypted), ""),
        "listen_tls.client_ca: no PEM certificate in " + str(junk): (cert, key, str(junk)),
    }
    for expected, args in cases.items():
        with pytest.raises(TlsError) as err:
            ServerTls(*args)
        assert str(err.value).startswith(expected), (expected, str(err.value))
        assert "\n" not in str(err.value)


def test_check_tls_lists_every_problem_of_a_config(pki: Pki, other: Pki,
                                                   tmp_path: Path) -> None:
    cert, key = pki.server()
    _, wrong_key = other.server()
    good = GatewayConfig(listen_tls=TlsListenConfig(cert=cert, key=key),
                         http=HttpConfig(cert=cert, key=key))
    assert check_tls(good) == []
    assert listen_tls(good.listen_tls).context.verify_mode == ssl.CERT_NONE  # type: ignore[arg-type]
    assert http_tls(HttpConfig()) is None
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    bad = msgspec.structs.replace(
        good, listen_tls=TlsListenConfig(cert=cert, key=wrong_key,
                                         client_ca=str(tmp_path / "missing.pem")),
        http=HttpConfig(cert=key, key=key, webhook_ca=str(junk)),
        operators=(OperatorConfig(name="A", host="127.0.0.1", port=2775, system_id="gw",
                                  password="pw", tls=True, ca=str(junk)),))
    problems = check_tls(bad)
    assert [p.split(":")[0] for p in problems] == [
        "listen_tls.key", "http.cert", "http.webhook_ca", "operators[0].ca"], problems
    assert all("\n" not in p for p in problems)
    off = msgspec.structs.replace(good, listen_tls=TlsListenConfig(
        enabled=False, cert=cert, key=wrong_key), http=HttpConfig(enabled=False, cert=key,
                                                                  key=key))
    assert check_tls(off) == []  # what is switched off is not loaded
