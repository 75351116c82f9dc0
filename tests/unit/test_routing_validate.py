"""Submit validation (SMPP 3.4 sections 4.4.1, 5.2): the status a tenant gets for each fault."""

from __future__ import annotations

from typing import Any

import pytest

from encoding.constants import CommandStatus as S
from routing.validate import MAX_BODY_OCTETS, check_address, check_message
from smsc.submit import body_of

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def check(**kw: Any) -> int:
    base: dict[str, Any] = dict(
        source_addr="447911123456", source_addr_ton=1, destination_addr="447700900123",
        dest_addr_ton=1, esm_class=0, priority_flag=0, registered_delivery=1,
        replace_if_present_flag=0, data_coding=0, sm_default_msg_id=0,
        schedule_delivery_time="", validity_period="", body=b"hello",
        interface_version=0x34, dcs0="gsm7", now=NOW)
    base.update(kw)
    return check_message(**base)


def test_a_plain_message_is_accepted() -> None:
    assert check() == S.ESME_ROK


@pytest.mark.parametrize(("addr", "ton", "source", "ok"), [
    ("447700900123", 1, False, True),
    ("+447700900123", 1, False, True),
    ("", 1, False, False),
    ("+", 1, False, False),
    ("44 77", 1, False, False),
    ("4477009001234567890123", 1, False, False),  # 22 digits
    ("١٢٣", 1, False, False),  # non-ASCII digits
    ("ACME", 5, True, True),
    ("ACME Bank Ltd", 5, True, False),  # 13 > 11 characters
    ("ACME", 1, True, False),  # alphanumeric needs TON 5
    ("ACME", 5, False, False),  # not for destinations
    ("", 1, True, True),  # empty source: the gateway's default
])
def test_check_address(addr: str, ton: int, source: bool, ok: bool) -> None:
    assert check_address(addr, ton, source=source) is ok


@pytest.mark.parametrize(("fields", "status"), [
    ({"destination_addr": "abc"}, S.ESME_RINVDSTADR),
    ({"destination_addr": ""}, S.ESME_RINVDSTADR),
    ({"source_addr": "ACME", "source_addr_ton": 1}, S.ESME_RINVSRCADR),
    ({"esm_class": 0x04}, S.ESME_RINVESMCLASS),  # a receipt type from a tenant
    ({"esm_class": 0x08}, S.ESME_RINVESMCLASS),
    ({"priority_flag": 4}, S.ESME_RINVPRTFLG),
    ({"registered_delivery": 3}, S.ESME_RINVREGDLVFLG),
    ({"registered_delivery": 0x20}, S.ESME_RINVREGDLVFLG),
    ({"replace_if_present_flag": 2}, S.ESME_RINVREPFLAG),
    ({"sm_default_msg_id": 1}, S.ESME_RINVDFTMSGID),
    ({"data_coding": 0x0C}, S.ESME_RSUBMITFAIL),
    ({"data_coding": 0x0C, "interface_version": 0x50}, S.ESME_RINVDCS),
    ({"schedule_delivery_time": "garbage"}, S.ESME_RINVSCHED),
    ({"validity_period": "2311142213200000"}, S.ESME_RINVEXPIRY),  # bad offset sign
    ({"validity_period": "231114221300000+"}, S.ESME_RINVEXPIRY),  # in the past
    ({"validity_period": "000000010000000R", "schedule_delivery_time": "000000020000000R"},
     S.ESME_RINVEXPIRY),  # expires before it is due
    ({"body": b"x" * (MAX_BODY_OCTETS + 1)}, S.ESME_RINVMSGLEN),
    ({"esm_class": 0x40, "body": b"\x09\x00\x03"}, S.ESME_RINVESMCLASS),  # bad UDH
])
def test_each_fault_gets_its_status(fields: dict[str, Any], status: int) -> None:
    assert check(**fields) == status


@pytest.mark.parametrize("fields", [
    {"esm_class": 0x03},  # store and forward mode bits are fine
    {"esm_class": 0x40, "body": bytes([5, 0, 3, 1, 2, 1]) + b"hi"},
    {"esm_class": 0x80},  # reply path
    {"priority_flag": 3},
    {"registered_delivery": 0x02 | 0x10},
    {"replace_if_present_flag": 1},
    {"data_coding": 0x08},
    {"data_coding": 0x04},
    {"validity_period": "000001000000000R", "schedule_delivery_time": "000000010000000R"},
    {"validity_period": "231115221320004+"},  # tomorrow, UTC+1
    {"body": b"x" * MAX_BODY_OCTETS},
    {"source_addr": "ACME", "source_addr_ton": 5},
])
def test_valid_variants_are_accepted(fields: dict[str, Any]) -> None:
    assert check(**fields) == S.ESME_ROK


def test_body_of() -> None:
    assert body_of(b"short", {}) == b"short"
    assert body_of(b"", {"message_payload": b"long"}) == b"long"
    assert body_of(b"x", {"message_payload": b"long"}) == S.ESME_RINVMSGLEN
    assert body_of(b"", {"message_payload": "text"}) == S.ESME_RINVOPTPARAMVAL
