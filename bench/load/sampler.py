"""A background thread that samples a process's CPU time and the host's CPU counters.

Every ``interval_s`` it records ``time.monotonic()``, utime+stime of each watched PID
(``/proc/PID/stat``) and the first line of ``/proc/stat`` (user ... steal). A run then asks
for any window after the fact: ``cpu(name, a, b)`` is the process's CPU seconds between two
monotonic times (linear between samples; clock ticks are 10 ms, so a window of a few
seconds is exact to a fraction of a percent), ``host(a, b)`` the host's steal and busy
shares. Monotonic times are the same clock in every process of the machine, so windows can
come from a child process's records.
"""

from __future__ import annotations

import bisect
import os
import threading
import time

from .resources import cpu_seconds

__all__ = ["Sampler", "host_counters", "steal"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def host_counters() -> tuple[int, int, int]:
    """(total, idle+iowait, steal) clock ticks of all CPUs from ``/proc/stat``."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0, 0, 0
    fields += [0] * (8 - len(fields))
    return sum(fields), fields[3] + fields[4], fields[7]


def steal(a: tuple[int, int, int], b: tuple[int, int, int]) -> dict[str, float | None]:
    """Steal and busy shares (%) of all CPUs between two ``host_counters()`` readings."""
    dt = b[0] - a[0]
    if dt <= 0:
        return {"steal_pct": None, "busy_pct": None}
    ds, di = b[2] - a[2], b[1] - a[1]
    return {"steal_pct": round(ds / dt * 100, 2), "busy_pct": round((dt - di - ds) / dt * 100, 1)}


class Sampler:
    def __init__(self, pids: dict[str, int | None], interval_s: float = 0.01) -> None:
        self.pids = {k: v for k, v in pids.items() if v}
        self.pids.setdefault("bench", os.getpid())  # this process (the SMPP generator)
        self.interval_s = interval_s
        self.t: list[float] = []
        self.series: dict[str, list[float]] = {k: [] for k in self.pids}
        self._lock = threading.Lock()
        self.hosts: list[tuple[int, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sampler")

    def __enter__(self) -> Sampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._sample()

    def watch(self, name: str, pid: int) -> None:
        """Also sample ``pid`` from now on (a child started during the run); its CPU before
        the first sample counts as 0."""
        with self._lock:
            self.pids[name] = pid
            self.series[name] = [0.0] * len(self.t)

    def _sample(self) -> None:
        with self._lock:
            values = {k: cpu_seconds(pid) for k, pid in self.pids.items()}
            host = host_counters()
            now = time.monotonic()
            self.t.append(now)
            for k, v in values.items():
                series = self.series[k]
                if v is None:  # gone: keep its last value
                    v = series[-1] if series else 0.0
                series.append(v)
            self.hosts.append(host)

    def _run(self) -> None:
        end = time.monotonic() + 7200.0  # bounded, whatever happens to the run
        while not self._stop.wait(self.interval_s) and time.monotonic() < end:
            self._sample()

    def _at(self, series: list[float], t: float) -> float:
        ts = self.t
        i = bisect.bisect_left(ts, t)
        if i <= 0:
            return series[0]
        if i >= len(ts):
            return series[-1]
        t0, t1 = ts[i - 1], ts[i]
        f = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
        return series[i - 1] + f * (series[i] - series[i - 1])

    def cpu(self, name: str, a: float, b: float) -> float | None:
        """CPU seconds of ``name`` between monotonic times ``a`` and ``b``."""
        series = self.series.get(name)
        if not series or b <= a:
            return None
        return self._at(series, b) - self._at(series, a)

    def host(self, a: float, b: float) -> dict[str, float | None]:
        """Steal and busy (not idle, not iowait, not steal) shares of all CPUs, in %, and
        ``other_cores``: busy CPU time of processes not watched here, per second of the
        window (1.0 = one core's worth of someone else's work)."""
        none: dict[str, float | None] = {"steal_pct": None, "busy_pct": None,
                                         "other_cores": None}
        if not self.hosts or b <= a:
            return none
        totals = [h[0] for h in self.hosts]
        idles = [h[1] for h in self.hosts]
        steals = [h[2] for h in self.hosts]
        dt = self._at([float(x) for x in totals], b) - self._at([float(x) for x in totals], a)
        if dt <= 0:
            return none
        di = self._at([float(x) for x in idles], b) - self._at([float(x) for x in idles], a)
        ds = self._at([float(x) for x in steals], b) - self._at([float(x) for x in steals], a)
        ours = sum(self.cpu(k, a, b) or 0.0 for k in self.series)
        other = ((dt - di - ds) / _TICKS - ours) / (b - a)
        return {"steal_pct": round(ds / dt * 100, 2),
                "busy_pct": round((dt - di - ds) / dt * 100, 1),
                "other_cores": round(other, 2)}
