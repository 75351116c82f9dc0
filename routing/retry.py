"""How to treat an operator's answer: the ESME pool policy of reference section 4.

``classify`` maps a command_status (or a missing answer) to what the pool does next:
flow control keeps the message on the same operator and slows down (without using up its
attempts); temporary errors retry, on the next operator of the route when there is one;
ESME_RSUBMITFAIL, a generic refusal another operator may not share, is tried once on the
next operator of the route and fails as permanent when none is left (reference section 4,
"failover"); session errors rebind and retry; permanent errors fail the message and the
tenant gets a failure receipt.
"""

from __future__ import annotations

from enum import Enum

from encoding.constants import CommandStatus as S

__all__ = ["Outcome", "classify", "MAX_ATTEMPTS", "MAX_FAILOVERS", "MAX_FLOW_WAITS", "retry_delay"]

MAX_ATTEMPTS = 8  # failures (temporary, session, no answer) before a message is undeliverable
# Flow-control answers (throttled, queue full) mean "later", not "failed": they do not count
# as attempts. A message the operator keeps throttling waits until its validity period ends,
# or, without one, for this many answers (at the 30 s cap of ``retry_delay``, about an hour).
MAX_FLOW_WAITS = 120


class Outcome(Enum):
    OK = "ok"
    FLOW = "flow"  # throttled / queue full: same operator, later, slower
    TEMPORARY = "temporary"  # retry, failing over when the route has another operator
    FAILOVER = "failover"  # the next operator of the route, once; else permanent
    SESSION = "session"  # the bind is in a bad state: rebind, then retry
    PERMANENT = "permanent"  # fail the message


_FLOW = frozenset({S.ESME_RTHROTTLED, S.ESME_RMSGQFUL})
_TEMPORARY = frozenset({S.ESME_RSYSERR, S.ESME_RX_T_APPN, S.ESME_RUNKNOWNERR,
                        S.ESME_RDELIVERYFAILURE})
# ESME_RSUBMITFAIL is generic ("submit failed"): this operator will refuse the message again,
# another one of the route may accept it.
_FAILOVER = frozenset({S.ESME_RSUBMITFAIL})
MAX_FAILOVERS = 1
_SESSION = frozenset({S.ESME_RINVBNDSTS, S.ESME_RINVCMDID})


def classify(status: int | None) -> Outcome:
    """None stands for "no answer" (timeout or connection lost)."""
    if status is None:
        return Outcome.TEMPORARY
    if status == S.ESME_ROK:
        return Outcome.OK
    if status in _FLOW:
        return Outcome.FLOW
    if status in _TEMPORARY:
        return Outcome.TEMPORARY
    if status in _FAILOVER:
        return Outcome.FAILOVER
    if status in _SESSION:
        return Outcome.SESSION
    return Outcome.PERMANENT


def retry_delay(attempt: int) -> float:
    """Seconds before retry number ``attempt``: 0.2 s doubling, capped at 30 s (no jitter:
    the per-operator queue already spreads retries)."""
    return float(min(30.0, 0.2 * (2 ** max(0, attempt - 1))))
