"""``smsc-sim``: run the operator SMSC simulator until SIGINT or SIGTERM.

Prints one line, ``smsc-sim listening on HOST:PORT`` (plus the control endpoint when one is
configured), then serves. A bad config or a port in use is one line on stderr and exit code
2, never a traceback. Uses uvloop when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec

from config.errors import ConfigError
from config.simulator import SimulatorConfig, load_simulator_config

from .server import Simulator

__all__ = ["main"]

_PROG = "smsc-sim"


def default_config_path() -> str:
    """The bundled example, ``config/examples/simulator.toml``."""
    import config

    return str(Path(config.__file__).resolve().parent / "examples" / "simulator.toml")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_PROG, description="Operator SMSC simulator (SMPP 3.4)")
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="simulator TOML config (default: the bundled example)")
    parser.add_argument("--port", type=int, default=None, metavar="N",
                        help="SMPP port, overrides the config (0 = any free port)")
    parser.add_argument("--control-port", type=int, default=None, metavar="N",
                        help="HTTP JSON report port, overrides the config (0 = none)")
    parser.add_argument("--cert", default=None, metavar="FILE",
                        help="PEM certificate chain: the SMPP port speaks TLS (with --key)")
    parser.add_argument("--key", default=None, metavar="FILE",
                        help="PEM private key of --cert")
    parser.add_argument("--client-ca", default=None, metavar="FILE",
                        help="require client certificates signed by this PEM CA bundle")
    return parser


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _serve(cfg: SimulatorConfig) -> None:
    sim = Simulator(cfg)
    await sim.start()
    line = f"{_PROG} listening on {cfg.host}:{sim.port}"
    if cfg.tls:
        line += " (TLS" + (", client certificates required)" if cfg.client_ca else ")")
    if sim.control_port:
        line += f" (control http://127.0.0.1:{sim.control_port}/stats)"
    print(line, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop(grace_s=1.0)  # a second signal meanwhile only sets the event again
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    path = args.config or default_config_path()
    try:
        cfg = load_simulator_config(path)
        overrides = {}
        if args.port is not None:
            overrides["port"] = args.port
        if args.control_port is not None:
            overrides["control_port"] = args.control_port
        for key in ("cert", "key", "client_ca"):
            if getattr(args, key) is not None:
                overrides[key] = str(Path(getattr(args, key)).resolve())
        if overrides:
            cfg = msgspec.convert({**msgspec.structs.asdict(cfg), **overrides},
                                  SimulatorConfig, from_attributes=True)
    except ConfigError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 2
    except msgspec.ValidationError as exc:
        print(f"{_PROG}: command line: {exc}", file=sys.stderr)
        return 2
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve(cfg))
    except ConfigError as exc:  # a TLS file that cannot be used
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(f"{_PROG}: cannot listen on {cfg.host}:{cfg.port}: {reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
