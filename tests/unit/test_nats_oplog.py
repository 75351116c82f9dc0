"""A group commit's writes as a log entry and back (routing.nats.oplog): every kind of write
survives the trip, an older node's entry (version 1, before handoffs) still reads, and an
entry this gateway cannot read is refused rather than applied wrongly."""

from __future__ import annotations

import msgspec
import pytest

from routing.model import Message, Status
from routing.nats.oplog import VERSION, OplogError, decode_ops, encode_ops
from routing.sqlite.ops import Ops

NOW = 1_700_000_000.0


def batch() -> Ops:
    ops = Ops()
    m = Message(id="42", tenant="acme", source_addr="ACME", destination_addr="447700900123",
                body=b"hi", created_at=NOW)
    ops.insert_message(m, NOW)
    ops.set_status("41", Status.ACCEPTED, Status.SUBMITTED, NOW, operator="opA")
    ops.put_segment("41", 1, 2, "opA", "abc", Status.SUBMITTED)
    ops.add_event(7, "acme", "receipt", b"\x01", "41", NOW)
    ops.put_template("acme", "otp", "Your code is {code}", NOW, NOW)
    ops.hand_over(3, "40", "opA")
    ops.purge_before = NOW - 60
    return ops


def test_every_write_comes_back_from_the_log() -> None:
    ops = batch()
    back = decode_ops(encode_ops(ops))
    assert [tuple(r) for r in back.messages] == [tuple(r) for r in ops.messages]
    assert {k: tuple(v) for k, v in back.message_status.items()} == ops.message_status
    assert {k: tuple(v) for k, v in back.segments.items()} == ops.segments
    assert [tuple(r) for r in back.event_adds] == ops.event_adds
    assert {k: tuple(v) for k, v in back.templates.items() if v} == ops.templates
    assert [tuple(r) for r in back.handoffs] == [(3, "40", "opA")]
    assert back.purge_before == ops.purge_before
    assert len(back) == len(ops)


def test_an_entry_of_an_older_node_reads_without_handoffs() -> None:
    fields = msgspec.msgpack.decode(encode_ops(batch()))
    assert fields[0] == VERSION == 2
    old = msgspec.msgpack.encode([1, *fields[1:-1]])  # version 1 had no handoffs
    back = decode_ops(old)
    assert back.handoffs == [] and len(back.messages) == 1


@pytest.mark.parametrize("data", [
    msgspec.msgpack.encode([VERSION + 1, []]),  # a newer gateway's
    msgspec.msgpack.encode([1, *msgspec.msgpack.decode(encode_ops(batch()))[1:]]),  # 1 + 9
    b"\xc1",  # not MessagePack
])
def test_an_entry_this_gateway_cannot_read_is_refused(data: bytes) -> None:
    with pytest.raises(OplogError):
        decode_ops(data)
