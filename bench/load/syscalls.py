"""Socket reads and writes of the gateway during one phase, counted with ``strace``.

``SyscallCounter(pid, out, tenant_ports, operator_port)`` attaches ``strace -f`` to every
thread of the gateway for the length of a ``with`` block and logs only the read and write
calls (``write writev sendto sendmsg read readv recvfrom recvmsg``, no data: ``-s 0``).
Meanwhile a thread maps the gateway's file descriptors to TCP sockets every 0.2 s
(``/proc/PID/fd`` -> ``socket:[inode]`` -> ``/proc/PID/net/tcp``), so each call is counted
for the side it went to: ``tenant`` (local port = a gateway listener), ``operator`` (remote
port = the simulator) or ``other`` (files, the event loop's wake-up eventfd, pipes, the
HTTP and metrics ports). ``counts()`` then gives calls and bytes per side and direction.

strace slows the traced process down many times over: a traced phase says how the gateway
batches its I/O, never how fast or how much CPU it uses. It needs ptrace rights over the
gateway (root, or ``kernel.yama.ptrace_scope = 0``) and the ``strace`` binary.

``SyscallTally(pid, out)`` (``smsc-bench --syscalls``) is the cheaper count of every kind of
call: ``strace -f -c`` keeps only a table of calls per syscall, which ``by_kind`` turns into
calls per message (writes, reads, ``epoll_wait``, ``futex``, ``fdatasync``, ``pwrite64``...).
``PerfTally(pid, out)`` counts the same kinds with ``perf stat`` on the kernel's syscall
tracepoints (``syscalls:sys_enter_*``, and ``raw_syscalls:sys_enter`` for the total): no
ptrace stop, so the gateway runs at its own speed and batches as it would untraced; it sees
the threads that exist when it attaches.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["KINDS", "PerfTally", "SyscallCounter", "SyscallTally", "by_kind",
           "parse_perf_csv", "parse_strace_summary", "per_message", "perf_available",
           "strace_available"]

_WRITES = frozenset({"write", "writev", "sendto", "sendmsg"})
_READS = frozenset({"read", "readv", "recvfrom", "recvmsg"})
_TRACE = ",".join(sorted(_WRITES | _READS))
_DONE = re.compile(r"^(\d+)\s+(\w+)\((\d+),.*\)\s+=\s+(-?\d+)")
_UNFINISHED = re.compile(r"^(\d+)\s+(\w+)\((\d+),.*<unfinished \.\.\.>")
_RESUMED = re.compile(r"^(\d+)\s+<\.\.\. (\w+) resumed>.*=\s+(-?\d+)")


def strace_available() -> bool:
    return shutil.which("strace") is not None


def perf_available() -> bool:
    return shutil.which("perf") is not None


def _attach(options: list[str], pid: int, timeout_s: float) -> subprocess.Popen[str]:
    """``strace -f OPTIONS -p PID``, once it traces every thread. With -f, strace says
    "Process N attached (with M threads)" on stderr once it does; that line is awaited
    (bounded), else strace is stopped and RuntimeError names what it said."""
    proc = subprocess.Popen(["strace", "-f", *options, "-p", str(pid)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    attached = threading.Event()
    err: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err.append(line)
            if "attached" in line:
                attached.set()

    threading.Thread(target=read_stderr, daemon=True, name="strace-stderr").start()
    if not attached.wait(timeout_s):
        _detach(proc, 10.0)
        raise RuntimeError(f"strace did not attach to PID {pid}: "
                           f"{''.join(err[-12:]).strip() or 'no output'}")
    return proc


def _detach(proc: subprocess.Popen[str] | None, timeout_s: float) -> None:
    """Stop strace with SIGINT (it detaches and writes what it has), SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5.0)


def _socket_inodes(pid: int) -> dict[int, int]:
    """fd -> inode of every socket the process holds now."""
    out: dict[int, int] = {}
    base = f"/proc/{pid}/fd"
    try:
        names = os.listdir(base)
    except OSError:
        return out
    for name in names:
        with contextlib.suppress(OSError, ValueError):
            link = os.readlink(f"{base}/{name}")
            if link.startswith("socket:["):
                out[int(name)] = int(link[8:-1])
    return out


def _tcp_ports(pid: int) -> dict[int, tuple[int, int]]:
    """inode -> (local port, remote port) of the TCP sockets of the process's namespace."""
    out: dict[int, tuple[int, int]] = {}
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/net/{table}") as f:
            next(f, None)  # the header line
            for line in f:
                cols = line.split()
                with contextlib.suppress(IndexError, ValueError):
                    local = int(cols[1].rsplit(":", 1)[1], 16)
                    remote = int(cols[2].rsplit(":", 1)[1], 16)
                    out[int(cols[9])] = (local, remote)
    return out


