"""SMPP 3.4 numeric constants: command ids, command_status codes, field values.

Tables only; behaviour lives elsewhere. Names follow the SMPP 3.4 specification
(section 5.1.2 command ids, 5.1.3 command_status, 5.2.12 esm_class, 5.2.17
registered_delivery, 5.2.19 data_coding, 5.2.28 message_state).
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "CommandId",
    "CommandStatus",
    "DataCoding",
    "EsmClass",
    "MessageState",
    "RegisteredDelivery",
    "RESPONSE_BIT",
    "SEQUENCE_MAX",
    "INTERFACE_VERSION_34",
    "status_name",
]

RESPONSE_BIT = 0x80000000
SEQUENCE_MAX = 0x7FFFFFFF
INTERFACE_VERSION_34 = 0x34
INTERFACE_VERSION_50 = 0x50


class CommandId(IntEnum):
    """SMPP 3.4 section 5.1.2.1."""

    generic_nack = 0x80000000
    bind_receiver = 0x00000001
    bind_receiver_resp = 0x80000001
    bind_transmitter = 0x00000002
    bind_transmitter_resp = 0x80000002
    query_sm = 0x00000003
    query_sm_resp = 0x80000003
    submit_sm = 0x00000004
    submit_sm_resp = 0x80000004
    deliver_sm = 0x00000005
    deliver_sm_resp = 0x80000005
    unbind = 0x00000006
    unbind_resp = 0x80000006
    replace_sm = 0x00000007
    replace_sm_resp = 0x80000007
    cancel_sm = 0x00000008
    cancel_sm_resp = 0x80000008
    bind_transceiver = 0x00000009
    bind_transceiver_resp = 0x80000009
    outbind = 0x0000000B
    enquire_link = 0x00000015
    enquire_link_resp = 0x80000015
    submit_multi = 0x00000021
    submit_multi_resp = 0x80000021
    alert_notification = 0x00000102
    data_sm = 0x00000103
    data_sm_resp = 0x80000103


class CommandStatus(IntEnum):
    """SMPP 3.4 section 5.1.3, plus the v5 codes a 3.4 peer may still send."""

    ESME_ROK = 0x00
    ESME_RINVMSGLEN = 0x01
    ESME_RINVCMDLEN = 0x02
    ESME_RINVCMDID = 0x03
    ESME_RINVBNDSTS = 0x04
    ESME_RALYBND = 0x05
    ESME_RINVPRTFLG = 0x06
    ESME_RINVREGDLVFLG = 0x07
    ESME_RSYSERR = 0x08
    ESME_RINVSRCADR = 0x0A
    ESME_RINVDSTADR = 0x0B
    ESME_RINVMSGID = 0x0C
    ESME_RBINDFAIL = 0x0D
    ESME_RINVPASWD = 0x0E
    ESME_RINVSYSID = 0x0F
    ESME_RCANCELFAIL = 0x11
    ESME_RREPLACEFAIL = 0x13
    ESME_RMSGQFUL = 0x14
    ESME_RINVSERTYP = 0x15
    ESME_RINVNUMDESTS = 0x33
    ESME_RINVDLNAME = 0x34
    ESME_RINVDESTFLAG = 0x40
    ESME_RINVSUBREP = 0x42
    ESME_RINVESMCLASS = 0x43
    ESME_RCNTSUBDL = 0x44
    ESME_RSUBMITFAIL = 0x45
    ESME_RINVSRCTON = 0x48
    ESME_RINVSRCNPI = 0x49
    ESME_RINVDSTTON = 0x50
    ESME_RINVDSTNPI = 0x51
    ESME_RINVSYSTYP = 0x53
    ESME_RINVREPFLAG = 0x54
    ESME_RINVNUMMSGS = 0x55
    ESME_RTHROTTLED = 0x58
    ESME_RINVSCHED = 0x61
    ESME_RINVEXPIRY = 0x62
    ESME_RINVDFTMSGID = 0x63
    ESME_RX_T_APPN = 0x64
    ESME_RX_P_APPN = 0x65
    ESME_RX_R_APPN = 0x66
    ESME_RQUERYFAIL = 0x67
    ESME_RINVOPTPARSTREAM = 0xC0
    ESME_ROPTPARNOTALLWD = 0xC1
    ESME_RINVPARLEN = 0xC2
    ESME_RMISSINGOPTPARAM = 0xC3
    ESME_RINVOPTPARAMVAL = 0xC4
    ESME_RDELIVERYFAILURE = 0xFE
    ESME_RUNKNOWNERR = 0xFF
    ESME_RINVDCS = 0x104  # v5 only; sent only to tenants bound with interface_version 0x50


def status_name(status: int) -> str:
    """Spec name of a command_status, or its hex form when unknown (never raises)."""
    try:
        return CommandStatus(status).name
    except ValueError:
        return f"0x{status:08X}"


class EsmClass:
    """esm_class bits (SMPP 3.4 section 5.2.12). Test the type with ``& TYPE_MASK``."""

    MODE_MASK = 0x03
    TYPE_MASK = 0x3C
    TYPE_DEFAULT = 0x00
    TYPE_DELIVERY_RECEIPT = 0x04
    TYPE_DELIVERY_ACK = 0x08
    TYPE_USER_ACK = 0x10
    TYPE_CONVERSATION_ABORT = 0x18
    TYPE_INTERMEDIATE_NOTIFICATION = 0x20
    UDHI = 0x40
    REPLY_PATH = 0x80


class RegisteredDelivery:
    """registered_delivery bits (SMPP 3.4 section 5.2.17)."""

    RECEIPT_MASK = 0x03
    RECEIPT_NONE = 0x00
    RECEIPT_ALWAYS = 0x01
    RECEIPT_ON_FAILURE = 0x02
    INTERMEDIATE = 0x10


class DataCoding(IntEnum):
    """data_coding values the gateway handles (SMPP 3.4 section 5.2.19)."""

    DEFAULT = 0x00
    IA5 = 0x01
    BINARY = 0x02
    LATIN1 = 0x03
    BINARY_ALL = 0x04
    CYRILLIC = 0x06
    HEBREW = 0x07
    UCS2 = 0x08


class MessageState(IntEnum):
    """message_state TLV values (SMPP 3.4 section 5.2.28); v5 adds SCHEDULED and SKIPPED."""

    SCHEDULED = 0
    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8
    SKIPPED = 9
