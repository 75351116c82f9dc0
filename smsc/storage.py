"""The storage engine the config chooses, for the composition root.

Without ``[cluster]``: this machine's SQLite store with its group committer (the default).
With ``[cluster] engine = "nats"``: the same store becomes this node's replica of a log
every node writes to and reads (routing.nats): the committer publishes each batch to the
replicated log and resolves once the batch is applied here, and the parts that keep state in
memory follow the other nodes' writes: the event queue holds the events of the tenants this
node delivers (one node per tenant, routing.nats.ownership: the tenants with a receiver bind
here, or a webhook), the consent index and the templates follow the others' changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from config import GatewayConfig
from routing.consent import Consent
from routing.nats.cluster import Cluster, join
from routing.outcomes import Outcomes
from routing.sqlite import GroupCommitter, Ops, SqliteEventQueue, Store
from routing.templates import TemplateBook

from .teardown import Teardown

__all__ = ["open_engine", "follow_cluster"]


async def open_engine(cfg: GatewayConfig, store: Store, steps: Teardown, *,
                      on_commit: Callable[[int, float], None],
                      wanted: Callable[[], set[str]]
                      ) -> tuple[GroupCommitter, Cluster | None]:
    """The committer over ``store`` (open), started, and the cluster this node joined
    (None without ``[cluster]``); the undo pushed on ``steps``. ``wanted``: the tenants
    whose events this node can deliver (a receiver bind here, a webhook)."""
    loop = asyncio.get_running_loop()
    interval = cfg.store.commit_interval_ms / 1000
    if cfg.cluster is None:
        committer = GroupCommitter(store, loop, on_commit=on_commit,
                                   threaded=cfg.store.synchronous == "full",
                                   min_interval_s=interval)

        async def stop() -> None:
            """Make everything decided durable, then stop the writer and checkpoint
            threads."""
            await committer.flush()
            committer.stop()

        steps.push("group commit", stop)
        committer.start()
        return committer, None
    cluster = await join(cfg.cluster, store, loop, wanted=wanted, on_commit=on_commit,
                         min_interval_s=interval)

    async def leave() -> None:
        """Publish and apply what is pending, let the tenant leases go, disconnect."""
        try:
            await cluster.committer.flush()
        finally:
            cluster.committer.stop()
            await cluster.close()

    steps.push("cluster", leave)
    cluster.committer.start()
    return cluster.committer, cluster


def follow_cluster(cluster: Cluster, events: SqliteEventQueue, consent: Consent,
                   templates: TemplateBook, outcomes: Outcomes,
                   wall: Callable[[], float]) -> None:
    """Once the parts are wired: they follow the log, and the tenant leases start."""
    ownership = cluster.ownership
    events.join_cluster(ownership.owns)
    ownership.on_gained = events.gained
    ownership.on_lost = events.lost

    def entry(ops: Ops, mine: bool) -> None:
        if ops.event_adds:
            events.arrived(ops.event_adds)
        if mine:
            return  # this node's consent, templates and receipts are in memory already
        if ops.segments and outcomes.parked:
            now = wall()
            for row in ops.segments.values():
                outcomes.sent_elsewhere(str(row[3]), str(row[4]), now)
        for row in ops.consent:
            consent.learned(str(row[0]), str(row[1]), str(row[2]))
        if ops.templates:
            templates.load()

    cluster.committer.on_entry(entry)
    ownership.start()
