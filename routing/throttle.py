"""Rate limiting and back-off as plain decisions (no clock reads: ``now`` is an argument).

A token bucket enforces a tenant's or an operator bind's messages per second; ``backoff``
gives exponential back-off with jitter for reconnects and redelivery.
"""

from __future__ import annotations

import random
from typing import Protocol

__all__ = ["RateLimit", "TokenBucket", "backoff"]


class RateLimit(Protocol):
    """A tenant's rate as admission asks it: ``TokenBucket`` on one machine, one budget over
    every node on a cluster (routing.nats.budget)."""

    @property
    def rate(self) -> float: ...

    def take(self, now: float) -> bool: ...

    def borrow(self, now: float, n: int) -> bool: ...

    def delay(self, now: float) -> float: ...


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; rate 0 means unlimited."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, now: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.tokens = self.burst
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def take(self, now: float, n: float = 1.0) -> bool:
        """Spend ``n`` tokens if they are there; False means over the rate."""
        if not self.rate:
            return True
        self._refill(now)
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False

    def borrow(self, now: float, n: float) -> bool:
        """Spend ``n`` tokens when at least one is there, going into debt for the rest: a
        request for many messages at once (HTTP bulk) is let through, and what follows waits
        until the debt is paid back at ``rate``. False means over the rate."""
        if not self.rate:
            return True
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= n
            return True
        return False

    def delay(self, now: float, n: float = 1.0) -> float:
        """Seconds until ``n`` tokens will be there (0 when they are now)."""
        if not self.rate:
            return 0.0
        self._refill(now)
        missing = n - self.tokens
        return 0.0 if missing <= 0 else missing / self.rate


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt`` (1-based): full jitter over base * 2^(n-1)."""
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    r = rng.random() if rng is not None else random.random()
    return ceiling / 2 + r * ceiling / 2
