"""``python -m bench.cluster_bench``: a gateway node on NATS JetStream against one on SQLite,
in interleaved pairs, then 1, 2 and 3 nodes on one NATS cluster (issue 14, BENCHMARKS.md).

**Pairs** (``--pairs``): each pair runs the same open-loop load (``--rate`` msg/s,
``--messages``) once against a gateway on SQLite alone and once against a gateway that is a
node of a fresh three-server JetStream cluster (``sync_interval: always``, replicas 3), the
order alternating from pair to pair. Every run starts its own simulator and gateway
(``bench.load.procs.Stack``) and drives it with smsc-bench's ``--target`` mode, so the CPU
figures cover the load alone: the gateway's CPU per accepted message (smsc-bench), and for
the NATS run the three servers' CPU over the same span (``/proc/<pid>/stat``). Reported: each
run, and the median over the pairs of the NATS / SQLite ratios (CPU per message, p99
submit_sm_resp), which is what a noisy shared machine can measure.

**Nodes** (``--nodes 1,2,3``): N gateway nodes on one fresh NATS cluster, each with its own
simulator, each driven by its own smsc-bench at ``rate / N`` at once: the CPU per message
of the gateways together and of the servers, and each node's p99, for the arithmetic that
projects N nodes on N machines (BENCHMARKS.md). The tenant is the same on every node, so its
receipts all leave through the node holding its lease: counted over every node's load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import msgspec

from .load.cli import main as bench_main
from .load.procs import TENANT_ID, TENANT_PASSWORD, GatewayOptions, Stack
from .load.report import machine
from .natsd import NatsCluster

__all__ = ["main"]

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds of ``pid`` so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _load(port: int, pid: int, rate: float, messages: int, out: Path) -> dict[str, Any]:
    """smsc-bench --target against one running gateway; its one run's summary."""
    code = bench_main(["--target", f"127.0.0.1:{port}", "--target-pid", str(pid),
                       "--system-id", TENANT_ID, "--password", TENANT_PASSWORD,
                       "--rate", f"{rate:g}", "--messages", str(messages), "--quiet",
                       "--out", str(out)])
    if code != 0:
        raise RuntimeError(f"smsc-bench exited {code}")
    runs: dict[str, Any] = json.loads(out.read_text())["runs"]
    return next(iter(runs.values()))


def _figures(run: dict[str, Any]) -> dict[str, Any]:
    lat = run["latency_ms"]["submit_resp"]
    return {"accepted": run["accepted"], "errors": run["rejected"] + run["missing_receipts"],
            "gateway_cpu_us_per_msg": run["gateway"]["cpu_us_per_msg"],
            "submit_p50_ms": lat["p50"], "submit_p99_ms": lat["p99"],
            "receipt_p99_ms": run["latency_ms"]["receipt"]["p99"],
            "submit_per_s": run["throughput"]["submit_per_s"]}


def _nats(work: Path) -> NatsCluster:
    cluster = NatsCluster(Path(tempfile.mkdtemp(prefix="nats-", dir=work)), size=3)
    cluster.start()
    return cluster


def _one(engine: str, args: argparse.Namespace, work: Path, n: int) -> dict[str, Any]:
    nats = _nats(work) if engine == "nats" else None
    try:
        servers = tuple(nats.servers) if nats is not None else ()
        opts = GatewayOptions(cluster_servers=servers)
        with Stack(opts=opts) as stack:
            assert stack.gateway is not None and stack.gateway.pid is not None
            pids = [p for p in (nats.pids if nats is not None else []) if p]
            before = sum(cpu_s(p) for p in pids)
            run = _load(stack.target_port, stack.gateway.pid, args.rate, args.messages,
                        work / f"{engine}-{n}.json")
            nats_cpu = sum(cpu_s(p) for p in pids) - before
    finally:
        if nats is not None:
            nats.stop()
    out = {"engine": engine, **_figures(run)}
    if pids:
        out["nats_cpu_us_per_msg"] = round(nats_cpu / max(1, run["accepted"]) * 1e6, 1)
    return out


