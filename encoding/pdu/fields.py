"""Field kinds of SMPP mandatory bodies and the small Structs used inside lists.

SMPP 3.4 section 3.1 defines the field types: Integer (1, 2 or 4 octets, big-endian),
C-Octet String (ASCII, NUL-terminated, "max" includes the NUL), Octet String (length from a
preceding field) and Time (C-Octet String of 1 or 17 octets, section 7.1.1). A PDU Struct
states each body field once, as an attribute whose annotation carries a ``FieldSpec``
(``esm_class: Annotated[int, u8()] = 0``); ``Pdu`` turns those into its ``FIELDS`` table of
named ``Field`` rows and ``encoding.pdu.compile`` turns each table into a decoder and an
encoder.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

__all__ = ["Field", "FieldSpec", "PYTHON_TYPE", "SmeDest", "DlDest", "UnsuccessSme", "U8", "U16",
           "U32", "CSTR", "TIME", "SHORT_MESSAGE", "DEST_LIST", "UNSUCCESS_LIST", "u8", "u16",
           "u32", "cstr", "time", "short_message", "dest_list", "unsuccess_list"]

# Field kinds.
U8 = "u8"
U16 = "u16"
U32 = "u32"
CSTR = "cstr"  # C-Octet String
TIME = "time"  # C-Octet String of exactly 1 or 17 octets (decoded leniently, checked by apps)
SHORT_MESSAGE = "sm"  # sm_length (Int 1) followed by short_message (Octet String)
DEST_LIST = "dests"  # submit_multi: number_of_dests then dest_address list (section 4.5.1.1)
UNSUCCESS_LIST = "unsuccess"  # submit_multi_resp: no_unsuccess then unsuccess_sme list


class FieldSpec(NamedTuple):
    """How one mandatory field travels: kind, maximum size and the status of a bad value.

    ``size`` is the spec maximum including the NUL for C strings (what we encode);
    ``decode_size`` may be larger where peers are known to exceed it (lenient input).
    """

    kind: str
    size: int = 0
    status: int = 0
    decode_size: int = 0

    def named(self, name: str) -> Field:
        return Field(name, *self)


class Field(NamedTuple):
    """One row of a body table: the attribute's (spec) name and its ``FieldSpec`` values."""

    name: str
    kind: str
    size: int = 0
    status: int = 0
    decode_size: int = 0


# The Python type an attribute of each kind holds (checked when a PDU class is defined).
PYTHON_TYPE: dict[str, type] = {U8: int, U16: int, U32: int, CSTR: str, TIME: str,
                                SHORT_MESSAGE: bytes, DEST_LIST: list, UNSUCCESS_LIST: list}


def u8(status: int = 0) -> FieldSpec:
    return FieldSpec(U8, 1, status)


def u16(status: int = 0) -> FieldSpec:
    return FieldSpec(U16, 2, status)


def u32(status: int = 0) -> FieldSpec:
    return FieldSpec(U32, 4, status)


def cstr(size: int, status: int, decode_size: int = 0) -> FieldSpec:
    return FieldSpec(CSTR, size, status, decode_size or size)


def time(status: int) -> FieldSpec:
    return FieldSpec(TIME, 17, status, 17)


def short_message(status: int) -> FieldSpec:
    """sm_length (Integer 1, derived) then the octets of short_message."""
    return FieldSpec(SHORT_MESSAGE, 254, status, 255)


def dest_list(status: int) -> FieldSpec:
    """number_of_dests then the dest_address list (section 4.5.1.1)."""
    return FieldSpec(DEST_LIST, 254, status, 255)


def unsuccess_list() -> FieldSpec:
    """no_unsuccess then the unsuccess_sme list (section 4.5.2)."""
    return FieldSpec(UNSUCCESS_LIST, 255, 0, 255)


class SmeDest(msgspec.Struct, frozen=True, gc=False):
    """dest_flag 0x01: an SME address (SMPP 3.4 section 4.5.1.1)."""

    destination_addr: str
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0


class DlDest(msgspec.Struct, frozen=True, gc=False):
    """dest_flag 0x02: a distribution list name (SMPP 3.4 section 4.5.1.2)."""

    dl_name: str


class UnsuccessSme(msgspec.Struct, frozen=True, gc=False):
    """One refused destination in submit_multi_resp (SMPP 3.4 section 4.5.2)."""

    destination_addr: str
    error_status_code: int
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
