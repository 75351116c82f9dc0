"""Start and stop the simulator and the gateway as subprocesses, always by PID.

``Stack`` is a context manager: it makes a temporary directory (configs, store, logs),
starts ``python -m bench.simulator`` on a free port of 127.0.0.1, then ``python -m smsc
serve`` with a generated config whose one tenant has an unlimited window and rate and whose
one operator is that simulator. With ``GatewayOptions.tls`` (``smsc-bench --tls``) the run's
certificates are made in that directory (``certs``), the simulator speaks only TLS, the
gateway binds to it with ``tls = true`` and ``ca``, and also listens on ``[listen_tls]``
(port 0), which ``target_port`` then names. Each process's banner ("... listening on HOST:PORT") is
awaited with a deadline; on exit both are stopped (SIGTERM, then SIGKILL after a grace
period), gateway first. Nothing else is ever signalled.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

import msgspec

from bench.prefill import prefill_opted_out, prefill_scheduled
from config import load_gateway_config

from .certs import TlsFiles, make_tls_files

__all__ = ["HOOK_TENANT_ID", "GatewayOptions", "ManagedProcess", "Stack", "StartError"]

REPO = Path(__file__).resolve().parents[2]
TENANT_ID = "bench"
TENANT_PASSWORD = "bench"
HOOK_TENANT_ID = "hooks"


class StartError(RuntimeError):
    """A subprocess exited or stayed silent before printing its banner."""


class GatewayOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What the generated gateway config varies (everything else is the default)."""

    op_binds: int = 2
    op_window: int = 100
    tenant_window: int = 65_535
    deliver_window: int = 100
    max_binds: int = 2_000
    log_level: str = "WARNING"
    synchronous: str = "normal"
    commit_interval_ms: float = 1.0
    max_queue: int = 0  # [store] max_queue; 0 = the default
    # The HTTP door (smsc-bench --http): the bench tenant's api_keys entry, and an HTTP-only
    # tenant HOOK_TENANT_ID with a webhook (url, secret, api_keys entry); "" = none.
    api_key: str = ""
    hook_url: str = ""
    hook_secret: str = ""
    hook_api_key: str = ""
    webhook_concurrency: int = 0  # [http] webhook_concurrency; 0 = the default
    # smsc-bench --tls: tenants bind over [listen_tls], the gateway to the simulator over TLS
    tls: bool = False
    # smsc-bench --scheduled N: N messages scheduled a day ahead are written into the store
    # before the gateway starts (issue 12: the load's cost beside a million scheduled)
    prefill_scheduled: int = 0
    # smsc-bench --opted-out N: N numbers opted out of the bench tenant (none of them a
    # number the load sends to), loaded into the consent index at start.
    prefill_opted_out: int = 0
    # smsc-bench --cluster-servers: the gateway is a node of that NATS JetStream cluster
    # (issue 14), replicas 3 with three servers or more (else 1); () = SQLite alone.
    cluster_servers: tuple[str, ...] = ()
    cluster_node: str = "bench"  # [cluster] node (several nodes: bench.cluster_bench)
    cluster_commit_interval_ms: float = 3.0  # [cluster] commit_interval_ms


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class ManagedProcess:
    """One child process; ``start`` waits (bounded) for a stdout line containing ``marker``."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.proc: subprocess.Popen[str] | None = None
        self.banner = ""
        self._lines: queue.Queue[str | None] = queue.Queue()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, marker: str, timeout_s: float = 20.0) -> str:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=REPO, env=_env(), text=True,
                                         stdout=subprocess.PIPE, stderr=log,
                                         stdin=subprocess.DEVNULL)
        threading.Thread(target=self._read, daemon=True, name=f"{self.name}-stdout").start()
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = self._lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if line is None:
                break
            if marker in line:
                self.banner = line.strip()
                return self.banner
        self.stop()
        tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        raise StartError(f"{self.name} did not print {marker!r} within {timeout_s:.0f} s; "
                         f"log {self.log_path}:\n{tail}")

    def _read(self) -> None:
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        for n, line in enumerate(proc.stdout):
            if n < 100:  # only the first lines matter; later ones are drained and dropped
                self._lines.put(line)
        self._lines.put(None)

    def port(self) -> int:
        """The port of "listening on HOST:PORT" in the banner."""
        word = self.banner.split("listening on ", 1)[1].split()[0].rstrip(",")
        return int(word.rsplit(":", 1)[1])

    def tls_port(self) -> int:
        """The port of "tls on HOST:PORT" in the gateway's banner."""
        word = self.banner.split("tls on ", 1)[1].split()[0].rstrip(",")
        return int(word.rsplit(":", 1)[1])

    def http_port(self) -> int:
        """The port of "http on HOST:PORT" in the gateway's banner."""
        word = self.banner.split("http on ", 1)[1].split()[0].rstrip(",")
        return int(word.rsplit(":", 1)[1])

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM the child by PID, SIGKILL it after ``grace_s``; returns its exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
                return proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            return proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - a zombie we cannot reap
            return None


