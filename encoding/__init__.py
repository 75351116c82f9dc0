"""The sans-IO SMPP core: PDU codec, session state machine, text and receipts. No I/O here."""

from .constants import CommandId, CommandStatus, status_name
from .errors import FramingError, PduError, SessionError, SmppError, TextError, TransportError
from .pdu import Pdu, decode_pdu, encode_pdu

__all__ = [
    "CommandId", "CommandStatus", "status_name", "SmppError", "PduError", "FramingError",
    "TextError", "SessionError", "TransportError", "Pdu", "decode_pdu", "encode_pdu",
]
