"""An aiosmpplib hook that records what the client received, for tests that drive aiosmpplib.

Shared by the interop tests and the end-to-end tests: every PDU aiosmpplib received (parsed
or not) is kept, and ``wait`` blocks, bounded, until a condition on them holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from aiosmpplib import AbstractHook, SmppMessage

__all__ = ["Recorder"]


class Recorder(AbstractHook):
    """Keeps every PDU aiosmpplib received and wakes waiters on each one."""

    def __init__(self) -> None:
        self.pdus: list[SmppMessage] = []
        self.raw: list[bytes] = []
        self.send_errors: list[Exception] = []
        self._changed = asyncio.Event()

    async def sending(self, smpp_message: SmppMessage, pdu: bytes, client_id: str) -> None:
        return None

    async def received(self, smpp_message: SmppMessage | None, pdu: bytes,
                       client_id: str) -> None:
        self.raw.append(pdu)
        if smpp_message is not None:
            self.pdus.append(smpp_message)
        self._changed.set()

    async def send_error(self, smpp_message: SmppMessage, error: Exception,
                         client_id: str) -> None:
        self.send_errors.append(error)
        self._changed.set()

    def of(self, kind: type[SmppMessage]) -> list[Any]:
        return [m for m in self.pdus if isinstance(m, kind)]

    async def wait(self, done: Callable[[], bool], what: str,
                   timeout: float = 10.0) -> None:
        """Until ``done()`` holds (checked after each received PDU), at most ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            assert not self.send_errors, self.send_errors
            remaining = deadline - loop.time()
            if remaining <= 0:
                pytest.fail(f"aiosmpplib tenant: {what} not within {timeout} s; "
                            f"received {self.pdus!r}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
