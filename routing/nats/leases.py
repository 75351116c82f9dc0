"""Operator bind slots shared out among the live nodes: a lease per slot in a replicated
key-value bucket.

Issue 14: each operator's ``binds`` are held by the live nodes, a dead node's binds are taken
over by the others within 15 s, and no operator ever sees more binds than configured. Slot
``k`` of operator ``op`` is a key of the bucket (``BUCKET``), whose entries expire ``ttl_s``
after their last write (the bucket's max age). A node holds a slot while the key names it:

* it takes a free slot with ``create``: of several nodes creating one absent key, one wins;
* it renews each slot it holds every ``renew_s`` with ``update`` on the revision it wrote
  last (compare and set): a node whose slot expired and was taken finds out, and never takes
  it back by overwriting;
* it counts a slot as its own only until ``ttl_s - margin_s`` after the start of its last
  successful write of it, on its own monotonic clock. The server received that write after
  the request started, so it cannot expire the key, and nobody can take the slot, before
  then: a node cut off from the cluster stops using the bind first. At no moment do two
  nodes count one slot as theirs;
* on an orderly stop it deletes its keys (``release_all``), and the others take over at once.

After a crash the dead node's keys expire ``ttl_s`` after its last renewal, and the others
look for free slots every ``renew_s``. So a slot is taken again within ``ttl_s + renew_s``,
plus the server's expiry check: 12 s and that check with the defaults (10 s and 2 s);
tests/cluster/test_operator_binds.py checks that it is within 15 s.

The share is even. Each node also renews a presence key, and aims for ``ceil(binds / live
nodes)`` slots of each operator (``share``). It takes free slots while it holds fewer. When a
node joins, a node holding more than its share lets the extra slots go, and the newcomer
takes them.

A slot's value names its holder (``holder``; the gateway writes its epoch and node name).
With ``read_holders``, for each operator this node holds no slot of, a round reads the
holders of the slots others hold (``elsewhere``): the node hands its messages for that
operator to them (routing.handoff).

``tick`` is one round (presence, renewals, takes, releases). The caller runs it every
``renew_s`` and asks ``held`` which binds to keep open. The decisions are plain functions
(``share``, ``plan``); the I/O is the bucket's.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping

from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from .provision import BucketSpec

__all__ = ["BUCKET", "bucket_spec", "SlotLeases", "share", "plan", "run_rounds", "end_rounds"]

log = logging.getLogger(__name__)

BUCKET = "smsc-leases"
_SLOT = "slot"
_NODE = "node"


def bucket_spec(ttl_s: float) -> BucketSpec:
    """The leases' bucket: entries expire ``ttl_s`` after their last write."""
    return BucketSpec(BUCKET, history=1, ttl_s=ttl_s,
                      description="operator bind slots held by gateway nodes")


def _token(name: str) -> str:
    """A key token for any name (key-value keys allow only a few characters)."""
    return name.encode().hex()


def share(binds: int, live_nodes: int) -> int:
    """How many of an operator's ``binds`` one of ``live_nodes`` nodes aims to hold."""
    return math.ceil(binds / max(1, live_nodes)) if binds > 0 else 0


def plan(binds: int, mine: set[int], taken: set[int], want: int) -> tuple[list[int], list[int]]:
    """(free slots to try to take, held slots to let go) for one operator: take the lowest
    free slots while holding fewer than ``want``; let the highest go while holding more."""
    if len(mine) > want:
        return [], sorted(mine, reverse=True)[: len(mine) - want]
    free = [k for k in range(binds) if k not in mine and k not in taken]
    return free[: max(0, want - len(mine))], []


