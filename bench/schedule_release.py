"""How long releasing N scheduled messages due at the same second takes (issue 12's speed
target: 100,000 in at most 10 s), optionally beside many more scheduled for later.

One process, one event loop: the bundled simulator plays the operator, a ``Gateway`` runs on
a store prepared beforehand (the due messages, and ``--later`` more due in a day, written
straight through ``Store.apply``, as a restart would find them). The due time is a few
seconds after the gateway has started and bound; the report gives, from the due time, when
the scheduler had released them all (moved to accepted, handed to the router) and when the
simulator had answered every submit_sm, and the process CPU time spent meanwhile.

    .venv/bin/python -m bench.schedule_release --count 100000 --later 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.prefill import prefill_scheduled
from config import (
    GatewayConfig,
    HttpConfig,
    ListenConfig,
    MetricsConfig,
    OperatorConfig,
    RouteConfig,
    SimulatorConfig,
    StoreConfig,
    TenantConfig,
)


async def _run(args: argparse.Namespace) -> None:
    from bench.simulator import Simulator
    from smsc.app import Gateway

    sim = Simulator(SimulatorConfig(port=0), record=False)
    port = await sim.start()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "smsc.db"
        t0 = time.perf_counter()
        due = time.time() + args.lead + 30.0  # moved below, once the gateway is up
        prefill_scheduled(path, due, args.count, args.later)
        print(f"prepared {args.count} due + {args.later} later in "
              f"{time.perf_counter() - t0:.1f} s")
        gw = Gateway(GatewayConfig(
            listen=ListenConfig(enabled=False), metrics=MetricsConfig(enabled=False),
            http=HttpConfig(enabled=False), store=StoreConfig(path=str(path)),
            tenants=(TenantConfig(system_id="bench", password="bench"),),
            operators=(OperatorConfig(name="sim", host="127.0.0.1", port=port,
                                      system_id="gw", password="pw", window=args.window),),
            routes=(RouteConfig(prefix="", operators=("sim",)),)))
        # The gateway's clock runs ahead, so the due second arrives ``lead`` s after start.
        offset = due - (time.time() + args.lead)
        gw.wall = lambda: time.time() + offset
        await gw.start()
        try:
            while True:  # wait for the bind, and for the due time
                now = gw.wall()
                if now >= due:
                    break
                await asyncio.sleep(min(0.01, due - now))
            cpu0 = time.process_time()
            released_at = answered_at = None
            deadline = due + args.timeout
            while gw.wall() < deadline:
                if released_at is None and gw.scheduler.released >= args.count:
                    released_at = gw.wall()
                answered = sum(sim.snapshot()["submit_resps"].values())
                if answered >= args.count:
                    answered_at = gw.wall()
                    break
                await asyncio.sleep(0.01)
            cpu = time.process_time() - cpu0
            print(f"released {gw.scheduler.released} of {args.count}: "
                  f"{(released_at or float('nan')) - due:.2f} s after due; "
                  f"at the operator {(answered_at or float('nan')) - due:.2f} s; "
                  f"CPU {cpu:.1f} s")
        finally:
            await gw.stop()
            await sim.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--later", type=int, default=0, help="more scheduled a day later")
    p.add_argument("--lead", type=float, default=3.0, help="seconds from start to due")
    p.add_argument("--window", type=int, default=100)
    p.add_argument("--timeout", type=float, default=120.0)
    asyncio.run(_run(p.parse_args()))


if __name__ == "__main__":
    main()
