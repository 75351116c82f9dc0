"""Optional parameters (TLVs): the SMPP 3.4 tag table, their typed values, decode and encode.

SMPP 3.4 section 5.3 (TLV definitions) and 3.2.1.6 (TLV format: tag Int 2, length Int 2,
value). Known tags decode to typed values under their spec name: ``int`` for Integer TLVs,
``str`` for C-Octet Strings (without the NUL), ``bytes`` for Octet Strings, ``b""`` for the
flag-by-presence ``alert_on_message_delivery``. Unknown tags are kept under their numeric tag
as raw bytes and written back byte for byte (forward compatibility rules of section 3.2.1.6).
"""

from __future__ import annotations

from struct import Struct
from typing import Final, NamedTuple

from ..constants import CommandStatus
from ..errors import PduError, SmppError

__all__ = ["TlvSpec", "TLVS", "TAG_BY_NAME", "TlvValue", "TlvMap", "TlvEncodeError",
           "decode_tlvs", "encode_tlvs"]

TlvValue = int | str | bytes
TlvMap = dict[str | int, TlvValue]

_INT, _CSTR, _OCTETS = "int", "cstr", "octets"


class TlvSpec(NamedTuple):
    tag: int
    name: str
    kind: str
    min_len: int
    max_len: int


# SMPP 3.4 section 5.3.2 (sizes per reference table 3.1).
TLVS: Final[tuple[TlvSpec, ...]] = (
    TlvSpec(0x0005, "dest_addr_subunit", _INT, 1, 1),
    TlvSpec(0x0006, "dest_network_type", _INT, 1, 1),
    TlvSpec(0x0007, "dest_bearer_type", _INT, 1, 1),
    TlvSpec(0x0008, "dest_telematics_id", _INT, 2, 2),
    TlvSpec(0x000D, "source_addr_subunit", _INT, 1, 1),
    TlvSpec(0x000E, "source_network_type", _INT, 1, 1),
    TlvSpec(0x000F, "source_bearer_type", _INT, 1, 1),
    TlvSpec(0x0010, "source_telematics_id", _INT, 1, 2),
    TlvSpec(0x0017, "qos_time_to_live", _INT, 4, 4),
    TlvSpec(0x0019, "payload_type", _INT, 1, 1),
    TlvSpec(0x001D, "additional_status_info_text", _CSTR, 1, 256),
    TlvSpec(0x001E, "receipted_message_id", _CSTR, 1, 65),
    TlvSpec(0x0030, "ms_msg_wait_facilities", _INT, 1, 1),
    TlvSpec(0x0201, "privacy_indicator", _INT, 1, 1),
    TlvSpec(0x0202, "source_subaddress", _OCTETS, 2, 23),
    TlvSpec(0x0203, "dest_subaddress", _OCTETS, 2, 23),
    TlvSpec(0x0204, "user_message_reference", _INT, 2, 2),
    TlvSpec(0x0205, "user_response_code", _INT, 1, 1),
    TlvSpec(0x020A, "source_port", _INT, 2, 2),
    TlvSpec(0x020B, "destination_port", _INT, 2, 2),
    TlvSpec(0x020C, "sar_msg_ref_num", _INT, 2, 2),
    TlvSpec(0x020D, "language_indicator", _INT, 1, 1),
    TlvSpec(0x020E, "sar_total_segments", _INT, 1, 1),
    TlvSpec(0x020F, "sar_segment_seqnum", _INT, 1, 1),
    TlvSpec(0x0210, "sc_interface_version", _INT, 1, 1),
    TlvSpec(0x0302, "callback_num_pres_ind", _INT, 1, 1),
    TlvSpec(0x0303, "callback_num_atag", _OCTETS, 0, 65),
    TlvSpec(0x0304, "number_of_messages", _INT, 1, 1),
    TlvSpec(0x0381, "callback_num", _OCTETS, 4, 19),
    TlvSpec(0x0420, "dpf_result", _INT, 1, 1),
    TlvSpec(0x0421, "set_dpf", _INT, 1, 1),
    TlvSpec(0x0422, "ms_availability_status", _INT, 1, 1),
    TlvSpec(0x0423, "network_error_code", _OCTETS, 3, 3),
    TlvSpec(0x0424, "message_payload", _OCTETS, 0, 65535),
    TlvSpec(0x0425, "delivery_failure_reason", _INT, 1, 1),
    TlvSpec(0x0426, "more_messages_to_send", _INT, 1, 1),
    TlvSpec(0x0427, "message_state", _INT, 1, 1),
    TlvSpec(0x0501, "ussd_service_op", _OCTETS, 1, 1),
    TlvSpec(0x1201, "display_time", _INT, 1, 1),
    TlvSpec(0x1203, "sms_signal", _INT, 2, 2),
    TlvSpec(0x1204, "ms_validity", _INT, 1, 1),
    TlvSpec(0x130C, "alert_on_message_delivery", _OCTETS, 0, 0),
    TlvSpec(0x1380, "its_reply_type", _INT, 1, 1),
    TlvSpec(0x1383, "its_session_info", _OCTETS, 2, 2),
)


