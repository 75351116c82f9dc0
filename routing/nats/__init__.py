"""The NATS JetStream engine (issue 14): several gateway nodes over replicated streams.

So far: checking and provisioning the cluster (``provision``) and replicated group publish
(``publisher``), the parts every storage interface on JetStream is built from. The record,
work queue and event queue on them, and the composition root's ``[cluster]``, are to come;
until then the gateway runs on SQLite only.
"""

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

__all__ = ["MIN_SERVER", "BucketSpec", "ClusterError", "StreamSpec", "check_server",
           "ensure_bucket", "ensure_stream", "JetStreamBatches", "ReplicationError"]
