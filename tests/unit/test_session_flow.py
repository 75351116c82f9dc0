"""Session flows: binding, sequence numbers, response matching, windows, bad input, unbind.

Reference sections 5.1 (states), 5.3 (sequence numbers and windows), 5.4 (generic_nack and
malformed input) and 5.5 (enquire_link and unbind). Pairs of sessions (ESME and SMSC) are
wired together by passing ``data_to_send()`` of one to ``receive_data`` of the other; other
tests feed hand-built frames. Time is a float passed in; nothing sleeps.
"""

from __future__ import annotations

import struct
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encoding.constants import SEQUENCE_MAX
from encoding.constants import CommandId as C
from encoding.constants import CommandStatus as S
from encoding.errors import SessionError
from encoding.pdu import (
    AlertNotification,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransmitter,
    BindTransmitterResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    FrameBuffer,
    GenericNack,
    Outbind,
    Pdu,
    QuerySm,
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
    ProtocolError,
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

T = 0.0
E = TypeVar("E", bound=Event)
Bind = type[BindTransmitter | BindReceiver | BindTransceiver]


def each(kind: type[E], events: list[Event]) -> list[E]:
    """``events``, every one checked to be a ``kind``."""
    out: list[E] = []
    for event in events:
        assert isinstance(event, kind), event
        out.append(event)
    return out


def at(events: list[Event], index: int, kind: type[E]) -> E:
    """``events[index]``, checked to be a ``kind``."""
    event = events[index]
    assert isinstance(event, kind), events
    return event


def pdus(data: bytes) -> list[Pdu]:
    return [decode_pdu(f) for f in FrameBuffer().feed(data)]


def frame(cid: int, seq: int, body: bytes = b"", status: int = 0) -> bytes:
    return struct.pack(">IIII", 16 + len(body), cid, status, seq) + body


def bound_pair(bind: Bind = BindTransceiver, esme_cfg: SessionConfig | None = None,
               smsc_cfg: SessionConfig | None = None) -> tuple[Session, Session]:
    esme = Session(Role.ESME, T, esme_cfg)
    smsc = Session(Role.SMSC, T, smsc_cfg)
    esme.send(bind(system_id="tenant", password="secret"), T)
    (ev,) = smsc.receive_data(esme.data_to_send(), T)
    assert isinstance(ev, RequestReceived)
    smsc.send(ev.pdu.response(system_id="gw"), T)
    esme.receive_data(smsc.data_to_send(), T)
    assert esme.bound and smsc.bound
    return esme, smsc


def submit(n: int = 0) -> SubmitSm:
    return SubmitSm(source_addr="SRC", destination_addr=f"44{n:05d}", short_message=b"x")


# --- binding -------------------------------------------------------------------------------


@pytest.mark.parametrize(("bind", "state"), [
    (BindTransmitter, State.BOUND_TX), (BindReceiver, State.BOUND_RX),
    (BindTransceiver, State.BOUND_TRX)])
def test_bind_handshake_both_roles(bind: Bind, state: State) -> None:
    esme, smsc = Session(Role.ESME, T), Session(Role.SMSC, T)
    request = bind(system_id="tenant", password="secret", system_type="X")
    seq = esme.send(request, T, context="bind-ctx")
    assert seq == 1 and esme.state is State.OPEN
    events = smsc.receive_data(esme.data_to_send(), T)
    assert events == [RequestReceived(request)]
    assert smsc.state is State.OPEN and smsc.inbound_pending == 1
    resp = at(events, 0, RequestReceived).pdu.response(system_id="gw",
                                                       tlvs={"sc_interface_version": 0x34})
    smsc.send(resp, T)
    assert smsc.state is state and smsc.inbound_pending == 0
    events = esme.receive_data(smsc.data_to_send(), T)
    assert events == [StateChanged(State.OPEN, state), ResponseReceived(resp, request, "bind-ctx")]
    # sc_interface_version passes through to the application untouched.
    assert at(events, 1, ResponseReceived).pdu.tlvs == {"sc_interface_version": 0x34}
    assert esme.state is state and esme.bound


@pytest.mark.parametrize("status", [S.ESME_RBINDFAIL, S.ESME_RINVPASWD, S.ESME_RINVSYSID])
def test_failed_bind_closes_smsc_side(status: int) -> None:
    esme, smsc = Session(Role.ESME, T), Session(Role.SMSC, T)
    request = BindTransmitter(system_id="tenant", password="wrong")
    esme.send(request, T, context=7)
    (ev,) = each(RequestReceived, smsc.receive_data(esme.data_to_send(), T))
    smsc.send(ev.pdu.response(status), T)
    assert smsc.closed and smsc.close_reason == "bind refused"
    assert smsc.next_deadline() is None
    data = smsc.data_to_send()  # the refusal is still flushed before the close
    assert [(type(p), p.command_status) for p in pdus(data)] == [(BindTransmitterResp, status)]
    events = esme.receive_data(data, T)
    assert events == [ResponseReceived(BindTransmitterResp(1, status), request, 7)]
    assert esme.state is State.OPEN  # the client decides: back off and retry
    with pytest.raises(SessionError):
        smsc.send(EnquireLink(), T)


def test_bind_while_bound_is_answered_alybnd() -> None:
    _, smsc = bound_pair(BindTransmitter)
    events = smsc.receive_data(encode_pdu(BindReceiver(77, system_id="again")), T)
    assert [type(e) for e in events] == [ProtocolError]
    assert at(events, 0, ProtocolError).command_status == S.ESME_RALYBND
    assert pdus(smsc.data_to_send()) == [BindReceiverResp(77, S.ESME_RALYBND)]
    assert smsc.state is State.BOUND_TX


def test_outbind_then_bind() -> None:
    # The SMSC opened the connection and asks the ESME to bind (SMPP 3.4 section 2.2.1).
    smsc, esme = Session(Role.SMSC, T), Session(Role.ESME, T)
    outbind = Outbind(system_id="gw", password="pw")
    smsc.send(outbind, T)
    assert smsc.state is State.OPEN
    events = esme.receive_data(smsc.data_to_send(), T)
    assert events == [StateChanged(State.OPEN, State.OUTBOUND), RequestReceived(outbind)]
    assert esme.data_to_send() == b"" and esme.inbound_pending == 0
    bind = BindReceiver(system_id="tenant", password="pw")
    esme.send(bind, T)
    (ev,) = smsc.receive_data(esme.data_to_send(), T)
    assert ev == RequestReceived(bind)
    smsc.send(ev.pdu.response(system_id="gw"), T)
    events = esme.receive_data(smsc.data_to_send(), T)
    assert events[0] == StateChanged(State.OUTBOUND, State.BOUND_RX)
    assert (esme.state, smsc.state) == (State.BOUND_RX, State.BOUND_RX)
    # The outbind itself has no response, so nothing waits for one (regression: it sat in the
    # window and failed with 'response timeout').
    assert len(smsc.window) == 0


# --- sequence numbers and response matching ------------------------------------------------


def test_sequence_numbers_start_at_one_and_increase() -> None:
    esme, _ = bound_pair()  # the bind took 1
    seqs = [esme.send(submit(i), T) for i in range(5)]
    assert seqs == [2, 3, 4, 5, 6]
    assert [p.sequence_number for p in pdus(esme.data_to_send())] == seqs
    fresh = Session(Role.ESME, T)
    assert fresh.send(BindTransmitter(), T) == 1


def test_sequence_numbers_wrap_to_one_and_skip_outstanding() -> None:
    esme, _ = bound_pair()
    esme.send(submit(), T)  # seq 2, left outstanding
    esme.window._next = SEQUENCE_MAX - 1  # private: 2**31 sends would take too long
    assert esme.send(submit(), T) == SEQUENCE_MAX - 1
    assert esme.send(submit(), T) == SEQUENCE_MAX
    assert esme.send(submit(), T) == 1  # wrapped; 1 (the bind) was answered long ago
    assert esme.send(submit(), T) == 3  # 2 is still outstanding: skipped
    assert len(esme.window) == 5
    assert all(1 <= p.sequence_number <= SEQUENCE_MAX for p in pdus(esme.data_to_send()))


def test_responses_out_of_order_match_request_and_context() -> None:
    esme, smsc = bound_pair()
    sent = {}
    for i in range(6):
        request = submit(i)
        sent[esme.send(request, T, context=("msg", i))] = (request, ("msg", i))
    received = each(RequestReceived, smsc.receive_data(esme.data_to_send(), T))
    assert len(received) == 6
    for ev in reversed(received):  # answered in reverse order
        smsc.send(ev.pdu.response(message_id=f"id-{ev.pdu.sequence_number}"), T)
    events = esme.receive_data(smsc.data_to_send(), T)
    assert [type(e) for e in events] == [ResponseReceived] * 6
    for answer in each(ResponseReceived, events):
        resp = answer.pdu
        request, ctx = sent[resp.sequence_number]
        assert answer.request is request and answer.context == ctx
        assert isinstance(resp, SubmitSmResp) and resp.message_id == f"id-{request.sequence_number}"
    assert len(esme.window) == 0 and smsc.inbound_pending == 0


def test_unmatched_response_is_dropped_with_protocol_error() -> None:
    esme, _ = bound_pair()
    esme.send(submit(), T, context="c")  # seq 2
    esme.data_to_send()
    events = esme.receive_data(encode_pdu(SubmitSmResp(99, message_id="x")), T)
    assert events == [ProtocolError(at(events, 0, ProtocolError).message, 0, C.submit_sm_resp,
                                    99)]
    assert esme.data_to_send() == b""  # never answer a response
    assert len(esme.window) == 1 and esme.bound


def test_generic_nack_answers_an_outstanding_request() -> None:
    esme, _ = bound_pair()
    request = submit()
    seq = esme.send(request, T, context="ctx")
    esme.data_to_send()
    nack = GenericNack(seq, S.ESME_RINVCMDID)
    events = esme.receive_data(encode_pdu(nack), T)
    assert events == [ResponseReceived(nack, request, "ctx")]
    assert len(esme.window) == 0 and esme.data_to_send() == b""


def test_generic_nack_with_sequence_zero_is_logged_only() -> None:
    esme, _ = bound_pair()
    esme.send(submit(), T)
    esme.data_to_send()
    events = esme.receive_data(encode_pdu(GenericNack(0, S.ESME_RINVBNDSTS)), T)
    assert [type(e) for e in events] == [ProtocolError]
    assert len(esme.window) == 1 and esme.data_to_send() == b""


def test_mismatched_response_type_fails_the_request() -> None:
    esme, _ = bound_pair()
    request = submit()
    seq = esme.send(request, T, context="ctx")
    esme.data_to_send()
    events = esme.receive_data(encode_pdu(DeliverSmResp(seq)), T)
    assert [type(e) for e in events] == [ProtocolError, RequestFailed]
    assert events[1] == RequestFailed(request, "ctx", FailureReason.MISMATCHED_RESPONSE)
    assert len(esme.window) == 0 and esme.bound and esme.data_to_send() == b""


def test_mismatched_response_to_enquire_link_does_not_stop_keepalives() -> None:
    """Regression: the flag 'enquire_link pending' stayed set forever after a wrong answer."""
    esme, _ = bound_pair(esme_cfg=SessionConfig(enquire_link_s=30, inactivity_s=0))
    esme.handle_timer(30.0)
    (enq,) = pdus(esme.data_to_send())
    esme.receive_data(encode_pdu(SubmitSmResp(enq.sequence_number)), 31.0)
    assert esme.next_deadline() == 61.0
    esme.handle_timer(61.0)
    assert [type(p) for p in pdus(esme.data_to_send())] == [EnquireLink]


def test_mismatched_response_to_unbind_closes() -> None:
    """Regression: a wrong answer to unbind left the session UNBOUND with no timer at all."""
    esme, _ = bound_pair()
    esme.unbind(T)
    (unbind,) = pdus(esme.data_to_send())
    events = esme.receive_data(encode_pdu(EnquireLinkResp(unbind.sequence_number)), T)
    assert [type(e) for e in events] == [ProtocolError, RequestFailed, StateChanged,
                                         SessionClosed]
    assert esme.closed and esme.next_deadline() is None


def test_malformed_response_fails_its_request() -> None:
    esme, _ = bound_pair()
    request = submit()
    seq = esme.send(request, T, context="ctx")
    esme.data_to_send()
    # submit_sm_resp ROK whose message_id has no NUL within 65 octets.
    events = esme.receive_data(frame(C.submit_sm_resp, seq, b"9" * 70), T)
    assert [type(e) for e in events] == [ProtocolError, RequestFailed]
    assert events[1] == RequestFailed(request, "ctx", FailureReason.MALFORMED_RESPONSE)
    assert esme.data_to_send() == b"" and esme.bound


# --- windows -------------------------------------------------------------------------------


def test_window_full_raises_throttled_and_control_bypasses() -> None:
    esme, _ = bound_pair(esme_cfg=SessionConfig(window=3))
    for i in range(3):
        assert esme.can_send(C.submit_sm)
        esme.send(submit(i), T)
    esme.data_to_send()
    assert not esme.can_send(C.submit_sm)
    assert esme.can_send(C.enquire_link) and esme.can_send(C.unbind)
    with pytest.raises(SessionError) as info:
        esme.send(submit(9), T)
    assert info.value.command_status == S.ESME_RTHROTTLED
    assert esme.data_to_send() == b"" and len(esme.window) == 3
    esme.send(EnquireLink(), T)  # control PDUs are never held back by the window
    assert len(esme.window) == 4
    esme.send(Unbind(), T)
    assert [type(p) for p in pdus(esme.data_to_send())] == [EnquireLink, Unbind]


def test_window_reopens_when_a_response_arrives() -> None:
    esme, smsc = bound_pair(esme_cfg=SessionConfig(window=1))
    esme.send(submit(), T)
    assert not esme.can_send(C.submit_sm)
    (ev,) = each(RequestReceived, smsc.receive_data(esme.data_to_send(), T))
    smsc.send(ev.pdu.response(message_id="1"), T)
    esme.receive_data(smsc.data_to_send(), T)
    assert esme.can_send(C.submit_sm)


def test_requests_without_response_bypass_the_window() -> None:
    """alert_notification has no response: it neither needs nor holds a window slot."""
    esme, smsc = bound_pair(smsc_cfg=SessionConfig(window=1))
    smsc.send(DeliverSm(), T)
    assert not smsc.can_send(C.deliver_sm)
    assert smsc.can_send(C.alert_notification)
    smsc.send(AlertNotification(source_addr="4477", esme_addr="SRC"), T)
    assert len(smsc.window) == 1
    events = esme.receive_data(smsc.data_to_send(), T)
    assert [type(e) for e in events] == [RequestReceived, RequestReceived]
    assert esme.inbound_pending == 1  # only the deliver_sm awaits an answer


def test_can_send_respects_state() -> None:
    esme = Session(Role.ESME, T)
    assert not esme.can_send(C.submit_sm) and esme.can_send(C.bind_transceiver)
    assert not esme.can_send(C.deliver_sm)
    tx, _ = bound_pair(BindTransmitter)
    assert tx.can_send(C.submit_sm) and not tx.can_send(C.bind_transmitter)


def test_inbound_window_throttles_the_peer() -> None:
    esme, smsc = bound_pair(smsc_cfg=SessionConfig(inbound_window=3))
    for i in range(4):
        esme.send(submit(i), T)
    events = smsc.receive_data(esme.data_to_send(), T)
    assert [type(e) for e in events] == [RequestReceived] * 3 + [ProtocolError]
    assert at(events, 3, ProtocolError).command_status == S.ESME_RTHROTTLED
    assert smsc.inbound_pending == 3
    (auto,) = pdus(smsc.data_to_send())
    assert auto == SubmitSmResp(5, S.ESME_RTHROTTLED)  # seq 5: the 4th after bind's 1
    # The application answers one; the next submit_sm is accepted again.
    smsc.send(at(events, 0, RequestReceived).pdu.response(message_id="a"), T)
    assert smsc.inbound_pending == 2
    esme.receive_data(smsc.data_to_send(), T)
    esme.send(submit(5), T)
    assert [type(e) for e in smsc.receive_data(esme.data_to_send(), T)] == [RequestReceived]
    assert smsc.inbound_pending == 3
    # enquire_link is answered by the session and never counts against the window.
    esme.send(EnquireLink(), T)
    assert smsc.receive_data(esme.data_to_send(), T) == []
    assert [type(p) for p in pdus(smsc.data_to_send())] == [EnquireLinkResp]


# --- bad input -----------------------------------------------------------------------------


def test_unknown_command_id_gets_generic_nack_and_session_continues() -> None:
    _, smsc = bound_pair()
    events = smsc.receive_data(frame(0x00000111, 42) + encode_pdu(submit()), T)
    assert [type(e) for e in events] == [ProtocolError, RequestReceived]
    assert at(events, 0, ProtocolError).command_status == S.ESME_RINVCMDID
    assert pdus(smsc.data_to_send()) == [GenericNack(42, S.ESME_RINVCMDID)]
    assert smsc.bound


def test_unknown_response_id_is_not_answered() -> None:
    _, smsc = bound_pair()
    events = smsc.receive_data(frame(0x80000111, 42), T)
    assert [type(e) for e in events] == [ProtocolError]
    assert smsc.data_to_send() == b"" and smsc.bound


def test_malformed_body_gets_own_resp_with_field_status() -> None:
    _, smsc = bound_pair()
    # submit_sm whose source_addr has no NUL within 21 octets (SMPP 3.4 section 4.4.1).
    body = b"\x00" + b"\x01\x01" + b"1" * 30 + b"\x00" + b"\x01\x01" + b"2\x00" + bytes(12)
    events = smsc.receive_data(frame(C.submit_sm, 9, body) + encode_pdu(QuerySm(10)), T)
    assert [type(e) for e in events] == [ProtocolError, RequestReceived]
    assert at(events, 0, ProtocolError).command_status == S.ESME_RINVSRCADR
    assert pdus(smsc.data_to_send()) == [SubmitSmResp(9, S.ESME_RINVSRCADR)]
    assert smsc.bound and smsc.inbound_pending == 1  # only the query_sm awaits an answer


def test_malformed_outbind_gets_generic_nack() -> None:
    esme = Session(Role.ESME, T)
    events = esme.receive_data(frame(C.outbind, 5, b"x" * 40), T)
    assert [type(e) for e in events] == [ProtocolError]
    assert pdus(esme.data_to_send()) == [GenericNack(5, S.ESME_RINVSYSID)]
    assert esme.state is State.OPEN


@pytest.mark.parametrize("length", [0, 4, 15])
def test_command_length_under_16_closes(length: int) -> None:
    esme, _ = bound_pair()
    esme.send(submit(), T, context="lost")
    esme.data_to_send()
    bad = struct.pack(">IIII", length, C.deliver_sm, 0, 31)
    events = esme.receive_data(bad, T)
    assert [type(e) for e in events] == [ProtocolError, StateChanged, RequestFailed,
                                         SessionClosed]
    assert at(events, 0, ProtocolError).command_status == S.ESME_RINVCMDLEN
    assert at(events, 2, RequestFailed).context == "lost"
    assert pdus(esme.data_to_send()) == [GenericNack(31, S.ESME_RINVCMDLEN)]
    assert esme.closed and esme.receive_data(encode_pdu(EnquireLink(1)), T) == []


def test_command_length_over_max_closes() -> None:
    _, smsc = bound_pair(smsc_cfg=SessionConfig(max_command_length=1000))
    events = smsc.receive_data(struct.pack(">IIII", 1001, C.submit_sm, 0, 8), T)
    assert [type(e) for e in events] == [ProtocolError, StateChanged, SessionClosed]
    assert pdus(smsc.data_to_send()) == [GenericNack(8, S.ESME_RINVCMDLEN)]
    # A short header that still shows a bad length: sequence number unknown, so 0.
    _, other = bound_pair()
    other.receive_data(struct.pack(">I", 3), T)
    assert pdus(other.data_to_send()) == [GenericNack(0, S.ESME_RINVCMDLEN)] and other.closed


def test_pdus_before_a_broken_frame_are_delivered_and_answered_before_the_close() -> None:
    """A submit then garbage in one read: nothing after the broken frame is read, but the
    submit still gets its answer (its id may already be stored) before the session closes."""
    _, smsc = bound_pair()
    stream = encode_pdu(SubmitSm(40)) + encode_pdu(EnquireLink(50)) + struct.pack(">II", 7, 0)
    events = smsc.receive_data(stream, T)
    assert [type(e) for e in events] == [RequestReceived, ProtocolError, StateChanged]
    first = at(events, 0, RequestReceived)
    assert first.pdu.sequence_number == 40
    assert pdus(smsc.data_to_send()) == [EnquireLinkResp(50), GenericNack(0, S.ESME_RINVCMDLEN)]
    assert not smsc.closed and smsc.state is State.UNBOUND
    assert smsc.receive_data(encode_pdu(EnquireLink(51)), T) == []  # nothing more is read
    smsc.send(first.pdu.response(message_id="77"), T + 0.1)
    assert smsc.closed and smsc.close_reason == "framing error"
    assert pdus(smsc.data_to_send()) == [SubmitSmResp(40, message_id="77")]


def test_broken_frame_with_answers_never_given_closes_at_response_timeout() -> None:
    _, smsc = bound_pair()
    smsc.receive_data(encode_pdu(SubmitSm(40)) + struct.pack(">I", 3), T)
    deadline = smsc.next_deadline()
    assert deadline is not None and deadline <= T + smsc.config.response_timeout_s
    assert smsc.handle_timer(deadline - 0.001) == [] and not smsc.closed
    events = smsc.handle_timer(deadline)
    assert smsc.closed and isinstance(events[-1], SessionClosed)


def test_broken_frame_with_nothing_owed_closes_at_once() -> None:
    _, smsc = bound_pair()
    events = smsc.receive_data(encode_pdu(EnquireLink(50)) + struct.pack(">I", 3), T)
    assert isinstance(events[-1], SessionClosed) and smsc.closed


def test_unbind_before_a_broken_frame_closes_once() -> None:
    """Regression: frames after a close were still handled and SessionClosed came twice."""
    _, smsc = bound_pair()
    stream = encode_pdu(Unbind(5)) + encode_pdu(submit()) + struct.pack(">I", 5)
    events = smsc.receive_data(stream, T)
    assert events == [StateChanged(State.BOUND_TRX, State.UNBOUND),
                      StateChanged(State.UNBOUND, State.CLOSED), SessionClosed("unbound by peer")]
    assert pdus(smsc.data_to_send()) == [UnbindResp(5)]


def _mixed_stream() -> bytes:
    body = b"\x00" + b"\x01\x01" + b"1" * 30 + b"\x00" + b"\x01\x01" + b"2\x00" + bytes(12)
    return b"".join([
        encode_pdu(SubmitSm(10, source_addr="A", destination_addr="B", short_message=b"hey")),
        encode_pdu(EnquireLink(11)),
        frame(0x00000112, 12),  # unknown request
        frame(C.submit_sm, 13, body),  # malformed body
        encode_pdu(QuerySm(14, message_id="m")),
        encode_pdu(SubmitSmResp(99)),  # unmatched response
        encode_pdu(DeliverSm(15)),  # not allowed for an ESME sender
        encode_pdu(Unbind(16)),
    ])


def _run(chunks: list[bytes]) -> tuple[list[Event], bytes]:
    _, smsc = bound_pair()
    events: list[Event] = []
    out = b""
    for chunk in chunks:
        events += smsc.receive_data(chunk, T)
        out += smsc.data_to_send()
    return events, out


def test_split_at_every_offset_gives_same_events() -> None:
    stream = _mixed_stream()
    whole = _run([stream])
    # The submit and query are still unanswered: unbind waits for them (UNBOUND, not closed).
    assert [type(e) for e in whole[0]] == [
        RequestReceived, ProtocolError, ProtocolError, RequestReceived, ProtocolError,
        ProtocolError, StateChanged]
    for cut in range(len(stream) + 1):
        assert _run([stream[:cut], stream[cut:]]) == whole, cut
    assert _run([stream[i:i + 1] for i in range(len(stream))]) == whole


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_any_split_gives_same_events(cuts: list[int]) -> None:
    stream = _mixed_stream()
    points = sorted({c % (len(stream) + 1) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert _run(chunks) == _run([stream])


def test_many_pdus_in_one_read() -> None:
    esme, smsc = bound_pair(esme_cfg=SessionConfig(window=1000))
    for i in range(500):
        esme.send(submit(i), T, context=i)
    received = each(RequestReceived, smsc.receive_data(esme.data_to_send(), T))
    submits = [e.pdu for e in received if isinstance(e.pdu, SubmitSm)]
    assert [p.destination_addr for p in submits] == [f"44{i:05d}" for i in range(500)]
    for ev in received:
        smsc.send(ev.pdu.response(message_id=str(ev.pdu.sequence_number)), T)
    answers = each(ResponseReceived, esme.receive_data(smsc.data_to_send(), T))  # one write
    assert [e.context for e in answers] == list(range(500))
    assert len(esme.window) == 0


# --- unbind and connection loss ------------------------------------------------------------


@pytest.mark.parametrize("first", [Role.ESME, Role.SMSC])
def test_unbind_handshake_both_directions(first: Role) -> None:
    esme, smsc = bound_pair()
    a, b = (esme, smsc) if first is Role.ESME else (smsc, esme)
    assert a.unbind(T) == [StateChanged(State.BOUND_TRX, State.UNBOUND)]
    assert not a.can_send(C.submit_sm) and not a.can_send(C.deliver_sm)
    events = b.receive_data(a.data_to_send(), T)
    assert events == [StateChanged(State.BOUND_TRX, State.UNBOUND),
                      StateChanged(State.UNBOUND, State.CLOSED), SessionClosed("unbound by peer")]
    data = b.data_to_send()
    assert [type(p) for p in pdus(data)] == [UnbindResp]
    events = a.receive_data(data, T)
    assert [type(e) for e in events] == [ResponseReceived, StateChanged, SessionClosed]
    assert events[1] == StateChanged(State.UNBOUND, State.CLOSED)
    assert a.closed and b.closed and a.close_reason == "unbound"


def test_peer_requests_while_unbinding_are_refused_but_enquire_answered() -> None:
    _, smsc = bound_pair()
    smsc.unbind(T)
    smsc.data_to_send()
    events = smsc.receive_data(encode_pdu(submit()) + encode_pdu(EnquireLink(8)), T)
    assert [type(e) for e in events] == [ProtocolError]
    assert [type(p) for p in pdus(smsc.data_to_send())] == [SubmitSmResp, EnquireLinkResp]


def test_unbind_before_bind_just_closes() -> None:
    esme = Session(Role.ESME, T)
    assert [type(e) for e in esme.unbind(T)] == [StateChanged, SessionClosed]
    assert esme.closed and esme.data_to_send() == b""


def test_connection_lost_fails_every_outstanding_request() -> None:
    esme, _ = bound_pair()
    sent = [(esme.send(submit(i), T, context=f"c{i}"), f"c{i}") for i in range(3)]
    esme.send(EnquireLink(), T)
    events = esme.connection_lost(T, "reset by peer")
    failed = [e for e in events if isinstance(e, RequestFailed)]
    assert [(e.request.sequence_number, e.context) for e in failed[:3]] == sent
    assert failed[3].request.command_id == C.enquire_link
    assert all(e.reason is FailureReason.SESSION_CLOSED and e.detail == "reset by peer"
               for e in failed)
    assert events[0] == StateChanged(State.BOUND_TRX, State.CLOSED)
    assert events[-1] == SessionClosed("reset by peer")
    assert esme.closed and len(esme.window) == 0 and esme.next_deadline() is None
    assert esme.connection_lost(T) == []
    with pytest.raises(SessionError):
        esme.send(submit(), T)


def test_peer_unbind_waits_for_answers_still_owed() -> None:
    """A submit then an unbind in one write: its submit_sm_resp goes out before unbind_resp."""
    esme, smsc = bound_pair()
    esme.send(submit(1), T)
    esme.send(Unbind(), T)
    events = smsc.receive_data(esme.data_to_send(), T)
    assert [type(e) for e in events] == [RequestReceived, StateChanged]
    assert smsc.data_to_send() == b"" and not smsc.closed
    smsc.send(at(events, 0, RequestReceived).pdu.response(message_id="42"), T + 0.1)
    assert smsc.closed
    answers = esme.receive_data(smsc.data_to_send(), T + 0.2)
    kinds = [type(e.pdu).__name__ for e in answers if isinstance(e, ResponseReceived)]
    assert kinds == ["SubmitSmResp", "UnbindResp"]
    assert answers[0].pdu.message_id == "42"


def test_peer_unbind_answered_at_response_timeout_when_app_never_answers() -> None:
    esme, smsc = bound_pair()
    esme.send(submit(1), T)
    esme.send(Unbind(), T)
    smsc.receive_data(esme.data_to_send(), T)
    deadline = smsc.next_deadline()
    assert deadline is not None and deadline <= T + smsc.config.response_timeout_s
    events = smsc.handle_timer(deadline)
    assert smsc.closed and isinstance(events[-1], SessionClosed)
    answers = esme.receive_data(smsc.data_to_send(), deadline)
    assert any(isinstance(e, ResponseReceived) and isinstance(e.pdu, UnbindResp)
               for e in answers)
