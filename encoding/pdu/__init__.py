"""SMPP 3.4 PDUs: one Struct per type, TLVs, the codec and stream framing (no I/O)."""

from .base import Pdu
from .codec import REGISTRY, decode_pdu, encode_pdu, pdu_class
from .fields import DlDest, SmeDest, UnsuccessSme
from .framing import DEFAULT_MAX_COMMAND_LENGTH, FrameBuffer
from .tlv import TAG_BY_NAME, TLVS, TlvMap, TlvValue
from .types import *  # noqa: F403 - the PDU types are this package's surface
from .types import __all__ as _types_all

__all__ = [
    "Pdu", "decode_pdu", "encode_pdu", "pdu_class", "REGISTRY", "FrameBuffer",
    "DEFAULT_MAX_COMMAND_LENGTH", "SmeDest", "DlDest", "UnsuccessSme", "TLVS", "TAG_BY_NAME",
    "TlvMap", "TlvValue", *_types_all,
]
