"""Delivery of tenant events over SMPP receiver binds, with a fake event queue and fake binds.

The event queue records every claim, settle, retry and release; the binds have a window
room, a writable flag and a ``try_send`` that encodes the PDU as the real session would
(``None`` when it cannot be sent). The registry is the real one. No loop, no sockets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import pytest

from config import TenantConfig
from encoding.constants import CommandStatus as S
from encoding.constants import EsmClass, MessageState
from encoding.errors import SessionError
from encoding.pdu import DeliverSm, Pdu, SubmitSm, encode_pdu
from encoding.session import FailureReason
from esme import Connection
from routing import Claim, MoEvent, ReceiptEvent, Status, StoredPdu, TenantEvent
from routing.repository import Durable
from smsc.delivery import Delivery
from smsc.registry import Binding, Registry
from tests.fakesession import FakeSession

ACME = TenantConfig(system_id="acme", password="pw", id_format="hex")
TENANTS = {"acme": ACME}


class FakeEvents:
    """An EventQueue that records what Delivery does with each claim."""

    def __init__(self) -> None:
        self.queue: list[Claim] = []
        self.subscribers: list[Callable[[str], None]] = []
        self.claim_calls: list[tuple[str, int]] = []
        self.settled: list[Claim] = []
        self.retried: list[tuple[Claim, float]] = []
        self.released: list[Claim] = []

    def subscribe(self, on_ready: Callable[[str], None]) -> None:
        self.subscribers.append(on_ready)

    def ready(self, tenant: str) -> None:
        for fn in self.subscribers:
            fn(tenant)

    def claim(self, tenant: str, limit: int) -> list[Claim]:
        self.claim_calls.append((tenant, limit))
        mine = [c for c in self.queue if c.tenant == tenant][:limit]
        self.queue = [c for c in self.queue if c not in mine]
        return mine

    def settle(self, claim: Claim) -> None:
        self.settled.append(claim)

    def retry(self, claim: Claim, delay_s: float, *, attempted: bool = True) -> None:
        self.retried.append((claim, delay_s))

    def release(self, claim: Claim) -> None:
        self.released.append(claim)

    def publish(self, tenant: str, events: Sequence[TenantEvent], now: float) -> Durable:
        raise AssertionError("Delivery does not publish")

    def depths(self) -> dict[str, int]:
        raise AssertionError("Delivery does not read depths")

    def purge(self, older_than: float) -> Durable:
        raise AssertionError("Delivery does not purge")

    def fail(self, claim: Claim) -> None:
        raise AssertionError("Delivery never keeps an event as failed")

    def failed(self, tenant: str, after_id: int = 0, limit: int = 100) -> list[Claim]:
        raise AssertionError("Delivery does not list failed events")

    def revive(self, tenant: str, event_id: int) -> bool:
        raise AssertionError("Delivery does not revive events")




class FakeReceiver:
    """A tenant's receiver bind as Delivery and the Registry see it."""

    def __init__(self, name: str, room: int, *, interface_version: int = 0x34,
                 bind_type: str = "receiver", writable: bool = True) -> None:
        self.name = name
        self.context = Binding(ACME, bind_type, interface_version)
        self.session = FakeSession(room)
        self.writable = writable
        self.refuse = False  # the session refuses every send (it just closed)
        self.sent: list[tuple[DeliverSm, Claim]] = []
        self._seq = 0

    def send(self, pdu: Pdu, context: Any = None) -> int:
        if self.refuse:
            raise SessionError("session is closed", S.ESME_RINVBNDSTS)
        encode_pdu(pdu)  # what Session.send does; a field that does not fit raises
        assert isinstance(pdu, DeliverSm) and isinstance(context, Claim)
        self.session.window.room -= 1
        self._seq += 1
        self.sent.append((pdu, context))
        return self._seq

    def answered(self) -> None:
        """The tenant answered one deliver_sm: its slot in the window is free again."""
        self.session.window.room += 1

    def ids(self) -> list[int]:
        return [claim.id for _, claim in self.sent]


class Rig:
    def __init__(self, *binds: FakeReceiver) -> None:
        self.events = FakeEvents()
        self.registry = Registry()
        for b in binds:
            self.registry.add(cast(Connection, b))
        self.delivery = Delivery(self.events, self.registry, TENANTS)

    def queue(self, *events: TenantEvent, attempts: int = 0) -> list[Claim]:
        start = len(self.events.queue) + len(self.events.settled) + 1
        claims = [Claim(start + i, "acme", e, attempts) for i, e in enumerate(events)]
        self.events.queue.extend(claims)
        return claims


