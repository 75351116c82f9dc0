"""``make cluster``: the gateway as three nodes on a three-server NATS JetStream cluster, with
the bundled simulator as their operator, all on loopback, for a newcomer to try.

Starts the NATS servers of ``config/examples/cluster/nats-{1,2,3}.conf`` (JetStream with
``sync_interval: always``; stores under ``var/cluster/nats-N``), the simulator of
``config/examples/simulator.toml``, and three ``smsc serve`` processes from
``config/examples/cluster/gw-{1,2,3}.toml`` (replicas ``var/cluster/gwN.db``), each waited for
until it listens. Ctrl-C (or SIGTERM) stops the gateways, then the simulator, then the
servers, every one by PID. Ports: SMPP 2775 / 2785 / 2795, HTTP 8081 / 8082 / 8083, NATS
4222 / 4223 / 4224.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from smsc.demo import start_simulator, stop_child

from .natsd import NatsCluster, NatsHarnessError, NodePorts

__all__ = ["main"]

EXAMPLES = Path(__file__).resolve().parent.parent / "config" / "examples" / "cluster"
NODES = 3
START_S = 60.0  # for one gateway node to join the cluster and listen


def _nats_configs() -> list[tuple[Path, NodePorts]]:
    return [(EXAMPLES / f"nats-{i}.conf", NodePorts(4221 + i, 6221 + i, 8221 + i))
            for i in range(1, NODES + 1)]


def _start_gateway(i: int, logs: Path) -> subprocess.Popen[bytes]:
    """``smsc serve`` for node ``gw<i>``, its log in ``logs``; returns once it listens."""
    log_path = logs / f"gw{i}.log"
    start = log_path.stat().st_size if log_path.exists() else 0  # earlier runs' lines stay

    def this_run() -> str:
        with log_path.open("rb") as f:
            f.seek(start)
            return f.read().decode(errors="replace")

    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "smsc", "serve", "--config", str(EXAMPLES / f"gw-{i}.toml")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if "smsc listening on " in this_run():
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    stop_child(proc, 15.0)
    tail = this_run().strip().splitlines()[-1:] or ["(no output)"]
    raise RuntimeError(f"gateway node gw{i} did not start: {tail[0]} (log: {log_path})")


def main() -> int:
    var = Path.cwd() / "var" / "cluster"
    var.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    nats = NatsCluster(var, size=NODES)
    gateways: list[subprocess.Popen[bytes]] = []
    sim: subprocess.Popen[str] | None = None
    try:
        nats.start_from(_nats_configs())
        print(f"cluster: NATS {nats.version} on {', '.join(nats.servers)} (JetStream, "
              "sync_interval: always)", flush=True)
        sim = start_simulator()
        for i in range(1, NODES + 1):
            gateways.append(_start_gateway(i, var))
            print(f"cluster: node gw{i} up: SMPP 127.0.0.1:{2765 + 10 * i}, HTTP "
                  f"http://127.0.0.1:{8080 + i} (log var/cluster/gw{i}.log)", flush=True)
        print("cluster: bind an SMPP client to any node as demo/demo (a receiver on one, a "
              "transmitter on another: the receipts find the receiver), or POST "
              "/v1/messages to any node with Authorization: Bearer demo-token. Kill a node "
              "(kill -9 the PID in var/cluster/gwN.pid) to watch another take over. Ctrl-C "
              "to stop.", flush=True)
        gone: set[int] = set()
        while not stop.wait(0.5):
            for i, proc in enumerate(gateways, 1):
                if proc.poll() is not None and i not in gone:
                    gone.add(i)
                    print(f"cluster: node gw{i} exited ({proc.returncode}); the others "
                          "carry on", flush=True)
            if len(gone) == len(gateways):
                return 1
    except KeyboardInterrupt:
        return 0
    except (NatsHarnessError, RuntimeError) as error:
        print(f"make cluster: {error}", file=sys.stderr)
        return 2
    finally:
        for proc in reversed(gateways):
            stop_child(proc, 15.0)
        if sim is not None:
            stop_child(sim, 5.0)
        with contextlib.suppress(NatsHarnessError):
            nats.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
