"""This node's share of every operator's bind slots (issue 14, "Operator binds are shared
out"): the rounds of ``SlotLeases`` over ``BUCKET``, for the ESME pool.

Slot ``k`` of an operator is its ``k``-th bind (a transceiver, or a transmitter and receiver
pair). The pool opens a bind only while this node holds its slot (``holds``), closes it
before the slot is let go (``before_release``: the next holder never binds beside it), and
closes it too when the lease lapses on this node's clock (cut off from the cluster: the
others may take the slot ``margin`` later). Rounds run every ``renew_s`` (a fifth of the
lease time) over the demand of the config (``demand``: operator -> binds); ``on_change``
runs after each, so the pool opens what was gained at once.

Every live node aims for ``ceil(binds / nodes)`` slots of each operator, so with ``binds``
at least the number of nodes each node holds a bind to every operator. With fewer, some nodes
hold none: they hand their messages for that operator to the nodes that hold its binds
(``elsewhere``: a slot's value is its holder's epoch and node name; routing.handoff), which
is logged once per change of the numbers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from nats.js.kv import KeyValue

from .leases import BUCKET, SlotLeases, bucket_spec, end_rounds, run_rounds

__all__ = ["BUCKET", "bucket_spec", "BindSlots"]

log = logging.getLogger(__name__)


class BindSlots:
    """This node's operator bind slots; ``start`` on the loop, ``stop`` releases them."""

    def __init__(self, kv: KeyValue, node: str, loop: asyncio.AbstractEventLoop, *,
                 epoch: int, ttl_s: float = 10.0) -> None:
        self.leases = SlotLeases(kv, node, ttl_s=ttl_s, renew_s=ttl_s / 5, margin_s=ttl_s / 10,
                                 holder=f"{epoch} {node}".encode(), read_holders=True)
        self.loop = loop
        self.demand: Callable[[], Mapping[str, int]] = dict
        self.on_change: Callable[[], None] = lambda: None
        self._short: set[tuple[str, int, int]] = set()  # (operator, binds, nodes) logged
        self._poked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def before_release(self) -> Callable[[str, int], Awaitable[None]] | None:
        return self.leases.before_release

    @before_release.setter
    def before_release(self, hook: Callable[[str, int], Awaitable[None]] | None) -> None:
        self.leases.before_release = hook

    def holds(self, operator: str, slot: int) -> bool:
        """Whether this node may keep bind ``slot`` of ``operator`` open now."""
        return self.leases.holds(operator, slot)

    def held(self) -> dict[str, float]:
        """Slots this node holds now, by operator (a gauge)."""
        return {op: float(len(self.leases.held(op))) for op in self.demand()}

    def elsewhere(self) -> dict[str, list[int]]:
        """The operators this node holds no bind slot of, with the epochs of the nodes that
        hold their slots (one per slot), at the last round."""
        out: dict[str, list[int]] = {}
        for op, values in self.leases.elsewhere.items():
            for value in values:
                epoch, _, _ = value.partition(b" ")
                if epoch.isdigit():
                    out.setdefault(op, []).append(int(epoch))
        return out

    def start(self) -> None:
        self._task = self.loop.create_task(
            run_rounds(self.round, self.leases.renew_s, self._poked, "operator bind slot"))

    def poke(self) -> None:
        """Run a round soon (the config changed)."""
        self._poked.set()

    async def round(self) -> None:
        demand = dict(self.demand())
        await self.leases.tick(demand)
        self._warn_short(demand)
        self.on_change()

    def _warn_short(self, demand: Mapping[str, int]) -> None:
        live = self.leases.live
        for op, binds in demand.items():
            key = (op, binds, live)
            if binds < live and not self.leases.held(op) and key not in self._short:
                self._short.add(key)
                log.warning("operator %s: binds = %d for %d live nodes, and none is this "
                            "node's: its messages to %s are handed to the nodes holding "
                            "them", op, binds, live, op)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await end_rounds(task, self.leases)
