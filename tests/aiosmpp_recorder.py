"""aiosmpplib in tests: a hook that records what the client received, and a bound client.

Shared by the interop tests and the end-to-end tests: every PDU aiosmpplib received (parsed
or not) is kept, and ``wait`` blocks, bounded, until a condition on them holds;
``bound_esme`` starts a client, waits for its bind and stops it cleanly on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiosmpplib import ESME, AbstractHook, BindMode, SmppMessage
from aiosmpplib.protocol import BindTransceiverResp

__all__ = ["Recorder", "bound_esme"]


class Recorder(AbstractHook):  # type: ignore[misc]  # aiosmpplib ships no type hints
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


@contextlib.asynccontextmanager
async def bound_esme(port: int, mode: BindMode = BindMode.TRANSCEIVER,
                     system_id: str = "demo", password: str = "demo",
                     timeout: float = 10.0) -> AsyncIterator[tuple[ESME, Recorder]]:
    """A started and bound aiosmpplib ESME on 127.0.0.1:``port``; stopped (unbind, close)
    on exit. The bind response is in ``hook.of(BindTransceiverResp)`` (the receiver and
    transmitter responses subclass it)."""
    hook = Recorder()
    esme = ESME("127.0.0.1", port, system_id, password, bind_mode=mode, hook=hook,
                log_level="ERROR", socket_timeout=5.0)
    task = asyncio.create_task(esme.start(), name="esme")
    try:
        await hook.wait(lambda: bool(hook.of(BindTransceiverResp)) or task.done(), "bind",
                        timeout)
        assert not task.done(), "aiosmpplib ESME stopped before binding"
        yield esme, hook
    finally:
        writer = esme._writer  # aiosmpplib's stop() sends EOF but never closes the writer
        try:
            await asyncio.wait_for(esme.stop(), timeout)
            await asyncio.wait_for(task, timeout)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
