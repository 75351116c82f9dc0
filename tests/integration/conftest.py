"""Fixtures of the integration tests: ``stack`` starts simulators and gateways as a user runs
them (``tests.integration.e2e_support.Stack``) and stops all it started, gateways first."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import GatewayThread
from tests.integration.e2e_support import Stack


@pytest.fixture
def stack(tmp_path: Path, gateway_factory: Callable[..., GatewayThread]) -> Iterator[Stack]:
    s = Stack(tmp_path, gateway_factory)
    yield s
    s.close()
