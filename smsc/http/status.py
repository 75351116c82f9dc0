"""Messages as the HTTP API shows them: the status object of ``GET /v1/messages/{id}``.

One message, whichever door it came in, in the API's names: ``submitted`` is ``sent``
(handed to an operator); the others keep their lifecycle names (http-api.md, "Status").
Ids are shown as the tenant sees them over SMPP (``id_format``), so an id from either door
works with the other (query_sm).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from config import TenantConfig
from encoding.constants import CommandStatus, EsmClass
from encoding.errors import TextError
from encoding.text import coding_kind, split_user_data
from routing.model import FINAL, Message, Status, dcs0_of, external_id, shown_number
from routing.repository import HistoryEntry

from .models import ErrorInfo, MessageStatus, StatusEvent

__all__ = ["STATUS_NAME", "STATUS_OF_NAME", "status_of", "timestamp", "parts_of",
           "encoding_of", "error_of"]

STATUS_NAME: Final[dict[Status, str]] = {s: s.value for s in Status} | {
    Status.SUBMITTED: "sent"}
STATUS_OF_NAME: Final[dict[str, Status]] = {v: k for k, v in STATUS_NAME.items()}
_FAILED: Final = frozenset({Status.UNDELIVERABLE, Status.EXPIRED, Status.REJECTED,
                            Status.UNKNOWN})
_ENCODING: Final = {"gsm7": "gsm7", "ucs2": "ucs2", "latin1": "latin1", "ascii": "latin1"}


def timestamp(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def encoding_of(data_coding: int, dcs0: str) -> str:
    try:
        return _ENCODING.get(coding_kind(data_coding, dcs0=dcs0), "binary")
    except TextError:
        return "binary"


def parts_of(m: Message, dcs0: str) -> int:
    """How many SMS the message is (one when the tenant split it itself)."""
    if m.esm_class & EsmClass.UDHI:
        return 1
    try:
        return len(split_user_data(m.body, m.data_coding, dcs0=dcs0).segments)
    except TextError:
        return 1


def error_of(status: Status, error: int, detail: str = "") -> ErrorInfo | None:
    if status not in _FAILED and not error:
        return None
    code = status.value if status in _FAILED else "operator_error"
    try:
        name = CommandStatus(error).name if error else ""
    except ValueError:
        name = f"0x{error:08X}"
    return ErrorInfo(code=code, smpp_status=error or None,
                     detail=detail or (f"operator answered {name}" if name else ""))


def status_of(m: Message, history: list[HistoryEntry], tenant: TenantConfig) -> MessageStatus:
    sent_at = next((h.at for h in history if h.status is Status.SUBMITTED), None)
    detail = history[-1].detail if history else ""
    return MessageStatus(
        id=external_id(tenant.id_format, m.id), request_id=m.request_id or None,
        client_ref=m.reference or None,
        originator=shown_number(m.source_addr, m.source_addr_ton),
        recipient=shown_number(m.destination_addr, m.dest_addr_ton), status=STATUS_NAME[m.status],  # type: ignore[arg-type]
        parts=parts_of(m, dcs0_of(m, tenant.dcs0)),
        encoding=encoding_of(m.data_coding, dcs0_of(m, tenant.dcs0)),  # type: ignore[arg-type]
        operator=m.operator or None, error=error_of(m.status, m.error, detail),
        created_at=timestamp(m.created_at),
        send_at=timestamp(m.send_at) if m.send_at else None,
        sent_at=timestamp(sent_at) if sent_at is not None else None,
        done_at=timestamp(m.updated_at) if m.status in FINAL else None,
        events=[StatusEvent(status=STATUS_NAME[h.status], at=timestamp(h.at))  # type: ignore[arg-type]
                for h in history],
        door="http" if m.request_id else "smpp")
