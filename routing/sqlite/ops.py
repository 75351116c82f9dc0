"""``Ops``: the writes one group commit carries, as rows ready for ``executemany``.

The SQLite record and event queue append to the pending ``Ops``; ``Store.apply`` writes them
all in one transaction, grouped by kind in a fixed order (inserts before updates, event adds
before acks), so one commit serves many messages. Row tuples exist only here and in
``store``: callers outside ``routing.sqlite`` speak the verbs of ``routing.repository``.
"""

from __future__ import annotations

from ..analytics import RollupBatch
from ..model import FINAL, Message, Status
from ..repository import MoGroup
from .rows import STATUS_TEXT, group_row, replace_params, row_of

__all__ = ["Ops"]

# Statuses a tenant is told of by a receipt: their changes commit with that receipt's event.
_TOLD_TEXT = frozenset(STATUS_TEXT[s] for s in (*FINAL, Status.UNKNOWN))


class Ops:
    """The writes one group commit carries, grouped by kind, applied in a fixed order."""

    __slots__ = (
        "answers",
        "answers_before",
        "change_history",
        "clicks",
        "consent",
        "event_acks",
        "event_adds",
        "event_fails",
        "event_retries",
        "event_revives",
        "handoffs",
        "history",
        "links",
        "message_status",
        "messages",
        "mo_groups_done",
        "mo_parts",
        "purge_before",
        "refused",
        "replaced",
        "rollups",
        "segments",
        "templates",
    )

    def __init__(self) -> None:
        self.messages: list[tuple[object, ...]] = []
        self.replaced: list[tuple[object, ...]] = []
        # Keyed, so a part acked and receipted within one batch (common: operators send the
        # receipt right behind the resp) costs one row write, not two.
        self.segments: dict[tuple[str, int], tuple[object, ...]] = {}
        self.message_status: dict[str, tuple[object, ...]] = {}
        self.history: list[tuple[object, ...]] = []  # of inserted messages
        # of status changes and replaces: written only for the rows that were applied
        self.change_history: list[tuple[object, ...]] = []
        self.refused = 0  # changes refused within this batch (stale precondition)
        self.event_adds: list[tuple[object, ...]] = []
        self.event_acks: list[tuple[int]] = []
        self.event_retries: list[tuple[object, ...]] = []
        self.mo_parts: list[tuple[object, ...]] = []  # MO parts waiting for their group
        self.mo_groups_done: list[tuple[object, ...]] = []  # groups joined or given up
        self.purge_before = 0.0  # drop events created before this (retention); 0 = no
        self.event_fails: list[tuple[int, int]] = []  # (attempts, id): kept as failed
        self.event_revives: list[tuple[int]] = []  # failed events offered again
        self.answers: list[tuple[object, ...]] = []  # idempotent answers to keep
        self.answers_before = 0.0  # drop idempotent answers created before this; 0 = no
        self.consent: list[tuple[object, ...]] = []  # consent records (routing.consent)
        self.links: list[tuple[object, ...]] = []  # tracked links (routing.links), with
        # the messages they belong to
        self.clicks: list[tuple[object, ...]] = []  # clicks and bot fetches of links
        # stored templates by (tenant, name): the row to write, or None to delete; the
        # last write of a name in a batch wins (routing.templates)
        self.templates: dict[tuple[str, str], tuple[object, ...] | None] = {}
        self.rollups = RollupBatch()  # analytics deltas, one entry per touched rollup row
        # waiting messages handed to the node that holds their operator's bind: (its epoch,
        # message id, operator) (routing.sqlite.owners, routing.handoff)
        self.handoffs: list[tuple[int, str, str]] = []

    def __len__(self) -> int:
        return (len(self.messages) + len(self.replaced) + len(self.segments)
                + len(self.message_status) + len(self.event_adds) + len(self.event_acks)
                + len(self.event_retries) + len(self.mo_parts) + len(self.mo_groups_done)
                + len(self.event_fails) + len(self.event_revives) + len(self.answers)
                + len(self.links) + len(self.clicks)
                + len(self.consent) + len(self.handoffs)
                + len(self.templates) + len(self.rollups)
                + (1 if self.purge_before else 0) + (1 if self.answers_before else 0))

    def take_deferrable(self) -> Ops | None:
        """Move the writes nobody waits on for long into a new ``Ops`` and return it: changes
        to a status the tenant is not told of (submitted; with their history rows), segments
        and analytics deltas. The writes someone is answered after (messages, events, kept
        answers...) stay, and so do changes to a status a receipt tells (final, or unknown
        at the receipt timeout): they commit with the receipt event published beside them,
        so that a crash never leaves a tenant's receipt stored and its message still open
        (its receipt timeout would then tell the tenant a second, different outcome).

        None, with nothing moved, when there is nothing to move or nothing would stay, or a
        replace is queued (its history row is filtered by that same commit's outcome)."""
        if self.replaced:
            return None
        moving = [mid for mid, row in self.message_status.items() if row[0] not in _TOLD_TEXT]
        deferrable = len(moving) + len(self.segments) + len(self.rollups)
        if not deferrable or len(self) == deferrable:
            return None
        later = Ops()
        if len(moving) == len(self.message_status):
            later.message_status, self.message_status = self.message_status, later.message_status
            later.change_history, self.change_history = (self.change_history,
                                                         later.change_history)
        elif moving:
            later.message_status = {m: self.message_status.pop(m) for m in moving}
            moved = set(moving)
            later.change_history = [h for h in self.change_history if h[0] in moved]
            self.change_history = [h for h in self.change_history if h[0] not in moved]
        later.segments, self.segments = self.segments, later.segments
        later.rollups, self.rollups = self.rollups, later.rollups
        later.refused, self.refused = self.refused, 0
        return later

    def insert_message(self, m: Message, now: float) -> None:
        self.messages.append(row_of(m, now))
        self.history.append((m.id, STATUS_TEXT[m.status], now, ""))

    def replace_message(self, m: Message, now: float) -> None:
        """Store a message's new content (replace_sm before it left the gateway); applied
        only while the stored row is still in ``m.status`` (ACCEPTED or SCHEDULED)."""
        self.replaced.append(replace_params(m, now))
        self.change_history.append((m.id, STATUS_TEXT[m.status], now, "replaced"))

    def set_status(self, message_id: str, old: Status, new: Status, now: float, *,
                   error: int = 0, operator: str = "", detail: str = "") -> None:
        """A change from ``old`` (the precondition) to ``new``. Several changes of one
        message in one batch become one row write, still conditioned on the first ``old``;
        a change whose ``old`` is not where the batch's earlier change left the message
        lost to that one and is refused (counted in ``refused``)."""
        earlier = self.message_status.get(message_id)
        if earlier is not None:
            if earlier[0] != STATUS_TEXT[old]:
                self.refused += 1
                return
            old_value = earlier[5]
            if not operator:
                operator = earlier[2]  # type: ignore[assignment]  # an update keeps it
        else:
            old_value = STATUS_TEXT[old]
        self.message_status[message_id] = (STATUS_TEXT[new], error, operator, now, message_id,
                                           old_value)
        self.change_history.append((message_id, STATUS_TEXT[new], now, detail))

    def put_segment(self, message_id: str, part: int, parts: int, operator: str,
                    operator_id: str, status: Status, error: int = 0) -> None:
        self.segments[message_id, part] = (message_id, part, parts, operator, operator_id,
                                           STATUS_TEXT[status], error)

    def add_event(self, event_id: int, tenant: str, kind: str, body: bytes, message_id: str,
                  created_at: float) -> None:
        self.event_adds.append((event_id, tenant, kind, body, message_id, created_at, 0, 0.0))

    def ack_event(self, event_id: int) -> None:
        self.event_acks.append((event_id,))

    def retry_event(self, event_id: int, attempts: int, next_attempt_at: float) -> None:
        self.event_retries.append((attempts, next_attempt_at, event_id))

    def fail_event(self, event_id: int, attempts: int) -> None:
        self.event_fails.append((attempts, event_id))

    def revive_event(self, event_id: int) -> None:
        self.event_revives.append((event_id,))

    def keep_answer(self, tenant: str, key: str, fingerprint: str, status: int,
                    response: bytes, created_at: float) -> None:
        self.answers.append((tenant, key, fingerprint, status, response, created_at))

    def put_template(self, tenant: str, name: str, content: str, created_at: float,
                     updated_at: float) -> None:
        self.templates[tenant, name] = (tenant, name, content, created_at, updated_at)

    def drop_template(self, tenant: str, name: str) -> None:
        self.templates[tenant, name] = None

    def put_link(self, code: str, tenant: str, message_id: str, url: str,
                 created_at: float) -> None:
        self.links.append((code, tenant, message_id, url, created_at))

    def put_click(self, code: str, tenant: str, message_id: str, at: float,
                  bot: bool) -> None:
        self.clicks.append((code, tenant, message_id, at, int(bot)))

    def add_consent(self, row: tuple[object, ...]) -> None:
        """A consent record (tenant, number, state, source, detail, inbound_id, at)."""
        self.consent.append(row)

    def hand_over(self, epoch: int, message_id: str, operator: str) -> None:
        """``message_id`` is sent by the node of ``epoch``, to ``operator``, from now on."""
        self.handoffs.append((epoch, message_id, operator))

    def put_mo_part(self, group: MoGroup, seqnum: int, user_data: bytes,
                    received_at: float) -> None:
        self.mo_parts.append((*group_row(group), seqnum, user_data, received_at))

    def drop_mo_group(self, group: MoGroup) -> None:
        """Forget a group's stored parts. Its parts queued in this same batch are simply not
        written, so the store applies drops before inserts: an insert left in the batch came
        after the drop (a late part opening the group anew) and must survive it."""
        row = group_row(group)
        if self.mo_parts:
            self.mo_parts = [r for r in self.mo_parts if r[:6] != row]
        self.mo_groups_done.append(row)
