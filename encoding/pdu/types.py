"""One Struct per SMPP 3.4 PDU, with its mandatory-body table (SMPP 3.4 section 4).

Field names are the spec's, in snake_case. ``sm_length``, ``number_of_dests`` and
``no_unsuccess`` are derived from the lists they count and are not stored.
Body tables are compiled into codecs by ``encoding.pdu.codec``.
"""

from __future__ import annotations

from typing import ClassVar

from ..constants import CommandId as C
from ..constants import CommandStatus as S
from .base import Pdu
from .fields import (
    DlDest,
    Field,
    SmeDest,
    UnsuccessSme,
    cstr,
    dest_list,
    short_message,
    time,
    u8,
    unsuccess_list,
)

__all__ = [
    "GenericNack", "BindTransmitter", "BindTransmitterResp", "BindReceiver", "BindReceiverResp",
    "BindTransceiver", "BindTransceiverResp", "Outbind", "Unbind", "UnbindResp", "EnquireLink",
    "EnquireLinkResp", "SubmitSm", "SubmitSmResp", "DeliverSm", "DeliverSmResp", "DataSm",
    "DataSmResp", "QuerySm", "QuerySmResp", "CancelSm", "CancelSmResp", "ReplaceSm",
    "ReplaceSmResp", "SubmitMulti", "SubmitMultiResp", "AlertNotification", "ALL_TYPES",
    "BIND_TYPES",
]

# --- shared body tables -------------------------------------------------------------------

# SMPP 3.4 section 4.1.1 (bind_transmitter; receiver and transceiver are identical).
_BIND = (
    cstr("system_id", 16, S.ESME_RINVSYSID),
    # Spec max is 9; real providers use longer passwords (reference pitfall 6): lenient input.
    cstr("password", 9, S.ESME_RINVPASWD, decode_size=65),
    cstr("system_type", 13, S.ESME_RINVSYSTYP),
    u8("interface_version"),
    u8("addr_ton"),
    u8("addr_npi"),
    cstr("address_range", 41, S.ESME_RINVSRCADR),
)
_BIND_RESP = (cstr("system_id", 16, S.ESME_RINVSYSID),)
_MESSAGE_ID = (cstr("message_id", 65, S.ESME_RINVMSGID),)

# Fields 8-18 of submit_sm (section 4.4.1), shared with deliver_sm and submit_multi.
_SM_TAIL = (
    u8("esm_class"),
    u8("protocol_id"),
    u8("priority_flag"),
    time("schedule_delivery_time", S.ESME_RINVSCHED),
    time("validity_period", S.ESME_RINVEXPIRY),
    u8("registered_delivery"),
    u8("replace_if_present_flag"),
    u8("data_coding"),
    u8("sm_default_msg_id"),
    short_message(S.ESME_RINVMSGLEN),
)
_SOURCE_21 = (
    u8("source_addr_ton"),
    u8("source_addr_npi"),
    cstr("source_addr", 21, S.ESME_RINVSRCADR),
)
_DEST_21 = (
    u8("dest_addr_ton"),
    u8("dest_addr_npi"),
    cstr("destination_addr", 21, S.ESME_RINVDSTADR),
)
_SERVICE_TYPE = (cstr("service_type", 6, S.ESME_RINVSERTYP),)
_SUBMIT = _SERVICE_TYPE + _SOURCE_21 + _DEST_21 + _SM_TAIL


class _Message(Pdu):
    """Fields common to submit_sm and deliver_sm (identical layouts, section 4.4 and 4.6)."""

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


class _Bind(Pdu):
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


class _BindResp(Pdu):
    system_id: str = ""


class _MessageIdResp(Pdu):
    message_id: str = ""


# --- header-only PDUs ---------------------------------------------------------------------


class GenericNack(Pdu):
    """Section 4.3."""

    command_id: ClassVar[int] = C.generic_nack


class UnbindResp(Pdu):
    command_id: ClassVar[int] = C.unbind_resp


class Unbind(Pdu):
    """Section 4.2."""

    command_id: ClassVar[int] = C.unbind
    response_class: ClassVar[type[Pdu] | None] = UnbindResp


