"""The in-flight shape of a message: a ``Job`` on an operator's queue and its parts.

``gc=False``: jobs live for the message's whole trip (tens of thousands at a time) and hold
no cycles, so keeping them out of the cyclic collector's walks keeps its full collections
short (they were the submit_sm_resp latency tail).
"""

from __future__ import annotations

import msgspec

from .model import Message, Status

__all__ = ["Job", "PartState"]


class PartState(msgspec.Struct, gc=False):
    """One part of a job: its submit_sm, where it went, and how it ended."""

    pdu: object
    operator: str = ""
    operator_id: str = ""
    state: str | Status = "pending"  # pending | sending | acked | a final Status


class Job(msgspec.Struct, gc=False):
    """One message on its way to an operator."""

    message: Message
    operators: tuple[str, ...]
    operator_index: int = 0
    attempts: int = 0  # failures so far (flow-control answers are counted in flow_waits)
    flow_waits: int = 0
    failovers: int = 0  # moves to the next operator after ESME_RSUBMITFAIL
    not_before: float = 0.0
    cancelled: bool = False
    sent: bool = False  # at least one part left for an operator: no cancel/replace now
    queued: bool = False
    parts: tuple[PartState, ...] = ()  # built on first dispatch, with their outcomes
    built_for: str = ""  # the operator whose policy (dcs0, split) built ``parts``

    @property
    def operator(self) -> str:
        return self.operators[self.operator_index]