def simulator_toml(window: int, tls: TlsFiles | None = None, drop_every: int = 0) -> str:
    tls_lines = f'cert = "{tls.cert}"\nkey = "{tls.key}"\n' if tls is not None else ""
    faults = f"\n[faults]\ndrop_connection_every = {drop_every}\n" if drop_every else ""
    return (
        'host = "127.0.0.1"\nport = 0\nseed = 1\n'
        f"window = {window}\nhistory = 200000\n"
        "receipt_delay_ms = { min = 0, max = 0 }\nfinal_states = { DELIVRD = 1.0 }\n"
        f"{tls_lines}{faults}"
    )


def _http_toml(opts: GatewayOptions) -> tuple[str, str, str, str]:
    """(extra [store] lines, extra [http] lines, bench tenant lines, the webhook tenant)."""
    store = f"max_queue = {opts.max_queue}\n" if opts.max_queue else ""
    http = (f"webhook_concurrency = {opts.webhook_concurrency}\n"
            if opts.webhook_concurrency else "")
    tenant = f'api_keys = ["{opts.api_key}"]\n' if opts.api_key else ""
    hook = ""
    if opts.hook_url:
        hook = (f'\n[[tenants]]\nsystem_id = "{HOOK_TENANT_ID}"\n'
                f'api_keys = ["{opts.hook_api_key}"]\nwebhook_url = "{opts.hook_url}"\n'
                f'webhook_secret = "{opts.hook_secret}"\ntps = 0.0\n')
    return store, http, tenant, hook


def _tls_toml(tls: TlsFiles | None) -> tuple[str, str]:
    """(the [listen_tls] section, the operator's TLS lines); empty without ``tls``."""
    if tls is None:
        return "", ""
    listen = (f'[listen_tls]\nhost = "127.0.0.1"\nport = 0\ncert = "{tls.cert}"\n'
              f'key = "{tls.key}"\n\n')
    return listen, f'tls = true\nca = "{tls.ca}"\n'


def gateway_toml(workdir: Path, sim_port: int, opts: GatewayOptions,
                 tls: TlsFiles | None = None) -> str:
    store, http, tenant, hook = _http_toml(opts)
    listen_tls, op_tls = _tls_toml(tls)
    return _cluster_toml(opts) + f"""\
[listen]
host = "127.0.0.1"
port = 0
max_connections = {opts.max_binds + 100}

{listen_tls}
[store]
path = "{workdir / 'smsc.db'}"
synchronous = "{opts.synchronous}"
commit_interval_ms = {opts.commit_interval_ms}
{store}
[metrics]
enabled = true
host = "127.0.0.1"
port = 0

[http]
host = "127.0.0.1"
port = 0
{http}
[[tenants]]
system_id = "{TENANT_ID}"
password = "{TENANT_PASSWORD}"
max_binds = {opts.max_binds}
window = {opts.tenant_window}
tps = 0.0
deliver_window = {opts.deliver_window}
{tenant}{hook}
[[operators]]
name = "sim"
host = "127.0.0.1"
port = {sim_port}
system_id = "gw"
password = "gw"
binds = {opts.op_binds}
window = {opts.op_window}
tps = 0.0
{op_tls}
[[routes]]
prefix = ""
operators = ["sim"]
"""


