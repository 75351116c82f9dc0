"""Live config reload: what a new config may change while the gateway runs, and the one entry
point the signal handler and ``smsc reload`` use.

``SIGHUP`` (sent by ``smsc reload``) rereads the config file. A file that does not load, or
whose certificates and keys do not, changes nothing: each problem is logged as one line, as
``smsc check-config`` prints it. A good one is applied by ``Gateway.reload``: certificates
(new handshakes), tenants, operators and routes. A few keys are fixed for the life of the
process (listening addresses, the store, the metrics endpoint, the HTTP body limit): a change
to them is kept for the next start and logged as such, and the running gateway goes on with
the old values, so its config stays whole.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import msgspec

from config import ConfigError, GatewayConfig, load_gateway_config
from esme import Pool
from routing.admission import Admission
from routing.inbound import Inbound
from routing.router import Router

from .bans import Bans
from .delivery import Delivery
from .http import HttpApi, SendService
from .tenant import TenantHandler
from .tls import ServerTls, check_tls
from .webhooks import WebhookSender

__all__ = ["ReloadError", "apply_config", "changes", "fixed_keys", "keep_fixed", "reload_from",
           "signal_gateway"]

log = logging.getLogger("smsc.reload")


class ReloadError(Exception):
    """A new config that cannot be applied; ``problems`` are one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


# The webhook client's pool is built once with its timeout.
_FIXED_HTTP = ("enabled", "host", "port", "max_body_bytes", "webhook_timeout_s")
_FIXED_TLS = ("enabled", "host", "port", "handshake_timeout_s")


def fixed_keys(old: GatewayConfig, new: GatewayConfig) -> list[str]:
    """The keys whose change needs a restart (empty when none changed)."""
    out: list[str] = []
    for table in ("listen", "store", "metrics"):
        a, b = getattr(old, table), getattr(new, table)
        out += [f"[{table}] {f}" for f in a.__struct_fields__ if getattr(a, f) != getattr(b, f)]
    out += [f"[http] {f}" for f in _FIXED_HTTP if getattr(old.http, f) != getattr(new.http, f)]
    if (old.listen_tls is None) != (new.listen_tls is None):
        out.append("[listen_tls]")
    elif old.listen_tls is not None and new.listen_tls is not None:
        out += [f"[listen_tls] {f}" for f in _FIXED_TLS
                if getattr(old.listen_tls, f) != getattr(new.listen_tls, f)]
    if (old.http.cert and not new.http.cert) or (new.http.cert and not old.http.cert):
        out.append("[http] cert (switching HTTPS on or off)")
    if old.pid_file != new.pid_file:
        out.append("pid_file")
    return out


def keep_fixed(old: GatewayConfig, new: GatewayConfig) -> GatewayConfig:
    """``new`` with the restart-only keys of ``old`` (what the running gateway applies)."""
    http = msgspec.structs.replace(new.http, **{f: getattr(old.http, f) for f in _FIXED_HTTP})
    if bool(old.http.cert) != bool(new.http.cert):
        http = msgspec.structs.replace(http, cert=old.http.cert, key=old.http.key)
    listen_tls = old.listen_tls
    if old.listen_tls is not None and new.listen_tls is not None:
        listen_tls = msgspec.structs.replace(
            new.listen_tls, **{f: getattr(old.listen_tls, f) for f in _FIXED_TLS})
    return msgspec.structs.replace(new, listen=old.listen, store=old.store,
                                   metrics=old.metrics, http=http, listen_tls=listen_tls,
                                   pid_file=old.pid_file)


def _named(items: Sequence[msgspec.Struct], key: str) -> dict[str, msgspec.Struct]:
    return {getattr(item, key): item for item in items}


def changes(old: GatewayConfig, new: GatewayConfig) -> list[str]:
    """What a reload changes, one line each (for the log; never a secret's value)."""
    out: list[str] = []
    for what, table, key in (("tenant", "tenants", "system_id"),
                             ("operator", "operators", "name")):
        a, b = _named(getattr(old, table), key), _named(getattr(new, table), key)
        out += [f"{what} {n} added" for n in b.keys() - a.keys()]
        out += [f"{what} {n} removed" for n in a.keys() - b.keys()]
        out += [f"{what} {n} changed" for n in a.keys() & b.keys() if a[n] != b[n]]
    if old.routes != new.routes:
        out.append(f"routes: {len(old.routes)} -> {len(new.routes)}")
    for table in ("http", "auth", "listen_tls"):
        if getattr(old, table) != getattr(new, table):
            out.append(f"[{table}] changed")
    return sorted(out)


