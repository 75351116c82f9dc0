"""The tenant-facing SMPP session handler: binds, submits, queries, cancels, deliver_sm answers.

One instance serves every tenant connection (per-connection state is the ``Binding`` on
``Connection.context``; binds themselves are ``binds.BindDesk``'s). Requests are looked up
in a registry by PDU type. The handler only translates: a submit becomes submissions
(``submit.submission_of``), the admission service decides on each one synchronously, and
the decisions become responses; accepted messages are answered with submit_sm_resp only
once they are durable (the gateway's promise: an id that left the gateway is never lost).
All submits from one read share one durable batch.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import msgspec

from config import GatewayConfig, TenantConfig
from encoding.constants import CommandStatus, MessageState, status_name
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
from routing.model import FINAL, Message, Status, external_id, internal_id, smpp_state
from routing.repository import Durable, MessageRecord

from .bans import Bans
from .binds import BindDesk
from .delivery import Delivery
from .metrics import Metrics
from .passwords import Verifier
from .registry import Binding, Registry
from .submit import submission_of

__all__ = ["TenantHandler", "MessageControl", "Elsewhere"]

log = logging.getLogger("smsc.tenant")
S = CommandStatus
_REFUSAL_REASON: dict[int, str] = {S.ESME_RMSGQFUL: "queue_full", S.ESME_RTHROTTLED: "tps"}
_BINDS = frozenset({BindTransmitter, BindReceiver, BindTransceiver})


class MessageControl(Protocol):
    """What the tenant side asks of the router for messages it already accepted."""

    def cancel(self, message_id: str, now: float) -> bool: ...

    def replace(self, message: Message, now: float) -> Durable | None: ...

    def supersede(self, new: Message, now: float) -> str | None: ...

    def cancel_matching(self, tenant: str, source_addr: str, destination_addr: str,
                        service_type: str, now: float) -> int: ...


class Elsewhere(Protocol):
    """In a cluster: cancel or replace a queued message on the node whose queue holds it
    (routing.nats.control); True once the change is durable."""

    async def cancel(self, message_id: str) -> bool: ...

    async def replace(self, message: Message) -> bool: ...


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
        self.admission = admission
        self.record = record
        self.control = control
        self.registry = registry
        self.delivery = delivery
        self.metrics = metrics
        self.wall = wall
        self.elsewhere: Elsewhere | None = None  # a cluster node's other nodes' queues
        self._asking: set[asyncio.Task[bool]] = set()
        self.binds = BindDesk(config, registry, accepting=lambda: admission.accepting,
                              respond=self._respond, replay=self.on_events,
                              on_bound=delivery.on_bound, wall=wall, bans=bans,
                              verifier=verifier)
        self._batch: list[_Accepted] = []
        self._handlers: dict[type[Pdu], Callable[[Connection, Any, float], None]] = {
            BindTransmitter: self.binds.bind,
            BindReceiver: self.binds.bind,
            BindTransceiver: self.binds.bind,
            SubmitSm: self._submit_sm,
            DataSm: self._data_sm,
            SubmitMulti: self._submit_multi,
            QuerySm: self._query_sm,
            CancelSm: self._cancel_sm,
            ReplaceSm: self._replace_sm,
        }

    # --- ConnectionHandler ------------------------------------------------------------------

    def on_events(self, conn: Connection, events: list[Event]) -> None:
        held = self.binds.held(conn)
        if held is not None:  # its bind is still being checked
            held.extend(events)
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
                    if type(pdu) in _BINDS:
                        held = self.binds.held(conn)
                        if held is not None:  # checked off the loop: the rest waits
                            held.extend(events[i + 1:])
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
                self.binds.unregister(conn, ev.reason)
        if self._batch:
            batch, self._batch = self._batch, []
            messages = [m for item in batch for m in item.messages]
            self.admission.accept(messages, now, functools.partial(self._committed, batch))

    def on_closed(self, conn: Connection, reason: str) -> None:
        self.binds.closed(conn, reason)

    # --- config reload ----------------------------------------------------------------------

    def reconfigure(self, config: GatewayConfig) -> list[str]:
        """A reloaded config for new binds and the open ones (``BindDesk.reconfigure``)."""
        self.config = config
        return self.binds.reconfigure(config)

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
        m = self.admission.decide(sub, binding.tenant, now)
        if sub.replace_if_present_flag and not isinstance(m, int):
            # SMPP 3.4 section 4.4.1: the one with the same source_addr, destination_addr
            # and service_type that has not left is cancelled in the commit storing ``m``.
            self.control.supersede(m, now)
        return m

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
        state = smpp_state(m.status)
        if m.status is Status.SCHEDULED and conn.context.interface_version >= 0x50:
            state = MessageState.SCHEDULED  # 5.2.28: SCHEDULED exists from v5.0 on
        self._respond(conn, pdu.response(message_id=pdu.message_id, final_date=final_date,
                                         message_state=state,
                                         error_code=m.error & 0xFF))

    def _cancel_sm(self, conn: Connection, pdu: CancelSm, now: float) -> None:
        if not pdu.message_id and pdu.destination_addr:  # section 4.10.1: by address
            n = self.control.cancel_matching(conn.context.tenant.system_id, pdu.source_addr,
                                             pdu.destination_addr, pdu.service_type, now)
            if not n:
                self._respond(conn, pdu.response(S.ESME_RCANCELFAIL))
                return
            self._after_commit(conn, pdu, self.record.sync())
            return
        m = self._own_message(conn, pdu.message_id) if pdu.message_id else None
        if m is None:
            self._respond(conn, pdu.response(S.ESME_RINVMSGID if pdu.message_id
                                             else S.ESME_RCANCELFAIL))
        elif self.control.cancel(m.id, now):
            self._after_commit(conn, pdu, self.record.sync())
        elif m.status is Status.ACCEPTED and self.elsewhere is not None:
            self._ask_elsewhere(conn, pdu, self.elsewhere.cancel(m.id), S.ESME_RCANCELFAIL)
        else:
            self._respond(conn, pdu.response(S.ESME_RCANCELFAIL))

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
        if durable is not None:
            self._after_commit(conn, pdu, durable)
        elif m.status is Status.ACCEPTED and self.elsewhere is not None:
            self._ask_elsewhere(conn, pdu, self.elsewhere.replace(new), S.ESME_RREPLACEFAIL)
        else:
            self._respond(conn, pdu.response(S.ESME_RREPLACEFAIL))

    def _after_commit(self, conn: Connection, pdu: Pdu, durable: Durable) -> None:
        def answer(fut: Any) -> None:
            self._respond(conn, pdu.response(S.ESME_RSYSERR if fut.exception() else S.ESME_ROK))

        durable.add_done_callback(answer)

    def _ask_elsewhere(self, conn: Connection, pdu: Pdu,
                       asking: Coroutine[Any, Any, bool], failed: int) -> None:
        """Answer ``pdu`` once another node did it (ESME_ROK) or did not (``failed``)."""
        task = asyncio.get_running_loop().create_task(asking)
        self._asking.add(task)

        def answer(t: asyncio.Task[bool]) -> None:
            self._asking.discard(t)
            ok = not t.cancelled() and t.exception() is None and t.result()
            self._respond(conn, pdu.response(S.ESME_ROK if ok else failed))

        task.add_done_callback(answer)

    # --- helpers ----------------------------------------------------------------------------

    def _respond(self, conn: Connection, resp: Pdu) -> None:
        self.metrics.pdu_out(resp.command_name, resp.command_status)
        conn.try_send(resp)

    @staticmethod
    def _who(conn: Connection) -> str:
        return conn.context.tenant.system_id if isinstance(conn.context, Binding) else "-"

