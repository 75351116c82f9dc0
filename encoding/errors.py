"""Errors of the SMPP core: each carries the command_status the answer must carry.

SMPP 3.4 section 5.1.3 (command_status) and the generic_nack rules of section 4.3.
A decode error says whose fault it was (always the peer's here) and whether the session
may go on (``fatal`` is True when framing itself is lost). Transport failures are a
separate family (``TransportError``) and never reach a peer. Success is never an exception.
"""

from __future__ import annotations

from .constants import CommandStatus, status_name

__all__ = [
    "SmppError",
    "PduError",
    "FramingError",
    "TextError",
    "SessionError",
    "TransportError",
]


class SmppError(Exception):
    """Base of every error the core raises; ``command_status`` is what to answer with."""

    command_status: int = CommandStatus.ESME_RSYSERR

    def __init__(self, message: str, command_status: int | None = None) -> None:
        super().__init__(message)
        if command_status is not None:
            self.command_status = command_status

    @property
    def status_name(self) -> str:
        return status_name(self.command_status)


class PduError(SmppError):
    """A PDU whose header is intact but whose body is wrong: answer it, keep the session.

    ``command_id`` and ``sequence_number`` come from the intact header so the answer can be
    the request's own response (or generic_nack) with the same sequence number.
    """

    fatal = False

    def __init__(
        self,
        message: str,
        command_status: int,
        command_id: int = 0,
        sequence_number: int = 0,
    ) -> None:
        super().__init__(message, command_status)
        self.command_id = command_id
        self.sequence_number = sequence_number


class FramingError(PduError):
    """command_length is impossible: answer generic_nack ESME_RINVCMDLEN and close."""

    fatal = True
    frames: list[bytes] = []


class TextError(SmppError):
    """Text cannot be encoded, split or decoded as asked (too many parts, bad coding)."""


class SessionError(SmppError):
    """Our own application asked the session for something its state does not allow."""


class TransportError(Exception):
    """A socket-level failure (reset, timeout, refused). Never sent to a peer."""
