"""The sans-IO SMPP session: states as tables, events, window, timers as ``now`` arguments."""

from .config import SessionConfig
from .events import (
    Event,
    FailureReason,
    ProtocolError,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    SessionClosed,
    StateChanged,
)
from .session import Session
from .states import BIND_RESULT, BOUND_STATES, RECEIVE_CAPABLE, REQUEST_STATES, Role, State
from .window import Window

__all__ = [
    "Session", "SessionConfig", "Role", "State", "REQUEST_STATES", "BIND_RESULT",
    "BOUND_STATES", "RECEIVE_CAPABLE", "Window", "Event", "RequestReceived", "ResponseReceived",
    "RequestFailed", "FailureReason", "StateChanged", "ProtocolError", "SessionClosed",
]
