"""``make run``: the gateway with the bundled simulator as its operator, ready for a client.

Starts ``smsc-sim`` (the operator SMSC simulator) as a child process from
``config/examples/simulator.toml``, waits until it listens, then runs the gateway from
``config/examples/smsc.toml`` in this process with its store under ``./var``. Ctrl-C stops
both; the simulator is always stopped by PID. Bind a client to 127.0.0.1:2775 as demo/demo.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec

from config import ConfigError, load_gateway_config

from .cli import run_gateway

__all__ = ["main", "start_simulator", "stop_child"]

_EXAMPLES = Path(__file__).resolve().parent.parent / "config" / "examples"


def start_simulator() -> subprocess.Popen[str]:
    """The simulator of config/examples/simulator.toml as a child process, listening."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.simulator", "--config", str(_EXAMPLES / "simulator.toml")],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        print(line.rstrip(), flush=True)
        if "listening on" in line:
            return proc
    proc.kill()
    proc.wait(5)
    raise RuntimeError("the simulator did not start (is port 2776 in use?)")


def main() -> int:
    try:
        cfg = load_gateway_config(_EXAMPLES / "smsc.toml")
    except ConfigError as exc:
        print(f"smsc demo: {exc}", file=sys.stderr)
        return 2
    store_path = Path.cwd() / "var" / "smsc.db"
    cfg = msgspec.structs.replace(
        cfg, store=msgspec.structs.replace(cfg.store, path=str(store_path)))
    import logging

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        sim = start_simulator()
    except RuntimeError as exc:
        print(f"smsc demo: {exc}", file=sys.stderr)
        return 2
    try:
        print(f"demo: bind an SMPP client to {cfg.listen.host}:{cfg.listen.port} "
              f"as system_id=demo password=demo; receipts come back from the simulator. "
              f"HTTP: POST http://{cfg.http.host}:{cfg.http.port}/v1/messages with "
              f"Authorization: Bearer demo-token; dashboard: "
              f"http://{cfg.http.host}:{cfg.http.port}/dashboard. Ctrl-C to stop.", flush=True)
        # SIGHUP (``smsc reload --config config/examples/smsc.toml``) rereads the example.
        return run_gateway(cfg, str(_EXAMPLES / "smsc.toml"))
    finally:
        stop_child(sim, 5.0)


def stop_child(proc: subprocess.Popen[str] | subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM ``proc`` by PID unless it exited; SIGKILL it after ``grace_s``; reap it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


if __name__ == "__main__":
    sys.exit(main())
