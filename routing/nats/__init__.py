"""The NATS JetStream engine (issue 14): several gateway nodes over replicated streams.

So far, the parts the storage interfaces and the pool on JetStream are built from:

* ``connection``: one client per node that keeps reconnecting to any server it knows;
* ``provision``: the server is new enough; streams and key-value buckets exist, replicated
  on disk as configured, or the start is refused in one line;
* ``publisher``: replicated group publish, one future per batch, message ids deduplicated;
* ``leases``: operator bind slots shared out among the live nodes, taken over from a dead
  one;
* ``budget``: a tenant's tps as one budget over every node.

The record, work queue and event queue on them, and the composition root's ``[cluster]``,
are to come; until then the gateway runs on SQLite only.
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
