"""The bundled operator SMSC simulator (``smsc-sim``): binds, ids, receipts, MO and faults.

In process::

    sim = Simulator(SimulatorConfig(port=0), record=True)
    port = await sim.start()
    ...
    await sim.wait_for(lambda s: s.stats["receipts_acked"] >= 1, timeout=5)
    await sim.stop()

From a shell: ``smsc-sim --config config/examples/simulator.toml`` (or
``python -m bench.simulator``).
"""

from __future__ import annotations

from .server import Simulator

__all__ = ["Simulator"]