def _cluster_toml(opts: GatewayOptions) -> str:
    if not opts.cluster_servers:
        return ""
    servers = ", ".join(f'"{s}"' for s in opts.cluster_servers)
    replicas = 3 if len(opts.cluster_servers) >= 3 else 1
    return (f'[cluster]\nservers = [{servers}]\nnode = "{opts.cluster_node}"\n'
            f"replicas = {replicas}\ncommit_interval_ms = {opts.cluster_commit_interval_ms}\n\n")


class Stack:
    """Simulator (+ gateway unless ``gateway=False``) in a temporary directory."""

    def __init__(self, *, gateway: bool = True, opts: GatewayOptions | None = None,
                 sim_window: int = 100, keep_dir: bool = False, sim_drop_every: int = 0
                 ) -> None:
        self.with_gateway = gateway
        self.opts = opts or GatewayOptions()
        self.sim_window = sim_window
        self.sim_drop_every = sim_drop_every  # the simulator closes a bind every N submits
        self.keep_dir = keep_dir
        # mkdtemp, not TemporaryDirectory: the latter's finalizer would remove a kept directory
        # when the interpreter exits.
        self.dir = Path(tempfile.mkdtemp(prefix="smsc-bench-"))
        self.sim: ManagedProcess | None = None
        self.gateway: ManagedProcess | None = None
        self.sim_port = 0
        self.gateway_port = 0
        self.tls_gateway_port = 0  # [listen_tls], with opts.tls
        self.http_port = 0
        self.tls: TlsFiles | None = None  # the run's PEM files, with opts.tls
        self.metrics_url = ""  # the gateway's /metrics (from its banner)

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _start(self) -> None:
        if self.opts.tls:
            self.tls = make_tls_files(self.dir / "tls")
        sim_cfg = self.dir / "simulator.toml"
        sim_cfg.write_text(simulator_toml(self.sim_window, self.tls, self.sim_drop_every))
        self.sim = ManagedProcess(
            "simulator", [sys.executable, "-m", "bench.simulator", "--config", str(sim_cfg),
                          "--port", "0"], self.dir / "simulator.log")
        self.sim.start("smsc-sim listening on")
        self.sim_port = self.sim.port()
        if not self.with_gateway:
            return
        gw_cfg = self.dir / "gateway.toml"
        gw_cfg.write_text(gateway_toml(self.dir, self.sim_port, self.opts, self.tls))
        if self.opts.prefill_scheduled:
            prefill_scheduled(self.dir / "smsc.db", time.time() + 86_400, 0,
                              self.opts.prefill_scheduled)
        if self.opts.prefill_opted_out:
            prefill_opted_out(self.dir / "smsc.db", TENANT_ID, self.opts.prefill_opted_out,
                              time.time())
        load_gateway_config(gw_cfg)  # a bad generated config fails here, with its reason
        self.gateway = ManagedProcess(
            "gateway", [sys.executable, "-m", "smsc", "serve", "--config", str(gw_cfg),
                        "--log-level", self.opts.log_level], self.dir / "gateway.log")
        self.gateway.start("smsc listening on")
        self.gateway_port = self.gateway.port()
        if self.tls is not None:
            self.tls_gateway_port = self.gateway.tls_port()
        if "http on " in self.gateway.banner:
            self.http_port = self.gateway.http_port()
        if "metrics on " in self.gateway.banner:
            word = self.gateway.banner.split("metrics on ", 1)[1].split()[0].rstrip(",")
            self.metrics_url = f"http://{word}"

    @property
    def target_port(self) -> int:
        """Where the tenant load goes: the gateway (its TLS port with ``opts.tls``), or the
        simulator alone (which then speaks TLS itself)."""
        if not self.with_gateway:
            return self.sim_port
        return self.tls_gateway_port if self.tls is not None else self.gateway_port

    @property
    def simulator_tls(self) -> bool:
        """Whether the simulator said it listens over TLS (its banner ends "(TLS)")."""
        return self.sim is not None and "(TLS" in self.sim.banner

    @property
    def tls_ca(self) -> str:
        """The CA file a tenant verifies the target with; "" for plain TCP."""
        return self.tls.ca if self.tls is not None else ""

    def close(self) -> None:
        for proc in (self.gateway, self.sim):
            if proc is not None:
                proc.stop()
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
