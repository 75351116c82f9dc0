"""One ``tps`` budget per tenant across the cluster (issue 14): nodes reserve a tenant's
tokens in chunks from a shared counter per tenant and second.

A tenant with ``tps`` may send ``tps`` messages in each second of wall-clock time, counted
over every node it binds to or posts to (below one a second, ``tps`` times a window of a
few seconds: 0.5 is one message per 2 s). The counter of second ``s`` is the key
``<tenant>.<s>`` of a replicated key-value bucket (``BUCKET``, entries expire after a
minute). A node that needs tokens reserves a chunk (``chunk``: a fiftieth of ``tps``, at
least one) with compare-and-set on that key. Reservations never pass ``tps``, so no second
ever admits more than the budget, whatever the number of nodes. What a node reserved but did
not use is lost when the second ends, at most one chunk per node: with three nodes, at least
94 % of the budget stays usable (the issue allows 10 %).

``take(now)`` answers at once from the tokens this node holds for the current second, as
``TokenBucket.take`` does. When they run low, the next chunk is reserved in the background
(``refill``), so a busy tenant does not wait for a round trip per chunk. A node that cannot
reach the cluster admits nothing for that tenant: it cannot know what the others took.

A tenant that was quiet holds no tokens here: rather than refuse its first message of a
second (every message of a sparse sender would be refused once), the node admits it and
owes it (``debt``), charged to the shared counter by the reservation that follows, to the
next second's if this one is spent. A node admits at most one message on credit a second,
and none while it owes one, so the rate over time stays the budget, and one second can pass
it by at most one message per node. Only budgets of ``CREDIT_MIN`` a second or more give
credit (one message per node is then at most a few percent of a second's budget); a
smaller one refuses the first message of a quiet tenant until its chunk is reserved.
``borrow`` (an HTTP request for many recipients) owes the rest the same way, as
``TokenBucket.borrow`` goes into debt.
"""

from __future__ import annotations

import asyncio
import math

from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from .provision import BucketSpec

__all__ = ["BUCKET", "CREDIT_MIN", "bucket_spec", "chunk", "ClusterBudget"]

BUCKET = "smsc-budgets"
_CAS_TRIES = 8  # compare-and-set rounds against other nodes before giving up this chunk
CREDIT_MIN = 20  # tokens a second from which a quiet tenant's first message goes on credit


def bucket_spec() -> BucketSpec:
    return BucketSpec(BUCKET, history=1, ttl_s=60.0,
                      description="tenant tps reserved per second by gateway nodes")


def chunk(tps: float) -> int:
    """Tokens one reservation takes: a fiftieth of the budget, at least one."""
    return max(1, math.ceil(tps / 50))


class ClusterBudget:
    """This node's share of one tenant's budget. ``take`` on the loop; reservations run as
    tasks of ``loop``."""

    def __init__(self, kv: KeyValue, tenant: str, tps: float,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.kv = kv
        self.tenant = tenant
        self.tps = tps
        self.loop = loop
        # A budget below one message a second is counted over windows of several seconds
        # (0.5 tps: one message per 2 s); at or above one, per second.
        self.window_s = 1 if tps >= 1 or tps <= 0 else math.ceil(1 / tps)
        self.limit = math.floor(tps * self.window_s)  # tokens per window over the cluster
        self.chunk = chunk(tps)
        self._tokens: dict[int, int] = {}  # second -> tokens this node holds for it
        self._reserving: asyncio.Task[None] | None = None
        self._exhausted = -1  # the last second whose budget the cluster has spent
        self.debt = 0  # messages admitted on credit, not yet charged to the counter
        self._credit = self.limit >= CREDIT_MIN and self.window_s == 1
        self._credited = -1  # the last second a message went on credit
        self.reservations = 0
        self.conflicts = 0  # compare-and-set rounds lost to another node

    @property
    def rate(self) -> float:
        return self.tps

    def _key(self, second: int) -> str:
        return f"{self.tenant.encode().hex()}.{second}"

    def take(self, now: float, n: int = 1) -> bool:
        """Spend ``n`` tokens of the current second (``now``, wall clock) if this node holds
        them; False means over the cluster's rate (or not reserved yet). Near a second's end
        a tenant that is sending gets a chunk of the next second reserved ahead, so the new
        second does not open with a refusal."""
        if not self.tps:
            return True
        second = int(now // self.window_s)  # the window's number
        tokens = self._tokens
        held = tokens.get(second, 0)
        ok = held >= n
        if ok:
            held = tokens[second] = held - n
        elif (self._credit and not held and not self.debt and self._credited < second
              and self._exhausted < second
              and (self._reserving is None or self._reserving.done())):
            ok, self.debt, self._credited = True, n, second  # quiet: on credit, charged next
        if held < self.chunk and self._exhausted < second:
            self._reserve(second)
        elif now / self.window_s - second > 0.9 and second + 1 not in tokens:
            self._reserve(second + 1)
        if len(tokens) > 2:
            for old in [s for s in tokens if s < second]:
                del tokens[old]
        return ok

    def borrow(self, now: float, n: int) -> bool:
        """Admit ``n`` messages at once when at least one token is here (or on credit),
        owing the rest: what follows waits until the debt is charged."""
        if not self.take(now):
            return False
        if self.tps:
            self.debt += n - 1
            self._reserve(int(now // self.window_s))
        return True

    def delay(self, now: float) -> float:
        """Seconds until this node may admit again (0 when it may now): the next window,
        plus what it owes at the budget's rate."""
        if not self.tps:
            return 0.0
        second = int(now // self.window_s)
        if self._tokens.get(second, 0) > 0:
            return 0.0
        return (second + 1) * self.window_s - now + self.debt / self.tps

    def _reserve(self, second: int) -> None:
        if self._reserving is None or self._reserving.done():
            self._reserving = self.loop.create_task(self.refill(second))

    async def refill(self, second: int) -> None:
        """Reserve one chunk of ``second`` (or what is left of its budget)."""
        key = self._key(second)
        try:
            for _ in range(_CAS_TRIES):
                try:
                    entry = await self.kv.get(key)
                    used, revision = int(entry.value or b"0"), entry.revision
                except KeyNotFoundError:
                    used, revision = 0, 0
                want = min(self.chunk + self.debt, self.limit - used)
                if want <= 0:
                    self._exhausted = second
                    return
                try:
                    if revision:
                        await self.kv.update(key, str(used + want).encode(), last=revision)
                    else:
                        await self.kv.create(key, str(want).encode())
                except KeyWrongLastSequenceError:
                    self.conflicts += 1
                    continue  # another node reserved first: read again
                self.reservations += 1
                paid = min(want, self.debt)  # what was admitted on credit is charged first
                self.debt -= paid
                if want > paid:
                    self._tokens[second] = self._tokens.get(second, 0) + want - paid
                return
        except NatsError:
            return  # cut off: admit nothing more this second
