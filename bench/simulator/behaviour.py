"""What the simulated SMSC decides for each submit: plain functions and tiny state, no I/O.

``decide_submit`` turns the config, the fault counters and the destination into a
``Decision`` (answer status, delay, whether to answer at all, the final state of the message,
whether to drop the connection afterwards). The server carries it out. Message ids are
counter-based and written in hex or decimal (``format_id``), and receipts may write them in
the other base to exercise gateways' id matching (reference section 10.4).
"""

from __future__ import annotations

import random
from typing import Final

from config.simulator import FaultRule, SimulatorConfig
from encoding.constants import CommandStatus

__all__ = [
    "Decision",
    "FaultCounters",
    "RateLimiter",
    "StatePicker",
    "decide_submit",
    "format_id",
    "match_rule",
    "parse_id",
    "receipt_id",
]

# Answer the Nth submit differently (faults.*_every). KIND values of Decision.kind:
ANSWER: Final = "answer"  # a normal *_resp with Decision.status
NO_RESPONSE: Final = "no_response"
GENERIC_NACK: Final = "generic_nack"
GARBAGE: Final = "garbage"

_STATUS_BY_FAULT: Final[dict[str, int]] = {
    "throttle": CommandStatus.ESME_RTHROTTLED,
    "queue_full": CommandStatus.ESME_RMSGQFUL,
    "submit_fail": CommandStatus.ESME_RSUBMITFAIL,
    "reject": CommandStatus.ESME_RINVDSTADR,
}


def format_id(n: int, id_format: str) -> str:
    """A message id from its counter value: upper-case hex or decimal."""
    return f"{n:X}" if id_format == "hex" else str(n)


def parse_id(text: str, id_format: str) -> int | None:
    """The counter value of an id we issued, or None when it cannot be one."""
    try:
        return int(text, 16 if id_format == "hex" else 10)
    except ValueError:
        return None


def receipt_id(n: int, issued: str, receipt_id_format: str) -> str:
    """How a receipt writes the id: as issued (``same``), or re-written in hex or decimal."""
    if receipt_id_format == "same":
        return issued
    return format_id(n, receipt_id_format)


class RateLimiter:
    """Token bucket per key (system_id): ``tps`` tokens a second, a burst of max(1, tps)."""

    __slots__ = ("_buckets", "burst", "tps")

    def __init__(self, tps: float) -> None:
        self.tps = tps
        self.burst = max(1.0, tps)
        self._buckets: dict[str, list[float]] = {}

    def allow(self, key: str, now: float) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.tps)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return True
        bucket[0] = tokens
        return False


class StatePicker:
    """Draws final stat words from the weighted mix (``final_states``)."""

    __slots__ = ("_only", "_rng", "_stats", "_weights")

    def __init__(self, mix: dict[str, float], rng: random.Random) -> None:
        items = [(stat, w) for stat, w in mix.items() if w > 0]
        self._stats = [stat for stat, _ in items]
        self._weights = [w for _, w in items]
        self._only = self._stats[0] if len(self._stats) == 1 else None
        self._rng = rng

    def pick(self) -> str:
        if self._only is not None:
            return self._only
        return self._rng.choices(self._stats, self._weights)[0]


class FaultCounters:
    """Global submit counters for the ``*_every`` faults and per-rule match counters."""

    __slots__ = ("rule_hits", "submits")

    def __init__(self) -> None:
        self.submits = 0
        self.rule_hits: dict[int, int] = {}


class Decision:
    """What to do with one submit. ``stat`` is None when it is refused in the response."""

    __slots__ = ("delay_s", "err", "kind", "stat", "status")

    def __init__(self, kind: str, status: int, delay_s: float, stat: str | None,
                 err: int) -> None:
        self.kind = kind
        self.status = status
        self.delay_s = delay_s
        self.stat = stat
        self.err = err


def match_rule(rules: tuple[FaultRule, ...], destination: str) -> int | None:
    """Index of the rule with the longest prefix of ``destination`` (first of equals)."""
    best: int | None = None
    best_len = -1
    for i, rule in enumerate(rules):
        if len(rule.prefix) > best_len and destination.startswith(rule.prefix):
            best, best_len = i, len(rule.prefix)
    return best


def _every(n: int, every: int) -> bool:
    return every > 0 and n % every == 0


def decide_submit(cfg: SimulatorConfig, counters: FaultCounters, limiter: RateLimiter | None,
                  picker: StatePicker, system_id: str, destination: str,
                  now: float) -> Decision:
    """Decide the fate of one submit (submit_sm, data_sm or submit_multi).

    Order: destination rule, then throttle, then the global ``*_every`` faults; a message that
    passes gets its final state from the mix. Counters advance here.
    """
    counters.submits += 1
    n = counters.submits
    faults = cfg.faults
    delay = faults.slow_response_ms / 1000.0
    if cfg.rules:
        index = match_rule(cfg.rules, destination)
        if index is not None:
            rule = cfg.rules[index]
            hits = counters.rule_hits.get(index, 0) + 1
            counters.rule_hits[index] = hits
            if hits % rule.every == 0:
                fault = rule.fault
                if fault == "no_response":
                    return Decision(NO_RESPONSE, 0, 0.0, None, 0)
                if fault == "slow":
                    delay = max(delay, rule.delay_ms / 1000.0)
                elif fault == "undeliverable":
                    return Decision(ANSWER, 0, delay, "UNDELIV", rule.err)
                else:
                    status = rule.status if fault == "reject" and rule.status else (
                        _STATUS_BY_FAULT[fault])
                    return Decision(ANSWER, status, delay, None, 0)
    if limiter is not None and not limiter.allow(system_id, now):
        return Decision(ANSWER, CommandStatus.ESME_RTHROTTLED, delay, None, 0)
    if _every(n, faults.no_response_every):
        return Decision(NO_RESPONSE, 0, 0.0, None, 0)
    if _every(n, faults.generic_nack_every):
        return Decision(GENERIC_NACK, CommandStatus.ESME_RSYSERR, delay, None, 0)
    if _every(n, faults.garbage_every):
        return Decision(GARBAGE, 0, 0.0, None, 0)
    if _every(n, faults.queue_full_every):
        return Decision(ANSWER, CommandStatus.ESME_RMSGQFUL, delay, None, 0)
    if _every(n, faults.submit_fail_every):
        return Decision(ANSWER, CommandStatus.ESME_RSUBMITFAIL, delay, None, 0)
    stat = picker.pick()
    return Decision(ANSWER, 0, delay, stat, 0 if stat in ("DELIVRD", "ACCEPTD") else 1)