class EnquireLinkResp(Pdu):
    command_id: ClassVar[int] = C.enquire_link_resp


class EnquireLink(Pdu):
    """Section 4.11."""

    command_id: ClassVar[int] = C.enquire_link
    response_class: ClassVar[type[Pdu] | None] = EnquireLinkResp


# --- bind family (section 4.1) ------------------------------------------------------------


class BindTransmitterResp(_BindResp):
    command_id: ClassVar[int] = C.bind_transmitter_resp
    FIELDS: ClassVar[tuple[Field, ...]] = _BIND_RESP


class BindTransmitter(_Bind):
    command_id: ClassVar[int] = C.bind_transmitter
    FIELDS: ClassVar[tuple[Field, ...]] = _BIND
    response_class: ClassVar[type[Pdu] | None] = BindTransmitterResp


class BindReceiverResp(_BindResp):
    command_id: ClassVar[int] = C.bind_receiver_resp
    FIELDS: ClassVar[tuple[Field, ...]] = _BIND_RESP


class BindReceiver(_Bind):
    command_id: ClassVar[int] = C.bind_receiver
    FIELDS: ClassVar[tuple[Field, ...]] = _BIND
    response_class: ClassVar[type[Pdu] | None] = BindReceiverResp


class BindTransceiverResp(_BindResp):
    command_id: ClassVar[int] = C.bind_transceiver_resp
    FIELDS: ClassVar[tuple[Field, ...]] = _BIND_RESP


class BindTransceiver(_Bind):
    command_id: ClassVar[int] = C.bind_transceiver
    FIELDS: ClassVar[tuple[Field, ...]] = _BIND
    response_class: ClassVar[type[Pdu] | None] = BindTransceiverResp


class Outbind(Pdu):
    """Section 4.1.7: no response; the ESME answers with a bind."""

    command_id: ClassVar[int] = C.outbind
    FIELDS: ClassVar[tuple[Field, ...]] = (
        cstr("system_id", 16, S.ESME_RINVSYSID),
        cstr("password", 9, S.ESME_RINVPASWD, decode_size=65),
    )
    system_id: str = ""
    password: str = ""


# --- messages (sections 4.4, 4.6, 4.7) -----------------------------------------------------


class SubmitSmResp(_MessageIdResp):
    command_id: ClassVar[int] = C.submit_sm_resp
    FIELDS: ClassVar[tuple[Field, ...]] = _MESSAGE_ID


class SubmitSm(_Message):
    command_id: ClassVar[int] = C.submit_sm
    FIELDS: ClassVar[tuple[Field, ...]] = _SUBMIT
    response_class: ClassVar[type[Pdu] | None] = SubmitSmResp


class DeliverSmResp(_MessageIdResp):
    """message_id is unused and always NULL (section 4.6.2)."""

    command_id: ClassVar[int] = C.deliver_sm_resp
    FIELDS: ClassVar[tuple[Field, ...]] = _MESSAGE_ID


class DeliverSm(_Message):
    command_id: ClassVar[int] = C.deliver_sm
    FIELDS: ClassVar[tuple[Field, ...]] = _SUBMIT
    response_class: ClassVar[type[Pdu] | None] = DeliverSmResp


class DataSmResp(_MessageIdResp):
    command_id: ClassVar[int] = C.data_sm_resp
    FIELDS: ClassVar[tuple[Field, ...]] = _MESSAGE_ID


class DataSm(Pdu):
    """Section 4.7: addresses up to 65 octets; the text travels in message_payload."""

    command_id: ClassVar[int] = C.data_sm
    FIELDS: ClassVar[tuple[Field, ...]] = (
        *_SERVICE_TYPE,
        u8("source_addr_ton"),
        u8("source_addr_npi"),
        cstr("source_addr", 65, S.ESME_RINVSRCADR),
        u8("dest_addr_ton"),
        u8("dest_addr_npi"),
        cstr("destination_addr", 65, S.ESME_RINVDSTADR),
        u8("esm_class"),
        u8("registered_delivery"),
        u8("data_coding"),
    )
    response_class: ClassVar[type[Pdu] | None] = DataSmResp
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0


# --- ancillary operations (sections 4.8 - 4.10, 4.12) -------------------------------------


