"""``LoopThread``: an asyncio loop on a private daemon thread, for tests that run the gateway
or the simulator in-process while the test thread drives clients.

``call`` runs a coroutine there and waits for its result; ``run`` does the same for a plain
function (to read or poke state owned by that loop safely); ``end_loop`` stops the loop and
joins the thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run a plain function on the loop and return its result."""
        async def wrapper() -> T:
            return fn()

        return self.call(wrapper(), timeout)

    def end_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
