"""One bind to an operator SMSC: connect, bind, keep the window full, reconnect on loss.

A bind sends submit_sm only while bound, within its window (SMPP 3.4 section 3.2 / reference
5.3: throughput is window / round-trip, not 1 / round-trip) and its tps token bucket. Flow
control answers (ESME_RTHROTTLED, ESME_RMSGQFUL) pause this bind with growing back-off;
session errors rebind. A lost connection fails its outstanding submits back to the router,
which sends them again (at least once). Reconnects back off exponentially with jitter; an
ESME_RALYBND answer to our bind backs off too (reference 5.5).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from typing import Any

from config import OperatorConfig
from encoding.constants import CommandId, CommandStatus, EsmClass, status_name
from encoding.pdu import BindReceiver, BindTransceiver, BindTransmitter, DataSm, DeliverSm, Pdu
from encoding.receipt import parse_receipt
from encoding.session import (
    Event,
    ProtocolError,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    Role,
    SessionConfig,
)
from routing.jobs import Job
from routing.retry import Outcome
from routing.throttle import TokenBucket, backoff

from .connection import Connection
from .owner import BindOwner
from .tls import OperatorContext, TlsSetupError

__all__ = ["OperatorBind"]

log = logging.getLogger("esme")
_BIND_PDU = {"transceiver": BindTransceiver, "transmitter": BindTransmitter,
             "receiver": BindReceiver}
_RECEIPT_TYPES = (EsmClass.TYPE_DELIVERY_RECEIPT, EsmClass.TYPE_INTERMEDIATE_NOTIFICATION)
_BIND_COMMANDS = frozenset({CommandId.bind_transmitter, CommandId.bind_receiver,
                            CommandId.bind_transceiver})


class OperatorBind:
    """One connection slot toward an operator (a transceiver, transmitter or receiver)."""

    def __init__(self, pool: BindOwner, op: OperatorConfig, bind_type: str, index: int) -> None:
        self.pool = pool
        self.op = op
        self.bind_type = bind_type
        self.name = f"{op.name}#{index}{bind_type[0]}"
        self.slot = index  # a cluster's lease of this slot lets this node open it
        self.transmits = bind_type in ("transceiver", "transmitter")
        self.conn: Connection | None = None
        self.bound = False
        self.bucket = TokenBucket(op.tps, 0.0)
        self.paused_until = 0.0
        self.flow_strikes = 0
        self._closed: asyncio.Future[None] | None = None
        self._pump_handle: asyncio.TimerHandle | None = None
        self._ever_bound = False
        self._answered = False  # our bind on this connection was answered
        self._tls: OperatorContext | None = None  # the TLS context of this connection
        self.retired = False  # set by ``retire``: takes no more work, never reconnects
        self.session_config = SessionConfig(
            session_init_s=10.0, enquire_link_s=op.enquire_link_s,
            inactivity_s=0.0, response_timeout_s=op.response_timeout_s, window=op.window)

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, bind, serve until the connection ends, back off, again: until the pool
        stops. A cancel ends it promptly wherever it waits (connecting, bound, backing off)
        and drops its connection: no ``except`` here catches ``CancelledError``, and no
        ``wait_for`` (which can swallow a cancel that arrives as the connect completes)."""
        loop = asyncio.get_running_loop()
        attempt = 0
        try:
            while self.pool.running and not self.retired:
                await self.pool.until_held(self)
                if not self.pool.running or self.retired:
                    break
                self._closed = loop.create_future()
                try:
                    await self._connect(loop)
                    await self._closed
                except OSError as exc:  # TimeoutError and ssl.SSLError included
                    self._connect_failed(exc)
                except TlsSetupError as exc:
                    log.error("%s: cannot set up TLS toward %s:%d: [[operators]] name = %r: "
                              "%s", self.name, self.op.host, self.op.port, self.op.name, exc)
                self.conn = None
                if not self.pool.running or self.retired:
                    break
                attempt = 1 if self._ever_bound else attempt + 1
                self._ever_bound = False
                delay = backoff(attempt, self.op.reconnect_min_s, self.op.reconnect_max_s)
                await self.pool.sleep(delay)
        finally:
            conn, self.conn = self.conn, None
            if conn is not None:  # cancelled while connected
                conn.abort()

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open the TCP connection (and the TLS session, with ``tls``) within
        ``connect_timeout_s``, then send our bind (its answer comes as an event)."""
        op = self.op
        self._answered = False
        context = self._tls = self.pool.tls_context(op) if op.tls else None
        if context is not None and not op.verify:
            log.warning("%s: TLS toward %s:%d without certificate verification "
                        "(verify = false): anyone on the path can read and change this "
                        "traffic", self.name, op.host, op.port)
        async with asyncio.timeout(op.connect_timeout_s):
            _, conn = await loop.create_connection(
                lambda: Connection(Role.ESME, self.session_config, self, loop),
                op.host, op.port, ssl=context,
                server_hostname=(op.server_hostname or op.host) if context else None,
                ssl_handshake_timeout=op.connect_timeout_s if context else None)
        self.conn = conn
        conn.send(_BIND_PDU[self.bind_type](
            system_id=self.op.system_id, password=self.op.password,
            system_type=self.op.system_type, interface_version=0x34))

    def _connect_failed(self, exc: OSError) -> None:
        op = self.op
        if isinstance(exc, ssl.SSLError):
            self.pool.count(op.name, "tls_failed")
            if isinstance(exc, ssl.SSLCertVerificationError):
                reason = f"certificate verify failed: {exc.verify_message}"
                if not op.ca and "unable to get local issuer" in exc.verify_message:
                    reason += " (set ca to the operator's CA bundle)"
                elif "mismatch" in exc.verify_message:
                    reason += (f" (checked for {op.server_hostname or op.host!r}; set "
                               "server_hostname to the name in the operator's certificate)")
            else:
                reason = exc.reason or str(exc)
            log.warning("%s: TLS handshake with %s:%d failed: %s", self.name, op.host,
                        op.port, reason)
        elif isinstance(exc, TimeoutError):
            self.pool.count(op.name, "connect_timeout")
            log.warning("%s: cannot connect to %s:%d: no %s within connect_timeout_s = %g s",
                        self.name, op.host, op.port,
                        "TCP connection and TLS handshake" if op.tls else "TCP connection",
                        op.connect_timeout_s)
        else:
            log.warning("%s: cannot connect to %s:%d: %s", self.name, op.host, op.port,
                        str(exc) or type(exc).__name__)

    async def retire(self) -> None:
        """Leave for good without losing a message in flight (a config reload removed or
        replaced this bind): take no more work, wait for the answers to what was sent
        (bounded by ``response_timeout_s``), then unbind. Receipts for those messages may
        arrive on any receiver bind of the operator afterwards."""
        self.retired = True
        self.pool.bound_changed(self.op.name)
        await self._drain()
        self.stop()

    async def leave_slot(self) -> None:
        """Close for now, without losing a message in flight (this node lets the bind's slot
        go to another node; ``pool.holds`` is already False, so nothing more is sent): wait
        for the answers to what was sent, unbind, and wait until disconnected (each bounded
        by ``response_timeout_s``). The bind opens again once its slot is here again."""
        await self._drain()
        conn = self.conn
        self.stop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.op.response_timeout_s
        while conn is not None and self.conn is conn and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if conn is not None and self.conn is conn:
            conn.abort()

    async def _drain(self) -> None:
        """Wait (bounded by ``response_timeout_s``) for the answers to what was sent."""
        conn = self.conn
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.op.response_timeout_s
        while (conn is not None and self.conn is conn and len(conn.session.window)
               and loop.time() < deadline):
            await asyncio.sleep(0.02)

    def stop(self) -> None:
        conn = self.conn
        if conn is not None:
            if conn.session.bound:
                conn.unbind()
            else:
                conn.close()
        if self._closed is not None and not self._closed.done() and conn is None:
            self._closed.set_result(None)

    # --- ConnectionHandler ------------------------------------------------------------------

    def on_events(self, conn: Connection, events: list[Event]) -> None:
        replies: list[Pdu] = []
        for ev in events:
            if type(ev) is ResponseReceived:
                if ev.context is None:
                    if ev.request.command_id in _BIND_COMMANDS:
                        self._bind_answer(ev.pdu.command_status)
                    continue
                self._submit_answer(ev.context, ev.pdu.command_status,
                                    getattr(ev.pdu, "message_id", ""))
            elif type(ev) is RequestFailed:
                if ev.context is not None:
                    self._submit_answer(ev.context, None, "")
            elif type(ev) is RequestReceived:
                pdu = ev.pdu
                if isinstance(pdu, DeliverSm | DataSm):
                    replies.append(self._inbound(pdu))
                else:  # alert_notification and the like: nothing to answer
                    self.pool.count(self.op.name, f"ignored_{pdu.command_name}")
            elif type(ev) is ProtocolError:
                self.pool.count(self.op.name, "protocol_error")
                log.warning("%s: %s (%s)", self.name, ev.message, status_name(ev.command_status))
        if replies:
            self.pool.durable().add_done_callback(
                functools.partial(self._reply, conn, replies))
        if self.bound and conn.session.closed:
            self._down("closed")
        self.pump()

    def on_closed(self, conn: Connection, reason: str) -> None:
        if not self._answered and not self.retired and self.pool.running:
            hint = ""
            if conn.tls:
                # TLS 1.3 (RFC 8446 section 4.4.2.4): the server checks our certificate after
                # our side of the handshake is done, so its refusal comes as this close.
                self.pool.count(self.op.name, "tls_failed")
                hint = (" (over TLS 1.3 this is how a server refuses a missing or unknown "
                        "client certificate: check cert and key)")
            log.warning("%s: connection to %s:%d ended before our bind was answered: %s%s",
                        self.name, self.op.host, self.op.port, reason, hint)
        self._down(reason)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def _down(self, reason: str) -> None:
        if self.bound:
            self.bound = False
            log.warning("%s: bind lost: %s", self.name, reason)
            self.pool.bound_changed(self.op.name)

    def _bind_answer(self, status: int) -> None:
        self._answered = True
        if status == CommandStatus.ESME_ROK:
            self.bound = True
            self._ever_bound = True
            self.flow_strikes = 0
            self._remember_tls()
            log.info("%s: bound to %s:%d as %s", self.name, self.op.host, self.op.port,
                     self.bind_type)
            self.pool.bound_changed(self.op.name)
            return
        log.error("%s: bind refused: %s", self.name, status_name(status))
        if self.conn is not None:
            self.conn.close()

    def _remember_tls(self) -> None:
        """Keep this bound connection's TLS session for the next handshake (resumption)."""
        if self._tls is None or self.conn is None or self.conn.transport is None:
            return
        if self._tls.remember(self.conn.transport.get_extra_info("ssl_object")):
            self.pool.count(self.op.name, "tls_resumed")

    # --- sending ----------------------------------------------------------------------------

    def pump(self) -> None:
        """Send as many queued parts as window room, rate and the router's queue allow."""
        conn = self.conn
        if (not self.bound or self.retired or not self.transmits or conn is None
                or not conn.writable
                or not conn.session.bound  # closed or unbinding: send() would raise
                or not self.pool.holds(self.op.name, self.slot)):  # another node's now
            return
        room = conn.session.window.room
        if room <= 0:
            return
        loop = conn.loop
        now = loop.time()
        if now < self.paused_until:
            self._pump_at(self.paused_until)
            return
        router = self.pool.dispatch
        jobs = router.take(self.op.name, room, now)
        for n, job in enumerate(jobs):
            for index in router.parts_for(job, now):
                if room <= 0 or not self.bucket.take(now):
                    router.put_back(jobs[n:], self.op.name)
                    if room > 0:
                        self._pump_at(now + self.bucket.delay(now))
                    return
                router.part_sending(job, index)
                conn.send(job.parts[index].pdu, (job, index))  # type: ignore[arg-type]
                room -= 1
        if not jobs and router.pending(self.op.name):
            ready = router.next_due(self.op.name)
            if ready is not None:
                self._pump_at(ready)

    def _pump_at(self, when: float) -> None:
        if self._pump_handle is not None and not self._pump_handle.cancelled():
            return
        loop = asyncio.get_running_loop()

        def run() -> None:
            self._pump_handle = None
            self.pump()

        self._pump_handle = loop.call_at(max(when, loop.time() + 0.001), run)

    def _submit_answer(self, context: tuple[Job, int], status: int | None,
                       operator_id: str) -> None:
        job, index = context
        router = self.pool.dispatch
        if status == CommandStatus.ESME_ROK and operator_id:
            router.part_acked(job, index, self.op.name, operator_id)
            self.pool.count(self.op.name, "submit_ok")
            self.flow_strikes = 0
            return
        self.pool.count(self.op.name, "submit_failed" if status is not None else "no_answer")
        outcome = router.part_failed(job, index, status, asyncio.get_running_loop().time())
        if outcome is Outcome.FLOW:
            now = asyncio.get_running_loop().time()
            if now >= self.paused_until:  # answers to submits sent before the pause began
                self.flow_strikes += 1    # are the same episode: one strike, not one each
                pause = min(10.0, 0.05 * (2 ** min(self.flow_strikes, 8)))
                self.paused_until = now + pause
        elif outcome is Outcome.SESSION and self.conn is not None:
            self.conn.unbind()

    # --- inbound deliver_sm: receipts and MO ------------------------------------------------

    def _inbound(self, pdu: DeliverSm | DataSm) -> Pdu:
        now = self.pool.wall()
        router = self.pool.dispatch
        tlvs = pdu.tlvs
        if pdu.esm_class & EsmClass.TYPE_MASK in _RECEIPT_TYPES:
            body = tlvs.get("message_payload") or getattr(pdu, "short_message", b"")
            rid, state = tlvs.get("receipted_message_id"), tlvs.get("message_state")
            receipt = parse_receipt(body if isinstance(body, bytes) else b"",
                                    receipted_message_id=rid if isinstance(rid, str) else None,
                                    message_state=state if isinstance(state, int) else None)
            if receipt is None:
                self.pool.count(self.op.name, "receipt_unreadable")
            elif router.receipt(self.op.name, receipt, now):
                self.pool.count(self.op.name, "receipt")
            else:
                self.pool.count(self.op.name, "receipt_unknown_id")
            return pdu.response(CommandStatus.ESME_ROK)
        self.pool.count(self.op.name, "mo")
        return pdu.response(self.pool.inbound_message(self.op.name, pdu, now))

    def _reply(self, conn: Connection, replies: list[Pdu], fut: Any) -> None:
        failed = fut.exception() is not None
        for resp in replies:
            if failed:
                resp.command_status = CommandStatus.ESME_RX_T_APPN  # not stored: send again
            conn.try_send(resp)
