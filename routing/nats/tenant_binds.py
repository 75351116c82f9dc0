"""A tenant's ``max_binds`` counted over every node (issue 14): each node publishes how many
binds each tenant has on it, and follows what the others publish.

The count of tenant ``t`` on node ``n`` is the key ``binds.<t>.<n>`` (hex tokens) of the
tenants' bucket, whose entries expire ``ttl_s`` after their last write. A node writes a
count soon after it changes (``changed``: a bind or an unbind here), deletes it at zero, and
writes every count it has again each round (``renew_s``), so a node that dies stops counting
once its keys are older than ``ttl_s``. A watch on ``binds.>`` keeps the latest count of
every other node in memory: ``elsewhere(t)`` answers at once, for the bind check.

Two binds arriving at the same moment on two nodes can both pass the check with the tenant
one below ``max_binds`` (neither node has seen the other's yet, a few milliseconds): the
tenant then holds one bind over its limit until one of them ends. Binds are rare, and a
stricter count would cost a compare-and-set round trip on every bind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from nats.errors import Error as NatsError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from .leases import run_rounds

__all__ = ["TenantBinds"]

log = logging.getLogger(__name__)

_PREFIX = "binds"


def _hex(name: str) -> str:
    return name.encode().hex()


class TenantBinds:
    """This node's bind counts, published; the other nodes' counts, followed."""

    def __init__(self, kv: KeyValue, node: str, loop: asyncio.AbstractEventLoop,
                 local: Callable[[str], int], *, ttl_s: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.kv = kv
        self.node = _hex(node)
        self.loop = loop
        self.local = local  # this node's binds of a tenant (the registry)
        self.ttl_s = ttl_s
        self.renew_s = ttl_s / 5
        self.clock = clock
        # key -> (binds, when written: the server's time) of the other nodes
        self._others: dict[str, tuple[int, float]] = {}
        self._by_tenant: dict[str, set[str]] = {}  # tenant token -> keys of other nodes
        self._published: dict[str, int] = {}  # tenant -> what this node wrote last
        self._dirty: set[str] = set()
        self._poked = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def elsewhere(self, tenant: str) -> int:
        """Binds ``tenant`` has on the other nodes, as last published (fresh ones only)."""
        keys = self._by_tenant.get(_hex(tenant))
        if not keys:
            return 0
        fresh_after = self.clock() - self.ttl_s
        return sum(n for n, at in (self._others[k] for k in keys) if at > fresh_after)

    def changed(self, tenant: str) -> None:
        """``tenant`` bound or unbound here: publish its count soon."""
        self._dirty.add(tenant)
        self._poked.set()

    def start(self) -> None:
        self._tasks = [self.loop.create_task(self._follow()),
                       self.loop.create_task(run_rounds(self.round, self.renew_s,
                                                        self._poked, "tenant bind count"))]

    async def round(self) -> None:
        """Write what changed (and delete what fell to zero), then renew the rest."""
        dirty, self._dirty = self._dirty, set()
        for tenant in dirty | set(self._published):
            count = self.local(tenant)
            key = f"{_PREFIX}.{_hex(tenant)}.{self.node}"
            try:
                if count:
                    await self.kv.put(key, str(count).encode())
                    self._published[tenant] = count
                elif tenant in self._published:
                    await self.kv.delete(key)
                    del self._published[tenant]
            except NatsError:
                self._dirty.add(tenant)  # cut off: the next round tries again

    async def _follow(self) -> None:
        """Keep the other nodes' counts from a watch of the bucket's ``binds`` keys."""
        while True:
            watcher: KeyValue.KeyWatcher | None = None
            try:
                watcher = await self.kv.watch(f"{_PREFIX}.>")
                while True:
                    try:
                        entry = await watcher.updates(  # type: ignore[no-untyped-call]
                            timeout=60.0)
                    except NatsError:
                        continue  # quiet for a minute: keep waiting
                    if entry is not None:
                        self._seen(entry.key, entry.value, entry.operation,
                                   entry.created.timestamp() if entry.created else None)
            except NatsError:
                log.warning("the watch of tenant bind counts ended; watching again",
                            exc_info=True)
                await asyncio.sleep(self.renew_s)
            finally:
                if watcher is not None:
                    with contextlib.suppress(NatsError):
                        await watcher.stop()  # type: ignore[no-untyped-call]

    def _seen(self, key: str, value: bytes | None, operation: str | None,
              created: float | None) -> None:
        _, tenant, node = key.split(".", 2)
        if node == self.node:
            return
        keys = self._by_tenant.setdefault(tenant, set())
        if operation in (KV_DEL, KV_PURGE) or not value:
            self._others.pop(key, None)
            keys.discard(key)
            return
        self._others[key] = (int(value), created if created is not None else self.clock())
        keys.add(key)

    async def stop(self) -> None:
        """Stop following, and delete this node's counts (its binds are closed by now)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        for tenant in list(self._published):
            try:
                await self.kv.delete(f"{_PREFIX}.{_hex(tenant)}.{self.node}")
            except NatsError:
                pass  # it lapses by itself
        self._published.clear()
