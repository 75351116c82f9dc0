"""One group commit's writes (``routing.sqlite.Ops``) as bytes in the replicated log, and back.

Every write a node makes is one ``Ops`` batch; on a cluster each batch is an entry of the log
stream (routing.nats.replica), and every node applies every entry, in the stream's order, to
its own SQLite replica. ``Ops`` holds rows of plain values (str, int, float, bytes, None), so
an entry is MessagePack of its fields in a fixed order: the lists as they are, the keyed
fields as their rows (each key is part of its row), the templates and rollups as key and
value pairs. A decoded batch has lists where the original had tuples; ``Store.apply`` takes
either. The format is versioned by its first element: a node refuses an entry it cannot read
(a newer gateway's) instead of applying it wrongly. Version 2 added the handoffs (a last
field); a version 1 entry (an older node's, still in the log) reads as having none.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..sqlite.ops import Ops

__all__ = ["encode_ops", "decode_ops", "OplogError", "VERSION"]

VERSION = 2
_READS = (1, VERSION)
_LISTS = ("messages", "replaced", "history", "change_history", "event_adds", "event_acks",
          "event_retries", "event_fails", "event_revives", "mo_parts", "mo_groups_done",
          "answers", "consent", "links", "clicks")
_FIELDS = {1: 8, 2: 9}  # fields of an entry by version
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[Any])


class OplogError(Exception):
    """A log entry this node cannot read (corrupt, or written by a newer gateway)."""


def encode_ops(ops: Ops) -> bytes:
    r = ops.rollups
    return _encoder.encode([
        VERSION,
        [getattr(ops, name) for name in _LISTS],
        list(ops.segments.values()),
        list(ops.message_status.values()),
        [[tenant, name, row] for (tenant, name), row in ops.templates.items()],
        [ops.purge_before, ops.answers_before, ops.refused],
        [[key, counts] for key, counts in r.rows.items()],
        [[key, n] for key, n in r.errors.items()],
        ops.handoffs,
    ])


def decode_ops(data: bytes) -> Ops:
    try:
        fields = _decoder.decode(data)
        if not fields or fields[0] not in _READS:
            raise OplogError(f"log entry of format {fields[:1]}, this gateway reads "
                             f"{_READS}: upgrade this node")
        if len(fields) != _FIELDS[fields[0]]:
            raise ValueError(f"{len(fields)} fields in a version {fields[0]} entry")
        _, lists, segments, status, templates, scalars, rows, errors = fields[:8]
        ops = Ops()
        ops.handoffs = fields[8] if len(fields) > 8 else []
        for name, value in zip(_LISTS, lists, strict=True):
            setattr(ops, name, value)
        ops.segments = {(row[0], row[1]): row for row in segments}
        ops.message_status = {row[4]: row for row in status}
        ops.templates = {(tenant, name): row for tenant, name, row in templates}
        ops.purge_before, ops.answers_before, ops.refused = scalars
        ops.rollups.rows = {tuple(key): counts for key, counts in rows}
        ops.rollups.errors = {tuple(key): n for key, n in errors}
    except (msgspec.DecodeError, ValueError, TypeError) as exc:
        raise OplogError(f"unreadable log entry: {exc}") from None
    return ops