class QuerySmResp(Pdu):
    command_id: ClassVar[int] = C.query_sm_resp
    FIELDS: ClassVar[tuple[Field, ...]] = (
        *_MESSAGE_ID,
        time("final_date", S.ESME_RQUERYFAIL),
        u8("message_state"),
        u8("error_code"),
    )
    message_id: str = ""
    final_date: str = ""
    message_state: int = 0
    error_code: int = 0


class QuerySm(Pdu):
    command_id: ClassVar[int] = C.query_sm
    FIELDS: ClassVar[tuple[Field, ...]] = (*_MESSAGE_ID, *_SOURCE_21)
    response_class: ClassVar[type[Pdu] | None] = QuerySmResp
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""


class CancelSmResp(Pdu):
    command_id: ClassVar[int] = C.cancel_sm_resp


class CancelSm(Pdu):
    command_id: ClassVar[int] = C.cancel_sm
    FIELDS: ClassVar[tuple[Field, ...]] = (*_SERVICE_TYPE, *_MESSAGE_ID, *_SOURCE_21, *_DEST_21)
    response_class: ClassVar[type[Pdu] | None] = CancelSmResp
    service_type: str = ""
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""


class ReplaceSmResp(Pdu):
    command_id: ClassVar[int] = C.replace_sm_resp


class ReplaceSm(Pdu):
    """Section 4.10: no service_type and no data_coding (the original coding is kept)."""

    command_id: ClassVar[int] = C.replace_sm
    FIELDS: ClassVar[tuple[Field, ...]] = (
        *_MESSAGE_ID,
        *_SOURCE_21,
        time("schedule_delivery_time", S.ESME_RINVSCHED),
        time("validity_period", S.ESME_RINVEXPIRY),
        u8("registered_delivery"),
        u8("sm_default_msg_id"),
        short_message(S.ESME_RINVMSGLEN),
    )
    response_class: ClassVar[type[Pdu] | None] = ReplaceSmResp
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


class SubmitMultiResp(Pdu):
    command_id: ClassVar[int] = C.submit_multi_resp
    FIELDS: ClassVar[tuple[Field, ...]] = (*_MESSAGE_ID, unsuccess_list())
    message_id: str = ""
    unsuccess_sme: list[UnsuccessSme] = []


class SubmitMulti(Pdu):
    """Section 4.5: up to 254 destinations, SME addresses or distribution list names."""

    command_id: ClassVar[int] = C.submit_multi
    FIELDS: ClassVar[tuple[Field, ...]] = (
        *_SERVICE_TYPE, *_SOURCE_21, dest_list(S.ESME_RINVNUMDESTS), *_SM_TAIL,
    )
    response_class: ClassVar[type[Pdu] | None] = SubmitMultiResp
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_address: list[SmeDest | DlDest] = []
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


class AlertNotification(Pdu):
    """Section 4.12: no response PDU."""

    command_id: ClassVar[int] = C.alert_notification
    FIELDS: ClassVar[tuple[Field, ...]] = (
        u8("source_addr_ton"),
        u8("source_addr_npi"),
        cstr("source_addr", 65, S.ESME_RINVSRCADR),
        u8("esme_addr_ton"),
        u8("esme_addr_npi"),
        cstr("esme_addr", 65, S.ESME_RINVDSTADR),
    )
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    esme_addr_ton: int = 0
    esme_addr_npi: int = 0
    esme_addr: str = ""


ALL_TYPES: tuple[type[Pdu], ...] = (
    GenericNack, BindTransmitter, BindTransmitterResp, BindReceiver, BindReceiverResp,
    BindTransceiver, BindTransceiverResp, Outbind, Unbind, UnbindResp, EnquireLink,
    EnquireLinkResp, SubmitSm, SubmitSmResp, DeliverSm, DeliverSmResp, DataSm, DataSmResp,
    QuerySm, QuerySmResp, CancelSm, CancelSmResp, ReplaceSm, ReplaceSmResp, SubmitMulti,
    SubmitMultiResp, AlertNotification,
)
BIND_TYPES: tuple[type[Pdu], ...] = (BindTransmitter, BindReceiver, BindTransceiver)
