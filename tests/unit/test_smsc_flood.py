"""The tenant listener's decisions under a connection flood (``smsc.flood``) and the
connection ceiling the open-file limit allows (``smsc.fdlimit``): no sockets, no clock."""

from __future__ import annotations

import msgspec
import pytest

from config import GatewayConfig, HttpConfig, ListenConfig, OperatorConfig, TenantConfig
from smsc.fdlimit import OpenFiles, connection_ceiling, gateway_fd_needs
from smsc.flood import Admit, Every, admit


@pytest.mark.parametrize(("open_", "unbound", "ceiling", "expected"), [
    (0, 0, 10, Admit.ACCEPT),
    (9, 9, 10, Admit.ACCEPT),  # below the ceiling: idle ones are left alone
    (10, 10, 10, Admit.EVICT_OLDEST_UNBOUND),  # all idle: the oldest makes room
    (10, 1, 10, Admit.EVICT_OLDEST_UNBOUND),  # one idle among bound sessions
    (10, 0, 10, Admit.REFUSE),  # bound sessions alone fill it: never one of them
    (12, 0, 10, Admit.REFUSE),  # above it (the ceiling was lowered)
])
def test_admit(open_: int, unbound: int, ceiling: int, expected: Admit) -> None:
    assert admit(open_, unbound, ceiling) is expected


def test_every_reports_the_first_hit_then_once_per_interval_with_the_count() -> None:
    every = Every(10.0)
    assert every.hit(100.0) == 1
    assert [every.hit(t) for t in (101.0, 105.0, 109.9)] == [0, 0, 0]
    assert every.hit(110.0) == 4  # this one and the three kept quiet
    assert every.hit(125.0) == 1


def test_ceiling_is_max_connections_or_what_the_open_file_limit_leaves() -> None:
    limits = OpenFiles(before=1024, soft=1024, hard=1024)
    assert connection_ceiling(10_000, limits, 136).connections == 888
    assert connection_ceiling(10_000, limits, 136).limited_by_files
    assert connection_ceiling(500, limits, 136).connections == 500
    assert not connection_ceiling(500, limits, 136).limited_by_files
    assert connection_ceiling(10_000, OpenFiles(64, 64, 64), 136).connections == 1


def test_gateway_fd_needs_grow_with_what_the_config_opens() -> None:
    base = GatewayConfig(listen=ListenConfig(), http=HttpConfig(enabled=False))
    op = OperatorConfig(name="a", host="127.0.0.1", port=2775, system_id="x", password="y",
                        binds=4, bind="transmitter+receiver")
    hooked = TenantConfig(system_id="t", webhook_url="https://example.test/hook",
                          webhook_secret="whsec_" + "A" * 32)
    plain = gateway_fd_needs(base, None)
    assert gateway_fd_needs(base, 500) == plain - 32 + 500  # counted descriptors win
    assert gateway_fd_needs(msgspec.structs.replace(base, operators=(op,)), None) == plain + 8
    with_http = msgspec.structs.replace(base, http=HttpConfig(), tenants=(hooked,))
    assert gateway_fd_needs(with_http, None) == plain + 1 + 64 + 8
