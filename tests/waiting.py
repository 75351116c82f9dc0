"""``wait_until``: the one bounded poll the tests use to wait on a condition in another
thread or process (never a bare sleep for synchronisation)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(probe: Callable[[], T], timeout: float = 5.0, what: str = "condition",
               interval: float = 0.02) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"{what}: not within {timeout} s (last value {value!r})")
        time.sleep(interval)
