"""The storage engine the config chooses, for the composition root.

Without ``[cluster]``: this machine's SQLite store with its group committer (the default).
With ``[cluster] engine = "nats"``: the same store becomes this node's replica of a log
every node writes to and reads (routing.nats): the committer publishes each batch to the
replicated log and resolves once the batch is applied here, and the parts that keep state in
memory follow the other nodes' writes: the event queue holds the events of the tenants this
node delivers (one node per tenant, routing.nats.ownership: the tenants with a receiver bind
here, or a webhook), the consent index and the templates follow the others' changes, each
operator's binds are shared out among the nodes (routing.nats.bind_slots), a tenant's tps is
one budget over them (routing.nats.budget) and its max_binds counts its binds on all of them
(routing.nats.tenant_binds), one node
releases the due scheduled messages, the messages a node that stopped or died did not send
are taken over by another (smsc.recovery), and a node holding no bind of an operator hands
its messages for it to a node that holds one (routing.handoff).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from config import GatewayConfig
from esme import Pool
from routing.admission import Admission
from routing.consent import Consent
from routing.handoff import Handoff
from routing.model import Status
from routing.nats.cluster import Cluster, join
from routing.nats.control import RemoteControl
from routing.nats.ownership import SCHEDULER
from routing.repository import MessageRecord
from routing.router import Router
from routing.schedule import Scheduler
from routing.sqlite import GroupCommitter, Ops, SqliteEventQueue, Store
from routing.templates import TemplateBook

from .metrics import Metrics
from .recovery import OrphanSweep
from .registry import Registry
from .teardown import Teardown

__all__ = ["open_engine", "follow_cluster", "share_binds", "control_elsewhere"]

log = logging.getLogger(__name__)


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
                         min_interval_s=cfg.cluster.commit_interval_ms / 1000)

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


class Followers(Protocol):
    """The parts of the gateway (``smsc.app.Gateway``) that follow the other nodes."""

    @property
    def events(self) -> SqliteEventQueue: ...
    @property
    def admission(self) -> Admission: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def consent(self) -> Consent: ...
    @property
    def templates(self) -> TemplateBook: ...
    @property
    def router(self) -> Router: ...
    @property
    def record(self) -> MessageRecord: ...
    @property
    def scheduler(self) -> Scheduler: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def pool(self) -> Pool | None: ...

    def wall(self) -> float: ...


_SCHEDULED = Status.SCHEDULED.value
_STATUS, _SEND_AT = 18, 27  # columns of a message row (routing.sqlite.rows.MESSAGE_COLUMNS)


def follow_cluster(cluster: Cluster, gw: Followers, steps: Teardown) -> None:
    """Once the parts are wired: they follow the log, the tenant and duty leases start, and
    so do the rounds that take over what nodes that are gone did not send."""
    ownership, events, scheduler = cluster.ownership, gw.events, gw.scheduler
    gw.admission.limiter = cluster.rate_limit  # a tenant's tps is one budget over the nodes
    binds, registry = cluster.tenant_binds, gw.registry  # max_binds counted over the nodes
    binds.local, registry.elsewhere = registry.count, binds.elsewhere

    def bound_or_unbound(tenant: str) -> None:
        binds.changed(tenant)
        ownership.poke()  # a receiver here may make this node the tenant's deliverer

    registry.on_change = bound_or_unbound
    binds.start()
    events.join_cluster(ownership.owns)
    ownership.on_gained = events.gained
    ownership.on_lost = events.lost
    follow_scheduler_duty(cluster, scheduler, steps)
    outcomes = gw.router.outcomes
    # Messages for an operator whose binds are all on other nodes go to those nodes
    handoff = cluster.handoff = Handoff(gw.router, gw.record, cluster.epoch,
                                        asyncio.get_running_loop())
    gw.router.work.subscribe(handoff.on_work)
    gw.metrics.counter("smsc_cluster_handed_over", "Waiting messages handed to the node "
                       "holding their operator's binds (out), handed to this node (in), and "
                       "handovers that failed and were tried again (failed)", "direction",
                       lambda: {"out": float(handoff.handed_out),
                                "in": float(handoff.handed_in),
                                "failed": float(handoff.failed)})

    def entry(ops: Ops, mine: bool) -> None:
        if ops.event_adds:
            events.arrived(ops.event_adds)
        if ops.handoffs:
            handoff.arrived(ops.handoffs)
        if mine:
            return  # this node's consent, templates and receipts are in memory already
        if ops.segments and outcomes.parked:
            now = gw.wall()
            for row in ops.segments.values():
                outcomes.sent_elsewhere(str(row[3]), str(row[4]), now)
        for row in ops.messages:
            if row[_STATUS] == _SCHEDULED:
                scheduler.wake(float(row[_SEND_AT]))  # type: ignore[arg-type]
        if ops.replaced:
            scheduler.wake(0.0)  # a scheduled one may be due at another time now
        for row in ops.consent:
            gw.consent.learned(str(row[0]), str(row[1]), str(row[2]))
        if ops.templates:
            gw.templates.load()

    cluster.committer.on_entry(entry)
    ownership.start()
    if gw.pool is not None:
        share_binds(cluster, gw.pool, gw.metrics)
    sweep = OrphanSweep(cluster.takeover, gw.record, gw.router, asyncio.get_running_loop(),
                        every_s=ownership.leases.renew_s, handoff=handoff)
    gw.metrics.counter("smsc_cluster_taken_over", "Waiting messages (and epochs: node "
                       "starts) taken over from cluster nodes that stopped or died; those "
                       "a dead node had in flight may reach their recipients twice", "kind",
                       lambda: {"messages": float(sweep.messages_taken),
                                "epochs": float(sweep.epochs_taken)})
    committer = cluster.committer
    gw.metrics.counter("smsc_cluster_log_gaps", "Runs of log entries the log dropped before "
                       "this node applied them (its replica is incomplete: start it from a "
                       "copy, smsc copy-replica)", "node",
                       lambda: {cluster.config.node: float(committer.gaps)})
    steps.push("takeover", sweep.stop)
    sweep.start()


def share_binds(cluster: Cluster, pool: Pool, metrics: Metrics) -> None:
    """The pool opens only the operator binds whose slot this node holds (before it starts);
    the slots' rounds follow the operators of the config, reloads included."""
    slots, handoff = cluster.bind_slots, cluster.handoff
    pool.slots = slots
    slots.before_release = pool.let_go

    def changed() -> None:
        pool.slots_changed()
        if handoff is not None:
            handoff.holders_changed(slots.elsewhere())

    slots.on_change = changed
    slots.demand = lambda: {op.name: op.binds for op in pool.config.operators}
    metrics.gauge("smsc_cluster_bind_slots", "Operator bind slots this node holds (a "
                  "cluster shares each operator's binds out among its nodes)", "operator",
                  slots.held)
    slots.start()


