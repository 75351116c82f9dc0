"""One sans-IO SMPP session for either role (ESME or SMSC).

Bytes in (``receive_data``), bytes out (``data_to_send``), time in (``handle_timer(now)``,
``next_deadline()``), events out. Implements SMPP 3.4 section 2 (session states, binding,
unbind handshake, enquire_link), section 3.2 (sequence numbers), section 4.3 (generic_nack)
and the timers of section 7.2 / reference 5.2. It answers on its own what needs no
application: enquire_link_resp, unbind_resp, generic_nack, ESME_RINVBNDSTS, ESME_RALYBND, and
ESME_RTHROTTLED when the peer exceeds ``inbound_window`` unanswered requests.

No event is ever dropped. Events caused by input, timers or ``connection_lost`` are returned
by that call. A few are caused by ``send`` itself: the answer that was the last one owed
before a held peer unbind or after a framing error, or a refused bind, closes the session
there, and that close fails every request still in our window. ``send`` keeps those events;
``take_events()`` hands them over, and every input method returns them first, ahead of its
own, so each event is delivered exactly once and in order.
"""

from __future__ import annotations

from typing import Any

from ..constants import RESPONSE_BIT, CommandId, CommandStatus
from ..errors import FramingError, PduError, SessionError
from ..pdu import (
    EnquireLink,
    FrameBuffer,
    GenericNack,
    Pdu,
    Unbind,
    UnbindResp,
    decode_pdu,
    encode_pdu,
    pdu_class,
)
from .config import SessionConfig
from .events import (
    Event,
    FailureReason,
    ProtocolError,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    SessionClosed,
    StateChanged,
)
from .states import BIND_RESULT, BOUND_STATES, REQUEST_STATES, Role, State
from .window import Outstanding, Window

__all__ = ["Session"]

_BINDS = frozenset({CommandId.bind_transmitter, CommandId.bind_receiver,
                    CommandId.bind_transceiver})
_CONTROL = frozenset({CommandId.enquire_link, CommandId.unbind})
_UNBIND = CommandId.unbind
_ENQUIRE = CommandId.enquire_link
_NACK = CommandId.generic_nack


