"""How the simulated SMSC answers each request: binds, submits, queries, cancels.

``RequestHandler.handle(conn, pdu)`` looks the command up in a table and carries out what
``behaviour.decide_submit`` decided: answer now or later (``Timeline``), never, with a
generic_nack or with garbage; on success it issues a counter-based id, remembers the message
(``MessageStore``) and schedules its receipt at the message's final time when
registered_delivery asks (1 always, 2 on failure only, 3 on success only as in v5).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any, Final, Protocol

from config.simulator import SimulatorConfig
from encoding.constants import CommandId, CommandStatus, MessageState
from encoding.pdu import (
    BindTransmitter,
    CancelSm,
    DataSm,
    GenericNack,
    Pdu,
    QuerySm,
    SmeDest,
    SubmitMulti,
    SubmitSm,
    UnsuccessSme,
)
from esme.connection import Connection

from .behaviour import (
    ANSWER,
    GENERIC_NACK,
    NO_RESPONSE,
    FaultCounters,
    RateLimiter,
    StatePicker,
    decide_submit,
    format_id,
    parse_id,
    receipt_id,
)
from .delivery import Outbox
from .receipts import Message, MessageStore, build_receipt, final_date, text_head
from .timeline import Timeline

__all__ = ["Bind", "Host", "Out", "RequestHandler"]

_SUCCESS: Final = frozenset({"DELIVRD", "ACCEPTD"})
_ENROUTE: Final = int(MessageState.ENROUTE)
_SC_VERSION: Final = {"sc_interface_version": 0x34}
_SYSTEM_ID: Final = "smsc-sim"
_UNKNOWN_BASE: Final = 0xF0000000  # ids of receipts for messages never issued
_S = CommandStatus


class Bind:
    """What a bound connection is (``conn.context``)."""

    __slots__ = ("dropping", "receiver", "submits", "system_id")

    def __init__(self, system_id: str, receiver: bool) -> None:
        self.system_id = system_id
        self.receiver = receiver
        self.submits = 0
        self.dropping = False


class Out:
    """Context of one of our deliver_sm: ``kind`` "receipt" or "mo", and its outbox key."""

    __slots__ = ("key", "kind")

    def __init__(self, kind: str, key: str | None) -> None:
        self.kind = kind
        self.key = key


Dest = tuple[str, int, int]  # address, ton, npi


class Host(Protocol):
    """What a ``RequestHandler`` uses of the simulator it answers for (``server.Simulator``).

    The handler is the simulator's child: it gets this narrow view of its parent, so this
    module never imports ``server``.
    """

    @property
    def config(self) -> SimulatorConfig: ...

    @property
    def rng(self) -> random.Random: ...

    @property
    def stats(self) -> dict[str, Any]: ...

    @property
    def record(self) -> bool: ...  # keep each submit in ``received``

    @property
    def received(self) -> list[Pdu]: ...

    @property
    def store(self) -> MessageStore: ...

    @property
    def outbox(self) -> Outbox: ...

    def bound(self, conn: Connection, bind: Bind) -> None:
        """A bind succeeded: ``conn.context`` becomes ``bind``."""


class RequestHandler:
    """Answers the requests of every connection of one simulator (its ``Host``)."""

    def __init__(self, sim: Host, loop: asyncio.AbstractEventLoop,
                 timeline: Timeline) -> None:
        self.sim = sim
        self.cfg = cfg = sim.config
        self.loop = loop
        self.timeline = timeline
        self.rng = sim.rng
        self.counters = FaultCounters()
        tps = cfg.faults.throttle_tps
        self.limiter = RateLimiter(tps) if tps else None
        self.picker = StatePicker(cfg.final_states, sim.rng)
        self.accounts = {a.system_id: a.password for a in cfg.accounts}
        self.next_n = sim.rng.randrange(0x10000000, 0x70000000)
        self.unknown_n = _UNKNOWN_BASE
        self.receipt_requests = 0
        self.status_names: dict[int, str] = {}
        delay = cfg.receipt_delay_ms
        self.delay_min = delay.min / 1000.0
        self.delay_max = delay.max / 1000.0
        C = CommandId
        self.table: dict[int, Callable[[Connection, Any], None]] = {
            C.bind_transmitter: self._bind,
            C.bind_receiver: self._bind,
            C.bind_transceiver: self._bind,
            C.submit_sm: self._submit_sm,
            C.data_sm: self._data_sm,
            C.submit_multi: self._submit_multi,
            C.query_sm: self._query_sm,
            C.cancel_sm: self._cancel_sm,
            C.replace_sm: self._refuse_replace,
        }

    def handle(self, conn: Connection, pdu: Pdu) -> None:
        fn = self.table.get(pdu.command_id)
        if fn is not None:
            fn(conn, pdu)
        elif pdu.response_class is not None:
            conn.send(pdu.response(_S.ESME_RINVCMDID))
        else:
            conn.send(GenericNack(sequence_number=pdu.sequence_number,
                                  command_status=_S.ESME_RINVCMDID))

    # --- binds ------------------------------------------------------------------------------

    def _auth(self, system_id: str, password: str) -> int:
        if not self.accounts:
            return 0
        expected = self.accounts.get(system_id)
        if expected is None:
            return _S.ESME_RINVSYSID
        return 0 if password == expected else _S.ESME_RINVPASWD

    def _bind(self, conn: Connection, pdu: Any) -> None:
        status = self._auth(pdu.system_id, pdu.password)
        stats = self.sim.stats
        if status:
            conn.send(pdu.response(status, system_id=_SYSTEM_ID))
            stats["bind_refused"] += 1
            return
        conn.send(pdu.response(0, system_id=_SYSTEM_ID, tlvs=dict(_SC_VERSION)))
        stats["binds"] += 1
        self.sim.bound(conn, Bind(pdu.system_id, not isinstance(pdu, BindTransmitter)))

    # --- submits ----------------------------------------------------------------------------

    def _submit_sm(self, conn: Connection, pdu: SubmitSm) -> None:
        self.sim.stats["submit_sm"] += 1
        self._submit(conn, pdu, pdu.source_addr, pdu.source_addr_ton, pdu.source_addr_npi,
                     [(pdu.destination_addr, pdu.dest_addr_ton, pdu.dest_addr_npi)],
                     pdu.registered_delivery, pdu.short_message, pdu.esm_class,
                     pdu.data_coding)

    def _data_sm(self, conn: Connection, pdu: DataSm) -> None:
        self.sim.stats["data_sm"] += 1
        payload = pdu.tlvs.get("message_payload", b"")
        self._submit(conn, pdu, pdu.source_addr, pdu.source_addr_ton, pdu.source_addr_npi,
                     [(pdu.destination_addr, pdu.dest_addr_ton, pdu.dest_addr_npi)],
                     pdu.registered_delivery,
                     payload if isinstance(payload, bytes) else b"",
                     pdu.esm_class, pdu.data_coding)

    def _submit_multi(self, conn: Connection, pdu: SubmitMulti) -> None:
        self.sim.stats["submit_multi"] += 1
        dests: list[Dest] = []
        refused: list[UnsuccessSme] = []
        for dest in pdu.dest_address:
            if isinstance(dest, SmeDest):
                dests.append((dest.destination_addr, dest.dest_addr_ton, dest.dest_addr_npi))
            else:
                refused.append(UnsuccessSme(dest.dl_name, _S.ESME_RINVDLNAME))
        self._submit(conn, pdu, pdu.source_addr, pdu.source_addr_ton, pdu.source_addr_npi,
                     dests, pdu.registered_delivery, pdu.short_message, pdu.esm_class,
                     pdu.data_coding, refused)

    def _submit(self, conn: Connection, pdu: Pdu, src: str, src_ton: int, src_npi: int,
                dests: list[Dest], registered: int, text: bytes, esm_class: int,
                data_coding: int, refused: list[UnsuccessSme] | None = None) -> None:
        sim = self.sim
        stats = sim.stats
        stats["submits"] += 1
        if sim.record:
            sim.received.append(pdu)
        bind: Bind = conn.context
        now = self.loop.time()
        decision = decide_submit(self.cfg, self.counters, self.limiter, self.picker,
                                 bind.system_id, dests[0][0] if dests else "", now)
        kind = decision.kind
        if kind != ANSWER:
            if kind == NO_RESPONSE:
                stats["no_response"] += 1
            elif kind == GENERIC_NACK:
                stats["generic_nacks"] += 1
                self._respond(conn, GenericNack(sequence_number=pdu.sequence_number,
                                                command_status=decision.status),
                              decision.delay_s, now)
            else:
                stats["garbage"] += 1
                conn.flush()
                if conn.transport is not None:
                    # Random bytes whose "command_length" exceeds 2 GiB: every framer rejects it.
                    junk = bytearray(self.rng.randbytes(self.rng.randint(8, 64)))
                    junk[0] |= 0x80
                    conn.transport.write(bytes(junk))
        elif decision.status or not dests:
            self._respond(conn, pdu.response(decision.status or _S.ESME_RINVNUMDESTS),
                          decision.delay_s, now)
        else:
            self._accept(conn, pdu, bind, src, src_ton, src_npi, dests, registered, text,
                         esm_class, data_coding, refused, decision.stat or "DELIVRD",
                         decision.err, decision.delay_s, now)
        bind.submits += 1
        every = self.cfg.faults.drop_connection_every
        if every and bind.submits % every == 0:
            bind.dropping = True
            stats["dropped_connections"] += 1
            conn.close()

    def _accept(self, conn: Connection, pdu: Pdu, bind: Bind, src: str, src_ton: int,
                src_npi: int, dests: list[Dest], registered: int, text: bytes,
                esm_class: int, data_coding: int, refused: list[UnsuccessSme] | None,
                stat: str, err: int, delay_s: float, now: float) -> None:
        n = self.next_n
        self.next_n = n + 1
        message_id = format_id(n, self.cfg.id_format)
        if refused is None:
            resp = pdu.response(0, message_id=message_id)
        else:
            resp = pdu.response(0, message_id=message_id, unsuccess_sme=refused)
        self._respond(conn, resp, delay_s, now)
        wall = time.time()
        delay = delay_s + (self.delay_min if self.delay_max <= self.delay_min
                           else self.rng.uniform(self.delay_min, self.delay_max))
        mode = registered & 0x03
        wanted = mode == 1 or (mode == 2 and stat not in _SUCCESS) or (
            mode == 3 and stat in _SUCCESS)
        head = text_head(text, esm_class, data_coding) if wanted else ""
        for address, ton, npi in dests:
            message = Message(n, message_id, bind.system_id, src, src_ton, src_npi, address,
                              ton, npi, head, stat, err, wall, now + delay, wall + delay)
            self.sim.store.add(message)
            if wanted:
                self._schedule_receipt(message)

    def _schedule_receipt(self, message: Message) -> None:
        stats = self.sim.stats
        stats["receipts_scheduled"] += 1
        if message.done_at <= self.loop.time():
            self._fire_receipt(message)  # no delay: goes out with this batch's flush
        else:
            self.timeline.add(message.done_at, self._fire_receipt, message)
        self.receipt_requests += 1
        every = self.cfg.faults.unknown_receipt_every
        if every and self.receipt_requests % every == 0:
            self.unknown_n += 1
            n = self.unknown_n
            ghost = Message(n, format_id(n, self.cfg.id_format), message.system_id,
                            message.src, message.src_ton, message.src_npi, message.dst,
                            message.dst_ton, message.dst_npi, message.text, message.stat,
                            message.err, message.submit_wall, message.done_at,
                            message.done_wall)
            self.timeline.add(message.done_at, self._fire_unknown, ghost)

    def _fire_receipt(self, message: Message) -> None:
        if message.cancelled:
            return
        rid = receipt_id(message.n, message.id, self.cfg.receipt_id_format)
        key = message.system_id
        self.sim.outbox.enqueue(key, build_receipt(message, rid), Out("receipt", key))
        counts = self.sim.stats["receipt_stats"]
        counts[message.stat] = counts.get(message.stat, 0) + 1

    def _fire_unknown(self, message: Message) -> None:
        self.sim.stats["unknown_receipts"] += 1
        self._fire_receipt(message)

    def _respond(self, conn: Connection, resp: Pdu, delay_s: float, now: float) -> None:
        status = resp.command_status
        name = self.status_names.get(status)
        if name is None:
            name = self.status_names[status] = _status_name(status)
        counts = self.sim.stats["submit_resps"]
        counts[name] = counts.get(name, 0) + 1
        if delay_s > 0:
            self.timeline.add(now + delay_s, _send_late, (conn, resp))
        else:
            conn.send(resp)

    # --- query, cancel, replace -------------------------------------------------------------

    def _find(self, message_id: str) -> Message | None:
        n = parse_id(message_id, self.cfg.id_format)
        return None if n is None else self.sim.store.get(n)

    def _query_sm(self, conn: Connection, pdu: QuerySm) -> None:
        self.sim.stats["query_sm"] += 1
        message = self._find(pdu.message_id)
        if message is None:
            conn.send(pdu.response(_S.ESME_RQUERYFAIL, message_id=pdu.message_id))
            return
        state = message.state(self.loop.time())
        final = state != _ENROUTE
        done = time.time() if message.cancelled else message.done_wall
        conn.send(pdu.response(0, message_id=message.id,
                               final_date=final_date(done) if final else "",
                               message_state=state,
                               error_code=min(message.err, 255) if final else 0))

    def _cancel_sm(self, conn: Connection, pdu: CancelSm) -> None:
        self.sim.stats["cancel_sm"] += 1
        message = self._find(pdu.message_id)
        ok = message is not None and message.cancel(self.loop.time())
        conn.send(pdu.response(0 if ok else _S.ESME_RCANCELFAIL))

    def _refuse_replace(self, conn: Connection, pdu: Pdu) -> None:
        conn.send(pdu.response(_S.ESME_RREPLACEFAIL))


def _send_late(item: tuple[Connection, Pdu]) -> None:
    conn, resp = item
    if conn.transport is not None and not conn.session.closed:
        conn.try_send(resp)


def _status_name(status: int) -> str:
    try:
        return CommandStatus(status).name
    except ValueError:
        return f"0x{status:08X}"
