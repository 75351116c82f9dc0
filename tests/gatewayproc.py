"""``smsc serve`` in a subprocess, for tests that need a real process (signals, SIGKILL).

The port comes from the gateway's "smsc listening on HOST:PORT" line (configs use port 0);
every wait is bounded, and the process is always stopped and reaped by PID. ``module`` and
``ready`` run another entry point (``tests.stalled_start``) and wait for its own line;
``nofile`` starts it with that open-file limit (soft and hard), as a small machine would.
"""

from __future__ import annotations

import os
import queue
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

__all__ = ["GatewayProcess", "REPO"]

REPO = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


class GatewayProcess:
    def __init__(self, config: Path, log: Path, *, log_level: str | None = None,
                 module: str = "smsc", ready: str = "smsc listening on ",
                 nofile: int | None = None) -> None:
        self.log = log
        self._stderr = log.open("ab")
        self._ready = ready
        cmd = [sys.executable, "-m", module, "serve", "--config", str(config)]
        if log_level:
            cmd += ["--log-level", log_level]
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            preexec_fn=(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile)))
            if nofile is not None else None)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        try:
            self.banner = self._wait_listening(timeout=20.0)
        except BaseException:
            self.kill()
            raise
        self.port = (int(self.banner.split()[3].rstrip(",").rsplit(":", 1)[1])
                     if self.banner.startswith("smsc listening on ") else 0)
        # "http on HOST:PORT," when the HTTP door is on (0 when it is off)
        http = self.banner.split("http on ", 1)
        self.http_port = int(http[1].split()[0].rstrip(",").rsplit(":", 1)[1]) \
            if len(http) > 1 else 0
        # "metrics on HOST:PORT/metrics" when the endpoint is on (0 when it is off)
        metrics = self.banner.split("metrics on ", 1)
        self.metrics_port = int(metrics[1].split("/", 1)[0].rsplit(":", 1)[1]) \
            if len(metrics) > 1 else 0
        # "tls on HOST:PORT," beside the plain port, or "HOST:PORT (tls)" first without one
        tls = self.banner.split("tls on ", 1)
        self.tls_port = (int(tls[1].split()[0].rstrip(",").rsplit(":", 1)[1]) if len(tls) > 1
                         else self.port if "(tls)" in self.banner.split(",")[0] else 0)

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _wait_listening(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {self._ready!r} line in {timeout}s: "
                                     f"{self.log.read_text()[-2000:]}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"gateway exited ({self.proc.wait(5)}) before listening: "
                                     f"{self.log.read_text()[-2000:]}")
            if line.startswith(self._ready):
                return line.strip()

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        """Exit code (raises TimeoutExpired when it does not stop); closes the pipes."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()
        return code

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM by PID, then the exit code."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL by PID unless it already exited; always reaps (idempotent)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if not self._stderr.closed:
            self.wait(10)
