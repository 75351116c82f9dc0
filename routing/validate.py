"""Validation of a submission, as a pure function returning a command_status.

SMPP 3.4 section 4.4.1 (submit_sm fields) and 5.2 (field values): addresses
(ESME_RINVSRCADR / ESME_RINVDSTADR), esm_class (ESME_RINVESMCLASS, also for a malformed
UDH), priority_flag (ESME_RINVPRTFLG), registered_delivery (ESME_RINVREGDLVFLG),
replace_if_present_flag (ESME_RINVREPFLAG), sm_default_msg_id (ESME_RINVDFTMSGID), times
(ESME_RINVSCHED / ESME_RINVEXPIRY), length (ESME_RINVMSGLEN). A data_coding the gateway
cannot carry has no 3.4 status: we answer ESME_RINVDCS (0x104) to tenants bound with
interface_version 0x50 and ESME_RSUBMITFAIL to everyone else (reference section 4 policy).
"""

from __future__ import annotations

from encoding.constants import INTERFACE_VERSION_50, CommandStatus, EsmClass
from encoding.errors import TextError
from encoding.smpptime import parse_smpp_time
from encoding.text import coding_kind, parse_udh

__all__ = ["check_message", "check_address", "sender_allowed", "MAX_BODY_OCTETS"]

S = CommandStatus
# 255 parts of 153 septets (unpacked, one octet each) is the most we can send of one message.
MAX_BODY_OCTETS = 255 * 153
_ALLOWED_TYPES = frozenset({EsmClass.TYPE_DEFAULT})


def check_address(addr: str, ton: int, *, source: bool) -> bool:
    """Digits (an optional leading '+' is tolerated), or alphanumeric sender for TON 5."""
    if source and ton == 5:
        return 0 < len(addr) <= 11 and addr.isprintable()
    digits = addr[1:] if addr.startswith("+") else addr
    if not digits:
        return source  # an empty source means "the gateway's default" (section 5.2.8)
    return digits.isdigit() and digits.isascii() and len(digits) <= 20


def sender_allowed(senders: tuple[str, ...], source_addr: str) -> bool:
    """An originator the tenant may use (its ``senders``; empty = any). A number matches
    with or without its leading '+'."""
    if not senders:
        return True
    bare = source_addr.removeprefix("+")
    return any(s == source_addr or s.removeprefix("+") == bare for s in senders)


def check_message(*, source_addr: str, source_addr_ton: int, destination_addr: str,
                  dest_addr_ton: int, esm_class: int, priority_flag: int,
                  registered_delivery: int, replace_if_present_flag: int, data_coding: int,
                  sm_default_msg_id: int, schedule_delivery_time: str, validity_period: str,
                  body: bytes, interface_version: int, dcs0: str, now: float) -> int:
    """ESME_ROK when the message may be accepted, else the status to answer with."""
    if not check_address(destination_addr, dest_addr_ton, source=False):
        return S.ESME_RINVDSTADR
    if not check_address(source_addr, source_addr_ton, source=True):
        return S.ESME_RINVSRCADR
    if esm_class & EsmClass.TYPE_MASK not in _ALLOWED_TYPES:
        return S.ESME_RINVESMCLASS
    if priority_flag > 3:
        return S.ESME_RINVPRTFLG
    if registered_delivery & 0x03 == 0x03 or registered_delivery & 0xE0:
        return S.ESME_RINVREGDLVFLG
    if replace_if_present_flag > 1:
        return S.ESME_RINVREPFLAG
    if sm_default_msg_id:
        return S.ESME_RINVDFTMSGID  # no canned messages are provisioned
    try:
        coding_kind(data_coding, dcs0=dcs0)
    except TextError:
        return S.ESME_RINVDCS if interface_version >= INTERFACE_VERSION_50 else S.ESME_RSUBMITFAIL
    try:
        schedule = parse_smpp_time(schedule_delivery_time, now)
    except ValueError:
        return S.ESME_RINVSCHED
    try:
        expiry = parse_smpp_time(validity_period, now)
    except ValueError:
        return S.ESME_RINVEXPIRY
    if expiry is not None and (expiry <= now or (schedule is not None and expiry <= schedule)):
        return S.ESME_RINVEXPIRY
    if len(body) > MAX_BODY_OCTETS:
        return S.ESME_RINVMSGLEN
    if esm_class & EsmClass.UDHI:
        try:
            parse_udh(body)
        except TextError:
            return S.ESME_RINVESMCLASS
    return S.ESME_ROK
