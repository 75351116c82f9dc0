"""``smsc-bench``: drive a gateway (and the simulator) with tenant load; print, save, plot.

By default it starts the simulator and a gateway in a temporary directory (free ports on
127.0.0.1) and runs one load against the gateway. ``--baseline`` first runs the same load
generator against the simulator alone, so the gateway's figures come with a ratio to that
ceiling. ``--target HOST:PORT`` drives a running gateway instead. ``--standard`` is the
scenario of ``make bench``: the bench windows (operator 2 binds of window 100,
deliver_window 100) and then the production-like ones (issue 15: operator window 10 with 2
binds, deliver_window 10, the config defaults), each closed loop and open loop, each gateway
phase after its simulator-alone baseline (about two minutes on two cores). ``--syscalls``
adds, per gateway phase, a twin under ``strace -f -c`` (or ``perf stat`` on the syscall
tracepoints, ``--syscall-tools``) that counts the gateway's system calls per message by
kind. ``--http`` measures the HTTP door and the webhook channel instead (``http_mode``).
``--tls`` runs the tenant binds and the gateway's operator binds over TLS;
``--tls-compare`` measures what that costs, plain and TLS phases in pairs (``tls_mode``).
Progress goes to stderr, the table to stdout. Exit code 2 when something could not start
or bind.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import msgspec

from .client import WorkerSpec
from .http_mode import add_http_arguments, check_http_arguments, run_http_mode
from .idle import measure_idle_binds
from .mix import DEFAULT_MIX, parse_mix
from .procs import TENANT_ID, TENANT_PASSWORD, GatewayOptions, Stack, StartError
from .report import cpu_ratios, machine, ratios, syscall_table, table, write_json, write_plot
from .runner import run_load
from .sampler import host_counters, steal
from .stats import summarize
from .syscalls import PerfTally, SyscallTally, by_kind, perf_available, strace_available
from .tls_mode import add_tls_arguments, check_tls_arguments, run_tls_compare

__all__ = ["main"]

_PROG = "smsc-bench"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=_PROG, description="Load bench of the smsc gateway")
    add = p.add_argument
    add("--standard", action="store_true",
        help="standard scenario (make bench): baseline + gateway, 4 binds, window 100, 50000 "
             "messages closed loop, 20000 at 2000/s open loop, 1000 idle binds; then both "
             "loads again with the default windows (operator 2 binds of window 10, "
             "deliver_window 10), each after its baseline; short table")
    add("--baseline", action="store_true",
        help="also run the same load against the simulator alone (the ceiling)")
    add("--target", metavar="HOST:PORT", help="drive a running gateway instead of starting one")
    add("--system-id", default=None, help="tenant system_id with --target")
    add("--password", default=None, help="tenant password with --target")
    add("--target-pid", type=int, default=None, help="PID of the --target gateway (for CPU/RSS)")
    add("--binds", "-n", type=int, default=4, help="tenant binds (default 4)")
    add("--tx-rx", action="store_true", help="transmitter+receiver pairs instead of transceivers")
    add("--window", "-w", type=int, default=100, help="outstanding submits per bind (100)")
    add("--messages", "-m", type=int, default=None,
        help="messages to submit (20000; 50000 with --standard)")
    add("--rate", "-r", type=float, default=0.0,
        help="open loop at this many msg/s (default 0: closed loop, as fast as allowed)")
    add("--open-rate", type=float, default=2000.0, help="--standard: open-loop rate (2000)")
    add("--open-messages", type=int, default=20_000, help="--standard: open-loop count (20000)")
    add("--dw-messages", type=int, default=None,
        help="--standard: closed-loop count of the default-window phases (as -m)")
    add("--dw-open-messages", type=int, default=None,
        help="--standard: open-loop count of the default-window phases (as --open-messages)")
    add("--syscalls", action="store_true",
        help="also run each gateway phase again, counting the gateway's system calls per "
             "message by kind (--syscall-tools; counts only)")
    add("--syscall-messages", type=int, default=5_000,
        help="--syscalls: messages of each traced phase (5000)")
    add("--syscall-tools", default=None,
        help="--syscalls: strace (strace -f -c, slows the gateway), perf (perf stat on the "
             "syscall tracepoints, no slow-down), or strace,perf: a phase each (default: "
             "those of the two that are installed)")
    add("--mix", default=DEFAULT_MIX, help=f"message mix, KIND=WEIGHT (default {DEFAULT_MIX})")
    add("--long-chars", type=int, default=300, help="GSM-7 characters of a long text (300)")
    add("--procs", "-k", type=int, default=1, help="load-generator worker processes (1)")
    add("--receipt-timeout", type=float, default=30.0,
        help="seconds to wait for receipts after the last submit_sm_resp (30)")
    add("--max-time", type=float, default=600.0, help="seconds a run may send for (600)")
    add("--no-receipts", action="store_true", help="do not wait for receipts")
    add("--idle-binds", type=int, default=None, metavar="N",
        help="also open N idle binds to the gateway and report its RSS before/after "
             "(default 0; 1000 with --standard)")
    add("--op-binds", type=int, default=2, help="gateway binds to the simulator (2)")
    add("--op-window", type=int, default=100, help="gateway window per operator bind (100)")
    add("--sim-window", type=int, default=100, help="simulator deliver_sm window per bind (100)")
    add("--deliver-window", type=int, default=100, help="gateway deliver_sm window (100)")
    add("--gateway-log-level", default="WARNING", help="gateway --log-level (WARNING)")
    add("--synchronous", choices=("normal", "full"), default="normal",
        help="gateway [store] synchronous (normal)")
    add("--commit-interval-ms", type=float, default=1.0,
        help="gateway [store] commit_interval_ms (1.0; 0 = commit every loop iteration)")
    add("--cluster-servers", metavar="URLS", default="",
        help="comma-separated NATS URLs: the gateway runs as a node of that JetStream "
             "cluster ([cluster], issue 14; bench.cluster_bench starts one)")
    add("--cluster-commit-interval-ms", type=float, default=3.0,
        help="with --cluster-servers: [cluster] commit_interval_ms (3.0)")
    add("--out", "-o", metavar="FILE", help="write the JSON result here")
    add("--plot", metavar="FILE", help="write a PNG of throughput and latency over time")
    add("--quiet", "-q", action="store_true", help="no progress line")
    add("--keep-dir", action="store_true", help="keep the temporary directory (logs, store)")
    add("--scheduled", type=int, default=0, metavar="N",
        help="write N messages scheduled a day ahead into the store first (default 0)")
    add("--opted-out", type=int, default=0, metavar="N",
        help="write N opted-out numbers of the bench tenant into the store first (default 0;"
             " none is a number the load sends to)")
    add_http_arguments(p)
    add_tls_arguments(p)
    return p


class Phase(msgspec.Struct, frozen=True):
    label: str
    kind: str  # "simulator" | "gateway" | "target"
    rate: float
    messages: int
    windows: str = "bench"  # "bench": the options' windows; "defaults": issue 15's
    baseline: str = ""  # the label of this phase's simulator-alone baseline
    trace: str = ""  # --syscalls: "strace" (strace -f -c) or "perf" (perf stat): counts only


# Issue 15's production-like windows: the config defaults of the operator (window 10, with
# 2 binds) and of the tenant's deliver_window (10); the tenant's own submit window stays
# wide, as a bulk client's would.
DEFAULT_WINDOWS = {"op_binds": 2, "op_window": 10, "deliver_window": 10}
DW = "-dw"  # the label suffix of the default-window phases


def _phases(args: argparse.Namespace) -> list[Phase]:
    main_kind = "target" if args.target else "gateway"
    out: list[Phase] = []
    if args.standard:
        at = f"@{args.open_rate:g}/s"
        for suffix, windows, closed_n, open_n in (
                ("", "bench", args.messages, args.open_messages),
                (DW, "defaults", args.dw_messages, args.dw_open_messages)):
            if windows == "defaults" and main_kind == "target":
                continue  # a running gateway's windows are its own
            for rate, n, tail in ((0.0, closed_n, ""), (args.open_rate, open_n, at)):
                base = f"baseline{suffix}{tail}"
                out += [Phase(base, "simulator", rate, n),
                        Phase(f"{main_kind}{suffix}{tail}", main_kind, rate, n, windows,
                              base)]
    else:
        suffix = f"@{args.rate:g}/s" if args.rate else ""
        base = ""
        if args.baseline:
            base = "baseline" + suffix
            out.append(Phase(base, "simulator", args.rate, args.messages))
        out.append(Phase(main_kind + suffix, main_kind, args.rate, args.messages,
                         baseline=base))
    if args.syscalls:
        out += [msgspec.structs.replace(p, label=f"{tool} {p.label}", baseline="",
                                        messages=args.syscall_messages, trace=tool)
                for tool in _tools(args) for p in list(out) if p.kind == "gateway"]
    return out


def _tools(args: argparse.Namespace) -> list[str]:
    if args.syscall_tools is None:
        return [t for t, ok in (("strace", strace_available()), ("perf", perf_available()))
                if ok] or ["strace"]
    return [t.strip() for t in args.syscall_tools.split(",") if t.strip()]


def _check(args: argparse.Namespace) -> str | None:
    if args.target and (not args.system_id or args.password is None):
        return "--target needs --system-id and --password"
    if args.target and ":" not in args.target:
        return "--target must be HOST:PORT"
    for name in ("binds", "window", "procs"):
        if getattr(args, name) < 1:
            return f"--{name} must be at least 1"
    if args.messages < 1 or args.rate < 0:
        return "--messages must be positive and --rate not negative"
    if min(args.dw_messages, args.dw_open_messages, args.syscall_messages) < 1:
        return "--dw-messages, --dw-open-messages and --syscall-messages must be positive"
    if args.syscalls and args.target:
        return "--syscalls traces a gateway it starts (no --target)"
    tools = _tools(args)
    if args.syscalls and (not tools or not set(tools) <= {"strace", "perf"}):
        return "--syscall-tools is strace, perf or strace,perf"
    if args.syscalls and "strace" in tools and not strace_available():
        return "--syscalls needs strace (apt-get install strace)"
    if args.syscalls and "perf" in tools and not perf_available():
        return "--syscall-tools perf needs perf (apt-get install linux-perf)"
    try:
        parse_mix(args.mix, args.long_chars)
    except ValueError as exc:
        return str(exc)
    return None


def _spec(args: argparse.Namespace, phase: Phase, host: str, port: int, system_id: str,
          password: str, watch: dict[str, int]) -> WorkerSpec:
    return WorkerSpec(host=host, port=port, system_id=system_id, password=password,
                      binds=args.binds, tx_rx=args.tx_rx, window=args.window,
                      messages=phase.messages, rate=phase.rate,
                      mix=parse_mix(args.mix, args.long_chars), receipts=not args.no_receipts,
                      receipt_timeout_s=args.receipt_timeout, max_time_s=args.max_time,
                      watch=watch, progress=not args.quiet, label=phase.label)


def _gateway_options(args: argparse.Namespace) -> GatewayOptions:
    pairs = args.binds * (2 if args.tx_rx else 1)
    return GatewayOptions(op_binds=args.op_binds, op_window=args.op_window,
                          deliver_window=args.deliver_window,
                          max_binds=max(2_000, args.idle_binds + pairs + 10),
                          log_level=args.gateway_log_level, synchronous=args.synchronous,
                          commit_interval_ms=args.commit_interval_ms, tls=args.tls,
                          prefill_scheduled=args.scheduled,
                          prefill_opted_out=args.opted_out,
                          cluster_servers=tuple(u.strip() for u in
                                                args.cluster_servers.split(",") if u.strip()),
                          cluster_commit_interval_ms=args.cluster_commit_interval_ms)


def _phase_options(args: argparse.Namespace, phase: Phase) -> GatewayOptions:
    opts = _gateway_options(args)
    if phase.windows == "defaults":
        opts = msgspec.structs.replace(opts, **DEFAULT_WINDOWS)
    return opts


def _windows(opts: GatewayOptions) -> dict[str, int]:
    return {"op_binds": opts.op_binds, "op_window": opts.op_window,
            "deliver_window": opts.deliver_window, "tenant_window": opts.tenant_window}


def _run_phase(args: argparse.Namespace, phase: Phase, want_idle: bool
               ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One phase on a fresh stack (or the target); returns its summary and idle figures.

    With ``want_idle`` (the first gateway phase of ``--idle-binds N``) the idle binds are
    opened on the fresh gateway before the load, or on the target after it.
    """
    idle: dict[str, Any] | None = None
    if phase.kind == "target":
        host, _, port = args.target.rpartition(":")
        watch = {"gateway": args.target_pid} if args.target_pid else {}
        spec = _spec(args, phase, host, int(port), args.system_id, args.password, watch)
        records = run_load(spec, args.procs)
        if want_idle:
            idle = measure_idle_binds(spec, args.idle_binds, args.target_pid)
        return summarize(records), idle
    opts = _phase_options(args, phase)
    with Stack(gateway=phase.kind == "gateway", opts=opts,
               sim_window=args.sim_window, keep_dir=args.keep_dir) as stack:
        watch = {"simulator": stack.sim.pid} if stack.sim and stack.sim.pid else {}
        if stack.gateway is not None and stack.gateway.pid:
            watch["gateway"] = stack.gateway.pid
        gw = phase.kind == "gateway"
        spec = _spec(args, phase, "127.0.0.1", stack.target_port,
                     TENANT_ID if gw else "bench", TENANT_PASSWORD if gw else "bench", watch)
        spec = msgspec.structs.replace(spec, tls_ca=stack.tls_ca)
        if gw and want_idle:
            idle = measure_idle_binds(spec, args.idle_binds, watch.get("gateway"))
        tally: SyscallTally | PerfTally | None = None
        if phase.trace and stack.gateway is not None and stack.gateway.pid:
            tally = (SyscallTally(stack.gateway.pid, stack.dir / "strace-c.txt")
                     if phase.trace == "strace"
                     else PerfTally(stack.gateway.pid, stack.dir / "perf-stat.txt"))
        with tally or nullcontext():
            records = run_load(spec, args.procs)
        calls = tally.calls() if tally is not None else None  # before the files go
        sim_tls = stack.simulator_tls
        if args.keep_dir:
            print(f"{_PROG}: {phase.label}: files kept in {stack.dir}", file=sys.stderr)
    summary = summarize(records, with_timeline=not phase.trace)
    if calls is not None:
        summary["syscalls"] = {"tool": phase.trace, **by_kind(calls, summary["accepted"])}
    extra = {"windows": _windows(opts)} if phase.kind == "gateway" else {}
    return {**summary, "simulator_tls": sim_tls, **extra}, idle


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.messages is None:
        args.messages = 50_000 if args.standard else 20_000
    if args.idle_binds is None:
        args.idle_binds = 1_000 if args.standard else 0
    if args.dw_messages is None:
        args.dw_messages = args.messages
    if args.dw_open_messages is None:
        args.dw_open_messages = args.open_messages
    problem = (_check(args) or (check_http_arguments(args) if args.http else None)
               or check_tls_arguments(args))
    if problem:
        print(f"{_PROG}: {problem}", file=sys.stderr)
        return 2
    if args.http and not args.tls_compare and (args.target or args.standard):
        print(f"{_PROG}: --http starts its own stacks (no --target, no --standard)",
              file=sys.stderr)
        return 2
    mode = run_tls_compare if args.tls_compare else run_http_mode if args.http else None
    if mode is not None:  # a mode that starts its own stacks and reports itself
        try:
            return mode(args, _gateway_options(args),
                        [_PROG, *(sys.argv[1:] if argv is None else argv)])
        except (StartError, RuntimeError, OSError) as exc:
            print(f"{_PROG}: {exc}", file=sys.stderr)
            return 2
    runs: dict[str, dict[str, Any]] = {}
    traced: dict[str, dict[str, Any]] = {}
    result: dict[str, Any] = {"machine": machine(),
                              "command": [_PROG, *(sys.argv[1:] if argv is None else argv)],
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "runs": runs}
    if args.syscalls:
        result["syscalls"] = traced
    host0 = host_counters()
    t_start = time.monotonic()
    try:
        for phase in _phases(args):
            want_idle = (bool(args.idle_binds) and phase.kind != "simulator"
                         and not phase.trace and "idle_binds" not in result)
            summary, idle = _run_phase(args, phase, want_idle)
            if idle is not None:
                result["idle_binds"] = idle
            (traced if phase.trace else runs)[phase.label] = {
                "label": phase.label, "target": phase.kind, "baseline": phase.baseline,
                "windows_name": phase.windows, "binds": args.binds,
                "tx_rx": args.tx_rx, "window": args.window, "messages": phase.messages,
                "rate": phase.rate, "procs": args.procs, "mix": args.mix,
                "long_chars": args.long_chars, **summary}
    except (StartError, RuntimeError, OSError) as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 2
    finally:
        result["wall_s"] = round(time.monotonic() - t_start, 1)
        result["host"] = steal(host0, host_counters())
    result["ratios"] = ratios(runs)
    result["cpu_ratios"] = cpu_ratios(runs)
    extra: dict[str, Any] = {}
    idle = result.get("idle_binds")
    if idle and "gateway_rss_delta_mb" in idle:
        extra[f"idle binds ({idle['bound']} bound)"] = (
            f"gateway RSS {idle['gateway_rss_before_mb']} -> {idle['gateway_rss_after_mb']} MB"
            f" (+{idle['gateway_rss_delta_mb']} MB, {idle['kb_per_bind']} KB/bind)")
    extra["wall time"] = f"{result['wall_s']} s"
    host = result["host"]
    extra["host over the run"] = (f"steal {host['steal_pct']} %, busy {host['busy_pct']} %"
                                  f" of {machine()['nproc']} CPUs")
    print(table(runs, extra))
    if traced:
        print(syscall_table(traced))
    if args.out:
        write_json(args.out, result)
        print(f"result: {args.out}")
    if args.plot:
        note = write_plot(args.plot, runs)
        print(note or f"plot: {args.plot}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
