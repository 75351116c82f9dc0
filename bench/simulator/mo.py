"""Mobile-originated messages: deliver_sm with esm_class 0, long ones split with a UDH.

``build_mo`` turns one text into its deliver_sm parts (one part when it fits; otherwise UDH
parts with esm_class 0x40 and an 8-bit reference, via ``encoding.text.split_text``; a plain
ASCII fallback is used if that module is not importable). ``MoGenerator`` produces
``rate_per_s`` messages a second from a 50 ms tick, in batches, up to ``count`` (0 = no limit),
and pauses while too many wait for a receiver bind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from config.simulator import MoConfig
from encoding.constants import EsmClass
from encoding.pdu import DeliverSm

__all__ = ["MoGenerator", "build_mo", "long_text"]

_TICK_S = 0.05
_MAX_BACKLOG = 10_000

try:
    from encoding.text import split_text as _split_text
except ImportError:  # pragma: no cover - encoding.text is being written alongside
    _split_text = None  # type: ignore[assignment]


def _fallback_parts(text: str, reference: int) -> tuple[int, list[tuple[bytes, bool]]]:
    """ASCII only: 160 characters in one part, else 153 a part behind a 6-octet UDH."""
    data = text.encode("ascii", errors="replace")
    if len(data) <= 160:
        return 0, [(data, False)]
    chunks = [data[i:i + 153] for i in range(0, len(data), 153)]
    total = len(chunks)
    return 0, [(bytes((5, 0, 3, reference & 0xFF, total, i + 1)) + chunk, True)
               for i, chunk in enumerate(chunks)]


def build_mo(to: str, source: str, text: str, reference: int = 0) -> list[DeliverSm]:
    """The deliver_sm parts of one MO message from ``source`` to ``to``."""
    if _split_text is not None:
        split = _split_text(text, method="udh8", reference=reference & 0xFF)
        coding = split.data_coding
        parts = [(seg.short_message, seg.udhi) for seg in split.segments]
    else:  # pragma: no cover
        coding, parts = _fallback_parts(text, reference)
    return [
        DeliverSm(
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr=source,
            dest_addr_ton=0 if len(to) <= 6 else 1,
            dest_addr_npi=1,
            destination_addr=to,
            esm_class=EsmClass.UDHI if udhi else 0,
            data_coding=coding,
            short_message=short_message,
        )
        for short_message, udhi in parts
    ]


def long_text(text: str, minimum: int = 200) -> str:
    """``text`` repeated until it is longer than one SMS (for ``long_every``)."""
    out = text
    while len(out) < minimum:
        out = f"{out} {text}"
    return out


class MoGenerator:
    """Calls ``emit(to, source, text)`` at ``rate_per_s`` from a periodic loop timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, cfg: MoConfig,
                 emit: Callable[[str, str, str], None], backlog: Callable[[], int],
                 after_batch: Callable[[], None]) -> None:
        self._loop = loop
        self._cfg = cfg
        self._emit = emit
        self._backlog = backlog
        self._after = after_batch
        self._credit = 0.0
        self._last = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self.generated = 0

    @property
    def done(self) -> bool:
        return bool(self._cfg.count) and self.generated >= self._cfg.count

    def start(self) -> None:
        if self._cfg.rate_per_s <= 0 or not self._cfg.to or self._handle is not None:
            return
        self._last = self._loop.time()
        self._handle = self._loop.call_later(_TICK_S, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        cfg = self._cfg
        now = self._loop.time()
        self._credit = min(self._credit + (now - self._last) * cfg.rate_per_s,
                           max(1.0, cfg.rate_per_s))
        self._last = now
        if self._backlog() >= _MAX_BACKLOG:
            self._credit = 0.0
        while self._credit >= 1.0 and not self.done:
            self._credit -= 1.0
            self.generated += 1
            n = self.generated
            text = cfg.text.replace("{n}", str(n))
            if cfg.long_every and n % cfg.long_every == 0:
                text = long_text(text)
            self._emit(cfg.to[(n - 1) % len(cfg.to)], cfg.source, text)
        self._after()
        self._handle = None if self.done else self._loop.call_later(_TICK_S, self._tick)
