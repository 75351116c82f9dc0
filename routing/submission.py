"""``Submission``: one message a tenant asks the gateway to send, whichever door it used.

A door (SMPP today, HTTP later) turns its request into submissions; the admission service
decides on each one and turns the accepted ones into ``Message`` records. The fields are
SMPP 3.4's where SMPP defines them (section 4.4.1), because the operator side speaks SMPP;
``door`` and ``reference`` say where it came from and what the caller calls it.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

__all__ = ["Door", "Submission"]


class Door(StrEnum):
    SMPP = "smpp"
    HTTP = "http"


class Submission(msgspec.Struct, gc=False, kw_only=True):
    tenant: str
    source_addr: str
    destination_addr: str
    body: bytes  # user data in ``data_coding`` (with its UDH when esm_class has UDHI)
    data_coding: int = 0
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    service_type: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    registered_delivery: int = 0  # receipt wanted: bits 1-0 (section 5.2.17)
    replace_if_present_flag: int = 0
    sm_default_msg_id: int = 0
    schedule_delivery_time: str = ""  # SMPP time format (section 7.1.1), absolute or relative
    validity_period: str = ""
    tlvs: bytes = b""  # other TLVs to pass on to the operator, encoded as on the wire
    door: Door = Door.SMPP
    reference: str = ""  # the caller's own reference
    interface_version: int = 0x34  # the SMPP version the caller speaks (status choice)
