"""Server-side TLS of the tenant doors: SSL contexts built from config, swappable live.

``ServerTls`` holds the one ``ssl.SSLContext`` a server is given at start (the SMPP
``[listen_tls]`` listener through ``asyncio``/uvloop ``create_server``, the HTTPS door through
uvicorn). Servers keep that object for ever, so ``reload`` never replaces it: the outer
context's ``sni_callback`` runs for every ClientHello (with or without a server name;
RFC 6066 section 3 makes SNI optional, OpenSSL calls the callback either way) and points the
connection at the newest *inner* context, whose certificate, key and client CA store the
handshake then uses. What OpenSSL takes from the outer context before that callback (the
protocol versions, RFC 8446 section 4.2.1, and whether a client certificate is requested)
is set in place on it. New handshakes see the new material; open sessions keep theirs.

TLS 1.2 is the floor (RFC 8996 deprecates 1.0 and 1.1); ``min_version = "1.3"`` refuses 1.2
too. With ``client_ca`` set, a client must present a certificate signed by it
(``CERT_REQUIRED``). Bad material is a ``TlsError`` naming the config key and the reason, in
one line; ``check_tls`` lists every such problem of a config (``smsc check-config``).

``TlsListener`` is the ``[listen_tls]`` step of ``Gateway.start``: a
``smsc.listeners.Listener`` over the tenant listener's ``start_tls``.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Protocol

from config import GatewayConfig, HttpConfig, TlsListenConfig, TlsVersion
from esme.tls import TlsSetupError, check_operator_tls, verifying_context

__all__ = [
    "ServerTls",
    "TlsError",
    "TlsListener",
    "check_tls",
    "http_tls",
    "listen_tls",
]

_VERSIONS: dict[str, ssl.TLSVersion] = {"1.2": ssl.TLSVersion.TLSv1_2,
                                        "1.3": ssl.TLSVersion.TLSv1_3}


class TlsError(Exception):
    """TLS material that cannot be used; ``str`` is one line: ``"KEY: REASON — FIX"``, the
    key written as the config loader writes it (``listen_tls.key``, ``http.cert``)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(key, reason)
        self.key = key
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


def _no_passphrase() -> bytes:
    return b""  # never prompt on a terminal for an encrypted key: it fails instead


def _encrypted(path: str) -> bool:
    try:
        head = Path(path).read_bytes()[:4096]
    except OSError:
        return False
    return b"ENCRYPTED" in head


def _check_certificates(key: str, path: str, what: str) -> None:
    """``path`` holds at least one PEM certificate, else a TlsError at ``key``."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cafile=path)
    except ssl.SSLError:  # (an OSError too: first)
        raise TlsError(key, f"no PEM certificate in {path} — give {what}") from None
    except OSError as exc:
        raise TlsError(key, f"cannot read {path}: {exc.strerror or exc}") from None


def _build(section: str, cert: str, key: str, client_ca: str,
           min_version: TlsVersion | str) -> ssl.SSLContext:
    """A server context for this material; TlsError naming ``section``'s key on a problem."""
    version = _VERSIONS.get(min_version)
    if version is None:
        raise TlsError(f"{section}.min_version",
                       f"{min_version!r} is not a TLS version here — use \"1.2\" or \"1.3\"")
    _check_certificates(f"{section}.cert", cert,
                        "the server certificate chain (PEM, the server's certificate first)")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = version
    try:
        ctx.load_cert_chain(cert, key or None, password=_no_passphrase)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TlsError(f"{section}.key", f"{key} does not match the certificate in "
                           f"{cert} — give that certificate's key (and put the server's "
                           "certificate first in the chain)") from None
        if _encrypted(key or cert):
            raise TlsError(f"{section}.key", f"{key or cert} is encrypted with a passphrase —"
                           " give the key unencrypted (openssl pkey -in KEY -out NEW)") from None
        raise TlsError(f"{section}.key", f"no PEM private key in {key or cert} — give the "
                       "certificate's private key (PEM)") from None
    except OSError as exc:
        raise TlsError(f"{section}.key", f"cannot read {key}: {exc.strerror or exc}") from None
    if client_ca:
        _check_certificates(f"{section}.client_ca", client_ca,
                            "the CA certificates (PEM) that sign client certificates")
        ctx.load_verify_locations(cafile=client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class ServerTls:
    """The server context of one door, and the material behind it, replaceable live.

    ``context`` is what the server is given, once. ``reload`` builds a context from the new
    material first (a TlsError changes nothing), then makes new handshakes use it.
    ``section`` (``"listen_tls"``, ``"http"``) names the config keys in errors
    (``listen_tls.key``), as the config loader does.
    """

    def __init__(self, cert: str, key: str, client_ca: str = "",
                 min_version: TlsVersion | str = "1.2", *,
                 section: str = "listen_tls") -> None:
        self.section = section
        self._current = _build(section, cert, key, client_ca, min_version)
        # The outer context carries the same material, so it would serve correctly even if
        # the callback were never called; then the callback swaps in ``_current``.
        self.context = _build(section, cert, key, client_ca, min_version)
        self.context.sni_callback = self._pick
        self.reloads = 0

    def _pick(self, conn: ssl.SSLObject | ssl.SSLSocket, server_name: str | None,
              outer: ssl.SSLContext) -> None:
        # Called by OpenSSL for every ClientHello, SNI present or not (server_name None).
        conn.context = self._current

    def reload(self, cert: str, key: str, client_ca: str = "",
               min_version: TlsVersion | str = "1.2") -> None:
        """New handshakes use this material; open sessions stay. TlsError: nothing changed."""
        fresh = _build(self.section, cert, key, client_ca, min_version)
        self._current = fresh
        # Read from the outer context when a connection starts, before the callback runs.
        self.context.minimum_version = fresh.minimum_version
        self.context.verify_mode = fresh.verify_mode
        self.reloads += 1

    def reload_from(self, cfg: TlsListenConfig | HttpConfig) -> None:
        """``reload`` with the material of ``[listen_tls]`` or ``[http]``."""
        client_ca = cfg.client_ca if isinstance(cfg, TlsListenConfig) else ""
        self.reload(cfg.cert, cfg.key, client_ca, cfg.min_version)


def listen_tls(cfg: TlsListenConfig) -> ServerTls:
    """The ``[listen_tls]`` context (TlsError on bad material)."""
    return ServerTls(cfg.cert, cfg.key, cfg.client_ca, cfg.min_version,
                     section="listen_tls")


def http_tls(cfg: HttpConfig) -> ServerTls | None:
    """The HTTPS context of ``[http]``, or None when ``cert`` is not set (plain HTTP)."""
    if not cfg.cert:
        return None
    return ServerTls(cfg.cert, cfg.key, "", cfg.min_version, section="http")


def check_tls(cfg: GatewayConfig) -> list[str]:
    """One line per TLS file of ``cfg`` that cannot be used, ``KEY: REASON``: the server
    material (``[listen_tls]``, ``[http]`` cert/key), the webhook CA (``http.webhook_ca``)
    and the operators' (``esme.tls.check_operator_tls``); empty when everything loads."""
    problems: list[str] = []
    if cfg.listen_tls is not None and cfg.listen_tls.enabled:
        try:
            listen_tls(cfg.listen_tls)
        except TlsError as exc:
            problems.append(str(exc))
    if cfg.http.enabled:
        try:
            http_tls(cfg.http)
        except TlsError as exc:
            problems.append(str(exc))
    if cfg.http.webhook_ca:
        try:
            verifying_context(cfg.http.webhook_ca, key="webhook_ca")
        except TlsSetupError as exc:
            problems.append(f"http.{exc}")
    return problems + check_operator_tls(cfg)


class _TlsServing(Protocol):
    async def start_tls(self, host: str, port: int, context: ssl.SSLContext,
                        handshake_timeout_s: float) -> int: ...

    async def close(self, timeout: float) -> None: ...


class TlsListener:
    """The ``[listen_tls]`` listening step (``smsc.listeners.Listener``): the tenant
    listener's TLS port; closing it closes the whole tenant listener (idempotent)."""

    def __init__(self, listener: _TlsServing, cfg: TlsListenConfig, tls: ServerTls) -> None:
        self.listener = listener
        self.cfg = cfg
        self.tls = tls

    async def start(self) -> int:
        return await self.listener.start_tls(self.cfg.host, self.cfg.port, self.tls.context,
                                             self.cfg.handshake_timeout_s)

    async def close(self, timeout: float) -> None:
        await self.listener.close(timeout)
