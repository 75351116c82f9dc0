"""Turns a PDU's body table into a specialised decoder and encoder (generated Python).

A body table (``cls.FIELDS``) is derived from the annotated attributes of each PDU Struct in
``encoding.pdu.types``, the single statement of each layout (SMPP 3.4 section 4).
Interpreting a table field by field at run time costs a loop, a dispatch and a tuple unpack
per field per PDU; generating one straight-line function per PDU type once at
import time removes all three, and runs of adjacent integers become one ``struct`` call.
The generated source can be read with ``generated_source(cls)``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from ..constants import CommandStatus
from ..errors import PduError, SmppError
from .base import Pdu
from .fields import (
    CSTR,
    DEST_LIST,
    SHORT_MESSAGE,
    TIME,
    U8,
    U16,
    U32,
    UNSUCCESS_LIST,
    DlDest,
    Field,
    SmeDest,
    UnsuccessSme,
)
from .tlv import decode_tlvs, encode_tlvs

__all__ = ["Decoder", "Encoder", "compile_decoder", "compile_encoder", "generated_source"]

Decoder = Callable[[bytes, int, int], Pdu]
Encoder = Callable[[Pdu], bytes]

_INT_FORMAT = {U8: "B", U16: "H", U32: "I"}
_HEADER = struct.Struct(">IIII")
_SOURCES: dict[str, str] = {}


def _int_runs(fields: tuple[Field, ...]) -> list[list[Field] | Field]:
    """Group adjacent integer fields so each run is read or written by one struct call."""
    out: list[list[Field] | Field] = []
    for f in fields:
        if f.kind in _INT_FORMAT:
            if out and isinstance(out[-1], list):
                out[-1].append(f)
            else:
                out.append([f])
        else:
            out.append(f)
    return out


def _decode_dests(data: bytes, pos: int, cid: int, seq: int, status: int) -> tuple[list[Any], int]:
    """submit_multi dest_address list (SMPP 3.4 section 4.5.1.1)."""
    count = data[pos]
    pos += 1
    dests: list[Any] = []
    for _ in range(count):
        flag = data[pos]
        pos += 1
        if flag == 1:
            ton, npi = data[pos], data[pos + 1]
            end = data.find(0, pos + 2, pos + 2 + 21)
            if end < 0:
                raise PduError("destination_addr too long", CommandStatus.ESME_RINVDSTADR, cid, seq)
            dests.append(SmeDest(data[pos + 2:end].decode("latin-1"), ton, npi))
        elif flag == 2:
            end = data.find(0, pos, pos + 21)
            if end < 0:
                raise PduError("dl_name too long", CommandStatus.ESME_RINVDLNAME, cid, seq)
            dests.append(DlDest(data[pos:end].decode("latin-1")))
        else:
            raise PduError(f"dest_flag {flag}", CommandStatus.ESME_RINVDESTFLAG, cid, seq)
        pos = end + 1
    return dests, pos


def _encode_dests(dests: list[Any]) -> bytes:
    if len(dests) > 254:
        raise SmppError("number_of_dests above 254", CommandStatus.ESME_RINVNUMDESTS)
    out = [bytes((len(dests),))]
    for d in dests:
        if isinstance(d, SmeDest):
            out.append(bytes((1, d.dest_addr_ton, d.dest_addr_npi)))
            out.append(_cstr(d.destination_addr, 21, CommandStatus.ESME_RINVDSTADR))
        else:
            out.append(b"\x02" + _cstr(d.dl_name, 21, CommandStatus.ESME_RINVDLNAME))
    return b"".join(out)


def _decode_unsuccess(data: bytes, pos: int, cid: int, seq: int, status: int) -> tuple[
        list[Any], int]:
    """submit_multi_resp unsuccess_sme list (SMPP 3.4 section 4.5.2)."""
    count = data[pos]
    pos += 1
    items: list[Any] = []
    for _ in range(count):
        ton, npi = data[pos], data[pos + 1]
        end = data.find(0, pos + 2, pos + 2 + 21)
        if end < 0:
            raise PduError("destination_addr too long", CommandStatus.ESME_RINVDSTADR, cid, seq)
        (code,) = struct.unpack_from(">I", data, end + 1)
        items.append(UnsuccessSme(data[pos + 2:end].decode("latin-1"), code, ton, npi))
        pos = end + 5
    return items, pos


def _encode_unsuccess(items: list[Any]) -> bytes:
    out = [bytes((len(items),))]
    for u in items:
        out.append(bytes((u.dest_addr_ton, u.dest_addr_npi)))
        out.append(_cstr(u.destination_addr, 21, CommandStatus.ESME_RINVDSTADR))
        out.append(struct.pack(">I", u.error_status_code))
    return b"".join(out)


def _cstr(value: str, size: int, status: int) -> bytes:
    raw = value.encode("latin-1")
    if len(raw) >= size or b"\x00" in raw:
        # A password's value never goes into a message (it ends up in logs).
        shown = (f"of {len(raw)} octets" if status == CommandStatus.ESME_RINVPASWD
                 else repr(value))
        raise SmppError(f"C string {shown} does not fit {size} octets", status)
    return raw + b"\x00"


def compile_decoder(cls: type[Pdu]) -> Decoder:
    """Generate ``decode(frame, sequence_number, command_status) -> cls`` for a PDU type."""
    lines = ["def decode(data, seq, status):", "    pos = 16"]
    env: dict[str, Any] = {"PduError": PduError, "decode_tlvs": decode_tlvs, "CLS": cls,
                           "CID": cls.command_id, "_decode_dests": _decode_dests,
                           "_decode_unsuccess": _decode_unsuccess}
    names: list[str] = []
    for i, item in enumerate(_int_runs(cls.FIELDS)):
        if isinstance(item, list):
            fmt = ">" + "".join(_INT_FORMAT[f.kind] for f in item)
            env[f"_u{i}"] = struct.Struct(fmt).unpack_from
            size = struct.calcsize(fmt)
            targets = ", ".join(f.name for f in item)
            lines.append(f"    {targets}{',' if len(item) == 1 else ''} = _u{i}(data, pos)")
            lines.append(f"    pos += {size}")
            names.extend(f.name for f in item)
            continue
        f = item
        names.append(f.name)
        if f.kind in (CSTR, TIME):
            lines += [
                f"    e = data.find(0, pos, pos + {f.decode_size})",
                "    if e < 0:",
                f"        raise PduError('{f.name}: no NUL within {f.decode_size} octets', "
                f"{f.status}, CID, seq)",
                f"    {f.name} = data[pos:e].decode('latin-1')",
                "    pos = e + 1",
            ]
        elif f.kind == SHORT_MESSAGE:
            lines += [
                "    n = data[pos]",
                "    pos += 1",
                "    if pos + n > len(data):",
                "        raise PduError('sm_length past the end of the PDU', "
                f"{f.status}, CID, seq)",
                f"    {f.name} = data[pos:pos + n]",
                "    pos += n",
            ]
        elif f.kind == DEST_LIST:
            lines.append(f"    {f.name}, pos = _decode_dests(data, pos, CID, seq, {f.status})")
        elif f.kind == UNSUCCESS_LIST:
            lines.append(f"    {f.name}, pos = _decode_unsuccess(data, pos, CID, seq, 0)")
        else:  # pragma: no cover - the tables use only the kinds above
            raise TypeError(f.kind)
    lines.append("    tlvs = decode_tlvs(data, pos, CID, seq) if pos < len(data) else {}")
    lines.append(f"    return CLS(seq, status, tlvs{''.join(', ' + n for n in names)})")
    decoder: Decoder = _exec(cls, "decode", lines, env)
    return decoder


def compile_encoder(cls: type[Pdu]) -> Encoder:
    """Generate ``encode(pdu) -> bytes`` for a PDU type (header included)."""
    env: dict[str, Any] = {"_HEADER": _HEADER.pack, "CID": cls.command_id, "_cstr": _cstr,
                           "encode_tlvs": encode_tlvs, "SmppError": SmppError,
                           "_encode_dests": _encode_dests, "_encode_unsuccess": _encode_unsuccess}
    # Error responses keep their (empty) mandatory body: SMPP 3.4 (4.1.4, 4.4.2) says it is
    # not returned, but v5 (3.2.1.3) tells receivers to ignore one, python-smpplib sends it,
    # and aiosmpplib 0.7 cannot read a header-only bind_*_resp at all (tests/interop).
    lines = ["def encode(p):", "    status = p.command_status"]
    parts: list[str] = []
    for i, item in enumerate(_int_runs(cls.FIELDS)):
        if isinstance(item, list):
            fmt = ">" + "".join(_INT_FORMAT[f.kind] for f in item)
            env[f"_p{i}"] = struct.Struct(fmt).pack
            parts.append(f"_p{i}({', '.join('p.' + f.name for f in item)})")
            continue
        f = item
        if f.kind in (CSTR, TIME):
            var = f"s{i}"
            lines += [
                f"    {var} = p.{f.name}.encode('latin-1')",
                f"    if len({var}) >= {f.size} or b'\\x00' in {var}:",
                f"        {var} = _cstr(p.{f.name}, {f.size}, {f.status})",
                "    else:",
                f"        {var} += b'\\x00'",
            ]
            parts.append(var)
        elif f.kind == SHORT_MESSAGE:
            lines += [
                f"    sm = p.{f.name}",
                f"    if len(sm) > {f.size}:",
                f"        raise SmppError('short_message above {f.size} octets', {f.status})",
            ]
            parts += ["bytes((len(sm),))", "sm"]
        elif f.kind == DEST_LIST:
            parts.append(f"_encode_dests(p.{f.name})")
        elif f.kind == UNSUCCESS_LIST:
            parts.append(f"_encode_unsuccess(p.{f.name})")
    lines.append("    tlvs = p.tlvs")
    parts.append("(encode_tlvs(tlvs) if tlvs else b'')")
    lines.append(f"    body = b''.join(({', '.join(parts)},))")
    lines.append("    return _HEADER(16 + len(body), CID, status, p.sequence_number) + body")
    encoder: Encoder = _exec(cls, "encode", lines, env)
    return encoder


def _exec(cls: type[Pdu], name: str, lines: list[str], env: dict[str, Any]) -> Any:
    source = "\n".join(lines) + "\n"
    _SOURCES[f"{cls.__name__}.{name}"] = source
    code = compile(source, f"<smpp {name} {cls.__name__}>", "exec")
    exec(code, env)
    return env[name]


def generated_source(cls: type[Pdu], name: str = "decode") -> str:
    """The Python source generated for ``cls`` (for reading and debugging)."""
    return _SOURCES[f"{cls.__name__}.{name}"]