class Session:
    """The SMPP state machine for one connection. Create one per TCP connection."""

    def __init__(self, role: Role, now: float, config: SessionConfig | None = None) -> None:
        self.role = role
        self.config = cfg = config or SessionConfig()
        self.state = State.OPEN
        self.window = Window(cfg.window)
        self.inbound_pending = 0
        # Peer's unbind held until our answers to its earlier requests are out: (seq, deadline)
        self._peer_unbind: tuple[int, float] | None = None
        # After a framing error: nothing more is read; close once the answers still owed are
        # out, or at this deadline. (reason, deadline)
        self._drain: tuple[str, float] | None = None
        self.close_reason: str | None = None
        self._frames = FrameBuffer(cfg.max_command_length)
        self._out: list[bytes] = []
        # Events of a close inside send(), where no event list is at hand: see take_events().
        self._pending: list[Event] = []
        self._opened = now
        self._last_rx = now
        self._last_enquire = now
        self._enquire_pending = False
        self._peer = role.peer

    # --- properties -------------------------------------------------------------------------

    @property
    def bound(self) -> bool:
        return self.state in BOUND_STATES

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    def reconfigure(self, config: SessionConfig) -> None:
        """New limits for this session (a tenant's own, once it is bound): timers and
        ``inbound_window`` apply from now on, ``window`` to requests not yet sent."""
        self.config = config
        self.window.size = config.window

    def can_send(self, command_id: int) -> bool:
        """May we send this request now (state allows it and, for non-control PDUs, room)?"""
        states = REQUEST_STATES.get((self.role, command_id))
        if states is None or self.state not in states:
            return False
        cls = pdu_class(command_id)
        answered = cls is None or cls.response_class is not None
        return command_id in _CONTROL or not answered or self.window.room > 0

    # --- output -----------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Everything queued for the peer since the last call (possibly b"")."""
        out = self._out
        if not out:
            return b""
        data = b"".join(out) if len(out) > 1 else out[0]
        out.clear()
        return data

    def take_events(self) -> list[Event]:
        """Events caused by ``send`` since they were last handed over (possibly []): only
        closes (see the module docstring); state changes the caller made by sending are not
        reported."""
        events = self._pending
        if not events:
            return []
        self._pending = []
        return events

    def send(self, pdu: Pdu, now: float, context: Any = None) -> int:
        """Queue a request (numbered here) or a response; returns its sequence_number.

        Raises ``SessionError`` when the state does not allow the request or the window is
        full, and ``SmppError`` when a field does not fit; nothing is queued then.
        """
        cid = pdu.command_id
        state = self.state
        if state is State.CLOSED:
            raise SessionError("session is closed", CommandStatus.ESME_RINVBNDSTS)
        if cid & RESPONSE_BIT:
            data = encode_pdu(pdu)
            self._out.append(data)
            if cid != _NACK and self.inbound_pending:
                self.inbound_pending -= 1
                if not self.inbound_pending:
                    if self._peer_unbind is not None:
                        self._answer_peer_unbind(self._pending)
                    elif self._drain is not None:
                        self._close(self._drain[0], self._pending)
            if cid in BIND_RESULT and self.role is Role.SMSC and state is State.OPEN:
                if pdu.command_status == CommandStatus.ESME_ROK:
                    self._set_state(BIND_RESULT[cid], None)
                else:
                    self._close("bind refused", self._pending)
            return pdu.sequence_number
        states = REQUEST_STATES.get((self.role, cid))
        if states is None or state not in states:
            raise SessionError(f"{pdu.command_name} may not be sent in {state.name}",
                               CommandStatus.ESME_RINVBNDSTS)
        # outbind and alert_notification have no response: nothing to wait for, no window.
        answered = pdu.response_class is not None
        if answered and cid not in _CONTROL and self.window.room <= 0:
            raise SessionError("window full", CommandStatus.ESME_RTHROTTLED)
        pdu.sequence_number = self.window.next_sequence()
        data = encode_pdu(pdu)
        if answered:
            self.window.add(pdu, context, now + self.config.response_timeout_s)
        self._out.append(data)
        if cid == _UNBIND:
            self._set_state(State.UNBOUND, None)
        elif cid == _ENQUIRE:
            self._enquire_pending = True
            self._last_enquire = now
        return pdu.sequence_number

    def unbind(self, now: float) -> list[Event]:
        """Start the unbind handshake (bound) or close at once (not bound)."""
        events = self.take_events()
        old = self.state
        if old in BOUND_STATES:
            self.send(Unbind(), now)
            events.append(StateChanged(old, State.UNBOUND))
        elif old is State.OPEN or old is State.OUTBOUND:
            self._close("closed before bind", events)
        return events

    # --- input ------------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes from the transport; returns the events they caused."""
        events = self.take_events()
        if self.state is State.CLOSED or self._drain is not None:
            return events
        self._last_rx = now
        try:
            frames = self._frames.feed(data)
        except FramingError as exc:
            for frame in exc.frames:
                self._handle_frame(frame, now, events)
                if self.closed:  # e.g. an unbind before the broken frame: nothing more
                    return events
            events.append(ProtocolError(str(exc), exc.command_status, exc.command_id,
                                        exc.sequence_number))
            self._out.append(encode_pdu(GenericNack(exc.sequence_number, exc.command_status)))
            if self.inbound_pending and self._peer_unbind is None:
                # The stream cannot be read past this point, but requests before it (submits
                # awaiting a durable commit) still get their answers before the close.
                self._set_state(State.UNBOUND, events)
                self._drain = ("framing error", now + self.config.response_timeout_s)
            else:
                self._close("framing error", events)
            return events
        for frame in frames:
            self._handle_frame(frame, now, events)
            if self.closed:
                break
        return events

    def connection_lost(self, now: float, reason: str = "connection lost") -> list[Event]:
        """The transport is gone: fail every outstanding request and close."""
        events = self.take_events()
        if self.state is not State.CLOSED:
            self._close(reason, events)
        return events

    def _handle_frame(self, frame: bytes, now: float, events: list[Event]) -> None:
        try:
            pdu = decode_pdu(frame)
        except PduError as exc:
            self._bad_pdu(exc, events)
            return
        cid = pdu.command_id
        if cid & RESPONSE_BIT:
            self._handle_response(pdu, events)
            return
        if cid == _ENQUIRE:
            self._answer(pdu, 0)
            return
        states = REQUEST_STATES.get((self._peer, cid))
        if states is None or self.state not in states:
            status = (CommandStatus.ESME_RALYBND
                      if cid in _BINDS and self.state in BOUND_STATES
                      else CommandStatus.ESME_RINVBNDSTS)
            events.append(ProtocolError(f"{pdu.command_name} not allowed in {self.state.name}",
                                        status, cid, pdu.sequence_number))
            self._answer(pdu, status)
            return
        if cid == _UNBIND:
            self._set_state(State.UNBOUND, events)
            if self.inbound_pending:
                # Answers to earlier requests (e.g. submits awaiting a durable commit) go
                # out before unbind_resp, so the peer never loses an id it was owed.
                self._peer_unbind = (pdu.sequence_number, now + self.config.response_timeout_s)
            else:
                self._peer_unbind = (pdu.sequence_number, now)
                self._answer_peer_unbind(events)
            return
        if pdu.response_class is not None:
            limit = self.config.inbound_window
            if limit and self.inbound_pending >= limit and cid not in _BINDS:
                events.append(ProtocolError("peer exceeded its window",
                                            CommandStatus.ESME_RTHROTTLED, cid,
                                            pdu.sequence_number))
                self._answer(pdu, CommandStatus.ESME_RTHROTTLED)
                return
            self.inbound_pending += 1
        elif cid == CommandId.outbind:
            self._set_state(State.OUTBOUND, events)
        events.append(RequestReceived(pdu))

    def _handle_response(self, pdu: Pdu, events: list[Event]) -> None:
        item = self.window.pop(pdu.sequence_number)
        if item is None:
            # Reference 5.4: never answer a response; log and drop.
            events.append(ProtocolError(f"unexpected {pdu.command_name}", pdu.command_status,
                                        pdu.command_id, pdu.sequence_number))
            return
        request = item.request
        rcid = request.command_id
        if pdu.command_id != _NACK and pdu.command_id != rcid | RESPONSE_BIT:
            events.append(ProtocolError(f"{pdu.command_name} answers {request.command_name}",
                                        pdu.command_status, pdu.command_id,
                                        pdu.sequence_number))
            self._request_failed(item, FailureReason.MISMATCHED_RESPONSE, events)
            return
        if rcid == _ENQUIRE:
            self._enquire_pending = False
        elif (rcid in _BINDS and self.state in (State.OPEN, State.OUTBOUND)
              and pdu.command_status == CommandStatus.ESME_ROK and pdu.command_id in BIND_RESULT):
            self._set_state(BIND_RESULT[pdu.command_id], events)
        events.append(ResponseReceived(pdu, request, item.context))
        if rcid == _UNBIND:
            self._close("unbound", events)

    def _bad_pdu(self, exc: PduError, events: list[Event]) -> None:
        events.append(ProtocolError(str(exc), exc.command_status, exc.command_id,
                                    exc.sequence_number))
        if exc.command_id & RESPONSE_BIT:
            item = self.window.pop(exc.sequence_number)
            if item is not None:
                self._request_failed(item, FailureReason.MALFORMED_RESPONSE, events)
            return
        cls = pdu_class(exc.command_id)
        resp = cls.response_class if cls is not None else None
        if resp is None:
            resp = GenericNack
        self._out.append(encode_pdu(resp(exc.sequence_number, exc.command_status)))

    def _request_failed(self, item: Outstanding, reason: FailureReason,
                        events: list[Event]) -> None:
        """A request answered wrongly: fail it and undo what waiting for it held up."""
        events.append(RequestFailed(item.request, item.context, reason))
        cid = item.request.command_id
        if cid == _ENQUIRE:
            self._enquire_pending = False  # else no enquire_link would ever be sent again
        elif cid == _UNBIND:
            self._close(reason.value, events)  # else UNBOUND with no timer left: stuck forever

    def _answer_peer_unbind(self, events: list[Event]) -> None:
        assert self._peer_unbind is not None
        self._out.append(encode_pdu(UnbindResp(self._peer_unbind[0])))
        self._peer_unbind = None
        self._close("unbound by peer", events)

    def _answer(self, pdu: Pdu, status: int) -> None:
        resp = pdu.response_class or GenericNack
        self._out.append(encode_pdu(resp(pdu.sequence_number, status)))

    # --- timers -----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` must next be called, or None when no timer runs."""
        state = self.state
        if state is State.CLOSED:
            return None
        cfg = self.config
        deadline = self.window.first_deadline()
        candidates: list[float] = [] if deadline is None else [deadline]
        if self._peer_unbind is not None:
            candidates.append(self._peer_unbind[1])
        if self._drain is not None:
            candidates.append(self._drain[1])
        if state is State.OPEN or state is State.OUTBOUND:
            candidates.append(self._opened + cfg.session_init_s)
        elif state in BOUND_STATES:
            if cfg.inactivity_s:
                candidates.append(self._last_rx + cfg.inactivity_s)
            if cfg.enquire_link_s and not self._enquire_pending:
                candidates.append(max(self._last_rx, self._last_enquire) + cfg.enquire_link_s)
        return min(candidates) if candidates else None

    def handle_timer(self, now: float) -> list[Event]:
        """Run every timer due at ``now``; returns the events they caused."""
        events = self.take_events()
        state = self.state
        if state is State.CLOSED:
            return events
        cfg = self.config
        if (state is State.OPEN or state is State.OUTBOUND) and (
                now >= self._opened + cfg.session_init_s):
            self._close("no bind within session_init_s", events)
            return events
        if self._peer_unbind is not None and now >= self._peer_unbind[1]:
            self._answer_peer_unbind(events)
            return events
        if self._drain is not None and now >= self._drain[1]:
            self._close(f"{self._drain[0]}; answers still owed at response_timeout_s", events)
            return events
        for item in self.window.pop_expired(now):
            cid = item.request.command_id
            events.append(RequestFailed(item.request, item.context,
                                        FailureReason.RESPONSE_TIMEOUT))
            if cid in _CONTROL or cid in _BINDS:
                self._close(f"no answer to {item.request.command_name}", events)
                return events
        if self.state in BOUND_STATES:
            if cfg.inactivity_s and now >= self._last_rx + cfg.inactivity_s:
                events.extend(self.unbind(now))
            elif (cfg.enquire_link_s and not self._enquire_pending
                  and now >= max(self._last_rx, self._last_enquire) + cfg.enquire_link_s):
                self.send(EnquireLink(), now)
        return events

    # --- state ------------------------------------------------------------------------------

    def _set_state(self, new: State, events: list[Event] | None) -> None:
        old = self.state
        if old is new:
            return
        self.state = new
        if events is not None:
            events.append(StateChanged(old, new))

    def _close(self, reason: str, events: list[Event]) -> None:
        """Close: every request still in the window fails. ``events`` is never optional, so
        no close can lose them (inside ``send`` it is ``self._pending``)."""
        self.close_reason = reason
        failed: list[Outstanding] = self.window.pop_all()
        self._set_state(State.CLOSED, events)
        closed = FailureReason.SESSION_CLOSED
        for item in failed:
            events.append(RequestFailed(item.request, item.context, closed, reason))
        events.append(SessionClosed(reason))
