"""The PDU registry and the two public entry points, ``decode_pdu`` and ``encode_pdu``.

SMPP 3.4 section 3.2 (header) and 4.3 (generic_nack). PDU types are looked up by
command_id in a registry, never by an if-chain. A decode error carries the status the
answer must carry (section 5.1.3) and the header's command_id and sequence_number.
"""

from __future__ import annotations

import struct

from ..constants import RESPONSE_BIT, CommandStatus
from ..errors import FramingError, PduError
from .base import Pdu
from .compile import Decoder, Encoder, compile_decoder, compile_encoder
from .types import ALL_TYPES

__all__ = ["decode_pdu", "encode_pdu", "REGISTRY", "pdu_class"]

REGISTRY: dict[int, type[Pdu]] = {cls.command_id: cls for cls in ALL_TYPES}
_DECODERS: dict[int, Decoder] = {cls.command_id: compile_decoder(cls) for cls in ALL_TYPES}
_ENCODERS: dict[type[Pdu], Encoder] = {cls: compile_encoder(cls) for cls in ALL_TYPES}
_header = struct.Struct(">IIII").unpack_from


def pdu_class(command_id: int) -> type[Pdu] | None:
    return REGISTRY.get(command_id)


def decode_pdu(frame: bytes) -> Pdu:
    """Decode one whole PDU (``frame`` is exactly command_length octets).

    Raises ``FramingError`` when the length is impossible and ``PduError`` (with the status to
    answer and the header's sequence_number) when the body is wrong. Never raises anything else.
    """
    if len(frame) < 16:
        raise FramingError(f"PDU of {len(frame)} octets is shorter than its header",
                           CommandStatus.ESME_RINVCMDLEN)
    length, command_id, status, seq = _header(frame, 0)
    if length != len(frame):
        raise FramingError(f"command_length {length} but {len(frame)} octets",
                           CommandStatus.ESME_RINVCMDLEN, command_id, seq)
    decoder = _DECODERS.get(command_id)
    if decoder is None:
        raise PduError(f"unknown command_id 0x{command_id:08X}", CommandStatus.ESME_RINVCMDID,
                       command_id, seq)
    try:
        return decoder(frame, seq, status)
    except PduError:
        if status and command_id & RESPONSE_BIT:
            # SMPP v5 section 3.2.1.3: the body of an error response is ignored.
            return REGISTRY[command_id](seq, status)
        raise
    except (IndexError, struct.error, UnicodeDecodeError, ValueError) as exc:
        if status and command_id & RESPONSE_BIT:
            return REGISTRY[command_id](seq, status)
        raise PduError(f"body shorter than its fields ({exc})", CommandStatus.ESME_RINVCMDLEN,
                       command_id, seq) from None


def encode_pdu(pdu: Pdu) -> bytes:
    """Encode a PDU, header included. Raises ``SmppError`` for values that do not fit."""
    return _ENCODERS[type(pdu)](pdu)
