"""Which HTTP framework serves ``POST /v1/messages``: Litestar on uvicorn, or aiohttp.web.

``python -m bench.http_frameworks [--pairs 5] [--duration 3] [--http auto|h11|httptools]
[--candidates litestar,aiohttp] [--no-pin] [--json FILE]``; candidates are ``litestar``
(uvicorn's parser from ``--http``), ``litestar-h11``, ``litestar-httptools`` and ``aiohttp``.

Both servers do the same work per request: a bearer token check (sha256 of the token in a
set), the body decoded into the msgspec Structs below (Litestar: its own
``data: JSONBody[SendRequest]`` parameter; aiohttp: ``msgspec.json.decode(await
request.read(), type=SendRequest)``), ``{{var}}`` placeholders filled per recipient,
encoding and parts counted, one result with an id from a counter per recipient, the
response encoded by msgspec. Nothing is stored. Both run on uvloop and, like ``smsc
serve``, ``gc.freeze()`` after start-up.

Each run starts a fresh server subprocess (127.0.0.1, port 0, pinned to CPU 0) and a load
client subprocess (pinned to CPU 1; aiohttp, keep-alive, N workers, a warm-up and then a
fixed duration). The client reads the server's utime+stime from ``/proc/PID/stat`` and the
host's steal and busy time from ``/proc/stat`` when the measured window opens and closes
(``other`` = host busy time minus server and client). Candidates run interleaved in pairs
(A B, B A, ...); each ratio to aiohttp is taken within a pair, then the median is shown.
Every subprocess is stopped by PID. Standalone: imports the stdlib, msgspec, litestar,
uvicorn, aiohttp and uvloop only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import uvloop

from .http_framework_apps import (
    TOKEN,
    BadRequest,
    Globals,
    MessageResult,
    MessageSpec,
    Recipient,
    SendRequest,
    SendResponse,
    accept,
    aiohttp_app,
    authorized,
    body_for,
    litestar_app,
    pin,
    serve,
)

ROOT = Path(__file__).resolve().parents[1]
_TICKS = os.sysconf("SC_CLK_TCK")

__all__ = ["Globals", "MessageResult", "MessageSpec", "Recipient", "SendRequest",
           "SendResponse", "BadRequest", "TOKEN", "accept", "aiohttp_app", "authorized",
           "body_for", "litestar_app", "main"]

def _proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rfind(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _host_ticks() -> tuple[int, int, int]:
    """(steal, idle + iowait, total) ticks of all CPUs from /proc/stat (guest is in user)."""
    with open("/proc/stat", "rb") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    return values[7], values[3] + values[4], sum(values)


async def _load(port: int, server_pid: int, recipients: int, workers: int, duration: float,
                warmup: float) -> dict[str, Any]:
    body = body_for(recipients)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    url = f"http://127.0.0.1:{port}/v1/messages"
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=workers, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # the first answer is checked in full; later ones by status
        async with session.post(url, data=body, headers=headers) as resp:
            first = msgspec.json.decode(await resp.read(), type=SendResponse)
            if resp.status != 200 or len(first.messages) != recipients:
                raise RuntimeError(f"bad first answer: {resp.status} {first}")

        async def worker(until: float, record: bool) -> None:
            nonlocal errors
            while (start := time.perf_counter()) < until:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    ok = resp.status == 200
                if record:
                    if ok:
                        latencies.append(time.perf_counter() - start)
                    else:
                        errors += 1

        warm_until = time.perf_counter() + warmup
        await asyncio.gather(*(worker(warm_until, False) for _ in range(workers)))
        cpu0, own0, host0 = _proc_cpu(server_pid), os.times(), _host_ticks()
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(t0 + duration, True) for _ in range(workers)))
        cpu1, own1, host1 = _proc_cpu(server_pid), os.times(), _host_ticks()
        t1 = time.perf_counter()
    latencies.sort()
    n = len(latencies)
    elapsed = t1 - t0
    dsteal, didle, dtotal = (b - a for a, b in zip(host0, host1, strict=True))
    server_cpu = cpu1 - cpu0
    client_cpu = (own1.user + own1.system) - (own0.user + own0.system)
    other_cpu = (dtotal - didle - dsteal) / _TICKS - server_cpu - client_cpu
    return {
        "requests": n, "errors": errors, "elapsed_s": elapsed, "req_per_s": n / elapsed,
        "msg_per_s": n * recipients / elapsed,
        "p50_ms": latencies[(n - 1) // 2] * 1e3 if n else None,
        "p99_ms": latencies[max(0, -(-99 * n // 100) - 1)] * 1e3 if n else None,
        "server_cpu_s": server_cpu,
        "server_us_per_req": server_cpu / n * 1e6 if n else None,
        "server_us_per_msg": server_cpu / (n * recipients) * 1e6 if n else None,
        "server_cpu_pct": 100 * server_cpu / elapsed,
        "client_cpu_pct": 100 * client_cpu / elapsed,
        "other_cpu_pct": 100 * max(0.0, other_cpu) / elapsed,  # everything else on the host
        "steal_pct": 100 * dsteal / dtotal if dtotal else 0.0,
    }


# ---- the orchestrator -----------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _one_run(candidate: str, recipients: int, workers: int, args: argparse.Namespace
             ) -> dict[str, Any]:
    framework, _, http = candidate.partition("-")
    pin_server, pin_client = ([] if args.no_pin else ["--cpu", "0"]), ([] if args.no_pin
                                                                        else ["--cpu", "1"])
    cmd = [sys.executable, "-m", "bench.http_frameworks", "serve", framework,
           "--http", http or args.http, *pin_server]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT, env=_env())
    client: subprocess.Popen[bytes] | None = None
    try:
        assert server.stdout is not None
        ready, _, _ = select.select([server.stdout], [], [], 20)
        line = server.stdout.readline().decode() if ready else ""
        if not line.startswith("PORT "):
            raise RuntimeError(f"{candidate}: no port line within 20 s (got {line!r})")
        port, impl = line.split()[1], line.split()[2].removeprefix("http=")
        client = subprocess.Popen(
            [sys.executable, "-m", "bench.http_frameworks", "load", "--port", port,
             "--server-pid", str(server.pid), "--recipients", str(recipients),
             "--workers", str(workers), "--duration", str(args.duration),
             "--warmup", str(args.warmup), *pin_client],
            stdout=subprocess.PIPE, cwd=ROOT, env=_env())
        out, _ = client.communicate(timeout=args.duration + args.warmup + 60)
        if client.returncode != 0:
            raise RuntimeError(f"{candidate}: load client exited {client.returncode}")
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return {"candidate": candidate, "http": impl, "recipients": recipients,
                "workers": workers, **result}
    finally:
        if client is not None:
            _stop(client)
        _stop(server)


def _fmt(v: float | None, spec: str = ",.1f") -> str:
    return "-" if v is None else format(v, spec)


def _report(runs: list[dict[str, Any]], candidates: list[str], sizes: list[int],
            baseline: str) -> dict[str, Any]:
    cols = ("pair", "candidate", "http", "rcpts", "req/s", "msg/s", "p50 ms", "p99 ms",
            "srv µs/req", "srv µs/msg", "srv cpu%", "cli cpu%", "other%",
            "steal%", "errors")
    rows = [(str(r["pair"]), r["candidate"], r["http"], str(r["recipients"]),
             _fmt(r["req_per_s"]), _fmt(r["msg_per_s"], ",.0f"), _fmt(r["p50_ms"], ".2f"),
             _fmt(r["p99_ms"], ".2f"), _fmt(r["server_us_per_req"]),
             _fmt(r["server_us_per_msg"], ".2f"), _fmt(r["server_cpu_pct"], ".0f"),
             _fmt(r["client_cpu_pct"], ".0f"), _fmt(r["other_cpu_pct"], ".0f"),
             _fmt(r["steal_pct"], ".1f"), str(r["errors"]))
            for r in runs]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    summary: dict[str, Any] = {}
    print(f"\nmedians over pairs; ratios: candidate/{baseline} within each pair, then the median")
    for size in sizes:
        mine = [r for r in runs if r["recipients"] == size]
        by: dict[str, dict[int, dict[str, Any]]] = {}
        for r in mine:
            by.setdefault(r["candidate"], {})[r["pair"]] = r
        for cand in candidates:
            med = {k: statistics.median(r[k] for r in by[cand].values())
                   for k in ("req_per_s", "server_us_per_req", "server_us_per_msg", "p99_ms",
                             "steal_pct")}
            entry: dict[str, Any] = {"median": med}
            line = (f"{size:>5} rcpt  {cand:<18} req/s {med['req_per_s']:>9,.1f}  "
                    f"srv µs/msg {med['server_us_per_msg']:>8.2f}  p99 {med['p99_ms']:.2f} ms  "
                    f"steal {med['steal_pct']:.1f}%")
            if cand != baseline:
                pairs = sorted(set(by[cand]) & set(by[baseline]))
                ratios = {k: statistics.median(by[cand][p][k] / by[baseline][p][k] for p in pairs)
                          for k in ("req_per_s", "server_us_per_msg")}
                entry["ratio_vs_" + baseline] = ratios
                line += (f"  | ratio req/s {ratios['req_per_s']:.3f}, "
                         f"µs/msg {ratios['server_us_per_msg']:.3f}")
            summary[f"{size}:{cand}"] = entry
            print(line)
    return summary


def run(args: argparse.Namespace) -> dict[str, Any]:
    candidates = args.candidates.split(",")
    sizes = [(1, args.workers_small), (1000, args.workers_large)]
    baseline = "aiohttp" if "aiohttp" in candidates else candidates[-1]
    with open("/proc/loadavg") as f:
        load_before = f.read().split()[0]
    print(f"http_frameworks: {args.pairs} pairs x {len(sizes)} sizes x {candidates}, "
          f"{args.duration} s each after {args.warmup} s warm-up; nproc {os.cpu_count()}, "
          f"loadavg {load_before}; httptools installed: {_version('httptools') is not None}",
          flush=True)
    runs: list[dict[str, Any]] = []
    for pair in range(1, args.pairs + 1):
        for size, workers in sizes:
            order = candidates if pair % 2 else candidates[::-1]
            for cand in order:
                r = _one_run(cand, size, workers, args)
                r["pair"] = pair
                runs.append(r)
                print(f"  pair {pair} {size:>4} rcpt {cand:<18} {r['req_per_s']:>9,.1f} req/s "
                      f"{_fmt(r['server_us_per_msg'], '.2f'):>8} srv µs/msg "
                      f"other {r['other_cpu_pct']:.0f}% steal {r['steal_pct']:.1f}%", flush=True)
    print()
    summary = _report(runs, candidates, [s for s, _ in sizes], baseline)
    versions = {m: _version(m) for m in ("litestar", "uvicorn", "aiohttp", "msgspec", "uvloop",
                                         "httptools", "h11")}
    result = {"runs": runs, "summary": summary, "versions": versions,
              "python": sys.version.split()[0], "nproc": os.cpu_count(),
              "loadavg_before": load_before, "args": vars(args)}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return result


def _version(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(module)
    except PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        p = argparse.ArgumentParser(prog="python -m bench.http_frameworks serve")
        p.add_argument("framework", choices=("litestar", "aiohttp"))
        p.add_argument("--http", choices=("auto", "h11", "httptools"), default="auto")
        p.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
        a = p.parse_args(argv[1:])
        serve(a.framework, a.http, a.cpu)
        return
    if argv[:1] == ["load"]:
        p = argparse.ArgumentParser(prog="python -m bench.http_frameworks load")
        for name, kind in (("port", int), ("server-pid", int), ("recipients", int),
                           ("workers", int), ("duration", float), ("warmup", float)):
            p.add_argument(f"--{name}", type=kind, required=True)
        p.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
        a = p.parse_args(argv[1:])
        pin(a.cpu)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(_load(a.port, a.server_pid, a.recipients, a.workers,
                                      a.duration, a.warmup))
        print(json.dumps(result), flush=True)
        return
    p = argparse.ArgumentParser(prog="python -m bench.http_frameworks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--duration", type=float, default=3.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    p.add_argument("--workers-small", type=int, default=32, help="workers, 1-recipient runs")
    p.add_argument("--workers-large", type=int, default=4, help="workers, 1,000-recipient runs")
    p.add_argument("--http", choices=("auto", "h11", "httptools"), default="auto",
                   help="uvicorn's HTTP parser for the 'litestar' candidate")
    p.add_argument("--candidates", default="litestar,aiohttp",
                   help="comma-separated: litestar, litestar-h11, litestar-httptools, aiohttp")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin the server to CPU 0 and the client to CPU 1")
    p.add_argument("--json", help="write every run and the summary to this file")
    run(p.parse_args(argv))


if __name__ == "__main__":
    main()
