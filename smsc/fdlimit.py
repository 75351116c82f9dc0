"""The open-file limit and the tenant connection ceiling it allows.

Every tenant connection is one file descriptor, and so is everything else the gateway
holds: the store (database, WAL, shared memory), the listening sockets, the binds to
operators, HTTP requests and webhook deliveries, the event loop's own. With the usual soft
limit of 1,024 and ``[listen] max_connections = 10000``, about a thousand idle connections
used to exhaust the descriptors: accept failed (uvloop even drops such connections without
a word) and a good tenant could not connect.

At start ``raise_open_file_limit`` lifts the soft ``RLIMIT_NOFILE`` to the hard one (never
lowering it), ``gateway_fd_needs`` estimates what the gateway keeps for itself and
``connection_ceiling`` is what is left for tenant connections, capped by
``max_connections``. The listener never holds more tenant connections than the ceiling
(``smsc.flood``), so accept does not run out of descriptors.
"""

from __future__ import annotations

import logging
import os
import resource
from typing import NamedTuple

from config import GatewayConfig

__all__ = ["OpenFiles", "Ceiling", "raise_open_file_limit", "open_fd_count",
           "gateway_fd_needs", "connection_ceiling", "log_ceiling", "plan_connection_ceiling"]

log = logging.getLogger("smsc.listener")

# Descriptors of the process besides the ones counted below (stdio, the loop's selector and
# self-pipe, the resolver, imported libraries' files) when they cannot be counted.
_BASE_FDS = 32
# HTTP requests served at once (the HTTP door does not cap them) and metrics scrapes.
_HTTP_FDS = 64
_METRICS_FDS = 4
# Slack for what is briefly open twice (a connection being closed while another is
# accepted, a store checkpoint) and for what the estimate misses.
_MARGIN_FDS = 32
# Where the soft limit goes when the hard one is unlimited (Linux refuses RLIM_INFINITY
# for RLIMIT_NOFILE beyond fs.nr_open, 1,048,576 by default).
_UNLIMITED_TARGET = 1_048_576


class OpenFiles(NamedTuple):
    """``RLIMIT_NOFILE`` before and after ``raise_open_file_limit``."""

    before: int
    soft: int
    hard: int


class Ceiling(NamedTuple):
    """The tenant connection ceiling and how it was reached."""

    connections: int  # min(max_connections, open-file limit - gateway's own)
    max_connections: int
    limits: OpenFiles
    gateway_fds: int

    @property
    def limited_by_files(self) -> bool:
        return self.max_connections > self.connections


def _finite(value: int) -> int:
    return _UNLIMITED_TARGET if value == resource.RLIM_INFINITY else value


def raise_open_file_limit() -> OpenFiles:
    """Raise the soft open-file limit to the hard one; never lowers it. A refusal by the
    system (a container's policy) keeps the soft limit as it is."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(_finite(soft), _UNLIMITED_TARGET)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft,
                        target, exc)
    now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return OpenFiles(before=_finite(soft), soft=_finite(now), hard=_finite(hard))


def open_fd_count() -> int | None:
    """Descriptors the process has open now (Linux, macOS), None where it cannot tell."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder)) - 1  # the listing's own descriptor
        except OSError:
            continue
    return None


def gateway_fd_needs(cfg: GatewayConfig, already_open: int | None) -> int:
    """Descriptors the gateway needs besides tenant connections: what is open now (or a
    base estimate), its listening sockets, one spare for the listener, operator binds,
    HTTP requests, webhook deliveries, metrics scrapes and a margin."""
    listening = 1 + int(cfg.tls_listening) + int(cfg.http.enabled) + int(cfg.metrics.enabled)
    operators = sum(op.binds * (2 if op.bind == "transmitter+receiver" else 1)
                    for op in cfg.operators)
    webhooks = cfg.http.webhook_concurrency * sum(1 for t in cfg.tenants if t.webhook_url)
    return (max(already_open or 0, _BASE_FDS) + listening + 1 + operators
            + (_HTTP_FDS if cfg.http.enabled else 0) + webhooks
            + (_METRICS_FDS if cfg.metrics.enabled else 0) + _MARGIN_FDS)


def connection_ceiling(max_connections: int, limits: OpenFiles, gateway_fds: int) -> Ceiling:
    """min(max_connections, open-file soft limit - gateway_fds), at least 1."""
    by_files = max(1, limits.soft - gateway_fds)
    return Ceiling(min(max_connections, by_files), max_connections, limits, gateway_fds)


def log_ceiling(ceiling: Ceiling) -> None:
    """One line with the effective ceiling; a warning when max_connections is above it."""
    limits = ceiling.limits
    raised = f", raised from {limits.before}" if limits.soft > limits.before else ""
    log.info("tenant connections: ceiling %d (max_connections %d; open-file limit %d%s, "
             "%d kept for the gateway itself)", ceiling.connections, ceiling.max_connections,
             limits.soft, raised, ceiling.gateway_fds)
    if ceiling.limited_by_files:
        log.warning("[listen] max_connections = %d is above what the open-file limit of %d "
                    "allows (%d): raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) or "
                    "lower [listen] max_connections", ceiling.max_connections,
                    limits.soft, ceiling.connections)


def plan_connection_ceiling(cfg: GatewayConfig) -> Ceiling:
    """At start: raise the soft limit and compute the ceiling for ``cfg`` (``log_ceiling``
    says it once the gateway has started)."""
    return connection_ceiling(cfg.listen.max_connections, raise_open_file_limit(),
                              gateway_fd_needs(cfg, open_fd_count()))
