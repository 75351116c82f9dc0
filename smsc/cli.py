"""The ``smsc`` command: ``smsc serve --config FILE`` and ``smsc check-config FILE``.

Errors a user can hit (bad config, port in use, unwritable store) are one line on stderr and
exit code 2, never a traceback. SIGTERM or SIGINT stops gracefully (stop accepting, unbind
tenants, flush the store); a second signal exits at once.
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

from .app import Gateway

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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        try:
            cfg = load_gateway_config(args.file)
        except ConfigError as exc:
            print(f"smsc: {exc}", file=sys.stderr)
            return 2
        print(f"{args.file}: ok ({len(cfg.tenants)} tenants, {len(cfg.operators)} operators, "
              f"{len(cfg.routes)} routes)")
        return 0
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
    return run_gateway(cfg)


def run_gateway(cfg: GatewayConfig) -> int:
    """Run until a signal; returns the process exit code."""
    runner: Callable[..., Any]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency
        runner = asyncio.run
    try:
        return int(runner(_serve(cfg)))
    except KeyboardInterrupt:
        return 130


async def _serve(cfg: GatewayConfig) -> int:
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

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        await gateway.start()
    except StoreError as exc:
        print(f"smsc: {exc} — check [store] path", file=sys.stderr)
        return 2
    except OSError as exc:
        listen = cfg.listen
        print(f"smsc: cannot listen on {listen.host}:{listen.port} or metrics "
              f"{cfg.metrics.host}:{cfg.metrics.port}: {exc.strerror or exc} — change the port "
              "in the config or stop the process using it", file=sys.stderr)
        await gateway.stop(timeout=0.5)
        return 2
    # What is alive now (modules, config, routes) lives as long as the process: move it out of
    # the cyclic collector's full collections, which otherwise walk it all and stall the loop
    # for tens of milliseconds every few seconds under load.
    gc.collect()
    gc.freeze()
    print(f"smsc listening on {cfg.listen.host}:{gateway.port}"
          + (f", metrics on {cfg.metrics.host}:{gateway.metrics_port}/metrics"
             if cfg.metrics.enabled else ""), flush=True)
    await stop.wait()
    await gateway.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
