"""The bench's output: the machine, a short table, the JSON result file and the PNG plot.

The plot needs matplotlib (``pip install 'smsc-gateway[bench]'``); without it ``write_plot``
returns a note and the run goes on.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

import msgspec

from .syscalls import KINDS

__all__ = ["cpu_ratios", "machine", "ratios", "syscall_table", "table", "write_json",
           "write_plot"]


def machine() -> dict[str, Any]:
    """nproc, CPU model, memory, Python and library versions of this machine."""
    model = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_mb = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            mem_mb = round(int(f.readline().split()[1]) / 1024)
    except (OSError, ValueError, IndexError):
        pass
    versions: dict[str, str] = {}
    for name in ("uvloop", "msgspec"):
        try:
            versions[name] = __import__(name).__version__
        except (ImportError, AttributeError):
            versions[name] = "missing"
    return {"nproc": os.cpu_count(), "cpu_model": model, "mem_total_mb": mem_mb,
            "python": sys.version.split()[0], "implementation": platform.python_implementation(),
            "kernel": platform.release(), **versions}


def ratios(runs: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Closed-loop gateway runs against their simulator-alone baseline of the same
    invocation (the run's ``baseline`` label, else the run labelled "baseline")."""
    out: dict[str, float] = {}
    for label, run in runs.items():
        base = runs.get(run.get("baseline") or "baseline")
        if run.get("target") == "simulator" or run.get("rate") or not base:
            continue
        b = base["throughput"]
        for key in ("end_to_end_per_s", "submit_per_s"):
            mine = run["throughput"].get(key)
            if mine and b.get(key):
                out[f"{label}.{key}/baseline"] = round(mine / b[key], 3)
    return out


