"""The simulator's TLS server context (``cert``/``key``/``client_ca`` of its config).

An operator that requires SMPP over TLS, for tests, ``make bench`` and trying the gateway's
``[[operators]] tls = true`` locally: TLS 1.2 or later (RFC 8996), and with ``client_ca`` a
client certificate signed by it is required (RFC 8446 section 4.3.2, CertificateRequest).
A file that cannot be used raises ``ConfigError`` naming the key.
"""

from __future__ import annotations

import ssl

from config.errors import ConfigError
from config.simulator import SimulatorConfig

__all__ = ["server_context"]


def server_context(cfg: SimulatorConfig) -> ssl.SSLContext | None:
    """The context to listen with, or None when the simulator speaks plain TCP."""
    if not cfg.tls:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cfg.cert, cfg.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("simulator config", "cert", f"cannot use {cfg.cert} with {cfg.key}: "
                          f"{getattr(exc, 'reason', None) or exc}") from None
    if cfg.client_ca:
        try:
            ctx.load_verify_locations(cafile=cfg.client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError("simulator config", "client_ca", f"cannot use "
                              f"{cfg.client_ca}: {getattr(exc, 'reason', None) or exc}"
                              ) from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
