"""A node joining the cluster: the connection, the streams and buckets, its epoch, its replica.

``join`` runs the start of a cluster node in order, each step refusing the start in one line
(``ClusterError``) when the cluster cannot carry the guarantees:

1. connect to any of ``[cluster] servers`` (routing.nats.connection), with the configured
   credentials and TLS;
2. the server is 2.10.23 or newer and serves JetStream (routing.nats.provision);
3. the log stream and the key-value buckets exist with ``replicas`` replicas on disk (created
   when missing; an existing weaker one is refused);
4. a new epoch for this start, from a compare-and-set counter in the cluster's bucket, so
   ids are unique across every node and start (routing.sqlite.ids);
5. this node's epoch is marked live (routing.nats.takeover) before it accepts anything;
6. the local replica catches up with the log (routing.nats.replica) before the node serves.

``Cluster.close`` undoes it: what is pending is published and applied, the operator bind
slots and the tenant leases are let go (the other nodes take them at once), the epoch stops
being live (the others take over the messages it did not send), the connection is drained.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from config import ClusterConfig, TenantConfig

from ..handoff import Handoff
from ..sqlite.store import Store
from ..throttle import RateLimit, TokenBucket
from . import bind_slots, budget
from .bind_slots import BindSlots
from .budget import ClusterBudget
from .connection import connect
from .ownership import TENANTS_BUCKET, TenantOwnership
from .provision import BucketSpec, ClusterError, check_server, ensure_bucket, ensure_stream
from .replica import ReplicatedCommitter, log_spec
from .takeover import Takeover
from .tenant_binds import TenantBinds

__all__ = ["Cluster", "join", "CLUSTER_BUCKET"]

log = logging.getLogger(__name__)

CLUSTER_BUCKET = "smsc-cluster"
_EPOCH_KEY = "epoch"
_CAS_TRIES = 20


def _tls(cfg: ClusterConfig) -> ssl.SSLContext | None:
    if not (cfg.ca or cfg.cert or any(s.startswith("tls://") for s in cfg.servers)):
        return None
    context = ssl.create_default_context(cafile=cfg.ca or None)
    if cfg.cert:
        context.load_cert_chain(cfg.cert, cfg.key or None)
    return context


async def next_epoch(kv: KeyValue) -> int:
    """One more than the last epoch any node took (compare and set against the others)."""
    for _ in range(_CAS_TRIES):
        try:
            entry = await kv.get(_EPOCH_KEY)
        except KeyNotFoundError:
            try:
                await kv.create(_EPOCH_KEY, b"1")
                return 1
            except KeyWrongLastSequenceError:
                continue  # another node created it first
        epoch = int(entry.value or b"0") + 1
        try:
            await kv.update(_EPOCH_KEY, str(epoch).encode(), last=entry.revision)
            return epoch
        except KeyWrongLastSequenceError:
            continue  # another node started at the same moment: read it again
    raise ClusterError(f"could not take an epoch in {_CAS_TRIES} tries: too many nodes "
                       "starting at once; start this node again")


class Cluster:
    """This node's part of the cluster while it runs."""

    def __init__(self, cfg: ClusterConfig, nc: Client, committer: ReplicatedCommitter,
                 ownership: TenantOwnership, takeover: Takeover, slots: BindSlots,
                 tenant_binds: TenantBinds, budgets: KeyValue) -> None:
        self.config = cfg
        self.nc = nc
        self.committer = committer
        self.ownership = ownership
        self.bind_slots = slots
        self.budgets = budgets
        self.tenant_binds = tenant_binds
        self.takeover = takeover
        self.epoch = takeover.epoch
        self.handoff: Handoff | None = None  # set by the gateway once its router is wired

    def rate_limit(self, tenant: TenantConfig, now: float) -> RateLimit:
        """``tenant``'s ``tps`` as one budget over every node (none: unlimited)."""
        if not tenant.tps:
            return TokenBucket(0.0, now)
        return ClusterBudget(self.budgets, tenant.system_id, tenant.tps,
                             asyncio.get_running_loop())

    async def close(self) -> None:
        try:
            await self.committer.close()
            await self.bind_slots.stop()  # the pool has closed its binds by now
            await self.tenant_binds.stop()  # and the listener its tenants' binds
            await self.ownership.stop()
            await self.takeover.leave()
        finally:
            try:
                await self.nc.drain()
            except Exception:  # closed or cut off already
                log.debug("NATS connection not drained", exc_info=True)


async def join(cfg: ClusterConfig, store: Store, loop: asyncio.AbstractEventLoop, *,
               wanted: Callable[[], set[str]],
               on_commit: Callable[[int, float], None] | None = None,
               min_interval_s: float = 0.001) -> Cluster:
    """Join the cluster over the open ``store`` (this node's replica); ``wanted`` says which
    tenants this node can deliver events to (a receiver bind here, or a webhook)."""
    nc = await connect(list(cfg.servers), name=f"smsc {cfg.node}", user=cfg.user or None,
                       password=cfg.password or None, token=cfg.token or None,
                       tls=_tls(cfg), connect_timeout_s=cfg.connect_timeout_s)
    try:
        js = nc.jetstream()
        version = await check_server(nc, js)
        await ensure_stream(js, log_spec(cfg.log_retention_s), cfg.replicas)
        await ensure_bucket(js, BucketSpec(CLUSTER_BUCKET, history=1,
                                           description="smsc: cluster-wide counters"),
                            cfg.replicas)
        await ensure_bucket(js, BucketSpec(TENANTS_BUCKET, history=1, ttl_s=cfg.lease_ttl_s,
                                           description="smsc: tenants' event owners"),
                            cfg.replicas)
        await ensure_bucket(js, bind_slots.bucket_spec(cfg.lease_ttl_s), cfg.replicas)
        await ensure_bucket(js, budget.bucket_spec(), cfg.replicas)
        counters = await js.key_value(CLUSTER_BUCKET)
        tenants = await js.key_value(TENANTS_BUCKET)
        epoch = await next_epoch(counters)
        takeover = Takeover(tenants, counters, epoch)
        await takeover.beat()
        store.join_cluster(epoch)
        committer = ReplicatedCommitter(store, loop, js, node=cfg.node, epoch=epoch,
                                        on_commit=on_commit, min_interval_s=min_interval_s,
                                        publish_timeout_s=cfg.publish_timeout_s,
                                        max_entry_bytes=max(4096, nc.max_payload - 65536))
        await committer.open()
        ownership = TenantOwnership(tenants, cfg.node, loop, wanted, ttl_s=cfg.lease_ttl_s)
        slots = BindSlots(await js.key_value(bind_slots.BUCKET), cfg.node, loop, epoch=epoch,
                          ttl_s=cfg.lease_ttl_s)
        # ``max_binds`` over every node (``local``: this node's count, set by the gateway)
        tenant_binds = TenantBinds(tenants, cfg.node, loop, local=lambda tenant: 0,
                                   ttl_s=cfg.lease_ttl_s)
    except BaseException:
        await nc.close()
        raise
    log.info("node %s joined the cluster (NATS %s, epoch %d, %d replicas)", cfg.node,
             version, epoch, cfg.replicas)
    return Cluster(cfg, nc, committer, ownership, takeover, slots, tenant_binds,
                   await js.key_value(budget.BUCKET))
