"""``smsc serve`` whose start never finishes binding the SMPP door (SIGTERM-while-starting).

Everything before that step of ``Gateway.start`` has run (store, group commit, metrics
endpoint); the SMPP listener's ``start`` prints ``stalled: binding [listen]`` and waits for
ever, so a test knows when to send its signal. Run as
``python -m tests.stalled_start serve --config FILE`` (see ``tests.gatewayproc``).
"""

from __future__ import annotations

import asyncio
import sys

from smsc.cli import main
from smsc.server import TenantListener


async def _stalled_start(self: TenantListener) -> int:
    print("stalled: binding [listen]", flush=True)
    await asyncio.Event().wait()
    raise AssertionError("not reached")


TenantListener.start = _stalled_start  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
