"""What a session tells its adapter after input or a timer (sans-IO events).

The adapter acts on these; the session has already answered what needed no application
(enquire_link, unbind, bad PDUs, requests not allowed in the state).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..pdu import Pdu
from .states import State

__all__ = ["Event", "RequestReceived", "ResponseReceived", "RequestFailed", "StateChanged",
           "ProtocolError", "SessionClosed"]


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
    """One of our requests will never be answered: timeout, malformed answer or closed session."""

    request: Pdu
    context: Any
    reason: str


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
