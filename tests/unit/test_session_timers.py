"""Session timers on a fake clock: session_init, enquire_link, response, inactivity, unbind.

Reference section 5.2 and house habit 1 (docs/architecture.md): the session never reads the
clock; ``next_deadline()`` says when it next needs ``handle_timer(now)``. Times are plain
floats; nothing sleeps. A Hypothesis walk checks that ``next_deadline()`` is always the
earliest due timer: just before it ``handle_timer`` does nothing, at it something happens.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encoding.constants import CommandId as C
from encoding.pdu import (
    AlertNotification,
    BindTransceiver,
    DeliverSm,
    EnquireLink,
    EnquireLinkResp,
    FrameBuffer,
    Outbind,
    Pdu,
    SubmitSm,
    Unbind,
    UnbindResp,
    decode_pdu,
    encode_pdu,
)
from encoding.session import (
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

CFG = SessionConfig(session_init_s=10, enquire_link_s=30, inactivity_s=300,
                    response_timeout_s=20)


def pdus(data: bytes) -> list[Pdu]:
    return [decode_pdu(f) for f in FrameBuffer().feed(data)]


def before(t: float) -> float:
    return math.nextafter(t, -math.inf)


def bound_pair(cfg: SessionConfig = CFG, t: float = 0.0) -> tuple[Session, Session]:
    esme, smsc = Session(Role.ESME, t, cfg), Session(Role.SMSC, t, cfg)
    esme.send(BindTransceiver(system_id="e", password="p"), t)
    (ev,) = smsc.receive_data(esme.data_to_send(), t)
    assert isinstance(ev, RequestReceived), ev
    smsc.send(ev.pdu.response(system_id="s"), t)
    esme.receive_data(smsc.data_to_send(), t)
    assert esme.bound and smsc.bound
    return esme, smsc


# --- session_init --------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_session_init_timeout_closes_open_session(role: Role) -> None:
    s = Session(role, 5.0, CFG)
    assert s.next_deadline() == 15.0
    assert s.handle_timer(before(15.0)) == []
    assert s.state is State.OPEN
    events = s.handle_timer(15.0)
    assert events == [StateChanged(State.OPEN, State.CLOSED),
                      SessionClosed("no bind within session_init_s")]
    assert s.next_deadline() is None and s.data_to_send() == b""
    assert s.handle_timer(1e9) == []


def test_session_init_runs_in_outbound_and_fails_pending_bind() -> None:
    esme = Session(Role.ESME, 0.0, SessionConfig(session_init_s=10, response_timeout_s=60))
    esme.receive_data(encode_pdu(Outbind(1, system_id="smsc")), 2.0)
    assert esme.state is State.OUTBOUND
    bind = BindTransceiver(system_id="e")
    esme.send(bind, 3.0, context="bind")
    assert esme.next_deadline() == 10.0  # counted from the connection, not the outbind
    events = esme.handle_timer(10.0)
    assert events[0] == StateChanged(State.OUTBOUND, State.CLOSED)
    assert RequestFailed(bind, "bind", FailureReason.SESSION_CLOSED,
                         "no bind within session_init_s") in events
    assert isinstance(events[-1], SessionClosed)


def test_bind_response_timeout_closes() -> None:
    esme = Session(Role.ESME, 0.0, SessionConfig(session_init_s=100, response_timeout_s=5))
    bind = BindTransceiver()
    esme.send(bind, 1.0, context="b")
    assert esme.next_deadline() == 6.0
    events = esme.handle_timer(6.0)
    assert events[0] == RequestFailed(bind, "b", FailureReason.RESPONSE_TIMEOUT)
    assert esme.closed and isinstance(events[-1], SessionClosed)


def test_binding_stops_session_init_timer() -> None:
    _, smsc = bound_pair()
    assert smsc.next_deadline() == 30.0  # enquire_link, not session_init (10)
    assert smsc.handle_timer(10.0) == [] and smsc.bound


# --- enquire_link --------------------------------------------------------------------------


def test_enquire_link_after_silence_not_before() -> None:
    esme, smsc = bound_pair()
    assert esme.next_deadline() == 30.0
    assert esme.handle_timer(before(30.0)) == []
    assert esme.data_to_send() == b""
    assert esme.handle_timer(30.0) == []  # sending it is not an event
    (enq,) = pdus(esme.data_to_send())
    assert type(enq) is EnquireLink
    # While it is pending: no second one; the deadline is its response timeout.
    assert esme.next_deadline() == 50.0
    assert esme.handle_timer(45.0) == [] and esme.data_to_send() == b""
    # The SMSC answers on its own; the ESME sees the response and restarts the timer.
    assert smsc.receive_data(encode_pdu(enq), 46.0) == []
    events = esme.receive_data(smsc.data_to_send(), 47.0)
    assert events == [ResponseReceived(EnquireLinkResp(enq.sequence_number), enq, None)]
    assert esme.next_deadline() == 77.0


def test_traffic_postpones_enquire_link() -> None:
    esme, _ = bound_pair()
    esme.receive_data(encode_pdu(EnquireLink(50)), 20.0)
    assert esme.next_deadline() == 50.0
    esme.handle_timer(30.0)
    assert [type(p) for p in pdus(esme.data_to_send())] == [EnquireLinkResp]
    esme.handle_timer(50.0)
    assert [type(p) for p in pdus(esme.data_to_send())] == [EnquireLink]


def test_no_enquire_link_when_disabled() -> None:
    esme, _ = bound_pair(SessionConfig(enquire_link_s=0, inactivity_s=0))
    assert esme.next_deadline() is None
    assert esme.handle_timer(1e6) == [] and esme.data_to_send() == b""


def test_unanswered_enquire_link_closes() -> None:
    esme, _ = bound_pair()
    sub = SubmitSm(destination_addr="1")
    esme.handle_timer(30.0)
    esme.send(sub, 35.0, context="m1")
    (enq, _) = pdus(esme.data_to_send())
    events = esme.handle_timer(50.0)
    assert events == [RequestFailed(enq, None, FailureReason.RESPONSE_TIMEOUT),
                      StateChanged(State.BOUND_TRX, State.CLOSED),
                      RequestFailed(sub, "m1", FailureReason.SESSION_CLOSED,
                                    "no answer to EnquireLink"),
                      SessionClosed("no answer to EnquireLink")]
    assert esme.next_deadline() is None


# --- response timeout ----------------------------------------------------------------------


def test_response_timeout_fails_submit_sm_with_context_session_stays() -> None:
    esme, _ = bound_pair(SessionConfig(enquire_link_s=0, response_timeout_s=20))
    first, second = SubmitSm(destination_addr="1"), SubmitSm(destination_addr="2")
    esme.send(first, 1.0, context="a")
    esme.send(second, 5.0, context="b")
    assert esme.next_deadline() == 21.0
    assert esme.handle_timer(before(21.0)) == []
    assert esme.handle_timer(21.0) == [RequestFailed(first, "a", FailureReason.RESPONSE_TIMEOUT)]
    assert esme.bound and len(esme.window) == 1
    assert esme.next_deadline() == 25.0
    assert esme.handle_timer(30.0) == [RequestFailed(second, "b", FailureReason.RESPONSE_TIMEOUT)]
    assert esme.bound and esme.can_send(C.submit_sm)
    # A late answer is now unmatched: dropped with a ProtocolError, not a crash.
    late = esme.receive_data(encode_pdu(first.response(message_id="x")), 31.0)
    assert [type(e).__name__ for e in late] == ["ProtocolError"]


def test_request_without_response_never_times_out() -> None:
    """Regression: alert_notification (no response) sat in the window and 'timed out'."""
    _, smsc = bound_pair(SessionConfig(enquire_link_s=0, inactivity_s=0))
    smsc.send(AlertNotification(source_addr="1", esme_addr="2"), 1.0)
    assert smsc.next_deadline() is None
    assert smsc.handle_timer(1e6) == []


# --- inactivity and unbind -----------------------------------------------------------------


def test_inactivity_sends_unbind_then_unbind_resp_closes() -> None:
    cfg = SessionConfig(enquire_link_s=0, inactivity_s=300, response_timeout_s=20)
    esme, smsc = bound_pair(cfg)
    smsc.receive_data(encode_pdu(EnquireLink(9)), 100.0)  # any PDU resets inactivity
    smsc.data_to_send()
    assert smsc.next_deadline() == 400.0
    assert smsc.handle_timer(before(400.0)) == []
    assert smsc.handle_timer(400.0) == [StateChanged(State.BOUND_TRX, State.UNBOUND)]
    (unbind,) = pdus(smsc.data_to_send())
    assert type(unbind) is Unbind
    assert smsc.next_deadline() == 420.0
    events = esme.receive_data(encode_pdu(unbind), 401.0)
    assert isinstance(events[-1], SessionClosed)
    events = smsc.receive_data(esme.data_to_send(), 402.0)
    assert events == [ResponseReceived(UnbindResp(unbind.sequence_number), unbind, None),
                      StateChanged(State.UNBOUND, State.CLOSED), SessionClosed("unbound")]
    assert smsc.next_deadline() is None


def test_unbind_timeout_closes() -> None:
    esme, _ = bound_pair()
    esme.unbind(10.0)
    (unbind,) = pdus(esme.data_to_send())
    assert esme.state is State.UNBOUND and esme.next_deadline() == 30.0
    assert esme.handle_timer(before(30.0)) == []
    events = esme.handle_timer(30.0)
    assert events == [RequestFailed(unbind, None, FailureReason.RESPONSE_TIMEOUT),
                      StateChanged(State.UNBOUND, State.CLOSED),
                      SessionClosed("no answer to Unbind")]


def test_no_enquire_link_or_inactivity_while_unbound() -> None:
    esme, _ = bound_pair(SessionConfig(enquire_link_s=1, inactivity_s=2, response_timeout_s=50))
    esme.unbind(0.5)
    esme.data_to_send()
    assert esme.next_deadline() == 50.5
    assert esme.handle_timer(50.0) == [] and esme.data_to_send() == b""


# --- next_deadline is always the earliest due timer ----------------------------------------

_ACTIONS = st.lists(
    st.tuples(st.sampled_from(["wait", "submit", "answer", "peer_enquire", "deadline",
                               "unbind", "peer_unbind"]),
              st.floats(0.0, 40.0, allow_nan=False)),
    max_size=25)


@settings(max_examples=150, deadline=None)
@given(actions=_ACTIONS, role=st.sampled_from(list(Role)), bind_first=st.booleans(),
       enquire=st.sampled_from([0.0, 7.0, 30.0]), inactivity=st.sampled_from([0.0, 25.0, 90.0]))
def test_next_deadline_is_earliest_due_timer(
        actions: list[tuple[str, float]], role: Role, bind_first: bool, enquire: float,
        inactivity: float) -> None:
    cfg = SessionConfig(session_init_s=15, enquire_link_s=enquire, inactivity_s=inactivity,
                        response_timeout_s=12, window=5)
    if bind_first:
        me, peer = bound_pair(cfg)
        if role is Role.SMSC:
            me, peer = peer, me
    else:
        me, peer = Session(role, 0.0, cfg), Session(role.peer, 0.0, cfg)
    now = 0.0
    seq = 1000
    for action, dt in actions:
        deadline = me.next_deadline()
        if me.closed:
            assert deadline is None
            break
        if deadline is not None:
            assert deadline > now  # every due timer has been run: the adapter never spins
            # Nothing is due strictly before the deadline ...
            probe = before(deadline)
            if probe > now:
                assert me.handle_timer(probe) == [] and me.data_to_send() == b""
                now = probe
        if action == "deadline" and deadline is not None:
            now = deadline
            # ... and at the deadline something happens: an event or bytes for the peer.
            events = me.handle_timer(now)
            assert events or me.data_to_send()
            me.data_to_send()
            continue
        now += dt
        if deadline is not None and now >= deadline:
            me.handle_timer(now)
        elif action == "submit" and me.bound:
            cid = C.submit_sm if role is Role.ESME else C.deliver_sm
            if me.can_send(cid):
                pdu_cls = SubmitSm if role is Role.ESME else DeliverSm
                me.send(pdu_cls(destination_addr="1"), now, context=now)
        elif action == "answer":
            for item in list(me.window)[:1]:
                resp = item.request.response()
                me.receive_data(encode_pdu(resp), now)
        elif action == "peer_enquire":
            seq += 1
            me.receive_data(encode_pdu(EnquireLink(seq)), now)
        elif action == "unbind":
            me.unbind(now)
        elif action == "peer_unbind" and me.bound:
            seq += 1
            me.receive_data(encode_pdu(Unbind(seq)), now)
        me.data_to_send()
        if me.closed:
            assert me.next_deadline() is None
    del peer


def test_handle_timer_before_deadline_does_nothing_in_every_live_state() -> None:
    states: dict[State, Session] = {}
    states[State.OPEN] = Session(Role.SMSC, 0.0, CFG)
    outbound = Session(Role.ESME, 0.0, CFG)
    outbound.receive_data(encode_pdu(Outbind(1)), 0.0)
    states[State.OUTBOUND] = outbound
    states[State.BOUND_TRX] = bound_pair()[0]
    unbound = bound_pair()[1]
    unbound.unbind(0.0)
    states[State.UNBOUND] = unbound
    for state, s in states.items():
        assert s.state is state
        s.data_to_send()
        deadline = s.next_deadline()
        assert deadline is not None
        for t in (0.0, deadline / 2, before(deadline)):
            assert s.handle_timer(t) == [], (state, t)
            assert s.data_to_send() == b"" and s.state is state
        assert s.handle_timer(deadline) or s.data_to_send()