def follow_scheduler_duty(cluster: Cluster, scheduler: Scheduler, steps: Teardown) -> None:
    """One node releases due scheduled messages: the holder of the duty lease, once its
    replica has applied what the log held when the duty came to it (the releases of the
    node that had it before), so that a message is not released again from a stale row."""
    ownership, loop = cluster.ownership, asyncio.get_running_loop()
    current = {"scheduler": False}
    scheduler.leads = lambda: current["scheduler"] and ownership.leads(SCHEDULER)
    tasks: set[asyncio.Task[None]] = set()

    async def take_duty() -> None:
        while ownership.leads(SCHEDULER):
            if await cluster.committer.barrier():
                current["scheduler"] = True
                scheduler.wake(0.0)
                return
            log.warning("the scheduler's duty came to this node, but its replica is not "
                        "known to be current; due messages wait until it is")
            await asyncio.sleep(ownership.leases.renew_s)

    def on_duty(duty: str) -> None:
        current["scheduler"] = False
        task = loop.create_task(take_duty())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def stop() -> None:
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.wait(list(tasks), timeout=2.0)

    ownership.on_duty = on_duty
    steps.push("scheduler duty", stop)


async def control_elsewhere(cluster: Cluster, gw: Followers) -> RemoteControl:
    """cancel_sm, replace_sm and DELETE of a message another node's queue holds go to that
    node (routing.nats.control); this node answers the others' for its own queue."""
    control = RemoteControl(cluster.nc, gw.router, gw.record, gw.wall,
                            cluster.committer.barrier)
    await control.start()
    gw.metrics.counter("smsc_cluster_remote_changes", "Cancels and replaces of messages "
                       "queued here that another node was asked for", "node",
                       lambda: {cluster.config.node: float(control.done_here)})
    return control
