"""The message model and its lifecycle table.

A tenant's submit_sm (or data_sm, or one destination of a submit_multi) becomes one
``Message`` with the gateway's id. Its life is a table of allowed transitions, so a
late or duplicated event (a second receipt, a resp after a timeout) cannot move a message
backwards. Final states map onto SMPP 3.4 message_state values (section 5.2.28) for
query_sm and receipts.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

import msgspec

from encoding.constants import MessageState as SmppState

__all__ = [
    "external_id",
    "internal_id",
    "dcs0_of",
    "shown_number",
    "Status",
    "TRANSITIONS",
    "FINAL",
    "can_move",
    "smpp_state",
    "Content",
    "Message",
    "STAT_OF_STATUS",
]


class Status(StrEnum):
    """Where a message is in the gateway."""

    # Hash as the str it is (Enum's own __hash__ is Python code and hashes the name, not the
    # value it compares equal to): statuses are looked up in sets and tables per message.
    __hash__ = str.__hash__

    SCHEDULED = "scheduled"  # durable, held until its send_at (routing.schedule)
    ACCEPTED = "accepted"  # durable, waiting for an operator
    SUBMITTED = "submitted"  # every part acknowledged by an operator, waiting for receipts
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    EXPIRED = "expired"
    REJECTED = "rejected"  # refused by the operator or by routing
    CANCELLED = "cancelled"  # cancel_sm before it left the gateway
    UNKNOWN = "unknown"


_A, _S, _D = Status.ACCEPTED, Status.SUBMITTED, Status.DELIVERED
_U, _E, _R, _C, _K = (
    Status.UNDELIVERABLE,
    Status.EXPIRED,
    Status.REJECTED,
    Status.CANCELLED,
    Status.UNKNOWN,
)
_H = Status.SCHEDULED
FINAL: Final = frozenset({_D, _U, _E, _R, _C})

# state -> states it may move to. Final states are terminal.
TRANSITIONS: Final[dict[Status, frozenset[Status]]] = {
    _H: frozenset({_A, _C, _E}),  # released when due, cancelled, or its validity ran out
    _A: frozenset({_S, _D, _U, _E, _R, _C, _K}),  # receipts can overtake submit_sm_resp
    _S: frozenset({_D, _U, _E, _R, _K}),
    _K: frozenset({_D, _U, _E, _R}),
    _D: frozenset(),
    _U: frozenset(),
    _E: frozenset(),
    _R: frozenset(),
    _C: frozenset(),
}

# A scheduled message is ENROUTE to a 3.4 ESME (5.2.28 has no SCHEDULED before v5.0; the
# SMPP door answers SCHEDULED to a v5.0 bind itself).
_SMPP_STATE: Final[dict[Status, int]] = {
    _H: SmppState.ENROUTE,
    _A: SmppState.ENROUTE,
    _S: SmppState.ENROUTE,
    _D: SmppState.DELIVERED,
    _U: SmppState.UNDELIVERABLE,
    _E: SmppState.EXPIRED,
    _R: SmppState.REJECTED,
    _C: SmppState.DELETED,
    _K: SmppState.UNKNOWN,
}

# Receipt stat word (SMPP 3.4 Appendix B) for each final status.
STAT_OF_STATUS: Final[dict[Status, str]] = {
    _D: "DELIVRD",
    _U: "UNDELIV",
    _E: "EXPIRED",
    _R: "REJECTD",
    _C: "DELETED",
    _K: "UNKNOWN",
    _A: "ENROUTE",
    _S: "ENROUTE",
    _H: "ENROUTE",
}


def can_move(old: Status, new: Status) -> bool:
    return new in TRANSITIONS[old]


def smpp_state(status: Status) -> int:
    """message_state for query_sm_resp and receipts."""
    return _SMPP_STATE[status]


class Content(msgspec.Struct, gc=False, kw_only=True):
    """What a message says and where it goes, in SMPP 3.4's fields (section 4.4.1): shared
    by a ``Submission`` (asked for) and a ``Message`` (accepted)."""

    tenant: str
    source_addr: str
    destination_addr: str
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    service_type: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    registered_delivery: int = 0
    data_coding: int = 0
    schedule_delivery_time: str = ""  # passed on to the operator as given
    validity_period: str = ""
    body: bytes = b""  # short_message, or message_payload when the tenant sent one
    tlvs: bytes = b""  # other TLVs to forward, encoded as on the wire


class Message(Content, gc=False, kw_only=True):
    """One message accepted from a tenant, as stored."""

    id: str
    status: Status = Status.ACCEPTED
    created_at: float = 0.0  # wall clock, seconds
    expires_at: float = 0.0  # 0 = operator default
    operator: str = ""
    error: int = 0  # last command_status or network error from the operator
    updated_at: float = 0.0
    request_id: str = ""  # the HTTP request it came in ("" over SMPP)
    reference: str = ""  # the caller's own reference (HTTP client_ref)
    report_url: str = ""  # where its events go instead of the tenant's webhook_url
    send_at: float = 0.0  # when a SCHEDULED message is due (wall clock); 0 = not held


def dcs0_of(m: Message, tenant_dcs0: str) -> str:
    """What data_coding 0 means in ``m``'s body: the tenant's setting for what came over
    SMPP, GSM-7 for what came over HTTP (that door encodes text itself)."""
    return "gsm7" if m.request_id else tenant_dcs0


def shown_number(addr: str, ton: int) -> str:
    """An address as the HTTP API and webhooks show it: E.164 with '+' for an international
    number (TON 1, or unknown TON with at least 8 digits), as it is otherwise (short codes,
    alphanumeric senders)."""
    if addr.isdigit() and (ton == 1 or (ton == 0 and len(addr) >= 8)):
        return "+" + addr
    return addr


def external_id(id_format: str, internal: str) -> str:
    """The id a tenant sees: our decimal id, or the same number in upper-case hex."""
    return f"{int(internal):X}" if id_format == "hex" else internal


def internal_id(id_format: str, external: str) -> str | None:
    """Back from a tenant's id to ours; None when it cannot be one of ours."""
    try:
        return str(int(external.strip(), 16 if id_format == "hex" else 10))
    except ValueError:
        return None
