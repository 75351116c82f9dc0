"""``smsc-bench --tls-compare``: what TLS costs per message, plain and TLS phases in pairs.

Each phase runs on a fresh stack (``procs.Stack``): simulator, gateway and the same load
(``-m`` messages, closed loop, or open loop at ``--rate``; ``-n`` binds of window ``-w``;
with ``--standard`` both loads of ``make bench``, closed loop and open loop at
``--open-rate``, each in its own pairs, which ``make bench-tls`` runs).
In a TLS phase (``GatewayOptions.tls``) the tenant binds go to the gateway's
``[listen_tls]`` port and the gateway binds to the simulator with ``tls = true`` and
``ca``, with certificates made for that run (``certs``); in a plain phase both legs are
TCP. ``--pairs N`` runs N pairs back to back; the order alternates (plain first in odd
pairs, TLS first in even ones) so that a drift of the shared host does not always fall on
the same side. A 10 ms ``/proc`` sampler (``sampler``) gives the gateway's and the
simulator's CPU from the first submit to the last receipt, and the host's steal over that
window; every bind (and so every handshake) is up before the window opens. The gateway's
read and write system calls per message come from ``/proc/PID/io`` (in the JSON only: they
cost nothing to count, but the store's file writes outnumber the socket writes, so
``--tls-checks`` tells the sockets apart). Per pair: the
gateway's CPU µs per accepted message in each phase and TLS ÷ plain; the result is the
median of those ratios (target: at most 1.25, issue 13), and how much of the difference
is user space and how much kernel (``/proc/PID/stat`` utime and stime over the load).

``--tls-checks`` adds, after the pairs, phases that say how, not how fast:
- ``writes``: one plain and one TLS phase of ``--trace-messages`` messages, open loop at
  ``--trace-rate`` (small batches), with strace on the gateway (``syscalls``): socket
  reads and writes per message toward tenants and toward the operator. If TLS writes once
  per batch of PDUs, TLS and plain have the same counts.
- ``resumption``: a TLS phase in which the simulator closes each bind every
  ``--drop-every`` submits; the gateway reconnects, and its ``smsc_operator_events``
  counter ``tls_resumed`` says how many of those handshakes resumed a session (RFC 8446
  section 2.2), against the ``bound to`` lines of its log.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
import urllib.request
from contextlib import nullcontext
from typing import Any

import msgspec

from .certs import TLS_HOST
from .client import WorkerSpec
from .mix import parse_mix
from .procs import TENANT_ID, TENANT_PASSWORD, GatewayOptions, Stack
from .report import machine, write_json
from .resources import io_calls, usage
from .runner import run_load
from .sampler import Sampler
from .stats import merge, summarize
from .syscalls import SyscallCounter, per_message, strace_available

__all__ = ["TARGET_RATIO", "add_tls_arguments", "check_tls_arguments", "run_tls_compare"]

TARGET_RATIO = 1.25  # issue 13: TLS adds at most 25 % of CPU per message
_EVENT = re.compile(r'^smsc_operator_events_total\{(?=[^}]*event="([^"]+)")[^}]*\}\s+(\S+)')


def add_tls_arguments(p: argparse.ArgumentParser) -> None:
    add = p.add_argument
    add("--tls", action="store_true",
        help="over TLS: tenant binds to the gateway's [listen_tls], the gateway to the "
             "simulator with tls = true (certificates made for the run with trustme)")
    add("--tls-compare", action="store_true",
        help="plain and TLS gateway phases in --pairs interleaved pairs, same load: CPU "
             "per message and the TLS/plain ratio (see BENCHMARKS.md)")
    add("--tls-checks", action="store_true",
        help="--tls-compare: also count the gateway's socket writes (strace) plain vs TLS, "
             "and whether operator reconnects resume their TLS session")
    add("--trace-messages", type=int, default=2_000,
        help="--tls-checks: messages of each strace phase (2000)")
    add("--trace-rate", type=float, default=500.0,
        help="--tls-checks: open-loop msg/s of the strace phases, where batches are small "
             "(500; 0 = the load of the pairs)")
    add("--drop-every", type=int, default=400,
        help="--tls-checks: the simulator closes each bind every N submits (400)")


def check_tls_arguments(args: argparse.Namespace) -> str | None:
    if not (args.tls or args.tls_compare):
        return None
    if args.target or args.http:
        return "--tls and --tls-compare start their own stacks (no --target, no --http)"
    if args.tls and args.tls_compare:
        return "--tls-compare runs both plain and TLS phases: drop --tls"
    if args.tls_compare and (args.pairs < 1 or args.trace_messages < 1 or args.drop_every < 1):
        return "--pairs, --trace-messages and --drop-every must be at least 1"
    if args.trace_rate < 0:
        return "--trace-rate must not be negative"
    if args.tls_checks and not strace_available():
        return "--tls-checks needs strace (apt-get install strace)"
    return None


def _log(args: argparse.Namespace, line: str) -> None:
    if not args.quiet:
        print(f"smsc-bench --tls-compare: {line}", file=sys.stderr, flush=True)


def _us(cpu: float | None, n: int) -> float | None:
    return round(cpu / n * 1e6, 1) if cpu is not None and n else None


def _operator_events(url: str) -> dict[str, float]:
    if not url:
        return {}
    with urllib.request.urlopen(url, timeout=10.0) as resp:
        text = resp.read().decode()
    return {m[1]: float(m[2]) for line in text.splitlines() if (m := _EVENT.match(line))}


def _phase(args: argparse.Namespace, base: GatewayOptions, tls: bool, label: str, *,
           messages: int, rate: float | None = None, trace: bool = False,
           drop_every: int = 0) -> dict[str, Any]:
    """One phase on a fresh stack; its counts, CPU per message, steal (and I/O counts)."""
    rate = args.rate if rate is None else rate
    opts = msgspec.structs.replace(base, tls=tls,
                                   log_level="INFO" if drop_every else base.log_level)
    with Stack(gateway=True, opts=opts, sim_window=args.sim_window, keep_dir=args.keep_dir,
               sim_drop_every=drop_every) as stack:
        assert stack.gateway is not None and stack.gateway.pid is not None
        pids = {"gateway": stack.gateway.pid, "simulator": stack.sim.pid if stack.sim else None}
        spec = WorkerSpec(host=TLS_HOST, port=stack.target_port, system_id=TENANT_ID,
                          password=TENANT_PASSWORD, binds=args.binds, tx_rx=args.tx_rx,
                          window=args.window, messages=messages, rate=rate,
                          mix=parse_mix(args.mix, args.long_chars),
                          receipts=not args.no_receipts,
                          receipt_timeout_s=args.receipt_timeout, max_time_s=args.max_time,
                          progress=not args.quiet, label=label, tls_ca=stack.tls_ca)
        counter = (SyscallCounter(stack.gateway.pid, stack.dir / "strace.txt",
                                  {stack.gateway_port, stack.tls_gateway_port}, stack.sim_port)
                   if trace else None)
        io0, u0 = io_calls(stack.gateway.pid), usage(stack.gateway.pid)
        with Sampler(pids) as s, counter or nullcontext():
            records = run_load(spec, args.procs)
        io1, u1 = io_calls(stack.gateway.pid), usage(stack.gateway.pid)
        sim_tls = stack.simulator_tls
        events = _operator_events(stack.metrics_url)
        log = (stack.dir / "gateway.log").read_text(errors="replace") if drop_every else ""
        io = counter.counts() if counter is not None else None  # before the files go
    summary = summarize(records, with_timeline=False)
    m = merge(records)
    accepted = summary["accepted"]
    t_end = max(max(m.sub_t, default=m.t0), max(m.rc_t, default=m.t0))
    gw, sim = s.cpu("gateway", m.t0, t_end), s.cpu("simulator", m.t0, t_end)
    out: dict[str, Any] = {
        "label": label, "tls": tls, "messages": messages, "rate": rate,
        **{k: summary[k] for k in ("sent", "accepted", "rejected", "receipts",
                                   "missing_receipts", "errors", "failures", "bind_errors",
                                   "tls_versions", "duration_s", "throughput", "latency_ms",
                                   "loadgen")},
        "simulator_tls": sim_tls,
        "window_s": round(t_end - m.t0, 3),
        "gw_cpu_s": round(gw, 3) if gw is not None else None,
        "gw_us_per_msg": _us(gw, accepted),
        "sim_us_per_msg": _us(sim, accepted),
        "gen_us_per_msg": summary["loadgen"]["cpu_us_per_msg"],
        "gw_cpu_pct": round(gw / (t_end - m.t0) * 100, 1)
        if gw is not None and t_end > m.t0 else None,
        **s.host(m.t0, t_end),
        "operator_events": events,
    }
    if u0 is not None and u1 is not None and accepted:
        # Over the whole load (binds included): where the CPU went, user space or kernel.
        cpu, sys_s = u1.cpu_s - u0.cpu_s, u1.sys_s - u0.sys_s
        out["gw_user_us_per_msg"] = _us(cpu - sys_s, accepted)
        out["gw_sys_us_per_msg"] = _us(sys_s, accepted)
    if io0 is not None and io1 is not None and accepted:
        # The whole load (binds included), every kind of file: a check on batching that
        # costs the gateway nothing, unlike strace.
        out["gw_read_calls_per_msg"] = round((io1[0] - io0[0]) / accepted, 3)
        out["gw_write_calls_per_msg"] = round((io1[1] - io0[1]) / accepted, 3)
    if io is not None:
        out["syscalls"] = per_message(io, accepted)
    if drop_every:
        out["drop_every"] = drop_every
        out["operator_binds_up"] = log.count(" bound to ")  # the first binds and reconnects
    return out


class Load(msgspec.Struct, frozen=True):
    """The load of one phase: ``rate`` 0 = closed loop."""

    name: str
    rate: float
    messages: int


def loads(args: argparse.Namespace) -> list[Load]:
    """``-m``/``--rate``; with ``--standard`` the two loads of ``make bench``."""
    if args.standard:
        return [Load("closed", 0.0, args.messages),
                Load(f"open@{args.open_rate:g}/s", args.open_rate, args.open_messages)]
    name = f"open@{args.rate:g}/s" if args.rate else "closed"
    return [Load(name, args.rate, args.messages)]


def _pair(args: argparse.Namespace, base: GatewayOptions, load: Load, k: int
          ) -> dict[str, Any]:
    order = ["plain", "tls"] if k % 2 else ["tls", "plain"]
    out: dict[str, Any] = {"pair": k, "order": order}
    for mode in order:
        label = f"{mode}#{k}" + ("" if load.name == "closed" else f" {load.name}")
        _log(args, f"pair {k}, {load.name}: {mode}")
        out[mode] = _phase(args, base, mode == "tls", label, messages=load.messages,
                           rate=load.rate)
    for key in ("gw_us_per_msg", "sim_us_per_msg", "gen_us_per_msg"):
        a, b = out["tls"][key], out["plain"][key]
        out[f"ratio_{key.split('_', 1)[0]}"] = round(a / b, 3) if a and b else None
    for key in ("gw_user_us_per_msg", "gw_sys_us_per_msg"):  # TLS - plain, in µs
        a, b = out["tls"].get(key), out["plain"].get(key)
        out[f"extra_{key}"] = round(a - b, 1) if a is not None and b is not None else None
    a, b = (out[m]["throughput"]["end_to_end_per_s"] for m in ("tls", "plain"))
    out["ratio_e2e_per_s"] = round(a / b, 3) if a and b else None
    return out


def _median(values: list[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return round(statistics.median(xs), 3) if xs else None


def summary(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("ratio_gw", "ratio_sim", "ratio_gen", "ratio_e2e_per_s"):
        xs = [p[key] for p in pairs if p.get(key) is not None]
        out[key] = {"median": _median(xs), "min": min(xs, default=None),
                    "max": max(xs, default=None)}
    med = out["ratio_gw"]["median"]
    out["target_ratio"] = TARGET_RATIO
    out["met"] = med is not None and med <= TARGET_RATIO
    return out


def _checks(args: argparse.Namespace, base: GatewayOptions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n = args.trace_messages
    for mode in ("plain", "tls"):
        _log(args, f"checks: {mode} with strace on the gateway ({n} messages)")
        out[f"writes_{mode}"] = _phase(args, base, mode == "tls", f"strace-{mode}",
                                       messages=n, rate=args.trace_rate or args.rate,
                                       trace=True)
    _log(args, f"checks: TLS, the simulator dropping each bind every {args.drop_every} submits")
    out["resumption"] = _phase(args, base, True, "resume", messages=max(n, 4 * args.drop_every),
                               drop_every=args.drop_every)
    return out


def run_tls_compare(args: argparse.Namespace, base: GatewayOptions, command: list[str]
                    ) -> int:
    from .tls_report import tls_table  # the text table only

    result: dict[str, Any] = {
        "machine": machine(), "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "mode": "tls-compare",
        "loads": {ld.name: {"rate": ld.rate, "messages": ld.messages, "pairs": []}
                  for ld in loads(args)}}
    t0 = time.monotonic()
    for k in range(1, args.pairs + 1):
        for ld in loads(args):
            entry = result["loads"][ld.name]
            entry["pairs"].append(_pair(args, base, ld, k))
            entry["summary"] = summary(entry["pairs"])
            result["wall_s"] = round(time.monotonic() - t0, 1)
            if args.out:  # after every pair: a stopped run keeps what it measured
                write_json(args.out, result)
    if args.tls_checks:
        result["checks"] = _checks(args, base)
        result["wall_s"] = round(time.monotonic() - t0, 1)
        if args.out:
            write_json(args.out, result)
    print(tls_table(result))
    if args.out:
        print(f"result: {args.out}")
    return 0
