"""The ``smsc`` command: ``smsc serve --config FILE``, ``smsc check-config FILE``, ``smsc
reload --config FILE`` (check it, then SIGHUP the running gateway: it rereads the file) and
``smsc api-key new`` (a fresh HTTP API token and the ``api_keys`` line to paste), ``smsc
hash-password [--stdin]`` (the ``password_hash`` line for a tenant's SMPP password), ``smsc
copy-replica SOURCE TARGET`` (a cluster node's store, copied while it runs, to start another
node from: routing.sqlite.copy).

Errors a user can hit (bad config, port in use, unwritable store) are one line on stderr and
exit code 2, never a traceback; a port that cannot be bound names its config key
(``[listen] port``, ``[metrics] port``...). SIGTERM or SIGINT stops gracefully (stop
accepting, unbind operators and tenants, flush the store), also while starting; a second
signal exits at once.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from config import ConfigError, GatewayConfig, load_gateway_config
from routing import StoreError
from routing.nats.provision import ClusterError
from routing.sqlite.copy import CopyError, copy_store

from .app import Gateway
from .credentials import credential_warnings, read_new_password
from .http import new_api_key
from .listeners import ListenError
from .passwords import hash_password
from .pidfile import pid_file
from .reload import reload_from, signal_gateway
from .tls import TlsError, check_tls

__all__ = ["main", "run_gateway"]

log = logging.getLogger("smsc")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smsc", description="SMPP 3.4 gateway")
    sub = p.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", "-c", required=True, help="gateway TOML file")
    serve.add_argument("--log-level", default="INFO")
    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("file")
    reload = sub.add_parser("reload", help="check a config, then make the running gateway "
                            "reread it (SIGHUP to the PID in its pid_file)")
    reload.add_argument("--config", "-c", required=True, help="gateway TOML file")
    key = sub.add_parser("api-key", help="HTTP API tokens")
    key.add_argument("action", choices=["new"], help="new: print a fresh token and its hash")
    hashing = sub.add_parser("hash-password", help="print the password_hash line for a "
                             "tenant's SMPP password (typed at a prompt)")
    hashing.add_argument("--stdin", action="store_true",
                         help="read the password from the first line of stdin instead")
    copy = sub.add_parser("copy-replica", help="copy a cluster node's store (while it "
                          "runs) to a new file, to start a node from")
    copy.add_argument("source", help="the running node's [store] path")
    copy.add_argument("target", help="a new file: the other node's [store] path")
    return p


def _copy_replica(source: str, target: str) -> int:
    try:
        at = copy_store(source, target)
    except CopyError as exc:
        print(f"smsc: copy-replica: {exc}", file=sys.stderr)
        return 2
    where = f"at log entry {at}" if at is not None else "not a cluster replica"
    print(f"copied {source} to {target} ({where}); start the node on it")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        try:
            cfg = load_gateway_config(args.file)
        except ConfigError as exc:
            print(f"smsc: {exc}", file=sys.stderr)
            return 2
        problems = check_tls(cfg)
        for problem in problems:
            print(f"smsc: {args.file}: {problem}", file=sys.stderr)
        if problems:
            return 2
        for warning in credential_warnings(cfg):
            print(f"warning: {warning}", file=sys.stderr)
        print(f"{args.file}: ok ({len(cfg.tenants)} tenants, {len(cfg.operators)} operators, "
              f"{len(cfg.routes)} routes)")
        return 0
    if args.command == "api-key":
        token, entry = new_api_key()
        print(f"token (give it to the tenant; it is not stored anywhere): {token}")
        print(f'config line for the tenant: api_keys = ["{entry}"]')
        return 0
    if args.command == "hash-password":
        try:
            password = read_new_password(args.stdin)
        except (ValueError, EOFError) as exc:
            print(f"smsc: hash-password: {exc or 'no password given'}", file=sys.stderr)
            return 2
        print(f'password_hash = "{hash_password(password)}"')
        return 0
    if args.command == "reload":
        return _reload(args.config)
    if args.command == "copy-replica":
        return _copy_replica(args.source, args.target)
    if args.command != "serve":
        _parser().print_help()
        return 2
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_gateway_config(args.config)
    except ConfigError as exc:
        print(f"smsc: {exc}", file=sys.stderr)
        return 2
    return run_gateway(cfg, args.config)


def _reload(path: str) -> int:
    """``smsc reload``: the file must load (else nothing is sent), then SIGHUP."""
    try:
        cfg = load_gateway_config(path)
    except ConfigError as exc:
        print(f"smsc: {exc} — nothing was reloaded", file=sys.stderr)
        return 2
    try:
        pid = signal_gateway(cfg.pid_file)
    except OSError as exc:
        print(f"smsc: cannot reload: {exc}", file=sys.stderr)
        return 2
    print(f"asked gateway {pid} to reload {path} (its log says what changed)")
    return 0


def run_gateway(cfg: GatewayConfig, path: str | None = None) -> int:
    """Run until a signal; returns the process exit code."""
    runner: Callable[..., Any]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency
        runner = asyncio.run
    try:
        return int(runner(_serve(cfg, path)))
    except KeyboardInterrupt:
        return 130


async def _serve(cfg: GatewayConfig, path: str | None) -> int:
    gateway = Gateway(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            log.warning("second signal: exiting now")
            os._exit(1)
        log.info("signal received: stopping (send again to exit at once)")
        stop.set()

    reloads: set[asyncio.Task[bool]] = set()
    ready = False  # started (every door listening): a reload may apply

    def on_hangup() -> None:
        if path is None or not ready:
            log.warning("SIGHUP ignored: %s", "no config file" if path is None
                        else "the gateway is still starting")
            return
        log.info("SIGHUP: reloading %s", path)
        task = loop.create_task(reload_from(path, gateway.reload), name="reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    try:
        code = await _start(gateway, stop)
        if code is not None:
            return code
        if not stop.is_set():
            # What is alive now (modules, config, routes) lives as long as the process: move
            # it out of the cyclic collector's full collections, which otherwise walk it all
            # and stall the loop for tens of milliseconds every few seconds under load.
            gc.collect()
            gc.freeze()
            # Young collections: the HTTP door allocates a few hundred short-lived objects
            # per request (nearly all freed by reference counting); at the default
            # threshold of 700 the collector ran every couple of requests.
            gc.set_threshold(20_000, 10, 10)
            # The pid file first: the banner says "ready", and ``smsc reload`` needs the file.
            with pid_file(cfg.pid_file):
                ready = True
                print(_banner(cfg, gateway), flush=True)
                await stop.wait()
            ready = False  # stopping: a SIGHUP from here is ignored
        for task in list(reloads):
            task.cancel()
        await gateway.stop()
        return 0
    finally:
        # Nothing is left to stop gracefully: from here a signal has its default effect, so
        # whatever still runs at exit cannot make the process ignore SIGTERM.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)


async def _start(gateway: Gateway, stop: asyncio.Event) -> int | None:
    """Start ``gateway``; None once it runs, else the exit code. A signal while starting
    cancels the start, which undoes what it had started (exit 0). A failure is one line on
    stderr and exit 2 (the failed start has undone itself: nothing keeps the loop alive)."""
    starting = asyncio.create_task(gateway.start(), name="gateway-start")
    signalled = asyncio.create_task(stop.wait(), name="stop-signal")
    await asyncio.wait({starting, signalled}, return_when=asyncio.FIRST_COMPLETED)
    signalled.cancel()
    if not starting.done():
        starting.cancel()
        await asyncio.wait({starting})
    try:
        starting.result()
    except asyncio.CancelledError:
        log.info("stopped while starting")
        return 0
    except StoreError as exc:
        print(f"smsc: {exc} — check [store] path", file=sys.stderr)
        return 2
    except (ListenError, TlsError) as exc:
        print(f"smsc: {exc}", file=sys.stderr)
        return 2
    except ClusterError as exc:  # [cluster]: the servers or streams cannot carry it
        print(f"smsc: [cluster]: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"smsc: cannot start: {exc}", file=sys.stderr)
        return 2
    return None


def _banner(cfg: GatewayConfig, gateway: Gateway) -> str:
    """The "smsc listening on HOST:PORT, ..." line (tests read the first address: the plain
    SMPP port, or the TLS one when ``[listen]`` is off)."""
    parts = []
    if cfg.listen.enabled:
        parts.append(f"{cfg.listen.host}:{gateway.port}")
    if cfg.listen_tls is not None and gateway.tls_port:
        tls = f"{cfg.listen_tls.host}:{gateway.tls_port}"
        parts.append(f"tls on {tls}" if parts else f"{tls} (tls)")
    if cfg.http.enabled:
        parts.append(f"http on {cfg.http.host}:{gateway.http_port}"
                     + (" (https)" if cfg.http.cert else ""))
    if cfg.metrics.enabled:
        parts.append(f"metrics on {cfg.metrics.host}:{gateway.metrics_port}/metrics")
    return "smsc listening on " + ", ".join(parts)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
