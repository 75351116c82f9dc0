"""Message lifecycle table, message_state mapping, tenant ids, and receipts for tenants:
the receipt event (routing.receipts) as the SMPP channel renders it (smsc.render)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config import TenantConfig
from encoding.constants import MessageState
from encoding.pdu import DeliverSm, decode_pdu, encode_pdu
from encoding.receipt import parse_receipt
from encoding.text import concat_udh, encode_text
from routing.events import ReceiptEvent, StoredPdu, decode_event, encode_event
from routing.model import (
    FINAL,
    TRANSITIONS,
    Message,
    Status,
    can_move,
    external_id,
    internal_id,
    smpp_state,
)
from routing.receipts import preview, receipt_due, receipt_event
from smsc.render import receipt_deliver, render_deliver

# --- lifecycle --------------------------------------------------------------------------


def test_final_states_are_terminal() -> None:
    for final in FINAL:
        for other in Status:
            assert not can_move(final, other)


def test_every_status_has_a_row_and_a_message_state() -> None:
    assert set(TRANSITIONS) == set(Status)
    for status in Status:
        assert isinstance(smpp_state(status), int)


def test_no_moving_backwards_to_accepted() -> None:
    for status in Status:  # only a scheduled message becomes accepted (when it is due)
        assert can_move(status, Status.ACCEPTED) is (status is Status.SCHEDULED)
    assert not can_move(Status.SUBMITTED, Status.SUBMITTED)


def test_receipt_may_overtake_submit_resp() -> None:
    assert can_move(Status.ACCEPTED, Status.DELIVERED)
    assert can_move(Status.ACCEPTED, Status.SUBMITTED)
    assert can_move(Status.SUBMITTED, Status.DELIVERED)


def test_cancel_only_before_it_left_the_gateway() -> None:
    assert can_move(Status.ACCEPTED, Status.CANCELLED)
    assert not can_move(Status.SUBMITTED, Status.CANCELLED)


def test_unknown_is_not_final_and_can_still_resolve() -> None:
    assert Status.UNKNOWN not in FINAL
    assert can_move(Status.UNKNOWN, Status.DELIVERED)


@pytest.mark.parametrize(("status", "state"), [
    (Status.ACCEPTED, MessageState.ENROUTE),
    (Status.SUBMITTED, MessageState.ENROUTE),
    (Status.DELIVERED, MessageState.DELIVERED),
    (Status.EXPIRED, MessageState.EXPIRED),
    (Status.UNDELIVERABLE, MessageState.UNDELIVERABLE),
    (Status.REJECTED, MessageState.REJECTED),
    (Status.CANCELLED, MessageState.DELETED),
    (Status.UNKNOWN, MessageState.UNKNOWN),
])
def test_smpp_state(status: Status, state: int) -> None:
    assert smpp_state(status) == state


# --- tenant-facing ids ------------------------------------------------------------------


def test_external_id_formats() -> None:
    assert external_id("decimal", "1099511627777") == "1099511627777"
    assert external_id("hex", "1099511627777") == "10000000001"


@given(st.integers(min_value=0, max_value=2**64), st.sampled_from(["decimal", "hex"]))
def test_internal_id_round_trips(n: int, fmt: str) -> None:
    assert internal_id(fmt, external_id(fmt, str(n))) == str(n)


def test_internal_id_accepts_case_and_spaces_rejects_garbage() -> None:
    assert internal_id("hex", " 10000000001 ") == "1099511627777"
    assert internal_id("hex", "ff") == "255"
    assert internal_id("decimal", "12AB") is None
    assert internal_id("hex", "xyz") is None
    assert internal_id("decimal", "") is None


# --- receipt_due ------------------------------------------------------------------------


@pytest.mark.parametrize(("registered", "status", "due"), [
    (0, Status.DELIVERED, False),
    (0, Status.REJECTED, False),
    (1, Status.DELIVERED, True),
    (1, Status.UNDELIVERABLE, True),
    (2, Status.DELIVERED, False),
    (2, Status.UNDELIVERABLE, True),
    (2, Status.EXPIRED, True),
    (2, Status.REJECTED, True),
    (0x11, Status.DELIVERED, True),  # intermediate-notification bit does not hide bits 1-0
    (0x10, Status.DELIVERED, False),
    (0x0C, Status.REJECTED, False),  # SME ack bits only
])
def test_receipt_due(registered: int, status: Status, due: bool) -> None:
    assert receipt_due(registered, status) is due


# --- receipt events, rendered as deliver_sm ---------------------------------------------

CREATED = dt.datetime(2024, 3, 1, 12, 30, tzinfo=dt.UTC).timestamp()
DONE = dt.datetime(2024, 3, 1, 12, 45, tzinfo=dt.UTC).timestamp()


def message(**kw: object) -> Message:
    base: dict[str, object] = dict(
        id="1099511627777", tenant="acme", source_addr="ACME", source_addr_ton=5,
        source_addr_npi=0, destination_addr="447700900123", dest_addr_ton=1, dest_addr_npi=1,
        body=b"Hello world, this is a long text", created_at=CREATED, registered_delivery=1)
    base.update(kw)
    return Message(**base)  # type: ignore[arg-type]


def decoded(pdu: DeliverSm) -> DeliverSm:
    """What the tenant's bind receives: the rendered PDU through the wire and back."""
    out = decode_pdu(encode_pdu(pdu))
    assert isinstance(out, DeliverSm)
    return out