def pairs(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    ratios: dict[str, list[float]] = {"gateway_cpu": [], "submit_p99": []}
    for n in range(args.pairs):
        order = ("sqlite", "nats") if n % 2 == 0 else ("nats", "sqlite")
        got = {e: _one(e, args, work, n) for e in order}
        for e in order:
            runs.append({"pair": n, **got[e]})
            print(json.dumps(runs[-1]), flush=True)
        s, c = got["sqlite"], got["nats"]
        ratios["gateway_cpu"].append(c["gateway_cpu_us_per_msg"] / s["gateway_cpu_us_per_msg"])
        ratios["submit_p99"].append(c["submit_p99_ms"] / s["submit_p99_ms"])
    return {"runs": runs, "median_ratios": {k: round(statistics.median(v), 2)
                                            for k, v in ratios.items()},
            "ratios": {k: [round(x, 2) for x in v] for k, v in ratios.items()}}


def nodes(args: argparse.Namespace, work: Path, count: int) -> dict[str, Any]:
    """``count`` gateway nodes on one NATS cluster, each loaded at ``rate / count``."""
    nats = _nats(work)
    stacks: list[Stack] = []
    try:
        opts = GatewayOptions(cluster_servers=tuple(nats.servers), op_binds=2 * count)
        for i in range(count):
            stack = Stack(opts=msgspec.structs.replace(opts, cluster_node=f"gw{i + 1}"))
            stack.__enter__()
            stacks.append(stack)
        pids = [p for p in nats.pids if p]
        results: list[dict[str, Any] | BaseException] = [RuntimeError("not run")] * count

        def drive(i: int, stack: Stack) -> None:
            try:
                assert stack.gateway is not None and stack.gateway.pid is not None
                results[i] = _load(stack.target_port, stack.gateway.pid, args.rate / count,
                                   args.messages // count, work / f"nodes{count}-{i}.json")
            except BaseException as exc:  # reported below
                results[i] = exc

        before = sum(cpu_s(p) for p in pids)
        threads = [threading.Thread(target=drive, args=(i, s)) for i, s in enumerate(stacks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        nats_cpu = sum(cpu_s(p) for p in pids) - before
    finally:
        for stack in stacks:
            stack.__exit__(None, None, None)
        nats.stop()
    for r in results:
        if isinstance(r, BaseException):
            raise RuntimeError(f"a node's load failed: {r!r}")
    done = [r for r in results if isinstance(r, dict)]
    accepted = sum(r["accepted"] for r in done)
    gw_cpu = sum(r["gateway"]["cpu_s"] for r in done)
    # A tenant's receipts are delivered by one node (the holder of its lease), to its binds
    # there: each node's load sees the others' receipts as unknown ids; none may be missing.
    receipts = sum(r["receipts"] + r["unknown_receipts"] for r in done)
    return {"nodes": count, "accepted": accepted, "receipts": receipts,
            "gateway_cpu_us_per_msg": round(gw_cpu / max(1, accepted) * 1e6, 1),
            "nats_cpu_us_per_msg": round(nats_cpu / max(1, accepted) * 1e6, 1),
            "submit_p99_ms": [r["latency_ms"]["submit_resp"]["p99"] for r in done],
            "submit_p50_ms": [r["latency_ms"]["submit_resp"]["p50"] for r in done]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cluster_bench", description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--rate", type=float, default=2000.0)
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--nodes", default="", help="e.g. 1,2,3: node-count runs after the pairs")
    p.add_argument("--out", default="bench-cluster.json")
    args = p.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        work = Path(tmp)
        result: dict[str, Any] = {"machine": machine(), "command": sys.argv,
                                  "rate": args.rate, "messages": args.messages}
        if args.pairs:
            result["pairs"] = pairs(args, work)
            print(json.dumps(result["pairs"]["median_ratios"]), flush=True)
        counts = [int(x) for x in args.nodes.split(",") if x.strip()]
        result["nodes"] = []
        for count in counts:
            result["nodes"].append(nodes(args, work, count))
            print(json.dumps(result["nodes"][-1]), flush=True)
    result["wall_s"] = round(time.monotonic() - started, 1)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"result: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
