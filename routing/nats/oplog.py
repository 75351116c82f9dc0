"""One group commit's writes (``routing.sqlite.Ops``) as bytes in the replicated log, and back.

Every write a node makes is one ``Ops`` batch; on a cluster each batch is an entry of the log
stream (routing.nats.replica), and every node applies every entry, in the stream's order, to
its own SQLite replica. ``Ops`` holds rows of plain values (str, int, float, bytes, None), so
an entry is MessagePack of its fields in a fixed order: the lists as they are, the keyed
fields as their rows (each key is part of its row), the templates and rollups as key and
value pairs. A decoded batch has lists where the original had tuples; ``Store.apply`` takes
either. The format is versioned by its first element: a node refuses an entry it cannot read
(a newer gateway's) instead of applying it wrongly.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..sqlite.ops import Ops

__all__ = ["encode_ops", "decode_ops", "OplogError", "VERSION"]

VERSION = 1
_LISTS = ("messages", "replaced", "history", "change_history", "event_adds", "event_acks",
          "event_retries", "event_fails", "event_revives", "mo_parts", "mo_groups_done",
          "answers", "consent", "links", "clicks")
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
    ])


def decode_ops(data: bytes) -> Ops:
    try:
        fields = _decoder.decode(data)
        if not fields or fields[0] != VERSION:
            raise OplogError(f"log entry of format {fields[:1]}, this gateway reads "
                             f"{VERSION}: upgrade this node")
        _, lists, segments, status, templates, scalars, rows, errors = fields
        ops = Ops()
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
