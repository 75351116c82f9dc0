"""The tenant-facing SMPP session handler: binds, submits, queries, cancels, deliver_sm answers.

One instance serves every tenant connection (per-connection state is the ``Binding`` on
``Connection.context``). Requests are looked up in a registry by PDU type. The handler only
translates: a submit becomes submissions (``submit.submission_of``), the admission service
decides on each one synchronously, and the decisions become responses; accepted messages
are answered with submit_sm_resp only once they are durable (the gateway's promise: an id
that left the gateway is never lost). All submits from one read share one durable batch.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import msgspec

from config import GatewayConfig, TenantConfig
from encoding.constants import CommandStatus, status_name
from encoding.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    DataSm,
    DeliverSm,
    Pdu,
    QuerySm,
    ReplaceSm,
    SmeDest,
    SubmitMulti,
    SubmitSm,
    UnsuccessSme,
)
from encoding.session import (
    Event,
    ProtocolError,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    SessionClosed,
)
from encoding.smpptime import format_smpp_time, parse_smpp_time
from esme import Connection
from routing.admission import Admission
from routing.model import FINAL, Message, external_id, internal_id, smpp_state
from routing.repository import Durable, MessageRecord

from .auth import BIND_TYPE_NAMES, check_bind
from .bans import Bans
from .delivery import Delivery
from .metrics import Metrics
from .passwords import Verifier
from .registry import Binding, Registry
from .submit import submission_of

__all__ = ["TenantHandler", "MessageControl"]

log = logging.getLogger("smsc.tenant")
S = CommandStatus
_SYSTEM_ID = "smsc"
_REFUSAL_REASON: dict[int, str] = {S.ESME_RMSGQFUL: "queue_full", S.ESME_RTHROTTLED: "tps"}
_BINDS = frozenset({BindTransmitter, BindReceiver, BindTransceiver})
_GUESSES = frozenset({S.ESME_RINVSYSID, S.ESME_RINVPASWD})  # failures the ban table counts
# Password checks queued or running beyond this: a bind needing one is refused at once
# (ESME_RBINDFAIL; the client retries), so a flood of binds cannot queue without bound.
_MAX_WAITING_CHECKS = 256


class MessageControl(Protocol):
    """What the tenant side asks of the router for messages it already accepted."""

    def cancel(self, message_id: str, now: float) -> bool: ...

    def replace(self, message: Message, now: float) -> Durable | None: ...


class _Accepted:
    """One submit waiting for its durable batch: who to answer and with what."""

    __slots__ = ("conn", "messages", "pdu", "received", "unsuccess")

    def __init__(self, conn: Connection, pdu: Pdu, messages: list[Message], received: float,
                 unsuccess: list[UnsuccessSme] | None = None) -> None:
        self.conn = conn
        self.pdu = pdu
        self.messages = messages
        self.received = received
        self.unsuccess = unsuccess


class TenantHandler:
    """ConnectionHandler for tenant connections."""

    def __init__(self, config: GatewayConfig, admission: Admission, record: MessageRecord,
                 control: MessageControl, registry: Registry, delivery: Delivery,
                 metrics: Metrics, *, wall: Callable[[], float] = time.time,
                 bans: Bans | None = None, verifier: Verifier | None = None) -> None:
        self.config = config
        self.tenants: Mapping[str, TenantConfig] = {t.system_id: t for t in config.tenants}
        self.admission = admission
        self.record = record
        self.control = control
        self.registry = registry
        self.delivery = delivery
        self.metrics = metrics
        self.wall = wall
        self.bans = bans if bans is not None else Bans(config.auth)
        self.verifier = verifier if verifier is not None else Verifier()
        # Connections whose bind waits on a password check, with the events that came after
        # the bind: handled, in order, once the bind is answered.
        self._checking: dict[Connection, list[Event]] = {}
        self._checks: set[asyncio.Task[bool]] = set()
        self._batch: list[_Accepted] = []
        self._handlers: dict[type[Pdu], Callable[[Connection, Any, float], None]] = {
            BindTransmitter: self._bind,
            BindReceiver: self._bind,
            BindTransceiver: self._bind,
            SubmitSm: self._submit_sm,
            DataSm: self._data_sm,
            SubmitMulti: self._submit_multi,
            QuerySm: self._query_sm,
            CancelSm: self._cancel_sm,
            ReplaceSm: self._replace_sm,
        }

    # --- ConnectionHandler ------------------------------------------------------------------

    def on_events(self, conn: Connection, events: list[Event]) -> None:
        if self._checking and conn in self._checking:  # its bind is still being checked
            self._checking[conn].extend(events)
            return
        now = self.wall()
        metrics = self.metrics
        for i, ev in enumerate(events):
            if type(ev) is RequestReceived:
                pdu = ev.pdu
                metrics.pdu_in(pdu.command_name)
                handler = self._handlers.get(type(pdu))
                if handler is None:  # the session allows it but we do not serve it
                    self._respond(conn, pdu.response(S.ESME_RINVCMDID))
                else:
                    handler(conn, pdu, now)
                    if type(pdu) in _BINDS and conn in self._checking:
                        self._checking[conn].extend(events[i + 1:])
                        break
            elif type(ev) is ResponseReceived and ev.context is not None:
                # only our deliver_sm carry a context (their event claim)
                self.delivery.on_response(ev.context, ev.pdu.command_status)
            elif type(ev) is RequestFailed:
                if isinstance(ev.request, DeliverSm) and ev.context is not None:
                    self.delivery.on_failed(ev.context, ev.reason)
            elif type(ev) is ProtocolError:
                metrics.protocol_error(ev.command_status)
                log.warning("%s %s: %s (%s)", self._who(conn), conn.peer, ev.message,
                            status_name(ev.command_status))
            elif type(ev) is SessionClosed:
                self._unregister(conn, ev.reason)
        if self._batch:
            batch, self._batch = self._batch, []
            messages = [m for item in batch for m in item.messages]
            self.admission.accept(messages, now, functools.partial(self._committed, batch))

    def on_closed(self, conn: Connection, reason: str) -> None:
        self._checking.pop(conn, None)
        self._unregister(conn, reason)

    # --- binds ------------------------------------------------------------------------------

    def _bind(self, conn: Connection, pdu: Any, now: float) -> None:
        """A bind: refused at once from a banned address (before any password check);
        a ``password_hash`` not checked good before is checked in a thread, with this
        connection's later PDUs held (and its reading paused) until the bind is answered."""
        if isinstance(conn.context, Binding):  # a second bind sent before the first's answer
            self._respond(conn, pdu.response(S.ESME_RALYBND))
            return
        peer_ip = conn.peer.rsplit(":", 1)[0]
        if self.bans.banned_for(peer_ip, now) > 0:
            log.debug("bind refused: %s from %s: address banned", pdu.system_id or "-",
                      conn.peer)
            self._respond(conn, pdu.response(S.ESME_RBINDFAIL))
            return
        tenant = self.tenants.get(pdu.system_id)
        stored = tenant.password_hash if tenant is not None else None
        if stored is None or not self.admission.accepting:
            self._answer_bind(conn, pdu, now, None)
        elif self.verifier.cached(stored, pdu.password):
            self._answer_bind(conn, pdu, now, True)
        elif self.verifier.waiting >= _MAX_WAITING_CHECKS:
            log.warning("bind refused: %s from %s: %d password checks already waiting",
                        pdu.system_id, conn.peer, self.verifier.waiting)
            self._respond(conn, pdu.response(S.ESME_RBINDFAIL))
        else:
            self._checking[conn] = []
            if conn.transport is not None:
                conn.transport.pause_reading()
            task = conn.loop.create_task(self.verifier.verify(stored, pdu.password))
            self._checks.add(task)
            task.add_done_callback(functools.partial(self._checked, conn, pdu, stored))

    def _checked(self, conn: Connection, pdu: Any, stored: str, task: asyncio.Task[bool]
                 ) -> None:
        """A password check ended: answer the bind, then what came after it."""
        self._checks.discard(task)
        held = self._checking.pop(conn, None)
        if held is None or conn.session.closed:  # the connection went meanwhile
            return
        ok = not task.cancelled() and task.exception() is None and task.result()
        tenant = self.tenants.get(pdu.system_id)  # a reload may have changed the hash
        self._answer_bind(conn, pdu, self.wall(),
                          ok and tenant is not None and tenant.password_hash == stored)
        if conn.transport is not None and conn.writable:
            conn.transport.resume_reading()
        if held:
            self.on_events(conn, held)

    def _answer_bind(self, conn: Connection, pdu: Any, now: float,
                     password_ok: bool | None) -> None:
        """Decide and answer a bind; ``password_ok`` None: ``check_bind`` checks it."""
        system_id = pdu.system_id
        peer_ip = conn.peer.rsplit(":", 1)[0]
        status = (S.ESME_RBINDFAIL if not self.admission.accepting else
                  check_bind(self.tenants, pdu.command_id, system_id, pdu.password,
                             peer_ip, self.registry.count(system_id), tls=conn.tls,
                             password_ok=password_ok))
        tlvs: dict[str | int, Any] = ({"sc_interface_version": 0x34}
                                      if pdu.interface_version >= 0x34 else {})
        if status in _GUESSES:
            self.bans.failure(peer_ip, "smpp", now)
        if status:
            log.info("bind refused: %s as %s from %s: %s", system_id or "-",
                     BIND_TYPE_NAMES[pdu.command_id], conn.peer, status_name(status))
            self._respond(conn, pdu.response(status))
            return
        tenant = self.tenants[system_id]
        binding = Binding(tenant, BIND_TYPE_NAMES[pdu.command_id], pdu.interface_version)
        conn.context = binding
        session = conn.session
        session.reconfigure(msgspec.structs.replace(
            session.config, inbound_window=tenant.window,
            response_timeout_s=tenant.deliver_timeout_s, window=tenant.deliver_window))
        self._respond(conn, pdu.response(system_id=_SYSTEM_ID, tlvs=tlvs))
        self.registry.add(conn)
        log.info("bind: %s as %s from %s (interface 0x%02X)", system_id, binding.bind_type,
                 conn.peer, pdu.interface_version)
        if binding.receives:
            conn.loop.call_soon(self.delivery.on_bound, system_id)

    def _unregister(self, conn: Connection, reason: str) -> None:
        if isinstance(conn.context, Binding):
            binding = conn.context
            self.registry.remove(conn)
            conn.context = None
            log.info("unbind: %s (%s) from %s: %s", binding.tenant.system_id,
                     binding.bind_type, conn.peer, reason)

    # --- config reload ----------------------------------------------------------------------

    def reconfigure(self, config: GatewayConfig) -> list[str]:
        """A reloaded config: new binds are checked against it. An open bind of a removed
        tenant, or of one that may no longer bind this way (bind type, ``allowed_ips``,
        ``tls_only``, no password any more), is unbound cleanly; the others go on with the
        tenant's new settings (window, deliver_window, limits). A changed password leaves
        open binds alone: it is checked at bind time. Returns what it did, for the log."""
        self.config = config
        self.tenants = {t.system_id: t for t in config.tenants}
        notes: list[str] = []
        for conn in list(self.registry.all()):
            binding: Binding = conn.context
            tenant = self.tenants.get(binding.tenant.system_id)
            if tenant is None or not tenant.binds or binding.bind_type not in tenant.bind_types \
                    or not tenant.allows(conn.peer.rsplit(":", 1)[0]) \
                    or (tenant.tls_only and not conn.tls):
                notes.append(f"bind of {binding.tenant.system_id} from {conn.peer} unbound: "
                             + ("tenant removed" if tenant is None else "no longer allowed"))
                if conn.session.bound:
                    conn.unbind()
                else:
                    conn.close()
                continue
            if tenant is not binding.tenant:
                binding.tenant = tenant
                session = conn.session
                session.reconfigure(msgspec.structs.replace(
                    session.config, inbound_window=tenant.window,
                    response_timeout_s=tenant.deliver_timeout_s, window=tenant.deliver_window))
        return notes

    # --- submits ----------------------------------------------------------------------------

    def _admit(self, conn: Connection, now: float) -> int:
        """Queue and rate checks common to every submit (before any validation)."""
        tenant: TenantConfig = conn.context.tenant
        status = self.admission.admit(tenant, now)
        if status:
            self.metrics.throttle(tenant.system_id, _REFUSAL_REASON.get(status, "other"))
        return status

    def _message(self, conn: Connection, pdu: SubmitSm | DataSm | SubmitMulti,
                 destination: SmeDest | None, now: float) -> Message | int:
        """One destination of a submit: a Message, or the status to refuse it with."""
        binding: Binding = conn.context
        sub = submission_of(pdu, destination, binding.tenant.system_id,
                            binding.interface_version)
        if isinstance(sub, int):
            return sub
        return self.admission.decide(sub, binding.tenant, now)

    def _submit_sm(self, conn: Connection, pdu: SubmitSm, now: float) -> None:
        self._submit_one(conn, pdu, now)

    def _data_sm(self, conn: Connection, pdu: DataSm, now: float) -> None:
        self._submit_one(conn, pdu, now)

    def _submit_one(self, conn: Connection, pdu: SubmitSm | DataSm, now: float) -> None:
        status = self._admit(conn, now)
        if status:
            self._respond(conn, pdu.response(status))
            return
        result = self._message(conn, pdu, None, now)
        if isinstance(result, int):
            self._respond(conn, pdu.response(result))
            return
        self._batch.append(_Accepted(conn, pdu, [result], time.perf_counter()))

    def _submit_multi(self, conn: Connection, pdu: SubmitMulti, now: float) -> None:
        status = self._admit(conn, now)
        if status or not pdu.dest_address:
            self._respond(conn, pdu.response(status or S.ESME_RINVNUMDESTS))
            return
        messages: list[Message] = []
        unsuccess: list[UnsuccessSme] = []
        for dest in pdu.dest_address:
            if not isinstance(dest, SmeDest):  # distribution lists are not provisioned here
                unsuccess.append(UnsuccessSme(dest.dl_name, S.ESME_RCNTSUBDL))
                continue
            result = self._message(conn, pdu, dest, now)
            if isinstance(result, int):
                unsuccess.append(UnsuccessSme(dest.destination_addr, result,
                                              dest.dest_addr_ton, dest.dest_addr_npi))
            else:
                messages.append(result)
        if not messages:
            self._respond(conn, pdu.response(unsuccess[0].error_status_code))
            return
        self._batch.append(_Accepted(conn, pdu, messages, time.perf_counter(), unsuccess))

    def _committed(self, batch: list[_Accepted], ok: bool) -> None:
        done = time.perf_counter()
        observe = self.metrics.submit_latency.observe
        for item in batch:
            conn, pdu = item.conn, item.pdu
            if not ok:
                self._respond(conn, pdu.response(S.ESME_RSYSERR))
                continue
            binding = conn.context
            first = item.messages[0].id
            mid = external_id(binding.tenant.id_format, first) if binding else first
            if item.unsuccess is not None:
                self._respond(conn, pdu.response(message_id=mid, unsuccess_sme=item.unsuccess))
            else:
                self._respond(conn, pdu.response(message_id=mid))
            observe(done - item.received)

    # --- query, cancel, replace (SMPP 3.4 sections 4.8 - 4.10) ------------------------------

    def _own_message(self, conn: Connection, message_id: str) -> Message | None:
        binding: Binding = conn.context
        internal = internal_id(binding.tenant.id_format, message_id)
        if internal is None:
            return None
        m = self.record.get(internal)
        return m if m is not None and m.tenant == binding.tenant.system_id else None

    def _query_sm(self, conn: Connection, pdu: QuerySm, now: float) -> None:
        m = self._own_message(conn, pdu.message_id)
        if m is None:
            self._respond(conn, pdu.response(S.ESME_RINVMSGID))
            return
        final_date = format_smpp_time(m.updated_at) if m.status in FINAL else ""
        self._respond(conn, pdu.response(message_id=pdu.message_id, final_date=final_date,
                                         message_state=smpp_state(m.status),
                                         error_code=m.error & 0xFF))

    def _cancel_sm(self, conn: Connection, pdu: CancelSm, now: float) -> None:
        m = self._own_message(conn, pdu.message_id) if pdu.message_id else None
        if m is None or not self.control.cancel(m.id, now):
            self._respond(conn, pdu.response(S.ESME_RCANCELFAIL if m or not pdu.message_id
                                             else S.ESME_RINVMSGID))
            return
        self._after_commit(conn, pdu, self.record.sync())

    def _replace_sm(self, conn: Connection, pdu: ReplaceSm, now: float) -> None:
        m = self._own_message(conn, pdu.message_id)
        if m is None:
            self._respond(conn, pdu.response(S.ESME_RINVMSGID))
            return
        expires_at = m.expires_at
        try:
            if pdu.validity_period:
                expires_at = parse_smpp_time(pdu.validity_period, now) or 0.0
                if expires_at <= now:
                    raise ValueError("validity in the past")
        except ValueError:
            self._respond(conn, pdu.response(S.ESME_RINVEXPIRY))
            return
        new = msgspec.structs.replace(
            m, body=pdu.short_message, registered_delivery=pdu.registered_delivery,
            schedule_delivery_time=pdu.schedule_delivery_time or m.schedule_delivery_time,
            validity_period=pdu.validity_period or m.validity_period, expires_at=expires_at)
        durable = self.control.replace(new, now)
        if durable is None:
            self._respond(conn, pdu.response(S.ESME_RREPLACEFAIL))
            return
        self._after_commit(conn, pdu, durable)

    def _after_commit(self, conn: Connection, pdu: Pdu, durable: Durable) -> None:
        def answer(fut: Any) -> None:
            self._respond(conn, pdu.response(S.ESME_RSYSERR if fut.exception() else S.ESME_ROK))

        durable.add_done_callback(answer)

    # --- helpers ----------------------------------------------------------------------------

    def _respond(self, conn: Connection, resp: Pdu) -> None:
        self.metrics.pdu_out(resp.command_name, resp.command_status)
        conn.try_send(resp)

    @staticmethod
    def _who(conn: Connection) -> str:
        return conn.context.tenant.system_id if isinstance(conn.context, Binding) else "-"