class TlvEncodeError(SmppError, ValueError):
    """A TLV value that cannot be encoded: an ``SmppError`` (what ``encode_pdu`` promises)
    and a ``ValueError`` (what ``encode_tlvs`` has always promised)."""

    command_status = CommandStatus.ESME_RINVOPTPARAMVAL


_BY_TAG: Final[dict[int, TlvSpec]] = {s.tag: s for s in TLVS}
_BY_NAME: Final[dict[str, TlvSpec]] = {s.name: s for s in TLVS}
TAG_BY_NAME: Final[dict[str, int]] = {s.name: s.tag for s in TLVS}
_HEAD = Struct(">HH")
_head_unpack = _HEAD.unpack_from
_head_pack = _HEAD.pack


def decode_tlvs(data: bytes, pos: int, command_id: int, sequence_number: int) -> TlvMap:
    """Decode the TLVs from ``pos`` to the end of ``data`` (the whole frame).

    Up to three trailing zero octets that cannot be a TLV header are tolerated: some peers
    append a NUL after short_message (reference section 11, pitfall 8).
    """
    tlvs: TlvMap = {}
    end = len(data)
    while pos < end:
        if end - pos < 4:
            if not any(data[pos:end]):
                break
            raise PduError("truncated TLV header", CommandStatus.ESME_RINVOPTPARSTREAM,
                           command_id, sequence_number)
        tag, length = _head_unpack(data, pos)
        pos += 4
        stop = pos + length
        if stop > end:
            raise PduError(f"TLV 0x{tag:04X} runs past the PDU",
                           CommandStatus.ESME_RINVOPTPARSTREAM, command_id, sequence_number)
        spec = _BY_TAG.get(tag)
        if spec is None:
            tlvs[tag] = data[pos:stop]
        elif not spec.min_len <= length <= spec.max_len:
            raise PduError(f"TLV {spec.name} has length {length}", CommandStatus.ESME_RINVPARLEN,
                           command_id, sequence_number)
        elif spec.kind == _INT:
            tlvs[spec.name] = int.from_bytes(data[pos:stop], "big")
        elif spec.kind == _CSTR:
            raw = data[pos:stop]
            tlvs[spec.name] = (raw[:-1] if raw[-1:] == b"\x00" else raw).decode("latin-1")
        else:
            tlvs[spec.name] = data[pos:stop]
        pos = stop
    return tlvs


def encode_tlvs(tlvs: TlvMap) -> bytes:
    """Encode in the map's order; raises ``TlvEncodeError`` (a ValueError and an SmppError with
    ESME_RINVOPTPARAMVAL or ESME_RINVPARLEN) for a value that does not fit its tag."""
    out: list[bytes] = []
    for key, value in tlvs.items():
        if isinstance(key, int):
            if not isinstance(value, bytes) or not 0 <= key <= 0xFFFF or len(value) > 0xFFFF:
                raise TlvEncodeError(f"unknown TLV 0x{key:04X} needs a bytes value (tag and "
                                     "length of 2 octets)")
            out.append(_head_pack(key, len(value)) + value)
            continue
        spec = _BY_NAME.get(key)
        if spec is None:
            raise TlvEncodeError(f"unknown TLV name {key!r}")
        if spec.kind == _INT:
            if not isinstance(value, int) or not 0 <= value < 1 << (8 * spec.max_len):
                raise TlvEncodeError(f"TLV {key} needs an int in 0..{(1 << 8 * spec.max_len) - 1}")
            size = spec.max_len if spec.min_len == spec.max_len else max(
                spec.min_len, (value.bit_length() + 7) // 8)
            raw = value.to_bytes(size, "big")
        elif spec.kind == _CSTR:
            raw = (value.encode("latin-1") if isinstance(value, str) else bytes(value)) + b"\x00"
        else:
            if not isinstance(value, bytes):
                raise TlvEncodeError(f"TLV {key} needs bytes")
            raw = value
        if not spec.min_len <= len(raw) <= spec.max_len:
            raise TlvEncodeError(f"TLV {key} value of {len(raw)} octets is out of range",
                                 CommandStatus.ESME_RINVPARLEN)
        out.append(_head_pack(spec.tag, len(raw)) + raw)
    return b"".join(out)
