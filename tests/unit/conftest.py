"""Fixtures shared by the unit tests: a throwaway SQLite store (``store``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from routing import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """An opened store in the test's temporary directory (synchronous OFF), closed after."""
    s = Store(tmp_path / "smsc.db", synchronous="OFF")
    s.open()
    yield s
    s.close()
