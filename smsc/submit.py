"""SMPP requests into submissions: submit_sm, data_sm and each destination of submit_multi.

The translation only: which fields carry what (SMPP 3.4 sections 4.4.1, 4.5.1, 4.7.1), the
user data from short_message or message_payload (section 5.3.2.32: one or the other), and
the other TLVs kept to pass on. Everything that decides (limits, validation, ids) is the
admission service's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from encoding.constants import CommandStatus
from encoding.pdu import DataSm, SmeDest, SubmitMulti, SubmitSm
from encoding.pdu.tlv import encode_tlvs
from routing.submission import Door, Submission

__all__ = ["body_of", "submission_of"]

S = CommandStatus


def body_of(short_message: bytes, tlvs: Mapping[str | int, object]) -> bytes | int:
    """The user data: short_message, or message_payload; a status when both are given."""
    payload = tlvs.get("message_payload")
    if payload is None:
        return short_message
    if short_message:
        return S.ESME_RINVMSGLEN  # section 5.3.2.32: one or the other
    return payload if isinstance(payload, bytes) else S.ESME_RINVOPTPARAMVAL


def submission_of(pdu: SubmitSm | DataSm | SubmitMulti, destination: SmeDest | None,
                  tenant: str, interface_version: int) -> Submission | int:
    """The submission for one destination of ``pdu``, or the status to refuse it with."""
    tlvs = pdu.tlvs
    body = body_of(getattr(pdu, "short_message", b""), tlvs)
    if isinstance(body, int):
        return body
    dest: Any = destination or pdu
    extra = {k: v for k, v in tlvs.items() if k != "message_payload"} if tlvs else None
    return Submission(
        tenant=tenant, source_addr=pdu.source_addr, destination_addr=dest.destination_addr,
        body=body, data_coding=pdu.data_coding, source_addr_ton=pdu.source_addr_ton,
        source_addr_npi=pdu.source_addr_npi, dest_addr_ton=dest.dest_addr_ton,
        dest_addr_npi=dest.dest_addr_npi, service_type=pdu.service_type,
        esm_class=pdu.esm_class, protocol_id=getattr(pdu, "protocol_id", 0),
        priority_flag=getattr(pdu, "priority_flag", 0),
        registered_delivery=pdu.registered_delivery,
        replace_if_present_flag=getattr(pdu, "replace_if_present_flag", 0),
        sm_default_msg_id=getattr(pdu, "sm_default_msg_id", 0),
        schedule_delivery_time=getattr(pdu, "schedule_delivery_time", ""),
        validity_period=getattr(pdu, "validity_period", ""),
        tlvs=encode_tlvs(extra) if extra else b"", door=Door.SMPP,
        interface_version=interface_version)