def receipt(n: int = 1) -> ReceiptEvent:
    return ReceiptEvent(message_id=str(1000 + n), status=Status.DELIVERED,
                        source_addr="ACME", source_addr_ton=5,
                        destination_addr="447700900123", dest_addr_ton=1,
                        submitted_at=1_800_000_000.0, done_at=1_800_000_060.0)


# --- spreading over binds ------------------------------------------------------------------


def test_events_spread_round_robin_within_window_room() -> None:
    a, b = FakeReceiver("a", room=2), FakeReceiver("b", room=3)
    rig = Rig(a, b)
    rig.queue(*(receipt(n) for n in range(7)))
    rig.events.ready("acme")  # the queue says acme has events
    assert rig.events.claim_calls == [("acme", 5)]  # as many as the binds have room for
    assert a.ids() == [1, 3]
    assert b.ids() == [2, 4, 5]
    assert [c.id for c in rig.events.queue] == [6, 7]  # not claimed: no room
    assert rig.events.released == [] and rig.events.settled == []


def test_binds_without_room_or_not_writable_get_nothing() -> None:
    full = FakeReceiver("full", room=0)
    blocked = FakeReceiver("blocked", room=5, writable=False)
    open_ = FakeReceiver("open", room=1)
    rig = Rig(full, blocked, open_)
    rig.queue(receipt(1), receipt(2))
    rig.delivery.pump("acme")
    assert rig.events.claim_calls == [("acme", 1)]
    assert open_.ids() == [1] and full.sent == [] and blocked.sent == []


def test_nothing_is_claimed_without_room_or_without_a_receiver() -> None:
    rig = Rig(FakeReceiver("full", room=0), FakeReceiver("tx", room=5, bind_type="transmitter"))
    rig.queue(receipt())
    rig.delivery.pump("acme")
    rig.delivery.on_bound("acme")
    assert rig.events.claim_calls == []
    assert len(rig.events.queue) == 1


def test_a_send_the_session_refuses_is_released_for_another_bind() -> None:
    a = FakeReceiver("a", room=1)
    a.refuse = True
    rig = Rig(a)
    [claim] = rig.queue(receipt())
    rig.delivery.pump("acme")
    assert rig.events.released == [claim]
    assert rig.events.settled == [] and rig.events.retried == []


# --- answers -------------------------------------------------------------------------------


def test_ok_answer_settles_and_sends_the_next_event() -> None:
    a = FakeReceiver("a", room=1)
    rig = Rig(a)
    first, second = rig.queue(receipt(1), receipt(2))
    rig.delivery.pump("acme")
    assert a.ids() == [first.id]
    a.answered()
    rig.delivery.on_response(first, S.ESME_ROK)
    assert rig.events.settled == [first]
    assert rig.delivery.delivered == 1
    assert a.ids() == [first.id, second.id]  # the freed slot is used at once


def test_throttled_answer_retries_with_a_growing_delay() -> None:
    rig = Rig(FakeReceiver("a", room=10))
    delays = []
    for attempts in (0, 2, 4, 6):
        [claim] = rig.queue(receipt(attempts), attempts=attempts)
        rig.delivery.on_response(claim, S.ESME_RTHROTTLED)
        [(retried, delay)] = rig.events.retried[-1:]
        assert retried is claim
        delays.append(delay)
    # Back-off doubles per attempt (with jitter between half and all of it): 1 s, then
    # 4 s, 16 s, 64 s ceilings.
    assert 0.5 <= delays[0] <= 1.0
    assert 2.0 <= delays[1] <= 4.0
    assert 8.0 <= delays[2] <= 16.0
    assert 32.0 <= delays[3] <= 64.0
    assert rig.delivery.retried == 4
    assert rig.events.settled == [] and rig.events.released == []


def test_retry_delay_is_capped() -> None:
    rig = Rig(FakeReceiver("a", room=10))
    [claim] = rig.queue(receipt(), attempts=40)
    rig.delivery.on_response(claim, S.ESME_RX_T_APPN)
    [(_, delay)] = rig.events.retried
    assert 150.0 <= delay <= 300.0


def test_permanent_refusal_drops_the_event() -> None:
    rig = Rig(FakeReceiver("a", room=10))
    [claim] = rig.queue(receipt())
    rig.delivery.on_response(claim, S.ESME_RX_P_APPN)
    assert rig.events.settled == [claim]  # never offered again
    assert rig.delivery.dropped == 1 and rig.delivery.delivered == 0
    assert rig.events.retried == []


def test_response_timeout_retries() -> None:
    rig = Rig(FakeReceiver("a", room=10))
    [claim] = rig.queue(receipt())
    rig.delivery.on_failed(claim, FailureReason.RESPONSE_TIMEOUT)
    [(retried, delay)] = rig.events.retried
    assert retried is claim and 0.5 <= delay <= 1.0
    assert rig.events.released == [] and rig.events.settled == []


