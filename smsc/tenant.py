"""The tenant-facing session handler: binds, submits, queries, cancels and deliver_sm answers.

One instance serves every tenant connection (per-connection state is the ``Binding`` on
``Connection.context``). Requests are looked up in a registry by PDU type. A submit is
validated and throttled synchronously, written to the pending group commit, and answered
with submit_sm_resp only when that commit is durable (the gateway's promise: an id that
left the gateway is never lost). All submits from one read share one commit future.
"""

from __future__ import annotations

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
from encoding.pdu.tlv import encode_tlvs
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
from routing import FINAL, GroupCommitter, Message, Status, Store, smpp_state
from routing.model import external_id, internal_id

from .auth import BIND_TYPE_NAMES, check_bind
from .delivery import Delivery
from .metrics import Metrics
from .registry import Binding, Registry
from .validate import body_of, check_message

__all__ = ["TenantHandler", "MessageSink"]

log = logging.getLogger("smsc.tenant")
S = CommandStatus
_SYSTEM_ID = "smsc"


class MessageSink(Protocol):
    """What the tenant side hands accepted messages to (the router)."""

    def accepted(self, messages: list[Message]) -> None: ...

    def cancel(self, message_id: str) -> bool: ...

    def replace(self, message: Message) -> bool: ...

    def backlog(self) -> int: ...


