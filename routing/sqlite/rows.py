"""Values to rows and back: the column lists and statements of ``messages`` and ``events``,
a ``Message`` as a row and a row as a ``Message`` or ``Segment``.

A ``Status`` goes into a row as its plain text from ``STATUS_TEXT``: sqlite3 binds a ``str``
subclass (the StrEnum itself) through its adapter lookup, 0.34 µs more per value than a plain
``str``, and ``.value`` is a Python-level property (0.19 µs); the table lookup is ~0.04 µs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from ..events import Claim, StoredPdu, TenantEvent, decode_event
from ..model import Message, Status
from ..repository import MoGroup, Segment

__all__ = ["MESSAGE_COLUMNS", "INSERT_MESSAGE", "REPLACE_MESSAGE", "EVENT_COLUMNS",
           "STATUS_TEXT", "row_of", "replace_params", "group_row", "message_of", "segment_of",
           "claim_of"]

STATUS_TEXT: dict[Status, str] = {s: s.value for s in Status}
MESSAGE_COLUMNS = (
    "id, tenant, source_addr, destination_addr, source_addr_ton, source_addr_npi, "
    "dest_addr_ton, dest_addr_npi, service_type, esm_class, protocol_id, priority_flag, "
    "registered_delivery, data_coding, schedule_delivery_time, validity_period, body, tlvs, "
    "status, created_at, expires_at, operator, error, updated_at, request_id, reference, "
    "report_url, send_at"
)
INSERT_MESSAGE = (
    f"INSERT OR IGNORE INTO messages ({MESSAGE_COLUMNS}) VALUES ({', '.join('?' * 28)})"
)
EVENT_COLUMNS = "id, tenant, kind, body, message_id, created_at, attempts, next_attempt_at"
# New content for a message that has not left (replace_sm): every column but id and
# status, applied only while the row is still in the status it was read in (accepted or
# scheduled). Parameters: ``replace_params``.
_REPLACED_COLUMNS = [c for c in MESSAGE_COLUMNS.split(", ") if c not in ("id", "status")]
REPLACE_MESSAGE = (
    "UPDATE messages SET " + ", ".join(f"{c} = ?" for c in _REPLACED_COLUMNS)
    + " WHERE id = ? AND status = ?"
)
_STATUS_INDEX = MESSAGE_COLUMNS.split(", ").index("status")


def replace_params(m: Message, now: float) -> tuple[object, ...]:
    """``REPLACE_MESSAGE``'s parameters; the last two are the id and the status."""
    row = row_of(m, now)
    return (*row[1:_STATUS_INDEX], *row[_STATUS_INDEX + 1:], m.id, row[_STATUS_INDEX])


def group_row(g: MoGroup) -> tuple[str, str, str, int, int, int]:
    return (g.operator, g.source_addr, g.destination_addr, g.data_coding, g.reference, g.total)


def row_of(m: Message, now: float) -> tuple[object, ...]:
    return (
        m.id,
        m.tenant,
        m.source_addr,
        m.destination_addr,
        m.source_addr_ton,
        m.source_addr_npi,
        m.dest_addr_ton,
        m.dest_addr_npi,
        m.service_type,
        m.esm_class,
        m.protocol_id,
        m.priority_flag,
        m.registered_delivery,
        m.data_coding,
        m.schedule_delivery_time,
        m.validity_period,
        m.body,
        m.tlvs,
        STATUS_TEXT[m.status],
        m.created_at,
        m.expires_at,
        m.operator,
        m.error,
        now,
        m.request_id,
        m.reference,
        m.report_url,
        m.send_at,
    )


def segment_of(r: tuple[Any, ...]) -> Segment:
    return Segment(str(r[0]), int(r[1]), int(r[2]), str(r[3]), str(r[4]), Status(r[5]),
                   int(r[6]))


def message_of(row: tuple[Any, ...]) -> Message:
    (
        mid,
        tenant,
        src,
        dst,
        ston,
        snpi,
        dton,
        dnpi,
        stype,
        esm,
        pid,
        prio,
        reg,
        dcs,
        sched,
        validity,
        body,
        tlvs,
        status,
        created,
        expires,
        operator,
        error,
        updated,
        request_id,
        reference,
        report_url,
        send_at,
    ) = row
    return Message(
        id=str(mid),
        tenant=str(tenant),
        source_addr=str(src),
        destination_addr=str(dst),
        source_addr_ton=int(ston),
        source_addr_npi=int(snpi),
        dest_addr_ton=int(dton),
        dest_addr_npi=int(dnpi),
        service_type=str(stype),
        esm_class=int(esm),
        protocol_id=int(pid),
        priority_flag=int(prio),
        registered_delivery=int(reg),
        data_coding=int(dcs),
        schedule_delivery_time=str(sched),
        validity_period=str(validity),
        body=bytes(body),
        tlvs=bytes(tlvs),
        status=Status(status),
        created_at=float(created),
        expires_at=float(expires),
        operator=str(operator),
        error=int(error),
        updated_at=float(updated),
        request_id=str(request_id),
        reference=str(reference),
        report_url=str(report_url),
        send_at=float(send_at),
    )


def claim_of(r: Sequence[Any]) -> Claim | None:
    """An ``events`` row (``EVENT_COLUMNS``, or an ``Ops.add_event`` row) as a claim; None
    when its body is unreadable."""
    event: TenantEvent
    if r[2] == "pdu":
        event = StoredPdu(bytes(r[3]), str(r[4]))
    else:
        try:
            event = decode_event(r[3])
        except msgspec.DecodeError:
            return None
    return Claim(int(r[0]), str(r[1]), event, int(r[6]), float(r[5]))
