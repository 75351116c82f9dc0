"""One Struct per SMPP 3.4 PDU; each mandatory body field is declared once (SMPP 3.4 section 4).

A body field is an attribute whose annotation is one of the field types below: the Python
type callers see (``pdu.esm_class: int``) together with the wire spec (kind, maximum size,
status of a bad value). ``Pdu`` derives each class's ``FIELDS`` table from these attributes
in declaration order, which is the order on the wire, and ``encoding.pdu.compile`` turns the
table into a decoder and an encoder. Field names are the spec's, in snake_case.
``sm_length``, ``number_of_dests`` and ``no_unsuccess`` are derived from the lists they
count and are not stored.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, TypeAlias

from ..constants import CommandId as C
from ..constants import CommandStatus as S
from .base import Pdu
from .fields import (
    DlDest,
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

# --- field types: Python type plus wire spec ---------------------------------------------

UInt8: TypeAlias = Annotated[int, u8()]
SystemId: TypeAlias = Annotated[str, cstr(16, S.ESME_RINVSYSID)]
# Spec max is 9; real providers use longer passwords (reference pitfall 6): lenient input.
Password: TypeAlias = Annotated[str, cstr(9, S.ESME_RINVPASWD, decode_size=65)]
SystemType: TypeAlias = Annotated[str, cstr(13, S.ESME_RINVSYSTYP)]
AddressRange: TypeAlias = Annotated[str, cstr(41, S.ESME_RINVSRCADR)]
MessageId: TypeAlias = Annotated[str, cstr(65, S.ESME_RINVMSGID)]
ServiceType: TypeAlias = Annotated[str, cstr(6, S.ESME_RINVSERTYP)]
SourceAddr21: TypeAlias = Annotated[str, cstr(21, S.ESME_RINVSRCADR)]
DestAddr21: TypeAlias = Annotated[str, cstr(21, S.ESME_RINVDSTADR)]
SourceAddr65: TypeAlias = Annotated[str, cstr(65, S.ESME_RINVSRCADR)]
DestAddr65: TypeAlias = Annotated[str, cstr(65, S.ESME_RINVDSTADR)]
ScheduleTime: TypeAlias = Annotated[str, time(S.ESME_RINVSCHED)]
ValidityTime: TypeAlias = Annotated[str, time(S.ESME_RINVEXPIRY)]
FinalDate: TypeAlias = Annotated[str, time(S.ESME_RQUERYFAIL)]
ShortMessage: TypeAlias = Annotated[bytes, short_message(S.ESME_RINVMSGLEN)]
DestList: TypeAlias = Annotated[list[SmeDest | DlDest], dest_list(S.ESME_RINVNUMDESTS)]
UnsuccessList: TypeAlias = Annotated[list[UnsuccessSme], unsuccess_list()]

# --- shared bodies ------------------------------------------------------------------------
# A layout shared whole is a base Struct whose subclasses add no field. Layouts that share
# only runs of fields (submit_multi, cancel_sm, ...) repeat the attributes with the field
# types above: msgspec Structs cannot mix several field-bearing bases (slot layout conflict).


class _Message(Pdu):
    """submit_sm and deliver_sm: identical layouts (sections 4.4.1 and 4.6.1)."""

    service_type: ServiceType = ""
    source_addr_ton: UInt8 = 0
    source_addr_npi: UInt8 = 0
    source_addr: SourceAddr21 = ""
    dest_addr_ton: UInt8 = 0
    dest_addr_npi: UInt8 = 0
    destination_addr: DestAddr21 = ""
    esm_class: UInt8 = 0
    protocol_id: UInt8 = 0
    priority_flag: UInt8 = 0
    schedule_delivery_time: ScheduleTime = ""
    validity_period: ValidityTime = ""
    registered_delivery: UInt8 = 0
    replace_if_present_flag: UInt8 = 0
    data_coding: UInt8 = 0
    sm_default_msg_id: UInt8 = 0
    short_message: ShortMessage = b""


class _Bind(Pdu):
    """bind_transmitter (section 4.1.1); receiver and transceiver are identical."""

    system_id: SystemId = ""
    password: Password = ""
    system_type: SystemType = ""
    interface_version: UInt8 = 0x34
    addr_ton: UInt8 = 0
    addr_npi: UInt8 = 0
    address_range: AddressRange = ""


class _BindResp(Pdu):
    system_id: SystemId = ""


class _MessageIdResp(Pdu):
    message_id: MessageId = ""


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


class BindTransmitter(_Bind):
    command_id: ClassVar[int] = C.bind_transmitter
    response_class: ClassVar[type[Pdu] | None] = BindTransmitterResp


class BindReceiverResp(_BindResp):
    command_id: ClassVar[int] = C.bind_receiver_resp


class BindReceiver(_Bind):
    command_id: ClassVar[int] = C.bind_receiver
    response_class: ClassVar[type[Pdu] | None] = BindReceiverResp


class BindTransceiverResp(_BindResp):
    command_id: ClassVar[int] = C.bind_transceiver_resp


class BindTransceiver(_Bind):
    command_id: ClassVar[int] = C.bind_transceiver
    response_class: ClassVar[type[Pdu] | None] = BindTransceiverResp


class Outbind(Pdu):
    """Section 4.1.7: no response; the ESME answers with a bind."""

    command_id: ClassVar[int] = C.outbind
    system_id: SystemId = ""
    password: Password = ""


# --- messages (sections 4.4, 4.6, 4.7) -----------------------------------------------------


class SubmitSmResp(_MessageIdResp):
    command_id: ClassVar[int] = C.submit_sm_resp


class SubmitSm(_Message):
    command_id: ClassVar[int] = C.submit_sm
    response_class: ClassVar[type[Pdu] | None] = SubmitSmResp


class DeliverSmResp(_MessageIdResp):
    """message_id is unused and always NULL (section 4.6.2)."""

    command_id: ClassVar[int] = C.deliver_sm_resp


class DeliverSm(_Message):
    command_id: ClassVar[int] = C.deliver_sm
    response_class: ClassVar[type[Pdu] | None] = DeliverSmResp


class DataSmResp(_MessageIdResp):
    command_id: ClassVar[int] = C.data_sm_resp


class DataSm(Pdu):
    """Section 4.7: addresses up to 65 octets; the text travels in message_payload."""

    command_id: ClassVar[int] = C.data_sm
    response_class: ClassVar[type[Pdu] | None] = DataSmResp
    service_type: ServiceType = ""
    source_addr_ton: UInt8 = 0
    source_addr_npi: UInt8 = 0
    source_addr: SourceAddr65 = ""
    dest_addr_ton: UInt8 = 0
    dest_addr_npi: UInt8 = 0
    destination_addr: DestAddr65 = ""
    esm_class: UInt8 = 0
    registered_delivery: UInt8 = 0
    data_coding: UInt8 = 0


# --- ancillary operations (sections 4.8 - 4.10, 4.12) -------------------------------------


class QuerySmResp(Pdu):
    command_id: ClassVar[int] = C.query_sm_resp
    message_id: MessageId = ""
    final_date: FinalDate = ""
    message_state: UInt8 = 0
    error_code: UInt8 = 0


class QuerySm(Pdu):
    command_id: ClassVar[int] = C.query_sm
    response_class: ClassVar[type[Pdu] | None] = QuerySmResp
    message_id: MessageId = ""
    source_addr_ton: UInt8 = 0
    source_addr_npi: UInt8 = 0
    source_addr: SourceAddr21 = ""


class CancelSmResp(Pdu):
    command_id: ClassVar[int] = C.cancel_sm_resp


class CancelSm(Pdu):
    command_id: ClassVar[int] = C.cancel_sm
    response_class: ClassVar[type[Pdu] | None] = CancelSmResp
    service_type: ServiceType = ""
    message_id: MessageId = ""
    source_addr_ton: UInt8 = 0
    source_addr_npi: UInt8 = 0
    source_addr: SourceAddr21 = ""
    dest_addr_ton: UInt8 = 0
    dest_addr_npi: UInt8 = 0
    destination_addr: DestAddr21 = ""


class ReplaceSmResp(Pdu):
    command_id: ClassVar[int] = C.replace_sm_resp


class ReplaceSm(Pdu):
    """Section 4.10: no service_type and no data_coding (the original coding is kept)."""

    command_id: ClassVar[int] = C.replace_sm
    response_class: ClassVar[type[Pdu] | None] = ReplaceSmResp
    message_id: MessageId = ""
    source_addr_ton: UInt8 = 0
    source_addr_npi: UInt8 = 0
    source_addr: SourceAddr21 = ""
    schedule_delivery_time: ScheduleTime = ""
    validity_period: ValidityTime = ""
    registered_delivery: UInt8 = 0
    sm_default_msg_id: UInt8 = 0
    short_message: ShortMessage = b""


class SubmitMultiResp(Pdu):
    command_id: ClassVar[int] = C.submit_multi_resp
    message_id: MessageId = ""
    unsuccess_sme: UnsuccessList = []


class SubmitMulti(Pdu):
    """Section 4.5: up to 254 destinations, SME addresses or distribution list names."""

    command_id: ClassVar[int] = C.submit_multi
    response_class: ClassVar[type[Pdu] | None] = SubmitMultiResp
    service_type: ServiceType = ""
    source_addr_ton: UInt8 = 0
    source_addr_npi: UInt8 = 0
    source_addr: SourceAddr21 = ""
    dest_address: DestList = []
    esm_class: UInt8 = 0
    protocol_id: UInt8 = 0
    priority_flag: UInt8 = 0
    schedule_delivery_time: ScheduleTime = ""
    validity_period: ValidityTime = ""
    registered_delivery: UInt8 = 0
    replace_if_present_flag: UInt8 = 0
    data_coding: UInt8 = 0
    sm_default_msg_id: UInt8 = 0
    short_message: ShortMessage = b""


class AlertNotification(Pdu):
    """Section 4.12: no response PDU."""

    command_id: ClassVar[int] = C.alert_notification
    source_addr_ton: UInt8 = 0
    source_addr_npi: UInt8 = 0
    source_addr: SourceAddr65 = ""
    esme_addr_ton: UInt8 = 0
    esme_addr_npi: UInt8 = 0
    esme_addr: DestAddr65 = ""


ALL_TYPES: tuple[type[Pdu], ...] = (
    GenericNack, BindTransmitter, BindTransmitterResp, BindReceiver, BindReceiverResp,
    BindTransceiver, BindTransceiverResp, Outbind, Unbind, UnbindResp, EnquireLink,
    EnquireLinkResp, SubmitSm, SubmitSmResp, DeliverSm, DeliverSmResp, DataSm, DataSmResp,
    QuerySm, QuerySmResp, CancelSm, CancelSmResp, ReplaceSm, ReplaceSmResp, SubmitMulti,
    SubmitMultiResp, AlertNotification,
)
BIND_TYPES: tuple[type[Pdu], ...] = (BindTransmitter, BindReceiver, BindTransceiver)
