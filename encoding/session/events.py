"""What a session tells its adapter after input or a timer (sans-IO events).

The adapter acts on these; the session has already answered what needed no application
(enquire_link, unbind, bad PDUs, requests not allowed in the state).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec

from ..pdu import Pdu
from .states import State

__all__ = ["Event", "FailureReason", "RequestReceived", "ResponseReceived", "RequestFailed",
           "StateChanged", "ProtocolError", "SessionClosed"]


class FailureReason(StrEnum):
    """Why one of our requests will never be answered (``RequestFailed.reason``).

    Owners decide on these, never on text: a timeout is worth a retry with back-off, a closed
    session means "send it again on another bind". The values are stable strings (metrics
    labels, logs, and code that still compares ``reason == "response timeout"``).
    """

    RESPONSE_TIMEOUT = "response timeout"  # no answer within response_timeout_s
    SESSION_CLOSED = "session closed"  # the session ended first; RequestFailed.detail says how
    MISMATCHED_RESPONSE = "mismatched response"  # answered by a response of another command
    MALFORMED_RESPONSE = "malformed response"  # answered by a response we could not decode


class Event(msgspec.Struct, gc=False):
    """Base of all session events."""


class RequestReceived(Event):
    """A request from the peer that the application must answer with ``pdu.response(...)``."""

    pdu: Pdu


class ResponseReceived(Event):
    """The answer to one of our requests; ``pdu`` may be a generic_nack."""

    pdu: Pdu
    request: Pdu
    context: Any = None


class RequestFailed(Event):
    """One of our requests will never be answered: timeout, malformed answer or closed session.

    ``detail`` is human-readable text for logs: for ``SESSION_CLOSED`` the close reason (the
    same text as ``SessionClosed.reason``, e.g. "unbound by peer", "framing error"), else "".
    """

    request: Pdu
    context: Any
    reason: FailureReason
    detail: str = ""


class StateChanged(Event):
    old: State
    new: State


class ProtocolError(Event):
    """The peer sent something wrong; the session answered or dropped it (for logs, metrics)."""

    message: str
    command_status: int
    command_id: int = 0
    sequence_number: int = 0


class SessionClosed(Event):
    """The session is over: send what ``data_to_send()`` holds, then close the transport."""

    reason: str