class SlotLeases:
    """This node's leases on operator bind slots."""

    def __init__(self, kv: KeyValue, node: str, *, ttl_s: float = 10.0, renew_s: float = 2.0,
                 margin_s: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 holder: bytes | None = None, read_holders: bool = False) -> None:
        if not 0 < renew_s < ttl_s - margin_s:
            raise ValueError("renew_s must be positive and shorter than ttl_s - margin_s")
        self.kv = kv
        self.node = node
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self.margin_s = margin_s
        self.clock = clock
        self.holder = node.encode() if holder is None else holder  # the slots' value
        # operators this node holds no slot of -> the values of the slots others hold (read
        # at each round when ``read_holders``)
        self.read_holders = read_holders
        self.elsewhere: dict[str, list[bytes]] = {}
        # (operator, slot) -> (revision we wrote, when the write that made it began)
        self._mine: dict[tuple[str, int], tuple[int, float]] = {}
        self._presence: int | None = None
        self.lost = 0  # slots found taken by another node when renewing (counted)
        self.live = 1  # live nodes at the last round (the presence keys)
        # Awaited before a held slot is let go (the slot still counts as ours meanwhile):
        # the pool closes the bind first, so the next holder never binds beside it.
        self.before_release: Callable[[str, int], Awaitable[None]] | None = None

    # --- what this node may use ---------------------------------------------------------------

    def _valid(self, began: float, now: float) -> bool:
        return now < began + self.ttl_s - self.margin_s

    def held(self, operator: str) -> frozenset[int]:
        """The slots of ``operator`` this node may keep a bind open on, now."""
        now = self.clock()
        return frozenset(k for (op, k), (_, began) in self._mine.items()
                         if op == operator and self._valid(began, now))

    def holding(self) -> set[str]:
        """The operators this node may keep at least one bind open to, now."""
        now = self.clock()
        return {op for (op, _), (_, began) in self._mine.items() if self._valid(began, now)}

    def holds(self, operator: str, slot: int) -> bool:
        """Whether this node may use slot ``slot`` of ``operator`` now (O(1))."""
        entry = self._mine.get((operator, slot))
        return entry is not None and self._valid(entry[1], self.clock())

    # --- one round --------------------------------------------------------------------------

    async def tick(self, demand: Mapping[str, int]) -> None:
        """Renew presence and held slots, then take or let go of slots so that this node
        holds its share of ``demand`` (operator -> configured binds). Errors of the bucket
        leave the leases to expire on their own (``held`` stops counting them)."""
        try:
            await self._renew_presence()
            for (op, k) in list(self._mine):
                if op not in demand or k >= demand[op]:
                    await self._release(op, k)  # the operator or the slot is gone
                else:
                    await self._renew(op, k)
            live, taken = await self._snapshot()
            self.live = live
            for op, binds in demand.items():
                mine = {k for (o, k) in self._mine if o == op}
                take, drop = plan(binds, mine, taken.get(op, set()), share(binds, live))
                for k in drop:
                    await self._release(op, k)
                for k in take:
                    await self._take(op, k)
            if self.read_holders:
                self.elsewhere = await self._holders(demand, taken)
        except NatsError:
            return  # cut off: what we hold lapses by itself; the next round tries again

    async def release_all(self) -> None:
        """Let every slot go (an orderly stop): the other nodes take them at their next
        round instead of after the leases expire."""
        for op, k in list(self._mine):
            try:
                await self._release(op, k)
            except NatsError:
                self._mine.pop((op, k), None)
        if self._presence is not None:
            try:
                await self.kv.delete(f"{_NODE}.{_token(self.node)}")
            except NatsError:
                pass
            self._presence = None

    # --- bucket operations ------------------------------------------------------------------

    def _key(self, operator: str, slot: int) -> str:
        return f"{_SLOT}.{_token(operator)}.{slot}"

    async def _renew_presence(self) -> None:
        key = f"{_NODE}.{_token(self.node)}"
        self._presence = await self.kv.put(key, self.node.encode())

    async def _snapshot(self) -> tuple[int, dict[str, set[int]]]:
        """(live nodes, every slot some node holds now by operator), from one listing."""
        try:
            keys = await self.kv.keys()
        except NoKeysError:
            return 1, {}
        nodes = 0
        taken: dict[str, set[int]] = {}
        for key in keys:
            kind, _, rest = key.partition(".")
            if kind == _NODE:
                nodes += 1
            elif kind == _SLOT:
                op_hex, _, slot = rest.partition(".")
                taken.setdefault(bytes.fromhex(op_hex).decode(), set()).add(int(slot))
        return max(1, nodes), taken

    async def _holders(self, demand: Mapping[str, int], taken: Mapping[str, set[int]]
                       ) -> dict[str, list[bytes]]:
        """What the holders of the slots in ``taken`` wrote, for the operators of ``demand``
        this node holds no slot of (one read per such slot)."""
        holding = self.holding()
        out: dict[str, list[bytes]] = {}
        for op in demand:
            if op in holding:
                continue
            values = []
            for k in sorted(taken.get(op, ())):
                try:
                    entry = await self.kv.get(self._key(op, k))
                except KeyNotFoundError:
                    continue  # let go or expired since the listing
                if entry.value and entry.value != self.holder:
                    values.append(entry.value)
            if values:
                out[op] = values
        return out

    async def _take(self, operator: str, slot: int) -> None:
        began = self.clock()
        try:
            revision = await self.kv.create(self._key(operator, slot), self.holder)
        except KeyWrongLastSequenceError:
            return  # another node was first
        self._mine[(operator, slot)] = (revision, began)

    async def _renew(self, operator: str, slot: int) -> None:
        last, _ = self._mine[(operator, slot)]
        began = self.clock()
        try:
            revision = await self.kv.update(self._key(operator, slot), self.holder, last=last)
        except (KeyWrongLastSequenceError, KeyNotFoundError):
            # It expired (we were cut off longer than ttl_s) and may be someone else's now.
            self._mine.pop((operator, slot), None)
            self.lost += 1
            return
        self._mine[(operator, slot)] = (revision, began)

    async def _release(self, operator: str, slot: int) -> None:
        if (operator, slot) not in self._mine:
            return
        if self.before_release is not None:
            await self.before_release(operator, slot)
        entry = self._mine.pop((operator, slot), None)
        if entry is None:
            return
        try:
            await self.kv.delete(self._key(operator, slot), last=entry[0])
        except (KeyWrongLastSequenceError, KeyNotFoundError):
            pass  # expired or taken meanwhile: not ours to delete


async def run_rounds(round: Callable[[], Awaitable[None]], every_s: float,
                     poked: asyncio.Event, what: str) -> None:
    """Run ``round`` every ``every_s``, and at once when ``poked`` is set, until cancelled;
    a round that fails is logged and the next one tries again."""
    while True:
        poked.clear()  # before the round: a poke during it runs the next one at once
        try:
            await round()
        except Exception:
            log.exception("%s round failed; trying again", what)
        try:
            await asyncio.wait_for(poked.wait(), every_s)
        except TimeoutError:
            pass


async def end_rounds(task: asyncio.Task[None] | None, leases: SlotLeases) -> None:
    """Stop the rounds of ``task`` (bounded) and let every lease of ``leases`` go."""
    if task is not None:
        task.cancel()
        await asyncio.wait([task], timeout=2.0)
    await leases.release_all()