class _Accepted:
    """One submit waiting for its group commit: who to answer and with what."""

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

    def __init__(self, config: GatewayConfig, store: Store, committer: GroupCommitter,
                 registry: Registry, delivery: Delivery, sink: MessageSink,
                 metrics: Metrics) -> None:
        self.config = config
        self.tenants: Mapping[str, TenantConfig] = {t.system_id: t for t in config.tenants}
        self.store = store
        self.committer = committer
        self.registry = registry
        self.delivery = delivery
        self.sink = sink
        self.metrics = metrics
        self.accepting = True
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
        now = time.time()
        metrics = self.metrics
        for ev in events:
            if type(ev) is RequestReceived:
                pdu = ev.pdu
                metrics.pdu_in(pdu.command_name)
                handler = self._handlers.get(type(pdu))
                if handler is None:  # the session allows it but we do not serve it
                    self._respond(conn, pdu.response(S.ESME_RINVCMDID))
                else:
                    handler(conn, pdu, now)
            elif type(ev) is ResponseReceived and ev.context is not None:
                # only our deliver_sm carry a context (their outbox item)
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
            self.committer.future().add_done_callback(functools.partial(self._committed, batch))

    def on_closed(self, conn: Connection, reason: str) -> None:
        self._unregister(conn, reason)

    # --- binds ------------------------------------------------------------------------------

    def _bind(self, conn: Connection, pdu: Any, now: float) -> None:
        system_id = pdu.system_id
        status = (S.ESME_RBINDFAIL if not self.accepting else
                  check_bind(self.tenants, pdu.command_id, system_id, pdu.password,
                             conn.peer.rsplit(":", 1)[0], self.registry.count(system_id)))
        tlvs: dict[str | int, Any] = ({"sc_interface_version": 0x34}
                                      if pdu.interface_version >= 0x34 else {})
        if status:
            log.info("bind refused: %s as %s from %s: %s", system_id or "-",
                     BIND_TYPE_NAMES[pdu.command_id], conn.peer, status_name(status))
            self._respond(conn, pdu.response(status))
            return
        tenant = self.tenants[system_id]
        binding = Binding(tenant, BIND_TYPE_NAMES[pdu.command_id], pdu.interface_version)
        conn.context = binding
        session = conn.session
        session.config = msgspec.structs.replace(session.config, inbound_window=tenant.window,
                                                 response_timeout_s=tenant.deliver_timeout_s)
        session.window.size = tenant.deliver_window
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

    # --- submits ----------------------------------------------------------------------------

    def _admit(self, conn: Connection, now: float) -> int:
        """Throttle and queue checks common to every submit (before any validation)."""
        binding: Binding = conn.context
        tenant = binding.tenant
        backlog = self.committer.backlog + self.sink.backlog()
        if backlog >= self.config.store.max_queue or not self.accepting:
            self.metrics.throttle(tenant.system_id, "queue_full")
            return S.ESME_RMSGQFUL
        if not self.registry.bucket(tenant, now).take(now):
            self.metrics.throttle(tenant.system_id, "tps")
            return S.ESME_RTHROTTLED
        return S.ESME_ROK

    def _message(self, conn: Connection, pdu: Any, destination: SmeDest | None,
                 now: float) -> Message | int:
        """Validate one destination of a submit; a Message, or the status to refuse with."""
        binding: Binding = conn.context
        tlvs = pdu.tlvs
        body = body_of(getattr(pdu, "short_message", b""), tlvs)
        if isinstance(body, int):
            return body
        dest = destination or pdu
        status = check_message(
            source_addr=pdu.source_addr, source_addr_ton=pdu.source_addr_ton,
            destination_addr=dest.destination_addr, dest_addr_ton=dest.dest_addr_ton,
            esm_class=pdu.esm_class, priority_flag=getattr(pdu, "priority_flag", 0),
            registered_delivery=pdu.registered_delivery,
            replace_if_present_flag=getattr(pdu, "replace_if_present_flag", 0),
            data_coding=pdu.data_coding, sm_default_msg_id=getattr(pdu, "sm_default_msg_id", 0),
            schedule_delivery_time=getattr(pdu, "schedule_delivery_time", ""),
            validity_period=getattr(pdu, "validity_period", ""), body=body,
            interface_version=binding.interface_version, dcs0=binding.tenant.dcs0, now=now)
        if status:
            return status
        validity = getattr(pdu, "validity_period", "")
        extra = {k: v for k, v in tlvs.items() if k != "message_payload"} if tlvs else None
        return Message(
            id=str(self.store.new_message_number()), tenant=binding.tenant.system_id,
            source_addr=pdu.source_addr, destination_addr=dest.destination_addr.lstrip("+"),
            source_addr_ton=pdu.source_addr_ton, source_addr_npi=pdu.source_addr_npi,
            dest_addr_ton=dest.dest_addr_ton, dest_addr_npi=dest.dest_addr_npi,
            service_type=pdu.service_type, esm_class=pdu.esm_class,
            protocol_id=getattr(pdu, "protocol_id", 0),
            priority_flag=getattr(pdu, "priority_flag", 0),
            registered_delivery=pdu.registered_delivery, data_coding=pdu.data_coding,
            schedule_delivery_time=getattr(pdu, "schedule_delivery_time", ""),
            validity_period=validity, body=body,
            tlvs=encode_tlvs(extra) if extra else b"", created_at=now,
            expires_at=(parse_smpp_time(validity, now) or 0.0) if validity else 0.0)

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
        self.committer.pending.insert_message(result, now)
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
        pending = self.committer.pending
        for m in messages:
            pending.insert_message(m, now)
        self._batch.append(_Accepted(conn, pdu, messages, time.perf_counter(), unsuccess))

    def _committed(self, batch: list[_Accepted], fut: Any) -> None:
        failed = fut.exception() is not None
        accepted: list[Message] = []
        done = time.perf_counter()
        observe = self.metrics.submit_latency.observe
        for item in batch:
            conn, pdu = item.conn, item.pdu
            if failed:
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
            accepted.extend(item.messages)
        if accepted:
            self.sink.accepted(accepted)

    # --- query, cancel, replace (SMPP 3.4 sections 4.8 - 4.10) ------------------------------

    def _own_message(self, conn: Connection, message_id: str) -> Message | None:
        binding: Binding = conn.context
        internal = internal_id(binding.tenant.id_format, message_id)
        if internal is None:
            return None
        m = self.store.get_message(internal)
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
        if m is None or m.status is not Status.ACCEPTED or not self.sink.cancel(m.id):
            self._respond(conn, pdu.response(S.ESME_RCANCELFAIL if m or not pdu.message_id
                                             else S.ESME_RINVMSGID))
            return
        self.committer.pending.set_status(m.id, Status.CANCELLED, now, detail="cancel_sm")
        self._after_commit(conn, pdu)

    def _replace_sm(self, conn: Connection, pdu: ReplaceSm, now: float) -> None:
        m = self._own_message(conn, pdu.message_id)
        if m is None:
            self._respond(conn, pdu.response(S.ESME_RINVMSGID))
            return
        try:
            if pdu.validity_period and (parse_smpp_time(pdu.validity_period, now) or 0) <= now:
                raise ValueError("validity in the past")
        except ValueError:
            self._respond(conn, pdu.response(S.ESME_RINVEXPIRY))
            return
        new = msgspec.structs.replace(
            m, body=pdu.short_message, registered_delivery=pdu.registered_delivery,
            schedule_delivery_time=pdu.schedule_delivery_time or m.schedule_delivery_time,
            validity_period=pdu.validity_period or m.validity_period)
        if m.status is not Status.ACCEPTED or not self.sink.replace(new):
            self._respond(conn, pdu.response(S.ESME_RREPLACEFAIL))
            return
        self.committer.pending.replace_message(new, now)
        self._after_commit(conn, pdu)

    def _after_commit(self, conn: Connection, pdu: Pdu) -> None:
        def answer(fut: Any) -> None:
            self._respond(conn, pdu.response(S.ESME_RSYSERR if fut.exception() else 0))

        self.committer.future().add_done_callback(answer)

    # --- helpers ----------------------------------------------------------------------------

    def _respond(self, conn: Connection, resp: Pdu) -> None:
        self.metrics.pdu_out(resp.command_name, resp.command_status)
        conn.try_send(resp)

    @staticmethod
    def _who(conn: Connection) -> str:
        return conn.context.tenant.system_id if isinstance(conn.context, Binding) else "-"

