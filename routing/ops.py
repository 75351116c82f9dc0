"""``Ops``: the writes one group commit carries, as rows ready for ``executemany``.

Callers on the event loop append to the pending ``Ops``; ``Store.apply`` writes them all in
one transaction, grouped by kind in a fixed order (inserts before updates, outbox adds before
acks), so one commit serves many messages.
"""

from __future__ import annotations

from .model import Message, OutboxItem, Status

__all__ = ["MoGroup", "Ops", "row_of"]


class Ops:
    """The writes one group commit carries, grouped by kind, applied in a fixed order."""

    __slots__ = (
        "history",
        "message_status",
        "messages",
        "mo_groups_done",
        "mo_parts",
        "outbox_acks",
        "outbox_adds",
        "outbox_retries",
        "purge_before",
        "replaced",
        "segments",
    )

    def __init__(self) -> None:
        self.messages: list[tuple[object, ...]] = []
        self.replaced: list[tuple[object, ...]] = []
        # Keyed, so a part acked and receipted within one batch (common: operators send the
        # receipt right behind the resp) costs one row write, not two.
        self.segments: dict[tuple[str, int], tuple[object, ...]] = {}
        self.message_status: dict[str, tuple[object, ...]] = {}
        self.history: list[tuple[object, ...]] = []
        self.outbox_adds: list[tuple[object, ...]] = []
        self.outbox_acks: list[tuple[int]] = []
        self.outbox_retries: list[tuple[object, ...]] = []
        self.mo_parts: list[tuple[object, ...]] = []  # MO parts waiting for their group
        self.mo_groups_done: list[tuple[object, ...]] = []  # groups joined or given up
        self.purge_before = 0.0  # drop outbox items created before this (retention); 0 = no

    def __len__(self) -> int:
        return (len(self.messages) + len(self.replaced) + len(self.segments)
                + len(self.message_status) + len(self.outbox_adds) + len(self.outbox_acks)
                + len(self.outbox_retries) + len(self.mo_parts) + len(self.mo_groups_done)
                + (1 if self.purge_before else 0))

    def insert_message(self, m: Message, now: float) -> None:
        self.messages.append(row_of(m, now))
        self.history.append((m.id, m.status.value, now, ""))

    def replace_message(self, m: Message, now: float) -> None:
        """Store a message's new content (replace_sm before it left the gateway)."""
        self.replaced.append(row_of(m, now))
        self.history.append((m.id, m.status.value, now, "replaced"))

    def set_status(self, message_id: str, status: Status, now: float, *, error: int = 0,
                   operator: str = "", detail: str = "") -> None:
        earlier = self.message_status.get(message_id)
        if earlier is not None and not operator:
            operator = earlier[2]  # type: ignore[assignment]  # an update keeps the operator
        self.message_status[message_id] = (status.value, error, operator, now, message_id)
        self.history.append((message_id, status.value, now, detail))

    def put_segment(self, message_id: str, part: int, parts: int, operator: str,
                    operator_id: str, status: Status, error: int = 0) -> None:
        self.segments[message_id, part] = (message_id, part, parts, operator, operator_id,
                                           status.value, error)

    def add_outbox(self, item: OutboxItem) -> None:
        self.outbox_adds.append((item.id, item.tenant, item.kind.value, item.pdu,
                                 item.message_id, item.created_at, item.attempts,
                                 item.next_attempt_at))

    def ack_outbox(self, item_id: int) -> None:
        self.outbox_acks.append((item_id,))

    def retry_outbox(self, item_id: int, attempts: int, next_attempt_at: float) -> None:
        self.outbox_retries.append((attempts, next_attempt_at, item_id))

    def put_mo_part(self, group: MoGroup, seqnum: int, user_data: bytes,
                    received_at: float) -> None:
        self.mo_parts.append((*group, seqnum, user_data, received_at))

    def drop_mo_group(self, group: MoGroup) -> None:
        """Forget a group's stored parts. Its parts queued in this same batch are simply not
        written, so the store applies drops before inserts: an insert left in the batch came
        after the drop (a late part opening the group anew) and must survive it."""
        if self.mo_parts:
            self.mo_parts = [row for row in self.mo_parts if row[:6] != group]
        self.mo_groups_done.append(group)


# (operator, source_addr, destination_addr, data_coding, reference, total)
MoGroup = tuple[str, str, str, int, int, int]


def row_of(m: Message, now: float) -> tuple[object, ...]:
    return (
        m.id,
        m.tenant,
        m.source_addr,
        m.destination_addr,
        m.source_addr_ton,
        m.source_addr_npi,
        m.dest_addr_ton,
        m.dest_addr_npi,
        m.service_type,
        m.esm_class,
        m.protocol_id,
        m.priority_flag,
        m.registered_delivery,
        m.data_coding,
        m.schedule_delivery_time,
        m.validity_period,
        m.body,
        m.tlvs,
        m.status.value,
        m.created_at,
        m.expires_at,
        m.operator,
        m.error,
        now,
    )
