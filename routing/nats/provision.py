"""The JetStream side of a cluster start: the server is new enough, and every stream and
key-value bucket the gateway needs exists with the settings its guarantees rest on.

Issue 14's rules, checked before any node takes traffic:

* the server is 2.10.23 or newer (``MIN_SERVER``); an older one is refused in one line;
* streams and buckets are file-backed and replicated ``replicas`` times; one that exists
  with fewer replicas, or in memory, is refused (a node never quietly runs on weaker
  storage than configured); one that is missing is created;
* a stream that deduplicates (message ids as ``Nats-Msg-Id``) keeps a window at least as
  long as the longest retry of a publish (``StreamSpec.duplicate_window_s``).

A cluster that has just started may refuse a new replicated stream for a moment (its meta
leader has not heard from every peer yet: "no suitable peers for placement"), or have no
leader to answer: those refusals are tried again for ``settle_s``, then reported in one line.

Whether the servers fsync before acknowledging (``sync_interval: always``) is a server
setting that no client can read: the README's "Running a cluster" says so, the example
servers of ``make cluster`` (config/examples/cluster) and the local clusters of
``bench/natsd.py`` set it. Everything here is a
plain coroutine over a connected ``nats.aio.client.Client``; the composition root owns the
connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, RetentionPolicy, StorageType, StreamConfig, StreamInfo
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError

__all__ = ["MIN_SERVER", "ClusterError", "StreamSpec", "BucketSpec", "check_server",
           "ensure_stream", "ensure_bucket"]

MIN_SERVER = (2, 10, 23)
SETTLE_S = 15.0  # how long a cluster that is still starting may refuse a new stream
_NO_SUITABLE_PEERS = 10005  # placement before the meta leader has heard from every peer
_UNAVAILABLE = 503
T = TypeVar("T")


class ClusterError(Exception):
    """The cluster cannot carry the gateway's guarantees; the message says why and what to
    do, in one line."""


@dataclass(frozen=True)
class StreamSpec:
    """A stream the gateway needs: its subjects and how it keeps what they carry."""

    name: str
    subjects: tuple[str, ...]
    retention: RetentionPolicy = RetentionPolicy.LIMITS
    duplicate_window_s: float = 120.0  # message ids seen this long are stored once
    max_age_s: float = 0.0  # 0 = kept until removed
    description: str = ""


@dataclass(frozen=True)
class BucketSpec:
    """A key-value bucket the gateway needs (a stream ``KV_<bucket>`` underneath)."""

    bucket: str
    history: int = 1
    ttl_s: float = 0.0  # 0 = values do not expire
    description: str = ""


def _version_text(v: tuple[int, int, int]) -> str:
    return ".".join(str(n) for n in v)


def _where(nc: Client) -> str:
    url = nc.connected_url
    return url.netloc if url is not None else "?"


async def check_server(nc: Client, js: JetStreamContext,
                       minimum: tuple[int, int, int] = MIN_SERVER) -> str:
    """The connected server's version; ``ClusterError`` when it is older than ``minimum``
    or does not serve JetStream to this account."""
    sv = nc.connected_server_version
    found = (sv.major, sv.minor, sv.patch)
    text = _version_text(found)
    if found < minimum:
        raise ClusterError(
            f"NATS server {_where(nc)} is {text}, older than {_version_text(minimum)}: "
            "upgrade every server of the cluster (earlier releases can lose acknowledged "
            "writes when a node fails)")
    try:
        await js.account_info()
    except NatsError as exc:
        raise ClusterError(
            f"NATS server {text} at {_where(nc)} gives this account no JetStream ({exc}): "
            "enable jetstream on every server and for the gateway's account") from None
    return text


def _check(info: StreamInfo, what: str, replicas: int) -> None:
    cfg = info.config
    found = cfg.num_replicas or 1
    if found < replicas:
        raise ClusterError(
            f"{what} has {found} replica(s) but [cluster] replicas = {replicas}: raise it "
            f"with `nats stream edit {cfg.name} --replicas {replicas}`, or lower replicas")
    if cfg.storage is not None and cfg.storage != StorageType.FILE:
        raise ClusterError(
            f"{what} is kept in memory, not on disk: recreate it with file storage "
            "(acknowledged messages must survive a restart of every server)")


def _settling(exc: BaseException) -> bool:
    """A refusal of a cluster that is still forming: no stream leader yet, a peer not yet
    known to the meta leader, no responder."""
    if isinstance(exc, NoStreamResponseError | NoRespondersError | NatsTimeoutError):
        return True
    return isinstance(exc, APIError) and (exc.err_code == _NO_SUITABLE_PEERS
                                          or exc.code == _UNAVAILABLE)


async def _settled(op: Callable[[], Awaitable[T]], what: str, settle_s: float) -> T:
    """``op()``, tried again while the cluster is still forming, for ``settle_s`` at most."""
    deadline = time.monotonic() + settle_s
    pause = 0.05
    while True:
        try:
            return await op()
        except Exception as exc:
            if not _settling(exc):
                raise
            if time.monotonic() + pause > deadline:
                raise ClusterError(
                    f"{what}: the cluster did not accept it within {settle_s:g} s ({exc!r}): "
                    "check that every server is up and routed to the others") from None
        await asyncio.sleep(pause)
        pause = min(1.0, pause * 2)


async def ensure_stream(js: JetStreamContext, spec: StreamSpec, replicas: int, *,
                        settle_s: float = SETTLE_S) -> StreamInfo:
    """Create ``spec`` with ``replicas`` on file storage, or check the existing stream
    (``ClusterError`` when it is weaker than asked; its subjects must be the spec's)."""
    try:
        info = await _settled(lambda: js.stream_info(spec.name), f"stream {spec.name}",
                              settle_s)
    except NotFoundError:
        config = StreamConfig(
            name=spec.name, subjects=list(spec.subjects), retention=spec.retention,
            storage=StorageType.FILE, num_replicas=replicas,
            duplicate_window=spec.duplicate_window_s, max_age=spec.max_age_s or None,
            description=spec.description or None)
        return await _settled(lambda: js.add_stream(config), f"creating stream {spec.name}",
                              settle_s)
    _check(info, f"stream {spec.name}", replicas)
    subjects = set(info.config.subjects or ())
    if not set(spec.subjects) <= subjects:
        missing = ", ".join(sorted(set(spec.subjects) - subjects))
        raise ClusterError(
            f"stream {spec.name} does not carry {missing}: another application owns that "
            "name, or it was edited; delete it or give the gateway its own account")
    age = info.config.max_age or 0.0
    if abs(age - spec.max_age_s) > 1e-3:  # the retention changed in the config: follow it
        changed = dataclasses.replace(info.config, max_age=spec.max_age_s or None,
                                      duplicate_window=spec.duplicate_window_s)
        info = await _settled(lambda: js.update_stream(changed),
                              f"changing the retention of stream {spec.name}", settle_s)
        logging.getLogger(__name__).info(
            "stream %s now keeps entries for %s (was %s)", spec.name,
            f"{spec.max_age_s:g} s" if spec.max_age_s else "ever",
            f"{age:g} s" if age else "ever")
    window = info.config.duplicate_window or 0.0
    if window < spec.duplicate_window_s:
        raise ClusterError(
            f"stream {spec.name} deduplicates over {window:g} s, less than the "
            f"{spec.duplicate_window_s:g} s a publish may be retried for: edit it with "
            f"`nats stream edit {spec.name} --dupe-window {spec.duplicate_window_s:g}s`")
    return info


async def ensure_bucket(js: JetStreamContext, spec: BucketSpec, replicas: int, *,
                        settle_s: float = SETTLE_S) -> None:
    """Create the key-value bucket of ``spec``, or check the existing one."""
    what = f"key-value bucket {spec.bucket}"
    try:
        info = await _settled(lambda: js.stream_info(f"KV_{spec.bucket}"), what, settle_s)
    except NotFoundError:
        config = KeyValueConfig(
            bucket=spec.bucket, history=spec.history, ttl=spec.ttl_s or None,
            storage=StorageType.FILE, replicas=replicas,
            description=spec.description or None)
        await _settled(lambda: js.create_key_value(config), f"creating {what}", settle_s)
        return
    _check(info, f"key-value bucket {spec.bucket}", replicas)
