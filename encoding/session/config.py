"""``SessionConfig``: a session's timers (SMPP 3.4 section 7.2, reference 5.2) and windows."""

from __future__ import annotations

import msgspec

from ..pdu import DEFAULT_MAX_COMMAND_LENGTH

__all__ = ["SessionConfig"]


class SessionConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Timers in seconds (0 disables enquire_link and inactivity) and window sizes."""

    session_init_s: float = 30.0
    enquire_link_s: float = 30.0
    inactivity_s: float = 300.0
    response_timeout_s: float = 30.0
    window: int = 10  # our outstanding requests
    inbound_window: int = 0  # peer requests awaiting our answer; 0 = unlimited
    max_command_length: int = DEFAULT_MAX_COMMAND_LENGTH
