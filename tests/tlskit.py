"""Certificates made in the test (``trustme``; no key or certificate is committed) and the
client contexts that use them.

``Pki(tmp_path)`` is one test CA with files on disk: ``server()`` issues a certificate for
``localhost``/``127.0.0.1`` and writes the chain and key (what ``[listen_tls] cert``/``key``
and ``[http] cert``/``key`` name), ``ca_file()`` the CA certificate (``client_ca``).
``client_context`` builds what a tenant uses: it trusts the given CA, may present a client
certificate and may cap its TLS versions. python-smpplib sends no server name (SNI), so its
contexts do not check the host name; the chain is still verified.
"""

from __future__ import annotations

import ssl
import warnings
from pathlib import Path
from typing import NamedTuple

import trustme

__all__ = ["CertFiles", "Pki", "client_context", "old_tls_client"]


class CertFiles(NamedTuple):
    cert: str  # PEM chain, leaf first
    key: str  # PEM private key


class Pki:
    """One test CA and the files it issued, under ``directory``."""

    def __init__(self, directory: Path, name: str = "ca") -> None:
        self.ca = trustme.CA(organization_name=f"smsc test {name}")
        self.directory = directory
        self.name = name

    def server(self, stem: str = "server") -> CertFiles:
        leaf = self.ca.issue_cert("localhost", "127.0.0.1")
        return self._write(leaf, f"{self.name}-{stem}")

    def client(self, common_name: str = "tenant") -> trustme.LeafCert:
        return self.ca.issue_cert(f"{common_name}.example", common_name=common_name)

    def client_files(self, common_name: str = "tenant") -> CertFiles:
        return self._write(self.client(common_name), f"{self.name}-client-{common_name}")

    def ca_file(self) -> str:
        path = self.directory / f"{self.name}-ca.pem"
        self.ca.cert_pem.write_to_path(str(path))
        return str(path)

    def _write(self, leaf: trustme.LeafCert, stem: str) -> CertFiles:
        cert = self.directory / f"{stem}.pem"
        key = self.directory / f"{stem}.key"
        for i, blob in enumerate(leaf.cert_chain_pems):
            blob.write_to_path(str(cert), append=i > 0)
        leaf.private_key_pem.write_to_path(str(key))
        return CertFiles(str(cert), str(key))


def client_context(trust: Pki | None, *, cert: trustme.LeafCert | None = None,
                   maximum: ssl.TLSVersion | None = None,
                   minimum: ssl.TLSVersion | None = None,
                   ciphers: str | None = None) -> ssl.SSLContext:
    """A tenant's context: verifies the server against ``trust``'s CA (no host name: no
    SNI from smpplib), presents ``cert`` when given, TLS versions capped as asked."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if trust is not None:
        trust.ca.configure_trust(ctx)
    if cert is not None:
        cert.configure_cert(ctx)
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: tests use them on purpose
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum is not None:
            ctx.minimum_version = minimum
        if maximum is not None:
            ctx.maximum_version = maximum
    return ctx


def old_tls_client(trust: Pki) -> ssl.SSLContext:
    """A client that speaks only TLS 1.0 and 1.1 (with the ciphers those need: OpenSSL 3
    refuses them at its default security level)."""
    return client_context(trust, minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1,
                          ciphers="DEFAULT:@SECLEVEL=0")