def rendered(m: Message, status: Status, *, id_format: str = "decimal", error: int = 0,
             dcs0: str = "gsm7") -> DeliverSm:
    """The receipt for ``m`` as an event, stored (MessagePack) and read back, rendered."""
    event = receipt_event(m, status, done_at=DONE, error=error, dcs0=dcs0)
    stored = decode_event(encode_event(event))
    assert stored == event
    assert isinstance(stored, ReceiptEvent)
    return decoded(receipt_deliver(stored, id_format))


def test_receipt_event_carries_what_a_channel_needs() -> None:
    e = receipt_event(message(), Status.UNDELIVERABLE, done_at=DONE, error=11,
                      parts=3)
    assert e == ReceiptEvent(
        message_id="1099511627777", status=Status.UNDELIVERABLE, error=11,
        submitted_at=CREATED, done_at=DONE, parts=3, source_addr="ACME", source_addr_ton=5,
        source_addr_npi=0, destination_addr="447700900123", dest_addr_ton=1, dest_addr_npi=1,
        preview="Hello world, this is")


def test_receipt_swaps_addresses_and_marks_esm_class() -> None:
    d = rendered(message(), Status.DELIVERED)
    assert d.esm_class == 0x04
    assert (d.source_addr, d.source_addr_ton, d.source_addr_npi) == ("447700900123", 1, 1)
    assert (d.destination_addr, d.dest_addr_ton, d.dest_addr_npi) == ("ACME", 5, 0)
    assert d.data_coding == 0


def test_receipt_text_and_tlvs_carry_the_tenant_facing_id() -> None:
    d = rendered(message(), Status.DELIVERED, id_format="hex")
    assert d.tlvs["receipted_message_id"] == "10000000001"
    assert d.tlvs["message_state"] == MessageState.DELIVERED
    r = parse_receipt(d.short_message)
    assert r is not None
    assert (r.id, r.stat, r.err, r.dlvrd) == ("10000000001", "DELIVRD", "000", "001")
    assert (r.submit_date, r.done_date) == ("2403011230", "2403011245")
    assert r.text == "Hello world, this is"


@pytest.mark.parametrize(("status", "stat", "state"), [
    (Status.UNDELIVERABLE, "UNDELIV", MessageState.UNDELIVERABLE),
    (Status.EXPIRED, "EXPIRED", MessageState.EXPIRED),
    (Status.REJECTED, "REJECTD", MessageState.REJECTED),
    (Status.CANCELLED, "DELETED", MessageState.DELETED),
    (Status.UNKNOWN, "UNKNOWN", MessageState.UNKNOWN),
])
def test_failure_receipts(status: Status, stat: str, state: int) -> None:
    d = rendered(message(), status, error=11)
    r = parse_receipt(d.short_message)
    assert r is not None
    assert (r.id, r.stat, r.err, r.dlvrd) == ("1099511627777", stat, "011", "000")
    assert d.tlvs["message_state"] == state
    assert d.tlvs["receipted_message_id"] == "1099511627777"


