"""Run the load generator in this process or split across K worker processes, then merge.

``run_worker`` is one worker: bind, wait until every worker is bound, run, unbind. One worker
runs in this process on uvloop. With ``procs > 1`` the binds, messages and rate
are divided among K ``multiprocessing`` processes (spawn), which share a small counter array;
each sends its records back through a queue; the parent waits with a deadline and kills any
worker still alive by its PID. Worker 0 prints the progress line and samples /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import queue
import signal
import time
import traceback
from array import array
from collections.abc import Callable, MutableSequence
from typing import Any

import msgspec

from .client import READY, SLOTS, Driver, WorkerSpec
from .stats import WorkerRecord

__all__ = ["loop_factory", "run_load", "run_worker", "split"]


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def run_worker(spec: WorkerSpec, shared: MutableSequence[int]) -> WorkerRecord:
    """Bind, wait for every worker to be bound, run the load, unbind; return the records."""
    loop = asyncio.get_running_loop()
    driver = Driver(spec, shared, loop)
    cpu0 = time.process_time()
    base = spec.worker * SLOTS
    try:
        try:
            await driver.open_binds()
        except (OSError, RuntimeError, TimeoutError) as exc:
            shared[base + READY] = -1
            raise RuntimeError(f"worker {spec.worker}: cannot bind to "
                               f"{spec.host}:{spec.port}: {exc}") from exc
        shared[base + READY] = 1
        deadline = time.monotonic() + 60.0
        while True:
            ready = [shared[w * SLOTS + READY] for w in range(spec.workers)]
            if -1 in ready:
                raise RuntimeError("another worker could not bind")
            if all(r == 1 for r in ready):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not all bind within 60 s")
            await asyncio.sleep(0.005)
        driver.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(driver.finished), spec.max_time_s + 60.0)
        driver._publish()
    finally:
        driver.cancel_timers()
        await driver.close_binds()
    record = driver.record()
    record.cpu_s = time.process_time() - cpu0
    return record


def _run_here(spec: WorkerSpec, shared: MutableSequence[int]) -> WorkerRecord:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(run_worker(spec, shared))


def _child(spec: WorkerSpec, shared: Any, results: Any) -> None:
    try:
        record = _run_here(spec, shared)
        results.put((spec.worker, msgspec.msgpack.encode(record), None))
    except BaseException as exc:  # reported to the parent, which raises it
        results.put((spec.worker, None, f"{exc}\n{traceback.format_exc(limit=5)}"))


def split(total: int, parts: int) -> list[int]:
    """``total`` as ``parts`` near-equal integers (the first ones get the remainder)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def run_load(spec: WorkerSpec, procs: int = 1) -> list[WorkerRecord]:
    """Run ``spec`` (the whole load) with ``procs`` workers; returns each worker's records."""
    procs = max(1, min(procs, spec.binds))
    if procs == 1:
        shared = array("q", [0] * SLOTS)
        return [_run_here(msgspec.structs.replace(spec, worker=0, workers=1), shared)]
    ctx = mp.get_context("spawn")
    shared_mp = ctx.Array("q", SLOTS * procs, lock=False)
    results: Any = ctx.Queue()
    specs = [msgspec.structs.replace(spec, worker=k, workers=procs, binds=b, messages=m,
                                     rate=spec.rate / procs)
             for k, (b, m) in enumerate(zip(split(spec.binds, procs),
                                            split(spec.messages, procs), strict=True))]
    children = [ctx.Process(target=_child, args=(s, shared_mp, results), daemon=True,
                            name=f"smsc-bench-{s.worker}") for s in specs]
    records: dict[int, WorkerRecord] = {}
    errors: list[str] = []
    try:
        for child in children:
            child.start()
        limit = spec.max_time_s + spec.receipt_timeout_s + 150.0
        end = time.monotonic() + limit
        while len(records) + len(errors) < procs and time.monotonic() < end:
            try:
                k, blob, err = results.get(timeout=0.5)
            except queue.Empty:
                if not any(c.is_alive() for c in children) and results.empty():
                    break
                continue
            if err is not None:
                errors.append(f"worker {k}: {err}")
            else:
                records[k] = msgspec.msgpack.decode(blob, type=WorkerRecord)
    finally:
        for child in children:
            child.join(timeout=5.0)
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, signal.SIGKILL)
                child.join(timeout=5.0)
        results.close()
    if errors:
        raise RuntimeError("; ".join(errors))
    if len(records) < procs:
        raise RuntimeError(f"only {len(records)} of {procs} workers reported")
    return [records[k] for k in sorted(records)]
