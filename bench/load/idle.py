"""What idle tenant binds cost the gateway: its RSS before and after opening N binds.

The binds are transceivers opened 50 at a time, held for ``settle_s`` with no traffic, then
unbound. The gateway's VmRSS is read from /proc before the first bind and after the settle
time; the difference divided by N is the cost of one idle bind.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from typing import Any

import msgspec

from .client import SLOTS, Driver, WorkerSpec
from .resources import usage
from .runner import loop_factory

__all__ = ["measure_idle_binds"]


async def _idle(spec: WorkerSpec, pid: int | None, settle_s: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    driver = Driver(spec, array("q", [0] * SLOTS), loop)
    before = usage(pid)
    t0 = time.monotonic()
    try:
        await driver.open_binds(chunk=50)
        bind_s = time.monotonic() - t0
        await asyncio.sleep(settle_s)
        after = usage(pid)
        bound = sum(1 for c in driver.conns if c.session.bound)
    finally:
        await driver.close_binds(timeout_s=10.0)
    out: dict[str, Any] = {"binds": spec.binds, "bound": bound, "bind_time_s": round(bind_s, 2),
                           "settle_s": settle_s}
    if before is not None and after is not None:
        delta_kb = after.rss_kb - before.rss_kb
        out.update({
            "gateway_rss_before_mb": round(before.rss_kb / 1024, 1),
            "gateway_rss_after_mb": round(after.rss_kb / 1024, 1),
            "gateway_rss_delta_mb": round(delta_kb / 1024, 1),
            "kb_per_bind": round(delta_kb / max(1, bound), 1),
            "gateway_cpu_s_binding": round(after.cpu_s - before.cpu_s, 2),
            "target_mb": 100, "pass": delta_kb / 1024 < 100,
        })
    return out


def measure_idle_binds(spec: WorkerSpec, count: int, pid: int | None,
                       settle_s: float = 2.0) -> dict[str, Any]:
    """Open ``count`` idle transceiver binds with ``spec``'s credentials; report gateway RSS."""
    spec = msgspec.structs.replace(spec, binds=count, tx_rx=False, messages=0, progress=False)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(_idle(spec, pid, settle_s))