class SyscallCounter:
    def __init__(self, pid: int, out: Path, tenant_ports: set[int], operator_port: int,
                 attach_timeout_s: float = 10.0) -> None:
        self.pid = pid
        self.out = out
        self.tenant_ports = tenant_ports
        self.operator_port = operator_port
        self.attach_timeout_s = attach_timeout_s
        self.sides: dict[int, str] = {}  # fd -> "tenant" | "operator" | "other"
        self._proc: subprocess.Popen[str] | None = None
        self._stop = threading.Event()
        self._mapper = threading.Thread(target=self._map_loop, daemon=True, name="fd-mapper")

    def __enter__(self) -> SyscallCounter:
        self._proc = _attach(["-s", "0", "-e", f"trace={_TRACE}", "-o", str(self.out)],
                             self.pid, self.attach_timeout_s)
        self._mapper.start()
        return self

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._mapper.join(timeout=5.0)
        self._end()

    def _end(self) -> None:
        _detach(self._proc, 10.0)

    def _map_loop(self) -> None:
        end = time.monotonic() + 3600.0  # bounded, whatever happens to the phase
        while time.monotonic() < end:
            self._map_once()
            if self._stop.wait(0.2):
                break
        self._map_once()

    def _map_once(self) -> None:
        ports = _tcp_ports(self.pid)
        for fd, inode in _socket_inodes(self.pid).items():
            local, remote = ports.get(inode, (0, 0))
            if local in self.tenant_ports:
                self.sides[fd] = "tenant"
            elif remote == self.operator_port:
                self.sides[fd] = "operator"

    def counts(self) -> dict[str, dict[str, int]]:
        """{side: {"writes", "write_bytes", "reads", "read_bytes"}} over the traced block
        (failed calls, such as a read that would block, are counted apart as ``eagain``)."""
        sides: dict[str, dict[str, int]] = {
            s: {"writes": 0, "write_bytes": 0, "reads": 0, "read_bytes": 0, "eagain": 0}
            for s in ("tenant", "operator", "other")}
        pending: dict[str, tuple[str, int]] = {}  # thread id -> (call, fd)
        try:
            lines = self.out.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        for line in lines:
            m = _DONE.match(line)
            if m:
                call, fd, ret = m[2], int(m[3]), int(m[4])
            elif (u := _UNFINISHED.match(line)) is not None:
                pending[u[1]] = (u[2], int(u[3]))
                continue
            elif (r := _RESUMED.match(line)) is not None and r[1] in pending:
                (call, fd), ret = pending.pop(r[1]), int(r[3])
            else:
                continue
            row = sides[self.sides.get(fd, "other")]
            if ret < 0:
                row["eagain"] += 1
            elif call in _WRITES:
                row["writes"] += 1
                row["write_bytes"] += ret
            elif call in _READS:
                row["reads"] += 1
                row["read_bytes"] += ret
        return sides


def per_message(counts: dict[str, dict[str, int]], messages: int) -> dict[str, Any]:
    """Calls per message and bytes per call of each side (for the report)."""
    out: dict[str, Any] = {}
    for side, c in counts.items():
        out[side] = {
            **c,
            "writes_per_msg": round(c["writes"] / messages, 3) if messages else None,
            "reads_per_msg": round(c["reads"] / messages, 3) if messages else None,
            "bytes_per_write": round(c["write_bytes"] / c["writes"]) if c["writes"] else None,
        }
    return out


# --- every kind of call, counted by strace itself (-c): smsc-bench --syscalls --------------

# The kinds the report shows, in this order; any other call is counted under "other".
KINDS: dict[str, tuple[str, ...]] = {
    "write/sendmsg": ("write", "writev", "sendto", "sendmsg", "sendmmsg"),
    "read/recvmsg": ("read", "readv", "recvfrom", "recvmsg", "recvmmsg"),
    "epoll_wait": ("epoll_wait", "epoll_pwait", "epoll_pwait2"),
    "epoll_ctl": ("epoll_ctl",),
    "futex": ("futex",),
    "fsync/fdatasync": ("fsync", "fdatasync"),
    "pwrite64": ("pwrite64",),
    "pread64": ("pread64",),
    "fcntl": ("fcntl",),  # SQLite's file locks
}


