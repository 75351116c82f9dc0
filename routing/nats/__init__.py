"""The NATS JetStream engine (issue 14): several gateway nodes over replicated streams.

* ``connection``: one client per node that keeps reconnecting to any server it knows;
* ``provision``: the server is new enough; streams and key-value buckets exist, replicated
  on disk as configured, or the start is refused in one line;
* ``publisher``: replicated group publish, one future per batch, message ids deduplicated;
* ``replica``, ``oplog``, ``chunks``: every node's write batches as entries of one log,
  applied by every node to its own SQLite replica (large entries as chunks);
* ``cluster``: a node joining (epoch, liveness, catch-up) and leaving;
* ``ownership``: which node delivers a tenant's events, and the cluster's duties;
* ``leases``, ``bind_slots``: operator bind slots shared out among the live nodes;
* ``takeover``: the waiting messages of a node that stopped or died, taken over;
* ``budget``, ``tenant_binds``: a tenant's tps and max_binds over every node.

The composition root (``smsc.storage``) wires them in with ``[cluster] engine = "nats"``.
"""

from .connection import JetStream, connect
from .provision import (
           MIN_SERVER,
           BucketSpec,
           ClusterError,
           StreamSpec,
           check_server,
           ensure_bucket,
           ensure_stream,
)
from .publisher import JetStreamBatches, ReplicationError

__all__ = ["connect", "JetStream", "MIN_SERVER", "BucketSpec", "ClusterError",
           "StreamSpec", "check_server", "ensure_bucket", "ensure_stream", "JetStreamBatches",
           "ReplicationError"]