def _div(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def cpu_ratios(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per gateway run: its CPU µs per message ÷ the simulator's in the same phase (the
    simulator there is the gateway's operator) and ÷ the simulator alone (the run's
    ``baseline`` phase); and, per window configuration, the open loop ÷ the closed loop."""
    out: dict[str, dict[str, Any]] = {}
    closed: dict[str, float | None] = {}
    for label, r in runs.items():
        if r.get("target") != "gateway":
            continue
        gw = r.get("gateway", {}).get("cpu_us_per_msg")
        sim = r.get("simulator", {}).get("cpu_us_per_msg")
        base = runs.get(r.get("baseline") or "", {})
        alone = base.get("simulator", {}).get("cpu_us_per_msg")
        out[label] = {"windows": r.get("windows_name", "bench"), "rate": r.get("rate", 0.0),
                      "gw_us_per_msg": gw, "sim_us_per_msg": sim,
                      "sim_alone_us_per_msg": alone, "baseline": r.get("baseline") or None,
                      "gw_per_sim": _div(gw, sim), "gw_per_sim_alone": _div(gw, alone)}
        if not r.get("rate"):
            closed.setdefault(out[label]["windows"], gw)
    for row in out.values():
        if row["rate"]:
            row["gw_open_per_closed"] = _div(row["gw_us_per_msg"], closed.get(row["windows"]))
    return out


def _windows_text(r: dict[str, Any]) -> str:
    w = r.get("windows")
    if not w:
        return str(r.get("windows_name", ""))
    return (f"operator {w['op_binds']}x{w['op_window']}, deliver_window {w['deliver_window']}"
            f", tenant window {w['tenant_window']}")


def _cpu_lines(runs: dict[str, dict[str, Any]]) -> list[str]:
    rows = cpu_ratios(runs)
    if not rows:
        return []
    lines = ["gateway CPU µs/msg ÷ simulator µs/msg (as operator in the same phase | alone, "
             "in its baseline phase):"]
    width = max(len(k) for k in rows)
    for label, c in rows.items():
        line = (f"  {label:<{width}}  {_fmt(c['gw_us_per_msg'])} ÷ {_fmt(c['sim_us_per_msg'])}"
                f" = {_fmt(c['gw_per_sim'], 2)}")
        if c["sim_alone_us_per_msg"] is not None:
            line += (f" | ÷ {_fmt(c['sim_alone_us_per_msg'])} = "
                     f"{_fmt(c['gw_per_sim_alone'], 2)}")
        if c.get("gw_open_per_closed") is not None:
            line += f"; open ÷ closed loop {c['gw_open_per_closed']:.2f}"
        lines.append(f"{line}  ({_windows_text(runs[label])})")
    return lines


def syscall_table(traced: dict[str, dict[str, Any]]) -> str:
    """The gateway's system calls per accepted message by kind, one row per traced phase."""
    kinds = [*KINDS, "other", "total"]
    head = ("traced phase", "load", "msgs", "e2e/s", *kinds)
    rows: list[tuple[str, ...]] = [head]
    for label, r in traced.items():
        per = r.get("syscalls", {}).get("per_msg", {})
        load = f"{r['rate']:g}/s" if r.get("rate") else f"closed w{r['window']}"
        rows.append((label, load, _fmt(r["accepted"]),
                     _fmt(r["throughput"]["end_to_end_per_s"], 0),
                     *(_fmt(per.get(k), 3) for k in kinds)))
    lines = _aligned(rows)
    lines.append("gateway system calls per accepted message over the whole load (binds "
                 "included); strace = strace -f -c, which slows the gateway (fewer calls per "
                 "message where it batches more), perf = perf stat on the syscall "
                 "tracepoints, at full speed")
    return "\n".join(lines)


def _aligned(rows: list[tuple[Any, ...]]) -> list[str]:
    """``rows`` (the first one the heading) as fixed-width lines, a rule under the heading;
    the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(runs: dict[str, dict[str, Any]], extra: dict[str, Any] | None = None) -> str:
    """A short fixed-width table, one row per run, then ratios and idle-bind figures."""
    head = ("run", "load", "msgs", "submit/s", "rcpt/s", "e2e/s", "resp p50", "p99",
            "p99.9", "rcpt p50", "p99", "errors", "gw µs/msg", "gw MB", "sim µs/msg",
            "gen µs/msg")
    rows = [head]
    for label, r in runs.items():
        lat, rl, th = r["latency_ms"]["submit_resp"], r["latency_ms"]["receipt"], r["throughput"]
        gw, sim = r.get("gateway", {}), r.get("simulator", {})
        load = f"{r['rate']:g}/s" if r.get("rate") else f"closed w{r['window']}"
        rows.append((label, load, _fmt(r["sent"]), _fmt(th["submit_per_s"], 0),
                     _fmt(th["receipt_per_s"], 0), _fmt(th["end_to_end_per_s"], 0),
                     _fmt(lat["p50"], 2), _fmt(lat["p99"], 2), _fmt(lat["p99.9"], 2),
                     _fmt(rl["p50"], 1), _fmt(rl["p99"], 1),
                     _fmt(r["rejected"] + sum(r["failures"].values()) + r["missing_receipts"]),
                     _fmt(gw.get("cpu_us_per_msg")), _fmt(gw.get("peak_rss_mb")),
                     _fmt(sim.get("cpu_us_per_msg")), _fmt(r["loadgen"]["cpu_us_per_msg"])))
    lines = _aligned(rows)
    lines.append("latency in ms; errors = rejected + failed submits + missing receipts; "
                 "µs/msg = process CPU time per accepted message")
    for key, value in ratios(runs).items():
        lines.append(f"ratio {key}: {value:.2f}")
    lines += _cpu_lines(runs)
    for key, value in (extra or {}).items():
        lines.append(f"{key}: {value}")
    return "\n".join(lines)


def write_json(path: str | os.PathLike[str], result: dict[str, Any]) -> None:
    Path(path).write_bytes(msgspec.json.format(msgspec.json.encode(result), indent=2) + b"\n")


def write_plot(path: str | os.PathLike[str], runs: dict[str, dict[str, Any]]) -> str | None:
    """Throughput and latency over time, one column per run; a note when it cannot plot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install 'smsc-gateway[bench]')"
    shown = {k: v for k, v in runs.items() if v.get("timeline")}
    if not shown:
        return "plot skipped: no timeline"
    fig, axes = plt.subplots(2, len(shown), figsize=(5 * len(shown), 7), squeeze=False)
    for col, (label, run) in enumerate(shown.items()):
        tl = run["timeline"]
        t = [row["t"] for row in tl]
        top, bottom = axes[0][col], axes[1][col]
        top.plot(t, [row["submit_per_s"] for row in tl], label="submit_sm_resp/s")
        top.plot(t, [row["receipt_per_s"] for row in tl], label="receipts/s")
        top.set_title(f"{label} (step {tl[0]['step_s']:g} s)")
        top.set_xlabel("s")
        top.set_ylabel("messages/s")
        top.legend(loc="lower right", fontsize="small")
        rss = [(row["t"], row["gw_rss_mb"]) for row in tl if row.get("gw_rss_mb") is not None]
        if rss:
            mem = top.twinx()
            mem.plot([p[0] for p in rss], [p[1] for p in rss], "k:", label="gateway RSS MB")
            mem.set_ylabel("gateway RSS MB")
            mem.set_ylim(bottom=0)
            mem.legend(loc="upper right", fontsize="small")
        for key, name in (("submit_p50_ms", "resp p50"), ("submit_p99_ms", "resp p99"),
                          ("receipt_p99_ms", "receipt p99")):
            pts = [(row["t"], row[key]) for row in tl if row[key] is not None]
            if pts:
                bottom.plot([p[0] for p in pts], [p[1] for p in pts], label=name)
        bottom.set_yscale("log")
        bottom.set_xlabel("s")
        bottom.set_ylabel("latency ms (log)")
        bottom.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None
