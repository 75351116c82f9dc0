"""Inbound (MO) messages from operators: find the owning tenant, reassemble, queue for it.

The tenant that owns the destination number (longest ``numbers`` prefix in its config) gets
the message as an ``MoEvent`` in its event queue, kept there while it is offline. Concatenated
messages (UDH IEI 0x00/0x08 or SAR TLVs, reference 9.5) are joined as bytes before anything
decodes them when the tenant's ``mo_reassemble`` is on; a long result travels in
message_payload. Otherwise each part is passed on with its UDH (or SAR TLVs).

Every part is durable before the operator hears ESME_ROK (the answer waits for
``MessageRecord.sync``): a whole message through its event, a part still waiting for the
rest as a stored ``MoPart`` (put back into the reassembler on start), and the joined
message's event and the removal of its parts share a commit.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Hashable, Iterable
from typing import Protocol, cast

from config import TenantConfig
from encoding.constants import CommandStatus, EsmClass
from encoding.errors import TextError
from encoding.pdu import DataSm, DeliverSm
from encoding.pdu.tlv import TlvMap
from encoding.text import Reassembler, parse_udh

from .analytics import Analytics
from .events import MoEvent, TenantEvent
from .keywords import Keywords
from .repository import Durable, MessageRecord, MoGroup, MoPart

__all__ = ["Inbound", "EventPublisher"]

log = logging.getLogger(__name__)
_KEEP_TLVS = ("sar_msg_ref_num", "sar_total_segments", "sar_segment_seqnum", "source_port",
              "destination_port")


class EventPublisher(Protocol):
    def publish(self, tenant: str, events: list[TenantEvent], now: float) -> Durable: ...


class Inbound:
    def __init__(self, record: MessageRecord, events: EventPublisher,
                 tenants: Iterable[TenantConfig], reassembly_timeout_s: float = 600.0) -> None:
        self.record = record
        self.analytics: Analytics | None = None  # rollups: MO counted per tenant
        self.keywords: Keywords | None = None  # STOP/START/HELP (routing.keywords)
        self.events = events
        self.reassembler = Reassembler(timeout_s=reassembly_timeout_s)
        self.reconfigure(tenants)
        self.unrouted = 0
        self.partial = 0
        self.restored = 0
        self._restore()

    def reconfigure(self, tenants: Iterable[TenantConfig]) -> None:
        """Who owns which MO numbers (longest prefix first); also for a config reload."""
        owners = [(n, t) for t in tenants for n in t.numbers]
        self._owners = sorted(owners, key=lambda o: len(o[0]), reverse=True)

    def _restore(self) -> None:
        """Put back the parts acknowledged before a restart whose group is still open."""
        for part in self.record.mo_parts():
            g = part.group
            key = (g.operator, g.source_addr, g.destination_addr, g.data_coding)
            try:
                self.reassembler.add(key, g.reference, g.total, part.seqnum, part.user_data,
                                     part.received_at)
            except TextError:  # cannot happen for rows this code wrote; skip, do not crash
                log.warning("stored MO part %r/%d unusable; dropped", g, part.seqnum)
                continue
            self.restored += 1
        if self.restored:
            log.info("restored %d parts of incomplete MO messages", self.restored)

    def owner(self, destination: str) -> TenantConfig | None:
        digits = destination.lstrip("+")
        for prefix, tenant in self._owners:
            if digits.startswith(prefix):
                return tenant
        return None

    def message(self, operator: str, pdu: DeliverSm | DataSm, now: float) -> int:
        """Take an MO; returns the status to answer the operator with (once durable)."""
        tenant = self.owner(pdu.destination_addr)
        if tenant is None:
            self.unrouted += 1
            log.warning("MO from %s to a number no tenant owns; refused", operator)
            return CommandStatus.ESME_RINVDSTADR
        tlvs = pdu.tlvs
        body = tlvs.get("message_payload", getattr(pdu, "short_message", b""))
        if not isinstance(body, bytes):
            return CommandStatus.ESME_RINVOPTPARAMVAL
        concat, user_data = self._concat(pdu, body, tlvs)
        if concat is None or not tenant.mo_reassemble:
            kept = {k: v for k, v in tlvs.items() if k in _KEEP_TLVS and isinstance(v, int)}
            self._queue(tenant, pdu, body, pdu.esm_class, kept, operator, now)
            return CommandStatus.ESME_ROK
        ref, total, seq = concat
        key: Hashable = (operator, pdu.source_addr, pdu.destination_addr, pdu.data_coding)
        try:
            joined = self.reassembler.add(key, ref, total, seq, user_data, now)
        except TextError as exc:
            return exc.command_status
        group = MoGroup(operator, pdu.source_addr, pdu.destination_addr, pdu.data_coding,
                        ref, total)
        if joined is None:
            # The operator's deliver_sm_resp waits for this commit: an acknowledged part is
            # on disk, and comes back into the reassembler after a restart.
            self.record.save_mo_part(MoPart(group, seq, user_data, now))
            return CommandStatus.ESME_ROK
        if total > 1:
            self.record.drop_mo_group(group)  # in the same commit as the joined message
        self._queue(tenant, pdu, joined, pdu.esm_class & ~EsmClass.UDHI, {}, operator, now,
                    parts=total)
        return CommandStatus.ESME_ROK

    def expire(self, now: float) -> None:
        """Deliver what arrived of groups whose missing parts never came (flagged in logs)."""
        for key, ref, total, parts in self.reassembler.expire(now):
            operator, source, destination, data_coding = cast(tuple[str, str, str, int], key)
            self.record.drop_mo_group(
                MoGroup(operator, source, destination, data_coding, ref, total))
            tenant = self.owner(destination)
            if tenant is None:
                continue
            self.partial += 1
            log.warning("MO from %s: concatenated message incomplete after timeout; "
                        "delivering the %d parts that arrived", operator, len(parts))
            joined = b"".join(parts[i] for i in sorted(parts))
            stub = DeliverSm(source_addr=source, destination_addr=destination,
                             data_coding=data_coding)
            self._queue(tenant, stub, joined, 0, {}, operator, now, parts=len(parts))

    @staticmethod
    def _concat(pdu: DeliverSm | DataSm, body: bytes,
                tlvs: TlvMap) -> tuple[tuple[int, int, int] | None, bytes]:
        if pdu.esm_class & EsmClass.UDHI:
            try:
                udh, user_data = parse_udh(body)
            except TextError:
                return None, body
            return udh.concat, user_data
        ref, total, seq = (tlvs.get("sar_msg_ref_num"), tlvs.get("sar_total_segments"),
                           tlvs.get("sar_segment_seqnum"))
        if isinstance(ref, int) and isinstance(total, int) and isinstance(seq, int):
            return (ref, total, seq), body
        return None, body

    def _queue(self, tenant: TenantConfig, pdu: DeliverSm | DataSm, body: bytes,
               esm_class: int, tlvs: dict[str, int], operator: str, now: float, *,
               parts: int = 1) -> None:
        event = MoEvent(
            source_addr=pdu.source_addr, destination_addr=pdu.destination_addr, body=body,
            data_coding=pdu.data_coding, esm_class=esm_class,
            source_addr_ton=pdu.source_addr_ton, source_addr_npi=pdu.source_addr_npi,
            dest_addr_ton=pdu.dest_addr_ton, dest_addr_npi=pdu.dest_addr_npi,
            protocol_id=getattr(pdu, "protocol_id", 0),
            priority_flag=getattr(pdu, "priority_flag", 0), service_type=pdu.service_type,
            tlvs=tlvs, received_at=now, operator=operator, parts=parts,
            inbound_id="in_" + secrets.token_hex(8))
        self.events.publish(tenant.system_id, [event], now)
        if self.keywords is not None and not esm_class & EsmClass.UDHI:  # whole texts only
            self.keywords.handle(tenant, event, now)
        if self.analytics is not None:
            self.analytics.inbound(tenant.system_id, operator, pdu.source_addr,
                                   pdu.destination_addr, now)
