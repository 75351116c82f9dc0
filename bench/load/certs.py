"""Certificates of a ``smsc-bench --tls`` run, made at run time in its temporary directory.

``make_tls_files(directory)`` makes a throw-away CA with ``trustme`` (in the ``test`` extra,
which the ``bench`` extra includes) and one server certificate for ``127.0.0.1`` and
``localhost`` signed by it, and writes three PEM files: the CA (which the load generator
and the gateway's ``[[operators]] ca`` trust), the server chain and its key (which the
gateway's ``[listen_tls]`` and the simulator both serve). Nothing is committed, nothing is
reused between runs. ``client_context(ca)`` is the load generator's verifying context.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import msgspec

__all__ = ["TLS_HOST", "TlsFiles", "client_context", "make_tls_files"]

TLS_HOST = "127.0.0.1"  # every listener of the bench: the certificate's IP address SAN


class TlsFiles(msgspec.Struct, frozen=True):
    """Paths of the PEM files (strings: they go into TOML and picklable worker specs)."""

    ca: str
    cert: str
    key: str


def make_tls_files(directory: Path) -> TlsFiles:
    """A fresh CA and a server certificate for 127.0.0.1/localhost, written to ``directory``."""
    try:
        import trustme
    except ImportError:  # pragma: no cover - trustme is in the test and bench extras
        raise RuntimeError("--tls needs trustme: pip install -e '.[test,bench]'") from None
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert(TLS_HOST, "localhost")
    files = TlsFiles(ca=str(directory / "ca.pem"), cert=str(directory / "server.pem"),
                     key=str(directory / "server.key"))
    ca.cert_pem.write_to_path(files.ca)
    with open(files.cert, "wb") as f:  # the chain, server certificate first
        for blob in server.cert_chain_pems:
            f.write(blob.bytes())
    server.private_key_pem.write_to_path(files.key)
    return files


def client_context(ca: str) -> ssl.SSLContext:
    """A tenant's context: TLS 1.2 or later (RFC 8996), the server verified against ``ca``."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx
