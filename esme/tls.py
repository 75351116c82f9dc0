"""TLS toward operators: the client ``SSLContext`` of each ``[[operators]]`` entry with ``tls``.

``client_context(op)`` builds it once per operator (binds share it; a reload that changes the
operator, or replaces its files, builds a new one): verified against ``op.ca`` or the system
trust store, for the name ``op.server_hostname`` (``host`` when empty; the caller passes it
as SNI), with the client certificate ``op.cert``/``op.key`` when given, TLS 1.2 at least
(RFC 8996 deprecates 1.0 and 1.1; ``min_version = "1.3"`` raises the floor). ``verify =
false`` turns verification off (the bind logs a warning at every connect).

Session resumption (RFC 8446 section 2.2, RFC 5077 for 1.2): asyncio's ``create_connection``
has no ``session`` argument, but both the stdlib loop and uvloop start the handshake with
``context.wrap_bio(...)``. ``OperatorContext`` overrides it to offer the operator's latest
session, which a bind remembers once bound (``remember``), so a reconnect resumes instead of
doing a full handshake; a server that refuses falls back to a full one on its own.

``check_operator_tls(cfg)`` builds every operator's context and returns one line per problem
(``operators[2].cert: ...``), for ``smsc check-config`` and a reload. ``verifying_context`` is
the plain verified client context, also used for https webhooks (``[http] webhook_ca``).
"""

from __future__ import annotations

import ssl
from typing import Any, NoReturn

from config import GatewayConfig, OperatorConfig, TlsVersion

__all__ = [
    "OperatorContext",
    "OperatorContexts",
    "TlsSetupError",
    "check_operator_tls",
    "client_context",
    "verifying_context",
]

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class TlsSetupError(ValueError):
    """A TLS file that cannot be used; ``key`` is the config key (``cert``, ``ca``, ...)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class OperatorContext(ssl.SSLContext):
    """A client context that offers its last remembered session on each new handshake."""

    resume_session: ssl.SSLSession | None = None

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO,
                 server_side: bool = False, server_hostname: str | bytes | None = None,
                 session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        return super().wrap_bio(incoming, outgoing, server_side=server_side,
                                server_hostname=server_hostname,
                                session=session or self.resume_session)

    def remember(self, ssl_object: Any) -> bool:
        """Keep the session of a connection (a bound one: TLS 1.3 tickets arrive after the
        handshake) for the next handshake; returns whether that connection was resumed."""
        session = getattr(ssl_object, "session", None)
        if session is not None:
            self.resume_session = session
        return bool(getattr(ssl_object, "session_reused", False))


def _no_password() -> NoReturn:
    # Without a callback OpenSSL would prompt on the terminal and hang the gateway.
    raise TlsSetupError("key", "is encrypted; give an unencrypted PEM key file")


def _load_ca(ctx: ssl.SSLContext, key: str, path: str) -> None:
    try:
        ctx.load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        raise TlsSetupError(key, f"no PEM certificate in {path} ({exc.reason or exc})"
                            ) from None
    except OSError as exc:
        raise TlsSetupError(key, f"cannot read {path}: {exc.strerror or exc}") from None


def _load_pair(ctx: ssl.SSLContext, cert: str, key: str) -> None:
    try:
        ctx.load_cert_chain(cert, key, password=_no_password)
    except TlsSetupError as exc:
        raise TlsSetupError("key", f"{key} {exc.reason}") from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TlsSetupError("key", f"{key} is not the key of the certificate in {cert}"
                                ) from None
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # which of the two is unreadable?
        _load_ca(probe, "cert", cert)
        raise TlsSetupError("key", f"no PEM private key in {key} ({exc.reason or exc})"
                            ) from None
    except OSError as exc:
        raise TlsSetupError("cert", f"cannot read {cert} or {key}: {exc.strerror or exc}"
                            ) from None


def verifying_context(ca: str = "", min_version: TlsVersion = "1.2", *, key: str = "ca",
                      cls: type[ssl.SSLContext] = ssl.SSLContext) -> ssl.SSLContext:
    """A client context that verifies the peer's certificate and name, against the PEM
    bundle ``ca`` or (``""``) the system trust store; ``key`` names the setting in errors."""
    ctx = cls(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname by default
    ctx.minimum_version = _VERSIONS[min_version]
    if ca:
        _load_ca(ctx, key, ca)
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    return ctx


def client_context(op: OperatorConfig) -> OperatorContext:
    """The TLS context toward operator ``op`` (``TlsSetupError`` names the bad key)."""
    if op.verify:
        ctx = verifying_context(op.ca, op.min_version, cls=OperatorContext)
    else:
        ctx = OperatorContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = _VERSIONS[op.min_version]
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    assert isinstance(ctx, OperatorContext)
    if op.cert:
        _load_pair(ctx, op.cert, op.key)
    return ctx


def check_operator_tls(cfg: GatewayConfig) -> list[str]:
    """One line per operator TLS setting that cannot be used, ``operators[i].key: reason``."""
    problems: list[str] = []
    for i, op in enumerate(cfg.operators):
        if op.tls:
            try:
                client_context(op)
            except TlsSetupError as exc:
                problems.append(f"operators[{i}].{exc}")
    return problems


class OperatorContexts:
    """Each operator's context, built on first use and kept while its config is the same.

    A changed ``OperatorConfig`` gets a new context on its next ``get``; ``refresh`` rebuilds
    them all (a reload whose files changed under the same names): new handshakes use the new
    ones, open connections keep theirs.
    """

    def __init__(self) -> None:
        self._built: dict[str, tuple[OperatorConfig, OperatorContext]] = {}

    def get(self, op: OperatorConfig) -> OperatorContext:
        """``op``'s context (``TlsSetupError`` when its files cannot be used)."""
        built = self._built.get(op.name)
        if built is not None and built[0] == op:
            return built[1]
        ctx = client_context(op)
        self._built[op.name] = (op, ctx)
        return ctx

    def refresh(self, operators: tuple[OperatorConfig, ...] | list[OperatorConfig]
                ) -> list[str]:
        """Rebuild the contexts of ``operators`` (the TLS ones) from their files; forget the
        others. Returns one line per problem; an operator whose files fail keeps the context
        it had, if any (validate first with ``check_operator_tls``)."""
        problems: list[str] = []
        built: dict[str, tuple[OperatorConfig, OperatorContext]] = {}
        for i, op in enumerate(operators):
            if not op.tls:
                continue
            try:
                built[op.name] = (op, client_context(op))
            except TlsSetupError as exc:
                problems.append(f"operators[{i}].{exc}")
                if op.name in self._built:
                    built[op.name] = self._built[op.name]
        self._built = built
        return problems
