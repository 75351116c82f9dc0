"""The connection to the NATS cluster: one client per node, with the reconnect behaviour the
engine's guarantees assume.

A node keeps one connection for everything (publishes, key-value, consumers). It lists every
server it knows, so a killed server costs a reconnect, not the node; it keeps trying for as
long as the node runs (``max_reconnect_attempts=-1``), since while it is cut off it accepts
nothing (group publishes fail after their attempts and leases lapse) and must come back by
itself. What it sends while reconnecting is buffered, up to ``pending_bytes``. The first
connection is different: when no server answers within ``connect_timeout_s`` per server,
``connect`` gives up with ``ClusterError`` (a node does not start on a cluster it cannot
reach). A server that stops answering without closing the connection (frozen, or cut off by
the network) is noticed by pings within ``PING_S * (MAX_PINGS + 1)`` (9 s), and the client
moves to another server.
"""

from __future__ import annotations

import asyncio
import ssl

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from .provision import ClusterError

__all__ = ["connect", "JetStream"]

JetStream = JetStreamContext  # what ``Client.jetstream()`` returns, for callers outside


PING_S = 3.0  # how often the client pings its server
MAX_PINGS = 2  # pings left unanswered before the connection counts as dead


async def connect(servers: list[str], *, name: str, user: str | None = None,
                  password: str | None = None, token: str | None = None,
                  tls: ssl.SSLContext | None = None, connect_timeout_s: float = 5.0,
                  pending_bytes: int = 64 << 20) -> Client:
    """A client connected to one of ``servers`` (``nats://host:port``, ``tls://...``);
    ``ClusterError`` when none of them answers."""
    listed = ", ".join(servers)
    try:
        return await asyncio.wait_for(nats.connect(
            servers=servers, name=name, user=user, password=password, token=token, tls=tls,
            connect_timeout=connect_timeout_s, max_reconnect_attempts=-1,
            reconnect_time_wait=0.2, allow_reconnect=True, pending_size=pending_bytes,
            # A server that stops answering (frozen, or cut off without a reset) is left for
            # another within PING_S * (MAX_PINGS + 1): nats-py's defaults take 6 minutes.
            ping_interval=PING_S, max_outstanding_pings=MAX_PINGS),
            connect_timeout_s * max(1, len(servers)) + 1.0)
    except (TimeoutError, NatsError, OSError) as exc:
        raise ClusterError(
            f"cannot reach any NATS server of [{listed}] ({type(exc).__name__}): check "
            "[cluster] servers and that the servers are up") from None
