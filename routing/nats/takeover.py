"""Messages a node accepted and did not send, when it is gone: which node takes them over.

Each node start takes a new epoch (routing.nats.cluster) and every message id it hands out
carries it (routing.sqlite.ids), so the replica of every node tells which start accepted each
message still waiting for an operator. A node that runs keeps ``live.<epoch>`` in the
tenants' bucket, whose entries expire ``lease_ttl_s`` after their last write (``beat``, every
round); it deletes the key on an orderly stop, once what it had is durable (``leave``).

A waiting message of an epoch with no live key belongs to a node that stopped or died: one
node takes over all of that epoch's waiting messages. It claims the epoch with
``create("taken.<epoch>")`` in the cluster's bucket (no expiry; of several nodes, one wins),
the value naming its own epoch. Should that node die too before the messages left, its epoch
lapses in turn and the claim is taken again with compare and set on the revision read, so
the messages are never stranded and never taken by two live nodes at once. A node that
restarts finds its own earlier starts among the dead ones at once, as one machine does.

A node cut off from the cluster longer than ``lease_ttl_s`` has its messages taken over while
it may still hold some in memory: the messages it sends then can reach the recipient twice,
as those a dead node had in flight do. Its operator bind leases lapse in the same time
(routing.nats.leases), which stops its sending.
"""

from __future__ import annotations

from collections.abc import Iterable

from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

__all__ = ["Takeover", "TakeoverError"]

_LIVE = "live"
_TAKEN = "taken"


class TakeoverError(Exception):
    """The cluster did not answer a round (the next round tries again)."""


class Takeover:
    """This node's liveness, and its claims on the epochs of nodes that are gone."""

    def __init__(self, live: KeyValue, claims: KeyValue, epoch: int) -> None:
        self.live = live  # entries expire (the tenants' bucket)
        self.claims = claims  # entries stay (the cluster's bucket)
        self.epoch = epoch

    async def beat(self) -> None:
        """This node runs (every round; the key lapses ``lease_ttl_s`` after the last)."""
        try:
            await self.live.put(f"{_LIVE}.{self.epoch}", b"")
        except NatsError as e:
            raise TakeoverError(str(e) or type(e).__name__) from e

    async def leave(self) -> None:
        """An orderly stop: the others take over what is left at their next round."""
        try:
            await self.live.delete(f"{_LIVE}.{self.epoch}")
        except NatsError:
            pass  # it lapses by itself

    async def live_epochs(self) -> set[int]:
        """The epochs of the nodes running now (``TakeoverError`` when the cluster does not
        answer)."""
        try:
            keys = await self.live.keys()
        except NoKeysError:
            return set()
        except NatsError as e:
            raise TakeoverError(str(e) or type(e).__name__) from e
        return {int(k.partition(".")[2]) for k in keys if k.startswith(_LIVE + ".")}

    async def claim(self, epochs: Iterable[int]) -> list[int]:
        """Of ``epochs`` (those with waiting messages here), the ones this node takes over
        now: not live, not this node's, and not claimed by a node that is live."""
        wanted = sorted(set(epochs) - {self.epoch})
        if not wanted:
            return []
        try:
            return await self._claim_all(wanted)
        except NatsError as e:
            raise TakeoverError(str(e) or type(e).__name__) from e

    async def _claim_all(self, wanted: list[int]) -> list[int]:
        live = await self.live_epochs()
        live.add(self.epoch)
        won: list[int] = []
        for epoch in wanted:
            if epoch not in live and await self._claim(epoch, live):
                won.append(epoch)
        return won

    async def _claim(self, epoch: int, live: set[int]) -> bool:
        key, me = f"{_TAKEN}.{epoch}", str(self.epoch).encode()
        try:
            entry = await self.claims.get(key)
        except KeyNotFoundError:
            try:
                await self.claims.create(key, me)
                return True
            except KeyWrongLastSequenceError:
                return False  # another node was first
        holder = int(entry.value or b"0")
        if holder in live:
            return False  # a live node has them (this one, maybe, from an earlier round)
        try:
            await self.claims.update(key, me, last=entry.revision)
            return True
        except KeyWrongLastSequenceError:
            return False
