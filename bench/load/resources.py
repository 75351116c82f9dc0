"""CPU seconds and memory of a process, read from ``/proc`` (Linux only; None elsewhere).

``cpu_seconds(pid)`` is utime + stime of ``/proc/PID/stat`` (fields 14 and 15, in clock
ticks); ``memory(pid)`` reads VmRSS and VmHWM (peak resident set) from ``/proc/PID/status``.
A ``Usage`` snapshot pairs them so a run can report deltas. ``io_calls(pid)`` reads syscr
and syscw of ``/proc/PID/io``: the read and write system calls the process made (files,
sockets and pipes alike), counted by the kernel at no cost to the process.
"""

from __future__ import annotations

import os

import msgspec

__all__ = ["Usage", "cpu_seconds", "cpu_times", "io_calls", "memory_kb", "usage"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class Usage(msgspec.Struct, frozen=True):
    """One snapshot of a process: CPU seconds used so far, current and peak RSS in KiB."""

    cpu_s: float
    rss_kb: int
    hwm_kb: int
    sys_s: float = 0.0  # the kernel's part of cpu_s (stime)


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of ``pid`` in seconds, or None when it cannot be read."""
    times = cpu_times(pid)
    return None if times is None else times[0] + times[1]


def cpu_times(pid: int) -> tuple[float, float] | None:
    """(utime, stime) of ``pid`` in seconds, or None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = data[data.rfind(b")") + 2:].split()
    try:
        return int(fields[11]) / _TICKS, int(fields[12]) / _TICKS
    except (IndexError, ValueError):
        return None


def memory_kb(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of ``pid`` in KiB, or None when it cannot be read."""
    rss = hwm = -1
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    if rss < 0 or hwm < 0:
        return None
    return rss, hwm


def io_calls(pid: int) -> tuple[int, int] | None:
    """(syscr, syscw) of ``pid``: read and write system calls so far, or None."""
    found: dict[bytes, int] = {}
    try:
        with open(f"/proc/{pid}/io", "rb") as f:
            for line in f:
                name, _, value = line.partition(b":")
                if name in (b"syscr", b"syscw"):
                    found[name] = int(value)
    except (OSError, ValueError):
        return None
    if len(found) < 2:
        return None
    return found[b"syscr"], found[b"syscw"]


def usage(pid: int | None) -> Usage | None:
    """CPU and memory of ``pid`` now, or None (no pid, process gone, not Linux)."""
    if pid is None:
        return None
    cpu = cpu_times(pid)
    mem = memory_kb(pid)
    if cpu is None or mem is None:
        return None
    return Usage(cpu[0] + cpu[1], mem[0], mem[1], cpu[1])
