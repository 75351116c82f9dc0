"""smsc.bans: failed authentications per address, bans, with a fake clock (``now``)."""

from __future__ import annotations

import logging

import pytest

from config import AuthConfig
from smsc.bans import Bans

CFG = AuthConfig(max_auth_failures=3, auth_failure_window_s=10.0, auth_ban_s=60.0)
A, B = "192.0.2.1", "192.0.2.2"


def fail(bans: Bans, address: str, times: list[float], door: str = "smpp") -> list[bool]:
    return [bans.failure(address, door, t) is not None for t in times]  # type: ignore[arg-type]


def test_the_threshold_bans_for_auth_ban_s() -> None:
    bans = Bans(CFG)
    assert fail(bans, A, [0.0, 1.0]) == [False, False]
    assert bans.banned_for(A, 1.0) == 0.0
    assert fail(bans, A, [2.0]) == [True]
    assert bans.banned_for(A, 2.0) == 60.0
    assert bans.banned_for(A, 61.5) == pytest.approx(0.5)
    assert bans.banned_for(A, 62.0) == 0.0  # over
    assert bans.banned_for(B, 2.0) == 0.0  # another address is never affected


def test_the_window_slides() -> None:
    bans = Bans(CFG)
    # 3 failures, but never 3 within 10 s of each other
    assert fail(bans, A, [0.0, 6.0, 10.5, 16.5, 21.0]) == [False] * 5
    assert bans.banned_for(A, 21.0) == 0.0
    # the one at 21.0 and two more within 10 s of it
    assert fail(bans, A, [27.0, 30.9]) == [False, True]


def test_after_a_ban_the_count_starts_again() -> None:
    bans = Bans(CFG)
    fail(bans, A, [0.0, 1.0, 2.0])
    assert fail(bans, A, [70.0, 71.0]) == [False, False]
    assert fail(bans, A, [72.0]) == [True]


def test_one_log_line_per_ban_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    bans = Bans(CFG)
    with caplog.at_level(logging.INFO, logger="smsc.bans"):
        fail(bans, A, [0.0, 1.0, 2.0], door="http")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert A in lines[0] and "60 s" in lines[0] and "3 failed" in lines[0] and "http" in lines[0]


def test_counters_and_the_gauge_by_door() -> None:
    bans = Bans(CFG)
    fail(bans, A, [0.0, 1.0, 2.0], door="http")
    fail(bans, B, [0.0, 1.0, 2.0, 3.0])  # the 4th would be refused unchecked by a door
    assert bans.failures == {"smpp": 4, "http": 3}
    assert bans.bans_given == {"smpp": 1, "http": 1}
    assert bans.current(5.0) == {"smpp": 1, "http": 1}
    assert bans.current(100.0) == {"smpp": 0, "http": 0}


def test_zero_turns_bans_off() -> None:
    bans = Bans(AuthConfig(max_auth_failures=0))
    assert fail(bans, A, [float(t) for t in range(50)]) == [False] * 50
    assert bans.banned_for(A, 50.0) == 0.0
    assert bans.failures["smpp"] == 50


def test_the_failure_table_is_capped_oldest_first() -> None:
    bans = Bans(CFG, max_tracked=100)
    fail(bans, A, [0.0, 1.0])  # two strikes
    for i in range(100):  # a flood of new addresses pushes A's strikes out
        bans.failure(f"10.0.{i // 256}.{i % 256}", "smpp", 2.0)
    assert len(bans._failures) == 100
    assert fail(bans, A, [3.0]) == [False]  # its count started again


def test_an_address_still_failing_is_kept() -> None:
    bans = Bans(CFG, max_tracked=100)
    for i in range(150):
        if i in (0, 90):  # touched again before 100 others came
            bans.failure(A, "smpp", 1.0)
        bans.failure(f"10.1.0.{i}", "smpp", 1.0)
    assert fail(bans, A, [2.0]) == [True]


def test_a_flood_of_addresses_cannot_push_out_bans() -> None:
    bans = Bans(CFG, max_tracked=10, max_banned=1000)
    fail(bans, A, [0.0, 1.0, 2.0])
    for i in range(5000):
        bans.failure(f"10.2.{i // 256}.{i % 256}", "http", 3.0)
    assert bans.banned_for(A, 4.0) > 0


def test_the_ban_table_is_capped_ending_first() -> None:
    bans = Bans(CFG, max_banned=2)
    for n, address in enumerate((A, B, "192.0.2.3")):
        fail(bans, address, [n, n, n])
    assert bans.banned_for(A, 3.0) == 0.0  # the first to end went first
    assert bans.banned_for(B, 3.0) > 0 and bans.banned_for("192.0.2.3", 3.0) > 0


def test_a_success_does_not_erase_failures() -> None:
    """There is nothing to call on success: a good bind between guesses changes nothing."""
    bans = Bans(CFG)
    fail(bans, A, [0.0, 1.0])
    assert not hasattr(bans, "success")
    assert fail(bans, A, [2.0]) == [True]


def test_reconfigure_keeps_the_table() -> None:
    bans = Bans(CFG)
    fail(bans, A, [0.0, 1.0, 2.0])
    fail(bans, B, [0.0])
    bans.reconfigure(AuthConfig(max_auth_failures=2, auth_failure_window_s=10.0,
                                auth_ban_s=5.0))
    assert bans.banned_for(A, 30.0) > 0  # the ban given before keeps its end
    assert fail(bans, B, [1.0]) == [True]  # B's earlier failure counts toward the new limit
    assert bans.banned_for(B, 5.5) == pytest.approx(0.5)