def parse_strace_summary(text: str) -> dict[str, tuple[int, int]]:
    """{syscall: (calls, errors)} from the table ``strace -c`` writes (the total row left
    out). Rows are ``% time, seconds, usecs/call, calls, [errors], syscall``."""
    out: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        cols = line.split()
        if len(cols) not in (5, 6) or cols[-1] == "total" or cols[0].startswith(("%", "-")):
            continue
        try:
            calls = int(cols[3])
            errors = int(cols[4]) if len(cols) == 6 else 0
            float(cols[0])
        except ValueError:
            continue
        out[cols[-1]] = (calls, errors)
    return out


def by_kind(calls: dict[str, tuple[int, int]], messages: int) -> dict[str, Any]:
    """Calls per message of each of ``KINDS``, of the rest ("other") and in all ("total");
    ``calls`` keeps every syscall's own count (calls, errors)."""
    kinds = {name: sum(calls.get(c, (0, 0))[0] for c in members)
             for name, members in KINDS.items()}
    known = {c for members in KINDS.values() for c in members}
    if "*total" in calls:  # perf: the total is counted, the rest is what KINDS leave out
        known_calls = sum(kinds.values())
        kinds["other"] = calls["*total"][0] - known_calls
        kinds["total"] = calls["*total"][0]
        calls = {c: v for c, v in calls.items() if c != "*total"}
    else:
        kinds["other"] = sum(n for c, (n, _) in calls.items() if c not in known)
        kinds["total"] = sum(n for n, _ in calls.values())
    per = {k: round(v / messages, 3) if messages else None for k, v in kinds.items()}
    return {"messages": messages, "per_msg": per, "counts": kinds,
            "calls": {c: {"calls": n, "errors": e} for c, (n, e) in sorted(calls.items())}}


class SyscallTally:
    """``strace -f -c`` on every thread of ``pid`` for a ``with`` block: how many calls of
    each kind (and how many failed), no per-call log. Like ``SyscallCounter`` it slows the
    traced process: read its counts, never its speed."""

    def __init__(self, pid: int, out: Path, attach_timeout_s: float = 10.0) -> None:
        self.pid = pid
        self.out = out
        self.attach_timeout_s = attach_timeout_s
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> SyscallTally:
        self._proc = _attach(["-c", "-o", str(self.out)], self.pid, self.attach_timeout_s)
        return self

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._end()

    def _end(self) -> None:
        _detach(self._proc, 20.0)

    def calls(self) -> dict[str, tuple[int, int]]:
        try:
            return parse_strace_summary(self.out.read_text(errors="replace"))
        except OSError:
            return {}


def parse_perf_csv(text: str) -> dict[str, tuple[int, int]]:
    """{syscall: (calls, 0)} from ``perf stat -x,`` output; the total is ``"*total"``."""
    out: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        cols = line.split(",")
        if len(cols) < 3 or not cols[0].strip().isdigit():
            continue
        event = cols[2]
        if event == "raw_syscalls:sys_enter":
            out["*total"] = (int(cols[0]), 0)
        elif event.startswith("syscalls:sys_enter_"):
            out[event.removeprefix("syscalls:sys_enter_")] = (int(cols[0]), 0)
    return out


class PerfTally:
    """``perf stat`` of the syscall tracepoints of ``KINDS`` (and of every syscall, for
    the total) on ``pid`` for a ``with`` block."""

    def __init__(self, pid: int, out: Path, settle_s: float = 0.5) -> None:
        self.pid = pid
        self.out = out
        self.settle_s = settle_s
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> PerfTally:
        events = ["-e", "raw_syscalls:sys_enter"]
        for members in KINDS.values():
            for name in members:
                events += ["-e", f"syscalls:sys_enter_{name}"]
        self._proc = subprocess.Popen(
            ["perf", "stat", "-x,", "-o", str(self.out), *events, "-p", str(self.pid)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        time.sleep(self.settle_s)  # perf prints nothing once it counts: give it time
        if self._proc.poll() is not None:
            err = self._proc.stderr.read() if self._proc.stderr is not None else ""
            raise RuntimeError(f"perf stat did not attach to PID {self.pid}: "
                               f"{err.strip()[-800:] or 'no output'}")
        return self

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGINT)  # perf writes its counts and exits
        try:
            proc.wait(timeout=20.0)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5.0)

    def calls(self) -> dict[str, tuple[int, int]]:
        try:
            return parse_perf_csv(self.out.read_text(errors="replace"))
        except OSError:
            return {}