def test_session_closed_releases_at_once() -> None:
    rig = Rig(FakeReceiver("a", room=10))
    [claim] = rig.queue(receipt())
    rig.delivery.on_failed(claim, FailureReason.SESSION_CLOSED)
    assert rig.events.released == [claim]
    assert rig.delivery.released == 1
    assert rig.events.retried == [] and rig.events.settled == []


@pytest.mark.parametrize("reason", [FailureReason.MALFORMED_RESPONSE,
                                    FailureReason.MISMATCHED_RESPONSE])
def test_a_garbled_answer_on_a_live_bind_is_retried_with_back_off(
        reason: FailureReason) -> None:
    rig = Rig(FakeReceiver("a", room=10))
    [claim] = rig.queue(receipt())
    rig.delivery.on_failed(claim, reason)
    assert rig.events.released == [], (
        f"{reason.value}: the session is still bound, yet the event was released to be "
        "offered again at once (to the same bind, which answers it the same way: a loop "
        "with no back-off)")
    assert [c for c, _ in rig.events.retried] == [claim]


# --- rendering per bind --------------------------------------------------------------------


def test_receipt_carries_tlvs_to_a_3_4_bind_and_none_to_a_3_3_bind() -> None:
    v34, v33 = FakeReceiver("v34", room=1), FakeReceiver("v33", room=1,
                                                         interface_version=0x33)
    rig = Rig(v34, v33)
    rig.queue(receipt(1), receipt(2))
    rig.delivery.pump("acme")
    [(pdu34, _)] = v34.sent
    [(pdu33, _)] = v33.sent
    assert pdu34.esm_class == pdu33.esm_class == EsmClass.TYPE_DELIVERY_RECEIPT
    assert pdu34.tlvs == {"receipted_message_id": f"{1001:X}",  # acme reads hex ids
                          "message_state": MessageState.DELIVERED}
    assert pdu33.tlvs == {}
    assert f"id:{1002:X} ".encode() in pdu33.short_message  # the id is still in the text
    assert (pdu34.source_addr, pdu34.destination_addr) == ("447700900123", "ACME")


def test_stored_pdu_that_is_not_a_deliver_sm_is_dropped_without_crashing() -> None:
    a = FakeReceiver("a", room=5)
    rig = Rig(a)
    good = DeliverSm(source_addr="447700900123", destination_addr="ACME",
                     short_message=b"stored before events")
    garbage, submit, ok = rig.queue(StoredPdu(b"\x00\x00\x00\x05junk"),
                                    StoredPdu(encode_pdu(SubmitSm(destination_addr="1"))),
                                    StoredPdu(encode_pdu(good)))
    rig.delivery.pump("acme")
    assert rig.events.settled == [garbage, submit]
    assert rig.delivery.dropped == 2
    [(sent, claim)] = a.sent
    assert claim is ok and sent.short_message == b"stored before events"


def test_an_event_that_cannot_be_encoded_is_not_offered_again_at_once() -> None:
    a = FakeReceiver("a", room=5)
    rig = Rig(a)
    # An MO that came in as data_sm (addresses up to 65 octets): deliver_sm allows 21.
    [claim] = rig.queue(MoEvent(source_addr="4" * 30, destination_addr="447700900123",
                                body=b"hi"))
    rig.delivery.pump("acme")
    assert rig.events.released == [], (
        "the deliver_sm of this event does not fit (source_addr of 30 octets) and never "
        "will; releasing it re-offers it first in line at once and the pump spins on it")
    assert rig.events.settled == [claim] or [c for c, _ in rig.events.retried] == [claim]


def test_long_mo_to_a_3_4_bind_travels_in_message_payload() -> None:
    a = FakeReceiver("a", room=1)
    rig = Rig(a)
    rig.queue(MoEvent(source_addr="447700900123", destination_addr="4477", body=b"x" * 300))
    rig.delivery.pump("acme")
    [(pdu, _)] = a.sent
    assert pdu.short_message == b"" and pdu.tlvs.get("message_payload") == b"x" * 300


def test_long_mo_to_a_3_3_bind_is_not_delivered_empty() -> None:
    a = FakeReceiver("a", room=1, interface_version=0x33)
    rig = Rig(a)
    rig.queue(MoEvent(source_addr="447700900123", destination_addr="4477", body=b"x" * 300))
    rig.delivery.pump("acme")
    for pdu, _ in a.sent:
        assert pdu.short_message or pdu.tlvs.get("message_payload"), (
            "a 300-octet MO went to a 3.3 bind as a deliver_sm with no user data at all "
            "(short_message empty, message_payload stripped with the other TLVs)")
    assert rig.delivery.dropped == 1 and len(rig.events.settled) == 1  # logged, counted