def test_big_error_is_capped_to_three_digits() -> None:
    r = parse_receipt(rendered(message(), Status.REJECTED, error=0x104).short_message)
    assert r is not None and r.err == "260"
    r = parse_receipt(rendered(message(), Status.REJECTED, error=5000).short_message)
    assert r is not None and r.err == "999"


def test_preview_skips_the_udh_and_decodes_ucs2() -> None:
    body = concat_udh(7, 2, 1) + encode_text("Привет мир", 0x08)
    m = message(body=body, esm_class=0x40, data_coding=0x08)
    assert receipt_event(m, Status.DELIVERED, done_at=DONE).preview == "Привет мир"
    r = parse_receipt(rendered(m, Status.DELIVERED).short_message)
    assert r is not None
    # Cyrillic is not GSM-safe ASCII: replaced, but the UDH octets did not leak in.
    assert r.text == "?????? ???"


def test_preview_reads_data_coding_0_as_the_tenant_says() -> None:
    m = message(body="café".encode("latin-1"))
    assert preview(m, "latin1") == "café"
    assert receipt_event(m, Status.DELIVERED, done_at=DONE, dcs0="latin1").preview == "café"


def test_malformed_udh_still_gives_a_receipt() -> None:
    m = message(body=b"\x09\x00", esm_class=0x40)
    assert preview(m, "gsm7") == ""
    r = parse_receipt(rendered(m, Status.DELIVERED).short_message)
    assert r is not None and r.stat == "DELIVRD" and r.text == ""


# --- render_deliver: what a receiver bind of the tenant gets -----------------------------

ACME_HEX = TenantConfig(system_id="acme", password="pw", id_format="hex")


def test_render_deliver_uses_the_tenants_id_format() -> None:
    event = receipt_event(message(), Status.DELIVERED, done_at=DONE)
    d = render_deliver(event, ACME_HEX, 0x34)
    assert isinstance(d, DeliverSm), d
    assert d == receipt_deliver(event, "hex")
    assert d.tlvs["receipted_message_id"] == "10000000001"
    r = parse_receipt(decoded(d).short_message)
    assert r is not None and r.id == "10000000001"


def test_a_version_3_3_bind_gets_the_receipt_without_tlvs() -> None:
    event = receipt_event(message(), Status.DELIVERED, done_at=DONE)
    d = render_deliver(event, ACME_HEX, 0x33)
    assert isinstance(d, DeliverSm), d
    assert d.tlvs == {}
    r = parse_receipt(decoded(d).short_message)
    assert r is not None and (r.id, r.stat) == ("10000000001", "DELIVRD")


def test_a_stored_pdu_is_delivered_as_it_was_encoded() -> None:
    """An outbox row from before events: the bytes an older gateway rendered."""
    old = receipt_deliver(receipt_event(message(), Status.DELIVERED, done_at=DONE), "decimal")
    d = render_deliver(StoredPdu(encode_pdu(old), "1099511627777"), ACME_HEX, 0x34)
    assert isinstance(d, DeliverSm), d
    assert encode_pdu(d) == encode_pdu(old)  # not re-rendered with today's id format
    stripped = render_deliver(StoredPdu(encode_pdu(old)), ACME_HEX, 0x33)
    assert isinstance(stripped, DeliverSm), stripped
    assert stripped.tlvs == {}
    assert stripped.short_message == old.short_message


def test_a_corrupt_stored_pdu_renders_as_no_deliver_sm() -> None:
    for corrupt in (b"\x00\x00\x00\x05x", b""):
        assert not isinstance(render_deliver(StoredPdu(corrupt), ACME_HEX, 0x34), DeliverSm)
