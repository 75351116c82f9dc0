"""Bind states and the table of which requests each side may send in each state.

SMPP 3.4 section 2.2 (session states) and 2.3 / 4 (operations per state); UNBOUND and
OUTBOUND come from SMPP v5 section 2.3. The table is data: ``REQUEST_STATES`` says, for each
request command_id and the role that sends it, the states in which it is allowed. A request
outside its row is answered with ESME_RINVBNDSTS (reference section 5.1).
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from ..constants import CommandId as C

__all__ = ["Role", "State", "REQUEST_STATES", "BIND_RESULT", "BOUND_STATES", "allowed",
           "RECEIVE_CAPABLE", "TRANSMIT_CAPABLE"]


class Role(Enum):
    """Which end of the session we are: the ESME (client) or the SMSC (server)."""

    ESME = "esme"
    SMSC = "smsc"

    @property
    def peer(self) -> Role:
        return Role.SMSC if self is Role.ESME else Role.ESME


class State(Enum):
    OPEN = "open"
    OUTBOUND = "outbound"
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBOUND = "unbound"
    CLOSED = "closed"


_O, _OB = State.OPEN, State.OUTBOUND
_TX, _RX, _TRX = State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX
BOUND_STATES: Final = frozenset({_TX, _RX, _TRX})
TRANSMIT_CAPABLE: Final = frozenset({_TX, _TRX})
RECEIVE_CAPABLE: Final = frozenset({_RX, _TRX})
_ANY: Final = frozenset(State) - {State.CLOSED}
_E, _S = Role.ESME, Role.SMSC

# (sender role, request command_id) -> states in which that request may be sent.
REQUEST_STATES: Final[dict[tuple[Role, int], frozenset[State]]] = {
    (_E, C.bind_transmitter): frozenset({_O, _OB}),
    (_E, C.bind_receiver): frozenset({_O, _OB}),
    (_E, C.bind_transceiver): frozenset({_O, _OB}),
    (_E, C.submit_sm): TRANSMIT_CAPABLE,
    (_E, C.submit_multi): TRANSMIT_CAPABLE,
    # Reference 1.2 note: accept query/cancel/replace on both TX and TRX, as v5 does.
    (_E, C.query_sm): TRANSMIT_CAPABLE,
    (_E, C.cancel_sm): TRANSMIT_CAPABLE,
    (_E, C.replace_sm): TRANSMIT_CAPABLE,
    (_E, C.data_sm): TRANSMIT_CAPABLE,
    (_S, C.data_sm): RECEIVE_CAPABLE,
    (_S, C.deliver_sm): RECEIVE_CAPABLE,
    (_S, C.alert_notification): RECEIVE_CAPABLE,
    (_S, C.outbind): frozenset({_O}),
    (_E, C.unbind): BOUND_STATES,
    (_S, C.unbind): BOUND_STATES,
    # Reference 5.5: answer enquire_link in every state (3.4 lists bound states only).
    (_E, C.enquire_link): _ANY,
    (_S, C.enquire_link): _ANY,
}

# A successful bind response moves both ends to this state (SMPP 3.4 section 2.2).
BIND_RESULT: Final[dict[int, State]] = {
    C.bind_transmitter_resp: _TX,
    C.bind_receiver_resp: _RX,
    C.bind_transceiver_resp: _TRX,
}


def allowed(sender: Role, command_id: int, state: State) -> bool:
    """May ``sender`` send request ``command_id`` while the session is in ``state``?"""
    states = REQUEST_STATES.get((sender, command_id))
    return states is not None and state in states
