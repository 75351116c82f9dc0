"""Where the simulator's own deliver_sm go: queues per system_id, sent as bind windows allow.

Receipts are addressed to a system_id (the one that submitted); MO to a configured system_id
or to any receiver bind (key ``None``). Each key has one FIFO queue; ``pump`` hands queued
PDUs to the receive-capable binds of that key, one at a time round robin among binds with
window room, so a slow bind does not hold back the others and no bind gets more than its
window. A PDU whose bind dies before it is answered goes back to the front of its queue. A
queue with no bind simply waits: ``add_bind`` pumps it. ``enqueue`` only marks the key
dirty; ``flush`` pumps dirty keys once per batch. ``on_send(context)`` is called for each PDU
handed to a bind (for counters).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from encoding.pdu import Pdu

__all__ = ["Outbox", "Sender"]


class _Window(Protocol):
    @property
    def room(self) -> int: ...


class _Session(Protocol):
    @property
    def closed(self) -> bool: ...

    @property
    def window(self) -> _Window: ...


class Sender(Protocol):
    """What a bind must offer (``esme.connection.Connection`` does)."""

    @property
    def session(self) -> Any: ...

    def try_send(self, pdu: Pdu, context: Any = None) -> int | None: ...


Key = str | None  # a system_id, or None for "any receiver bind"


class Outbox:
    """Per-key queues of (pdu, context) and the receive-capable binds of each system_id."""

    __slots__ = ("_binds", "_dirty", "_on_send", "_queues", "_rr")

    def __init__(self, on_send: Callable[[Any], None] | None = None) -> None:
        self._on_send = on_send
        self._queues: dict[Key, deque[tuple[Pdu, Any]]] = {}
        self._binds: dict[str, list[Sender]] = {}
        self._dirty: set[Key] = set()
        self._rr = 0

    # --- binds ------------------------------------------------------------------------------

    def add_bind(self, system_id: str, conn: Sender) -> None:
        self._binds.setdefault(system_id, []).append(conn)
        self.pump(system_id)
        self.pump(None)

    def remove_bind(self, system_id: str, conn: Sender) -> None:
        binds = self._binds.get(system_id)
        if binds and conn in binds:
            binds.remove(conn)
            if not binds:
                del self._binds[system_id]

    def bound(self, key: Key) -> bool:
        return bool(self._binds_for(key))

    # --- queues -----------------------------------------------------------------------------

    def enqueue(self, key: Key, pdu: Pdu, context: Any) -> None:
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        queue.append((pdu, context))
        self._dirty.add(key)

    def requeue(self, key: Key, pdu: Pdu, context: Any) -> None:
        """Put a PDU whose bind failed back at the front of its queue."""
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        queue.appendleft((pdu, context))
        self._dirty.add(key)

    def queued(self, key: Key) -> int:
        """PDUs waiting in the queue of one key."""
        queue = self._queues.get(key)
        return len(queue) if queue else 0

    def total_queued(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def mark(self, key: Key) -> None:
        """A bind of ``key`` has room again (a response arrived): pump at the next flush."""
        self._dirty.add(key)
        if key is not None:
            self._dirty.add(None)

    def flush(self) -> None:
        """Pump every key touched since the last flush."""
        if not self._dirty:
            return
        dirty = self._dirty
        self._dirty = set()
        for key in dirty:
            self.pump(key)

    def clear(self) -> None:
        self._queues.clear()
        self._binds.clear()
        self._dirty.clear()

    # --- sending ----------------------------------------------------------------------------

    def _binds_for(self, key: Key) -> list[Sender]:
        if key is not None:
            return self._binds.get(key, [])
        return [conn for binds in self._binds.values() for conn in binds]

    def pump(self, key: Key) -> int:
        """Send what fits in the windows of ``key``'s binds; returns how many were sent."""
        queue = self._queues.get(key)
        if not queue:
            return 0
        binds = self._binds_for(key)
        if not binds:
            return 0
        self._rr = (self._rr + 1) % len(binds)
        ready: list[list[Any]] = []
        for conn in binds[self._rr:] + binds[:self._rr]:
            session = conn.session
            room = session.window.room
            if room > 0 and not session.closed:
                ready.append([conn, room])
        sent = 0
        while queue and ready:
            for slot in list(ready):
                if not queue:
                    break
                conn = slot[0]
                pdu, context = queue.popleft()
                if conn.try_send(pdu, context) is None:
                    queue.appendleft((pdu, context))
                    ready.remove(slot)
                    continue
                sent += 1
                if self._on_send is not None:
                    self._on_send(context)
                slot[1] -= 1
                if slot[1] <= 0:
                    ready.remove(slot)
        return sent
