"""The simulator's messages and their delivery receipts (reference section 10).

A ``Message`` is what the simulator remembers of an accepted submit: addresses, the first
characters of its text, its final state and when that state is reached. States are lazy:
before ``done_at`` a message is ENROUTE (unless cancelled), after it has its final state, so
query_sm needs no timer. ``MessageStore`` keeps the newest ``history`` messages by id number.
``build_receipt`` writes the deliver_sm: esm_class 0x04, addresses swapped, the Appendix B
text (dates in UTC), and the receipted_message_id / message_state (/ network_error_code) TLVs.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import Final

from encoding.constants import EsmClass, MessageState
from encoding.pdu import DeliverSm, TlvMap
from encoding.receipt import STAT_TO_STATE, format_receipt

__all__ = ["Message", "MessageStore", "build_receipt", "final_date", "text_head"]

_ENROUTE: Final = int(MessageState.ENROUTE)
_DELETED: Final = int(MessageState.DELETED)
_GSM_NETWORK: Final = 3  # network_error_code network type: GSM (SMPP 3.4 section 5.3.2.31)


class Message:
    """One accepted message (one destination of a submit_multi counts as one)."""

    __slots__ = ("cancelled", "done_at", "done_wall", "dst", "dst_npi", "dst_ton", "err",
                 "id", "n", "src", "src_npi", "src_ton", "stat", "submit_wall", "system_id",
                 "text")

    def __init__(self, n: int, message_id: str, system_id: str, src: str, src_ton: int,
                 src_npi: int, dst: str, dst_ton: int, dst_npi: int, text: str, stat: str,
                 err: int, submit_wall: float, done_at: float, done_wall: float) -> None:
        self.n = n
        self.id = message_id
        self.system_id = system_id
        self.src = src
        self.src_ton = src_ton
        self.src_npi = src_npi
        self.dst = dst
        self.dst_ton = dst_ton
        self.dst_npi = dst_npi
        self.text = text
        self.stat = stat
        self.err = err
        self.submit_wall = submit_wall
        self.done_at = done_at  # loop time of the final state
        self.done_wall = done_wall  # wall-clock time of the final state
        self.cancelled = False

    def state(self, now: float) -> int:
        """message_state at loop time ``now``."""
        if self.cancelled:
            return _DELETED
        if now < self.done_at:
            return _ENROUTE
        return STAT_TO_STATE[self.stat]

    def cancel(self, now: float) -> bool:
        """cancel_sm: only a message not yet final can be cancelled."""
        if self.cancelled or now >= self.done_at:
            return False
        self.cancelled = True
        return True


class MessageStore:
    """The newest ``capacity`` messages by id number (oldest evicted first)."""

    __slots__ = ("_by_n", "_order", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._by_n: dict[int, Message] = {}
        self._order: deque[int] = deque()

    def __len__(self) -> int:
        return len(self._by_n)

    def add(self, message: Message) -> None:
        if self.capacity <= 0:
            return
        by_n = self._by_n
        if message.n not in by_n:
            self._order.append(message.n)
            if len(self._order) > self.capacity:
                by_n.pop(self._order.popleft(), None)
        by_n[message.n] = message

    def get(self, n: int) -> Message | None:
        return self._by_n.get(n)

    def clear(self) -> None:
        self._by_n.clear()
        self._order.clear()


def text_head(short_message: bytes, esm_class: int, data_coding: int) -> str:
    """The first 20 characters of a submitted text, for the receipt's ``text:`` field."""
    data = short_message
    if esm_class & EsmClass.UDHI and data:
        data = data[1 + data[0]:]
    if data_coding == 8:
        return data[:40].decode("utf-16-be", errors="replace")[:20]
    return data[:20].decode("latin-1")


def final_date(wall: float) -> str:
    """A message's final time as an SMPP absolute time (``YYMMDDhhmmss000+``, UTC)."""
    return datetime.fromtimestamp(wall, UTC).strftime("%y%m%d%H%M%S") + "000+"


def build_receipt(message: Message, receipted_id: str) -> DeliverSm:
    """The deliver_sm receipt of ``message``; its id written as ``receipted_id``."""
    stat = message.stat
    state = STAT_TO_STATE[stat]
    err = message.err
    text = format_receipt(
        receipted_id,
        stat,
        err=f"{err:03d}",
        submit_date=datetime.fromtimestamp(message.submit_wall, UTC),
        done_date=datetime.fromtimestamp(message.done_wall, UTC),
        text=message.text,
    )
    tlvs: TlvMap = {"receipted_message_id": receipted_id, "message_state": state}
    if err:
        tlvs["network_error_code"] = bytes((_GSM_NETWORK, err >> 8 & 0xFF, err & 0xFF))
    return DeliverSm(
        source_addr_ton=message.dst_ton,
        source_addr_npi=message.dst_npi,
        source_addr=message.dst,
        dest_addr_ton=message.src_ton,
        dest_addr_npi=message.src_npi,
        destination_addr=message.src,
        esm_class=EsmClass.TYPE_DELIVERY_RECEIPT,
        data_coding=0,
        short_message=text,
        tlvs=tlvs,
    )
