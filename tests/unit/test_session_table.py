"""The session's state table, walked exhaustively: every State x every request x both roles.

House habit 3 (docs/architecture.md) and reference section 5.1. Each state is reached through
real PDUs (bind handshakes, outbind, unbind; CLOSED via ``connection_lost``), then:

* inbound: the peer's encoded request is fed in. If ``REQUEST_STATES`` allows (peer role,
  command_id, state) the application gets ``RequestReceived`` (enquire_link and unbind are
  answered by the session itself); otherwise the session answers the request's own response
  (generic_nack when it has none) with ESME_RINVBNDSTS, or ESME_RALYBND for a bind while
  bound, echoing the sequence_number. A CLOSED session produces nothing.
* outbound: ``send`` of a request allowed in the state succeeds; one not allowed raises
  ``SessionError`` and queues nothing.

No event loop, no sleeps: time is a float passed in.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encoding.constants import RESPONSE_BIT
from encoding.constants import CommandId as C
from encoding.constants import CommandStatus as S
from encoding.errors import SessionError
from encoding.pdu import (
    ALL_TYPES,
    AlertNotification,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    DataSm,
    DeliverSm,
    EnquireLink,
    GenericNack,
    Outbind,
    Pdu,
    QuerySm,
    ReplaceSm,
    SmeDest,
    SubmitMulti,
    SubmitSm,
    Unbind,
    decode_pdu,
    encode_pdu,
)
from encoding.pdu import FrameBuffer as _Frames
from encoding.session import (
    BOUND_STATES,
    REQUEST_STATES,
    ProtocolError,
    RequestReceived,
    Role,
    SessionClosed,
    StateChanged,
)
from encoding.session import Session as _Session
from encoding.session import State as St

T0 = 100.0
_BIND_FOR = {St.BOUND_TX: BindTransmitter, St.BOUND_RX: BindReceiver,
             St.BOUND_TRX: BindTransceiver}
_BIND_IDS = {C.bind_transmitter, C.bind_receiver, C.bind_transceiver}

# One sample of every request type, with a few non-default fields so a decoding slip shows.
SAMPLES: dict[int, Pdu] = {
    C.bind_transmitter: BindTransmitter(system_id="tx", password="pw", system_type="t"),
    C.bind_receiver: BindReceiver(system_id="rx", password="pw", address_range="^44"),
    C.bind_transceiver: BindTransceiver(system_id="trx", password="pw"),
    C.outbind: Outbind(system_id="smsc", password="pw"),
    C.unbind: Unbind(),
    C.enquire_link: EnquireLink(),
    C.submit_sm: SubmitSm(source_addr="SRC", destination_addr="4477", short_message=b"hi"),
    C.deliver_sm: DeliverSm(source_addr="4477", destination_addr="SRC", short_message=b"mo"),
    C.data_sm: DataSm(source_addr="A", destination_addr="B", tlvs={"message_payload": b"x"}),
    C.query_sm: QuerySm(message_id="m1", source_addr="SRC"),
    C.cancel_sm: CancelSm(message_id="m1", source_addr="SRC", destination_addr="4477"),
    C.replace_sm: ReplaceSm(message_id="m1", source_addr="SRC", short_message=b"new"),
    C.submit_multi: SubmitMulti(source_addr="SRC", dest_address=[SmeDest("4477")],
                                short_message=b"multi"),
    C.alert_notification: AlertNotification(source_addr="4477", esme_addr="SRC"),
}
REQUEST_IDS = sorted(SAMPLES)


def _fresh(cid: int, seq: int) -> Pdu:
    """A new copy of the sample (PDUs are mutable: ``send`` numbers them)."""
    sample = SAMPLES[cid]
    return decode_pdu(encode_pdu(type(sample)(**{
        f: getattr(sample, f) for f in sample.__struct_fields__ if f != "sequence_number"
    }, sequence_number=seq)))


def _decode_all(data: bytes) -> list[Pdu]:
    return [decode_pdu(f) for f in _Frames().feed(data)]


def _session_in(role: Role, state: St) -> _Session:
    """Our session of ``role`` driven into ``state`` through real PDUs, output drained."""
    me = _Session(role, T0)
    peer = _Session(role.peer, T0)
    if state is St.OUTBOUND:
        if role is Role.ESME:
            peer.send(Outbind(system_id="smsc"), T0)
            me.receive_data(peer.data_to_send(), T0)
        else:
            # Unreachable for an SMSC through PDUs (only the ESME enters OUTBOUND); forced so
            # that the table is still checked for this row.
            me.state = St.OUTBOUND
    elif state in BOUND_STATES or state is St.UNBOUND:
        bind = _BIND_FOR.get(state, BindTransceiver)(system_id="e", password="p")
        esme, smsc = (me, peer) if role is Role.ESME else (peer, me)
        esme.send(bind, T0)
        (ev,) = smsc.receive_data(esme.data_to_send(), T0)
        assert isinstance(ev, RequestReceived)
        smsc.send(ev.pdu.response(system_id="smsc"), T0)
        esme.receive_data(smsc.data_to_send(), T0)
        if state is St.UNBOUND:
            me.unbind(T0)
    elif state is St.CLOSED:
        me.connection_lost(T0)
    assert me.state is state
    me.data_to_send()
    return me


def _allowed(sender: Role, cid: int, state: St) -> bool:
    states = REQUEST_STATES.get((sender, cid))
    return states is not None and state in states


def _expected_refusal(cid: int, state: St) -> int:
    return S.ESME_RALYBND if cid in _BIND_IDS and state in BOUND_STATES else S.ESME_RINVBNDSTS


def _check_inbound(role: Role, state: St, cid: int, seq: int) -> None:
    me = _session_in(role, state)
    request = _fresh(cid, seq)
    events = me.receive_data(encode_pdu(request), T0 + 1)
    out = _decode_all(me.data_to_send())
    if state is St.CLOSED:
        assert events == [] and out == []
        assert me.state is St.CLOSED
        return
    if _allowed(role.peer, cid, state):
        if cid == C.enquire_link:
            assert events == []
            assert [(type(p), p.command_status, p.sequence_number) for p in out] == [
                (request.response_class, 0, seq)]
            assert me.state is state
        elif cid == C.unbind:
            assert [(type(p), p.command_status, p.sequence_number) for p in out] == [
                (request.response_class, 0, seq)]
            assert events == [StateChanged(state, St.UNBOUND),
                              StateChanged(St.UNBOUND, St.CLOSED),
                              SessionClosed("unbound by peer")]
        elif cid == C.outbind:
            assert out == []
            assert events == [StateChanged(St.OPEN, St.OUTBOUND), RequestReceived(request)]
        else:
            assert out == []
            assert events == [RequestReceived(request)]
            assert me.state is state
            assert me.inbound_pending == (1 if request.response_class else 0)
        return
    status = _expected_refusal(cid, state)
    (answer,) = out
    assert type(answer) is (request.response_class or GenericNack)
    assert answer.command_status == status
    assert answer.sequence_number == seq
    (error,) = events
    assert isinstance(error, ProtocolError), error
    assert error == ProtocolError(error.message, status, cid, seq)
    assert me.state is state
    assert me.inbound_pending == 0


def test_samples_cover_every_request_type() -> None:
    requests = {cls.command_id for cls in ALL_TYPES if not cls.command_id & RESPONSE_BIT}
    assert requests == set(SAMPLES)
    assert {cid for _, cid in REQUEST_STATES} <= requests


@pytest.mark.parametrize("cid", REQUEST_IDS, ids=lambda c: C(c).name)
@pytest.mark.parametrize("state", list(St), ids=lambda s: s.name)
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name)
def test_inbound_request_in_every_state(role: Role, state: St, cid: int) -> None:
    _check_inbound(role, state, cid, 0x1234)


@settings(max_examples=150, deadline=None)
@given(role=st.sampled_from(list(Role)), state=st.sampled_from(list(St)),
       cid=st.sampled_from(REQUEST_IDS), seq=st.integers(0, 0xFFFFFFFF))
def test_inbound_echoes_any_sequence_number(role: Role, state: St, cid: int, seq: int) -> None:
    """Reference 5.3: be lenient, echo whatever number arrived (0 and all 32 bits included)."""
    _check_inbound(role, state, cid, seq)


@pytest.mark.parametrize("cid", REQUEST_IDS, ids=lambda c: C(c).name)
@pytest.mark.parametrize("state", list(St), ids=lambda s: s.name)
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name)
def test_outbound_request_in_every_state(role: Role, state: St, cid: int) -> None:
    me = _session_in(role, state)
    request = _fresh(cid, 0)
    pending = len(me.window)
    ok = _allowed(role, cid, state)
    assert me.can_send(cid) is ok
    if ok:
        seq = me.send(request, T0 + 1, context="ctx")
        assert 1 <= seq <= 0x7FFFFFFF
        assert request.sequence_number == seq
        assert _decode_all(me.data_to_send()) == [request]
        # outbind and alert_notification have no response: nothing waits for one.
        assert len(me.window) == pending + (1 if request.response_class else 0)
        if cid == C.unbind:
            assert me.state is St.UNBOUND
        return
    with pytest.raises(SessionError) as info:
        me.send(request, T0 + 1, context="ctx")
    assert info.value.command_status == S.ESME_RINVBNDSTS
    assert me.data_to_send() == b""
    assert len(me.window) == pending
    assert me.state is state


def test_table_rows_match_reference_section_1_2() -> None:
    """Spot checks of the table against reference 1.2 (and its note on query/cancel/replace)."""
    e, s = Role.ESME, Role.SMSC
    assert _allowed(e, C.query_sm, St.BOUND_TX) and _allowed(e, C.query_sm, St.BOUND_TRX)
    assert _allowed(e, C.replace_sm, St.BOUND_TRX) and _allowed(e, C.cancel_sm, St.BOUND_TX)
    assert not _allowed(e, C.submit_sm, St.BOUND_RX)
    assert not _allowed(s, C.deliver_sm, St.BOUND_TX)
    assert _allowed(e, C.data_sm, St.BOUND_TX) and _allowed(s, C.data_sm, St.BOUND_RX)
    assert _allowed(s, C.outbind, St.OPEN) and not _allowed(e, C.outbind, St.OPEN)
    assert _allowed(e, C.bind_receiver, St.OUTBOUND)
    for state in St:
        assert _allowed(e, C.enquire_link, state) is (state is not St.CLOSED)
        assert _allowed(s, C.unbind, state) is (state in BOUND_STATES)