class Reloadable(Protocol):
    """What a reload changes in the running gateway (``smsc.app.Gateway``)."""

    config: GatewayConfig
    reloads: dict[str, int]

    @property
    def smpp_tls(self) -> ServerTls | None: ...
    @property
    def http_tls(self) -> ServerTls | None: ...
    @property
    def admission(self) -> Admission: ...
    @property
    def router(self) -> Router: ...
    @property
    def pool(self) -> Pool | None: ...
    @property
    def inbound(self) -> Inbound: ...
    @property
    def handler(self) -> TenantHandler: ...
    @property
    def bans(self) -> Bans: ...
    @property
    def delivery(self) -> Delivery: ...
    @property
    def sending(self) -> SendService: ...
    @property
    def http_api(self) -> HttpApi: ...
    @property
    def webhooks(self) -> WebhookSender: ...

    async def start_pool(self) -> None:
        """Start the ESME pool (the first operators came with this reload)."""
        ...


async def apply_config(gw: Reloadable, new: GatewayConfig) -> list[str]:
    """Apply ``new`` to the running gateway ``gw`` (``Gateway.reload`` serialises calls);
    returns what changed. ``ReloadError`` (certificates, keys or CAs that do not load, one
    line each, ``smsc.tls.check_tls``) before anything changed."""
    old = gw.config
    problems = check_tls(new)  # the operators' files included
    if problems:
        raise ReloadError(problems)
    notes = [f"{key}: changed in the file; takes effect at the next start"
             for key in fixed_keys(old, new)]
    cfg = keep_fixed(old, new)
    notes += changes(old, cfg)
    # New handshakes use the new certificates (checked just above); open sessions keep theirs.
    if gw.smpp_tls is not None and cfg.listen_tls is not None:
        gw.smpp_tls.reload_from(cfg.listen_tls)
    if gw.http_tls is not None and cfg.http.cert:
        gw.http_tls.reload_from(cfg.http)
    gw.config = cfg
    gw.admission.reconfigure(cfg)
    gw.router.reconfigure(cfg)
    if gw.pool is not None:
        gw.inbound.reconfigure(cfg.tenants)
        # Certificates replaced under the same file names: the next handshakes read them.
        gw.pool.tls.refresh(cfg.operators)
        notes += gw.pool.reconfigure(cfg)
    elif cfg.operators:
        await gw.start_pool()
    notes += gw.handler.reconfigure(cfg)
    gw.bans.reconfigure(cfg.auth)
    gw.delivery.reconfigure({t.system_id: t for t in cfg.tenants})
    gw.sending.reconfigure(cfg)
    gw.http_api.reconfigure(cfg)
    gw.webhooks.reconfigure(list(cfg.tenants), cfg.http)
    gw.reloads["applied"] += 1
    return notes


async def reload_from(path: str, apply: Callable[[GatewayConfig], Awaitable[list[str]]]
                      ) -> bool:
    """Load ``path`` and ``apply`` it; True when applied. Every problem is one log line."""
    try:
        new = load_gateway_config(path)
    except ConfigError as exc:
        log.error("reload refused, nothing changed: %s", exc)
        return False
    try:
        notes = await apply(new)
    except ReloadError as exc:
        for problem in exc.problems:
            log.error("reload refused, nothing changed: %s", problem)
        return False
    for note in notes:
        log.info("reload: %s", note)
    log.info("reload: %s applied", path)
    return True


def signal_gateway(pid_file: str) -> int:
    """Send SIGHUP to the gateway whose PID is in ``pid_file``; returns that PID. Raises
    ``OSError`` with a one-line reason a user can act on."""
    if not pid_file:
        raise OSError("pid_file is empty in the config: send SIGHUP to the gateway yourself")
    try:
        with open(pid_file, encoding="ascii") as f:
            pid = int(f.read().strip())
    except FileNotFoundError:
        raise OSError(f"{pid_file} does not exist: is the gateway running "
                      "(smsc serve with this config)?") from None
    except ValueError:
        raise OSError(f"{pid_file} does not hold a PID") from None
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise OSError(f"no process {pid} (from {pid_file}): the gateway is not running"
                      ) from None
    return pid
