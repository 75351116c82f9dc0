"""Replicated group publish on a local JetStream cluster (issue 14): messages per second,
acknowledgement latency and CPU per message, of our client and of the servers, by batch size
and number of concurrent batches.

``python -m bench.nats_publish [--nodes 3] [--quick] [--rate R --intervals-ms 0,1,2,5]``.
It starts the cluster itself
(``bench.natsd``: loopback ports, ``sync_interval: always``) and stops it by PID. For each
case it creates a stream with as many replicas as nodes and sends ``messages`` publications
of 200 bytes through ``routing.nats.JetStreamBatches`` from ``producers`` coroutines. Each
coroutine publishes ``batch`` messages and awaits the batch's future, as a door awaits a
group commit. With ``--rate``, it runs an open loop instead: publications at R a second
for ``--seconds``, each acknowledged by its batch's future, with the publisher paced at
each of ``--intervals-ms`` in turn (``JetStreamBatches.min_interval_s``). The open loop
shows what pacing buys at a moderate rate: bigger batches, so less server CPU per message,
for a longer wait. It prints one line per case and, as the last line, the cases as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from routing.nats import JetStream, JetStreamBatches, StreamSpec, connect, ensure_stream
from routing.nats.publisher import BatchStats

from .natsd import NatsCluster

__all__ = ["main"]

CASES = ((1, 1, 2_000), (1, 8, 8_000), (10, 1, 10_000), (10, 8, 40_000), (100, 1, 40_000),
         (100, 4, 80_000), (500, 2, 80_000))  # (batch, producers, messages)
QUICK = ((1, 4, 1_000), (10, 4, 4_000), (100, 2, 10_000))


def _cpu_s(pid: int) -> float:
    """User + system seconds of process ``pid`` (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def _stream(servers: list[str], replicas: int, name: str, subject: str
                  ) -> AsyncIterator[JetStream]:
    """A connection and a fresh stream ``name`` on ``subject``, deleted at the end."""
    nc = await connect(servers, name="smsc-bench")
    js = nc.jetstream(timeout=5)
    try:
        await ensure_stream(js, StreamSpec(name, (subject,)), replicas)
        yield js
    finally:
        try:
            await js.delete_stream(name)
        finally:
            await nc.close()


class _Meter:
    """CPU of this process and of the servers from now on, and a case's figures."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.servers_before = sum(_cpu_s(p) for p in pids)
        self.ours_before = time.process_time()

    def figures(self, waits: list[float], stats: BatchStats) -> dict[str, Any]:
        ours = time.process_time() - self.ours_before
        servers = sum(_cpu_s(p) for p in self.pids) - self.servers_before
        done = stats.publications
        waits = sorted(waits)
        return {"messages": done, "batches": stats.batches,
                "ack_p50_ms": round(1e3 * waits[len(waits) // 2], 2),
                "ack_p99_ms": round(1e3 * waits[min(len(waits) - 1, int(len(waits) * 0.99))], 2),
                "client_us_per_msg": round(1e6 * ours / done, 1),
                "servers_us_per_msg": round(1e6 * servers / done, 1)}


async def _case(servers: list[str], pids: list[int], replicas: int, batch: int,
                producers: int, messages: int) -> dict[str, Any]:
    """Closed loop: ``producers`` coroutines, each publishing ``batch`` and awaiting it."""
    subject = f"bench.{batch}x{producers}"
    async with _stream(servers, replicas, f"BENCH_{batch}X{producers}", subject) as js:
        batches = JetStreamBatches(js, asyncio.get_running_loop(), timeout_s=5.0)
        waits: list[float] = []
        payload = b"x" * 200

        async def producer(k: int) -> None:
            for n in range(0, messages // producers, batch):
                for i in range(batch):
                    batches.publish(subject, payload, f"{k}-{n}-{i}")
                started = time.perf_counter()
                await batches.future()
                waits.append(time.perf_counter() - started)

        meter = _Meter(pids)
        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(producer(k) for k in range(producers))), 300)
        wall = time.perf_counter() - started
        out = meter.figures(waits, batches.stats)
        return {"batch": batch, "producers": producers,
                "msg_per_s": round(out["messages"] / wall), **out}


async def _open_case(servers: list[str], pids: list[int], replicas: int, rate: float,
                     interval_ms: float, seconds: float) -> dict[str, Any]:
    """Open loop: publications at ``rate``, the publisher paced at ``interval_ms``."""
    tag = int(interval_ms * 10)
    subject = f"bench.open.{tag}"
    async with _stream(servers, replicas, f"BENCH_OPEN_{tag}", subject) as js:
        loop = asyncio.get_running_loop()
        batches = JetStreamBatches(js, loop, timeout_s=5.0, min_interval_s=interval_ms / 1e3)
        waits: list[float] = []
        outstanding: list[asyncio.Future[None]] = []
        payload = b"x" * 200

        def done(sent: list[float], fut: asyncio.Future[None]) -> None:
            now = time.perf_counter()
            waits.extend(now - t for t in sent)

        meter = _Meter(pids)
        started = time.perf_counter()
        n = 0
        total = int(rate * seconds)
        while n < total:
            due = min(total, int((time.perf_counter() - started) * rate) + 1)
            sent: list[float] = []
            while n < due:
                batches.publish(subject, payload, f"o{n}")
                sent.append(time.perf_counter())
                n += 1
            if sent:
                fut = batches.future()
                fut.add_done_callback(functools.partial(done, sent))
                outstanding.append(fut)
            await asyncio.sleep(0.0005)
        await asyncio.wait_for(asyncio.gather(*outstanding), 60)
        return {"rate": rate, "interval_ms": interval_ms, **meter.figures(waits, batches.stats)}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="python -m bench.nats_publish", description=__doc__)
    parser.add_argument("--nodes", type=int, default=3, help="servers in the cluster (3)")
    parser.add_argument("--quick", action="store_true", help="three small cases")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="open loop at this many publications a second (default: closed)")
    parser.add_argument("--intervals-ms", default="0,1,2,5",
                        help="--rate: the publisher's pacing intervals to run (0,1,2,5)")
    parser.add_argument("--seconds", type=float, default=10.0, help="--rate: length (10)")
    args = parser.parse_args(argv)
    results: list[dict[str, Any]] = []
    with NatsCluster(Path(tempfile.mkdtemp(prefix="smsc-nats-bench-")), size=args.nodes) as c:
        pids = [p for p in c.pids if p is not None]
        print(f"NATS {c.version}, {args.nodes} node(s), replicas {args.nodes}, "
              "sync_interval always")
        if args.rate:
            for interval in (float(x) for x in args.intervals_ms.split(",")):
                r = asyncio.run(_open_case(c.servers, pids, args.nodes, args.rate, interval,
                                           args.seconds))
                results.append(r)
                print(f"{args.rate:g}/s paced {interval:g} ms: {r['batches']} batches, "
                      f"ack p50 {r['ack_p50_ms']:.2f} ms, p99 {r['ack_p99_ms']:.2f} ms, "
                      f"client {r['client_us_per_msg']:.1f} µs/msg, "
                      f"servers {r['servers_us_per_msg']:.1f} µs/msg")
            print(json.dumps(results))
            return results
        for batch, producers, messages in (QUICK if args.quick else CASES):
            r = asyncio.run(_case(c.servers, pids, args.nodes, batch, producers, messages))
            results.append(r)
            print(f"batch {batch:4d} x {producers:2d}: {r['msg_per_s']:7,} msg/s, "
                  f"ack p50 {r['ack_p50_ms']:.2f} ms, p99 {r['ack_p99_ms']:.2f} ms, "
                  f"client {r['client_us_per_msg']:.1f} µs/msg, "
                  f"servers {r['servers_us_per_msg']:.1f} µs/msg ({r['batches']} batches)")
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
