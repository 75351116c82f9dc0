"""Operator answer policy (reference section 4), retry delays, token bucket and back-off."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from encoding.constants import CommandStatus as S
from routing.retry import MAX_ATTEMPTS, Outcome, classify, retry_delay
from routing.throttle import TokenBucket, backoff


@pytest.mark.parametrize(("status", "outcome"), [
    (None, Outcome.TEMPORARY),  # timeout or connection lost
    (S.ESME_ROK, Outcome.OK),
    (S.ESME_RTHROTTLED, Outcome.FLOW),
    (S.ESME_RMSGQFUL, Outcome.FLOW),
    (S.ESME_RSYSERR, Outcome.TEMPORARY),
    (S.ESME_RX_T_APPN, Outcome.TEMPORARY),
    (S.ESME_RUNKNOWNERR, Outcome.TEMPORARY),
    (S.ESME_RSUBMITFAIL, Outcome.FAILOVER),  # the next operator of the route, once
    (S.ESME_RINVBNDSTS, Outcome.SESSION),
    (S.ESME_RINVCMDID, Outcome.SESSION),
    (S.ESME_RINVDSTADR, Outcome.PERMANENT),
    (S.ESME_RINVSRCADR, Outcome.PERMANENT),
    (S.ESME_RINVESMCLASS, Outcome.PERMANENT),
    (S.ESME_RINVMSGLEN, Outcome.PERMANENT),
    (S.ESME_RX_P_APPN, Outcome.PERMANENT),
    (S.ESME_RX_R_APPN, Outcome.PERMANENT),
    (S.ESME_RINVOPTPARAMVAL, Outcome.PERMANENT),
    (0x19, Outcome.PERMANENT),  # old 3.3 code: "permanent failure, unknown", no crash
    (0x0499, Outcome.PERMANENT),  # vendor-specific
])
def test_classify(status: int | None, outcome: Outcome) -> None:
    assert classify(status) is outcome


def test_retry_delay_doubles_from_200ms_and_caps_at_30s() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 4)] == [0.2, 0.4, 0.8, 1.6]
    assert retry_delay(0) == 0.2
    assert retry_delay(MAX_ATTEMPTS + 20) == 30.0
    delays = [retry_delay(n) for n in range(1, 40)]
    assert delays == sorted(delays)


# --- token bucket -----------------------------------------------------------------------


def test_bucket_starts_full_then_refuses_until_refilled() -> None:
    # Times and rate chosen to be exact in binary floating point.
    b = TokenBucket(8, now=100.0, burst=3)
    assert [b.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert b.delay(100.0) == 0.125
    assert not b.take(100.0625)
    assert b.take(100.125)
    assert not b.take(100.125)


def test_bucket_default_burst_is_one_second_of_rate() -> None:
    b = TokenBucket(5, now=0.0)
    assert sum(b.take(0.0) for _ in range(10)) == 5
    slow = TokenBucket(0.5, now=0.0)  # at least one token
    assert slow.take(0.0)
    assert not slow.take(1.0)
    assert slow.take(2.0)


def test_bucket_does_not_save_up_beyond_burst() -> None:
    b = TokenBucket(10, now=0.0, burst=2)
    b.take(0.0)
    b.take(0.0)
    assert sum(b.take(1000.0) for _ in range(5)) == 2


def test_rate_zero_is_unlimited() -> None:
    b = TokenBucket(0, now=0.0)
    assert all(b.take(0.0) for _ in range(10_000))
    assert b.delay(0.0) == 0.0


def test_clock_going_backwards_does_not_mint_tokens() -> None:
    b = TokenBucket(10, now=50.0, burst=1)
    assert b.take(50.0)
    assert not b.take(40.0)
    assert not b.take(50.0)


@given(st.floats(min_value=0.5, max_value=1000), st.floats(min_value=1, max_value=50),
       st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=200))
def test_bucket_never_admits_more_than_rate_times_t_plus_burst(
        rate: float, burst: float, gaps: list[float]) -> None:
    start = 1000.0
    b = TokenBucket(rate, now=start, burst=burst)
    now = start
    admitted = 0
    for gap in gaps:
        now += gap
        while b.take(now):
            admitted += 1
            assert admitted <= rate * (now - start) + burst + 1e-6


@given(st.floats(min_value=1, max_value=100), st.floats(min_value=0, max_value=10))
def test_bucket_delay_is_when_take_succeeds(rate: float, spent: float) -> None:
    b = TokenBucket(rate, now=0.0, burst=10)
    for _ in range(int(spent)):
        b.take(0.0)
    while b.take(0.0):
        pass
    wait = b.delay(0.0)
    assert wait > 0
    assert b.take(wait + 1e-9)


# --- back-off ---------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=2**32))
def test_backoff_stays_within_half_and_full_ceiling(attempt: int, seed: int) -> None:
    d = backoff(attempt, base=1.0, cap=60.0, rng=random.Random(seed))
    ceiling = min(60.0, 2.0 ** (attempt - 1))
    assert ceiling / 2 <= d <= ceiling


def test_backoff_grows_then_caps() -> None:
    rng = random.Random(1)
    assert backoff(1, 0.5, 10, rng) <= 0.5
    assert 5.0 <= backoff(30, 0.5, 10, rng) <= 10.0
    firsts = {backoff(3, 1.0, 60, random.Random(s)) for s in range(20)}
    assert len(firsts) > 1  # jittered: reconnecting binds do not stampede together
