"""Text of short messages: GSM 03.38, Latin-1, UCS-2/UTF-16, data_coding, UDH, split, reassembly.

Sans-IO (no sockets, no clock). Implements 3GPP TS 23.038 (alphabets, national shift tables),
3GPP TS 23.040 section 9.2.3.24 (user data header, concatenation) and SMPP 3.4 sections
5.2.19 (data_coding) and 5.3.2.22-24/32 (SAR TLVs, message_payload); sections 7-9 of the
gateway's SMPP reference.
"""

from __future__ import annotations

from .codec import choose_coding, coding_kind, decode_text, encode_text, is_binary, units
from .gsm7 import (
    gsm7_decode,
    gsm7_encode,
    gsm7_fits,
    gsm7_septets,
    pack_septets,
    unpack_septets,
)
from .reassembly import Reassembler, reassemble
from .split import Segment, Split, part_limit, single_limit, split_text, split_user_data
from .udh import Udh, build_udh, concat_udh, parse_udh

__all__ = [
    "Reassembler",
    "Segment",
    "Split",
    "Udh",
    "build_udh",
    "choose_coding",
    "coding_kind",
    "concat_udh",
    "decode_text",
    "encode_text",
    "gsm7_decode",
    "gsm7_encode",
    "gsm7_fits",
    "gsm7_septets",
    "is_binary",
    "pack_septets",
    "parse_udh",
    "part_limit",
    "reassemble",
    "single_limit",
    "split_text",
    "split_user_data",
    "unpack_septets",
    "units",
]
