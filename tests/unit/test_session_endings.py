"""However a session ends, every request in its window fails exactly once, and it closes once.

The case behind these tests: a gateway (SMSC role, bound as transceiver) has deliver_sm in
flight to a tenant when the tenant's last submit_sm and its unbind (or a broken header)
arrive in one read. The unbind waits for the submit's answer (a durable commit), so the
close happens inside ``send()`` of that answer, where no event list is at hand; the
``RequestFailed`` of the deliver_sm and the ``SessionClosed`` must still reach the owner,
through ``take_events()`` or the next input method, once. Time is a float; nothing sleeps.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encoding.constants import CommandStatus as S
from encoding.pdu import (
    BindTransceiver,
    BindTransceiverResp,
    DeliverSm,
    DeliverSmResp,
    FrameBuffer,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    decode_pdu,
    encode_pdu,
)
from encoding.session import (
    Event,
    FailureReason,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    Role,
    Session,
    SessionClosed,
    SessionConfig,
    State,
    StateChanged,
)

T = 100.0
CFG = SessionConfig(enquire_link_s=0, inactivity_s=0, response_timeout_s=20, window=10)
BROKEN = struct.pack(">IIII", 8, 0x00000004, 0, 99)  # command_length 8 < 16: framing error


def pdus(data: bytes) -> list[Pdu]:
    return [decode_pdu(f) for f in FrameBuffer().feed(data)]


def submit(seq: int) -> bytes:
    return encode_pdu(SubmitSm(seq, source_addr="SRC", destination_addr="447700900123",
                               short_message=b"last"))


def gateway_with_deliveries(n: int = 3, cfg: SessionConfig = CFG) -> tuple[Session, list[str]]:
    """An SMSC session bound as transceiver with ``n`` deliver_sm unanswered in its window;
    their contexts are returned (the owner's outbox items, here strings)."""
    smsc = Session(Role.SMSC, T, cfg)
    (ev,) = smsc.receive_data(encode_pdu(BindTransceiver(1, system_id="t", password="p")), T)
    assert isinstance(ev, RequestReceived)
    smsc.send(ev.pdu.response(system_id="gw"), T)
    assert smsc.state is State.BOUND_TRX and smsc.take_events() == []
    contexts = [f"receipt-{i}" for i in range(n)]
    for ctx in contexts:
        smsc.send(DeliverSm(source_addr="447700900123", esm_class=0x04,
                            short_message=b"id:x stat:DELIVRD"), T, context=ctx)
    out = pdus(smsc.data_to_send())
    assert [type(p) for p in out] == [BindTransceiverResp] + [DeliverSm] * n
    assert [p.sequence_number for p in out[1:]] == list(range(1, n + 1))
    assert len(smsc.window) == n and smsc.take_events() == []
    return smsc, contexts


def check_one_ending(events: list[Event], contexts: list[str], reason: FailureReason,
                     detail: str = "") -> None:
    """One RequestFailed per context (in window order) with ``reason``, one SessionClosed
    last, and nothing else but state changes."""
    failed = [e for e in events if isinstance(e, RequestFailed)]
    assert [e.context for e in failed] == contexts
    assert all(e.reason is reason for e in failed), failed
    if detail:
        assert all(e.detail == detail for e in failed), failed
    closed = [e for e in events if isinstance(e, SessionClosed)]
    assert len(closed) == 1 and events[-1] is closed[0], events
    assert all(isinstance(e, RequestFailed | SessionClosed | StateChanged) for e in events)


# Every way the owner may collect what send() left behind: take_events(), or any input.
COLLECTORS: dict[str, Callable[[Session], list[Event]]] = {
    "take_events": lambda s: s.take_events(),
    "receive_data": lambda s: s.receive_data(submit(50), T + 1),
    "handle_timer": lambda s: s.handle_timer(T + 1),
    "connection_lost": lambda s: s.connection_lost(T + 1, "peer closed"),
    "unbind": lambda s: s.unbind(T + 1),
}


def collect_all(smsc: Session, how: str) -> list[Event]:
    """What the owner gets after the close, by ``how``, then by every other way (which must
    give nothing more: no event twice)."""
    events = COLLECTORS[how](smsc)
    for other in COLLECTORS.values():
        assert other(smsc) == [], "an event was handed over twice"
    return events


# --- (a) submit and unbind in one read: the close happens inside send() ----------------------


@pytest.mark.parametrize("how", list(COLLECTORS))
def test_submit_and_unbind_in_one_read_then_answer(how: str) -> None:
    smsc, contexts = gateway_with_deliveries()
    events = smsc.receive_data(submit(7) + encode_pdu(Unbind(8)), T)
    assert [type(e) for e in events] == [RequestReceived, StateChanged]
    assert events[1] == StateChanged(State.BOUND_TRX, State.UNBOUND)
    assert not smsc.closed and len(smsc.window) == 3  # the unbind waits for the answer
    smsc.send(SubmitSmResp(7, message_id="m7"), T + 0.5)  # after the group commit
    assert smsc.closed and smsc.close_reason == "unbound by peer"
    assert pdus(smsc.data_to_send()) == [SubmitSmResp(7, message_id="m7"), UnbindResp(8)]
    events = collect_all(smsc, how)
    assert events[0] == StateChanged(State.UNBOUND, State.CLOSED)
    check_one_ending(events, contexts, FailureReason.SESSION_CLOSED, "unbound by peer")
    assert events[-1] == SessionClosed("unbound by peer")
    assert len(smsc.window) == 0 and smsc.next_deadline() is None


# --- (b) submit then a broken header in one read ---------------------------------------------


@pytest.mark.parametrize("how", list(COLLECTORS))
def test_submit_then_broken_header_then_answer(how: str) -> None:
    smsc, contexts = gateway_with_deliveries()
    events = smsc.receive_data(submit(7) + BROKEN, T)
    assert [type(e).__name__ for e in events] == ["RequestReceived", "ProtocolError",
                                                  "StateChanged"]
    assert not smsc.closed and smsc.state is State.UNBOUND
    smsc.data_to_send()  # the generic_nack
    smsc.send(SubmitSmResp(7, message_id="m7"), T + 0.5)
    assert smsc.closed and smsc.close_reason == "framing error"
    events = collect_all(smsc, how)
    check_one_ending(events, contexts, FailureReason.SESSION_CLOSED, "framing error")


def test_broken_header_with_the_answer_never_given_closes_at_response_timeout() -> None:
    smsc, contexts = gateway_with_deliveries()
    smsc.receive_data(submit(7) + BROKEN, T + 1)
    deadline = smsc.next_deadline()
    assert deadline is not None
    events: list[Event] = []
    for _ in range(10):  # each timer run does one thing; bounded
        if smsc.closed:
            break
        at = smsc.next_deadline()
        assert at is not None
        events += smsc.handle_timer(at)
    assert smsc.closed
    events += smsc.take_events() + smsc.connection_lost(T + 100)
    failed = [e for e in events if isinstance(e, RequestFailed)]
    assert sorted(str(e.context) for e in failed) == contexts  # once each, timeout or close
    assert sum(isinstance(e, SessionClosed) for e in events) == 1


# --- (c) connection lost, (d) plain unbind, (e) response timeouts ----------------------------


def test_connection_lost() -> None:
    smsc, contexts = gateway_with_deliveries()
    events = smsc.connection_lost(T + 1, "connection lost: reset")
    check_one_ending(events, contexts, FailureReason.SESSION_CLOSED, "connection lost: reset")
    assert collect_all(smsc, "take_events") == []


def test_plain_unbind_with_nothing_pending() -> None:
    smsc, contexts = gateway_with_deliveries()
    events = smsc.receive_data(encode_pdu(Unbind(8)), T + 1)
    assert events[:2] == [StateChanged(State.BOUND_TRX, State.UNBOUND),
                          StateChanged(State.UNBOUND, State.CLOSED)]
    check_one_ending(events, contexts, FailureReason.SESSION_CLOSED, "unbound by peer")
    assert pdus(smsc.data_to_send()) == [UnbindResp(8)]
    assert collect_all(smsc, "take_events") == []


def test_response_timeouts_then_close_fail_each_request_once() -> None:
    smsc, contexts = gateway_with_deliveries()
    deadline = smsc.next_deadline()
    assert deadline == T + CFG.response_timeout_s
    events = smsc.handle_timer(deadline)
    assert [e.context for e in events if isinstance(e, RequestFailed)] == contexts
    assert all(isinstance(e, RequestFailed) and e.reason is FailureReason.RESPONSE_TIMEOUT
               and e.detail == "" for e in events)
    assert smsc.bound  # a deliver_sm timing out does not end the session
    events = smsc.connection_lost(deadline + 1)
    assert [type(e) for e in events] == [StateChanged, SessionClosed]  # nothing failed twice


def test_refused_bind_reports_its_close() -> None:
    """The other close inside send(): the gateway refuses a bind."""
    smsc = Session(Role.SMSC, T, CFG)
    (ev,) = smsc.receive_data(encode_pdu(BindTransceiver(1, system_id="t")), T)
    assert isinstance(ev, RequestReceived)
    smsc.send(ev.pdu.response(S.ESME_RBINDFAIL), T)
    assert smsc.closed
    assert smsc.take_events() == [StateChanged(State.OPEN, State.CLOSED),
                                  SessionClosed("bind refused")]
    assert smsc.take_events() == [] and smsc.connection_lost(T) == []


def test_esme_role_answering_the_last_deliver_before_a_held_unbind() -> None:
    """The same path on the operator side: our submits in flight, the SMSC's deliver_sm and
    unbind in one read; answering the deliver_sm closes and fails the submits."""
    esme = Session(Role.ESME, T, CFG)
    esme.send(BindTransceiver(system_id="gw", password="pw"), T)
    esme.receive_data(encode_pdu(BindTransceiverResp(1, system_id="op")), T)
    assert esme.bound
    esme.send(SubmitSm(destination_addr="1"), T, context="sub-a")
    esme.send(SubmitSm(destination_addr="2"), T, context="sub-b")
    events = esme.receive_data(encode_pdu(DeliverSm(40)) + encode_pdu(Unbind(41)), T)
    assert [type(e) for e in events] == [RequestReceived, StateChanged]
    esme.send(DeliverSmResp(40), T)
    check_one_ending(esme.take_events(), ["sub-a", "sub-b"], FailureReason.SESSION_CLOSED,
                     "unbound by peer")


# --- the reasons -------------------------------------------------------------------------------


def test_failure_reason_values() -> None:
    assert {r.name: r.value for r in FailureReason} == {
        "RESPONSE_TIMEOUT": "response timeout",
        "SESSION_CLOSED": "session closed",
        "MISMATCHED_RESPONSE": "mismatched response",
        "MALFORMED_RESPONSE": "malformed response",
    }
    # code that still takes the reason as text keeps working (smsc/delivery.py's
    # on_failed(item, reason: str) compares reason == "response timeout" until it switches)
    as_text: str = FailureReason.RESPONSE_TIMEOUT
    assert as_text == "response timeout"
    assert FailureReason("response timeout") is FailureReason.RESPONSE_TIMEOUT
    assert isinstance(FailureReason.SESSION_CLOSED, str)
    assert f"{FailureReason.MALFORMED_RESPONSE}" == "malformed response"


def test_mismatched_and_malformed_answers_carry_their_reason() -> None:
    smsc, contexts = gateway_with_deliveries(2)
    wrong = encode_pdu(SubmitSmResp(1, message_id="x"))  # answers deliver_sm 1 wrongly
    malformed = struct.pack(">IIII", 17, 0x80000005, 0, 2) + b"\x01"  # no NUL: bad body
    events = smsc.receive_data(wrong + malformed, T + 1)
    failed = [e for e in events if isinstance(e, RequestFailed)]
    assert [(e.context, e.reason) for e in failed] == [
        (contexts[0], FailureReason.MISMATCHED_RESPONSE),
        (contexts[1], FailureReason.MALFORMED_RESPONSE)]
    assert smsc.bound and len(smsc.window) == 0


# --- any interleaving: each request ends once, the session closes once ----------------------

STEPS = st.lists(st.sampled_from([
    "deliver", "peer_submit", "answer", "peer_unbind", "broken", "ack_deliver", "timer",
    "take", "lost"]), max_size=25)


@settings(max_examples=300, deadline=None)
@given(steps=STEPS)
def test_every_request_ends_exactly_once(steps: list[str]) -> None:
    smsc, contexts = gateway_with_deliveries(2)
    events: list[Event] = []
    owed: list[int] = []  # sequence numbers of peer requests we still have to answer
    sent: list[str] = list(contexts)
    unacked = [1, 2]  # sequence numbers of our deliver_sm, oldest first
    now = T
    peer_seq = 100
    for step in steps:
        now += 3.0
        peer_seq += 1
        if step == "deliver" and smsc.can_send(DeliverSm.command_id):
            ctx = f"d{len(sent)}"
            unacked.append(smsc.send(DeliverSm(source_addr="1"), now, context=ctx))
            sent.append(ctx)
        elif step == "peer_submit":
            got = smsc.receive_data(submit(peer_seq), now)
            owed += [e.pdu.sequence_number for e in got if isinstance(e, RequestReceived)]
            events += got
        elif step == "answer" and owed and not smsc.closed:
            smsc.send(SubmitSmResp(owed.pop(0), message_id="m"), now)
        elif step == "peer_unbind":
            events += smsc.receive_data(encode_pdu(Unbind(peer_seq)), now)
        elif step == "broken":
            events += smsc.receive_data(BROKEN, now)
        elif step == "ack_deliver" and unacked:
            # possibly a late answer (timed out already): then unmatched, not counted twice
            events += smsc.receive_data(encode_pdu(DeliverSmResp(unacked.pop(0))), now)
        elif step == "timer":
            events += smsc.handle_timer(now + CFG.response_timeout_s)
        elif step == "take":
            events += smsc.take_events()
        elif step == "lost":
            events += smsc.connection_lost(now)
        smsc.data_to_send()
    events += smsc.connection_lost(now + 1)  # the transport goes in the end, whatever happened
    events += smsc.take_events()
    ended: dict[str, int] = {}
    for e in events:
        if isinstance(e, RequestFailed | ResponseReceived) and isinstance(e.context, str):
            ended[e.context] = ended.get(e.context, 0) + 1
    assert ended == dict.fromkeys(sent, 1), (steps, ended)
    assert sum(isinstance(e, SessionClosed) for e in events) == 1
    assert smsc.closed and len(smsc.window) == 0
