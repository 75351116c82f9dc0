"""Inbound MO from operators: owner by number prefix, reassembly (UDH and SAR), outbox items."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from config import GatewayConfig, TenantConfig
from encoding.constants import CommandStatus as S
from encoding.pdu import DataSm, DeliverSm
from encoding.text import concat_udh, decode_text, encode_text, gsm7_encode
from routing import MoEvent
from tests.routing_rig import RoutingRig


class Rig(RoutingRig):
    def __init__(self, path: Path) -> None:
        super().__init__(path, GatewayConfig(tenants=(
            TenantConfig(system_id="acme", password="pw", numbers=("4477",)),
            TenantConfig(system_id="beta", password="pw", numbers=("447712", "1800")),
            TenantConfig(system_id="gamma", password="pw", numbers=("33",),
                         mo_reassemble=False),
        )))
        self.inbound = self.make_inbound()

    def outbox(self, tenant: str) -> list[DeliverSm]:
        self.commit()
        for claim in self.store.events_for(tenant):
            assert isinstance(claim.event, MoEvent)
        return super().outbox(tenant)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path / "i.db")
    yield r
    r.store.close()


def mo(dest: str, body: bytes, esm_class: int = 0, data_coding: int = 0,
       **tlvs: int | str | bytes) -> DeliverSm:
    return DeliverSm(source_addr="447911123456", source_addr_ton=1, destination_addr=dest,
                     esm_class=esm_class, data_coding=data_coding, short_message=body,
                     tlvs={k: v for k, v in tlvs.items()})


def test_owner_is_the_longest_number_prefix(rig: Rig) -> None:
    assert rig.inbound.owner("447712345678").system_id == "beta"  # type: ignore[union-attr]
    assert rig.inbound.owner("447799999999").system_id == "acme"  # type: ignore[union-attr]
    assert rig.inbound.owner("+447712345678").system_id == "beta"  # type: ignore[union-attr]
    assert rig.inbound.owner("4478") is None


def test_single_mo_is_queued_for_its_owner(rig: Rig) -> None:
    assert rig.inbound.message("opA", mo("447712000001", b"hello"), 0.0) == S.ESME_ROK
    [pdu] = rig.outbox("beta")
    assert (pdu.source_addr, pdu.source_addr_ton, pdu.destination_addr) == (
        "447911123456", 1, "447712000001")
    assert (pdu.esm_class, pdu.short_message) == (0, b"hello")
    assert rig.outbox("acme") == []
    assert [c.tenant for c in rig.delivered] == ["beta"]


def test_unknown_number_is_refused(rig: Rig) -> None:
    assert rig.inbound.message("opA", mo("4915112345678", b"x"), 0.0) == S.ESME_RINVDSTADR
    assert rig.inbound.unrouted == 1
    assert rig.delivered == []


def test_udh_parts_in_any_order_are_joined_once(rig: Rig) -> None:
    text = "Ж" * 100  # two UCS-2 parts, one Cyrillic text
    data = encode_text(text, 8)
    parts = [concat_udh(42, 2, 1) + data[:134], concat_udh(42, 2, 2) + data[134:]]
    dest = "447700000001"
    assert rig.inbound.message("opA", mo(dest, parts[1], 0x40, 8), 0.0) == S.ESME_ROK
    assert rig.outbox("acme") == []
    assert rig.inbound.message("opA", mo(dest, parts[1], 0x40, 8), 1.0) == S.ESME_ROK  # repeat
    assert rig.inbound.message("opA", mo(dest, parts[0], 0x40, 8), 2.0) == S.ESME_ROK
    [pdu] = rig.outbox("acme")
    assert pdu.esm_class == 0  # no UDH any more
    assert pdu.data_coding == 8
    assert decode_text(pdu.short_message, 8) == text


def test_sar_parts_are_joined(rig: Rig) -> None:
    dest = "447700000002"
    for seq, chunk in ((2, b" world"), (1, b"hello")):
        rig.inbound.message("opA", mo(dest, chunk, sar_msg_ref_num=600, sar_total_segments=2,
                                      sar_segment_seqnum=seq), 0.0)
    [pdu] = rig.outbox("acme")
    assert pdu.short_message == b"hello world"
    assert "sar_msg_ref_num" not in pdu.tlvs


def test_parts_from_different_senders_are_not_mixed(rig: Rig) -> None:
    dest = "447700000003"
    a = mo(dest, concat_udh(1, 2, 1) + b"A1", 0x40)
    b = DeliverSm(source_addr="447911000000", destination_addr=dest, esm_class=0x40,
                  short_message=concat_udh(1, 2, 2) + b"B2")
    rig.inbound.message("opA", a, 0.0)
    rig.inbound.message("opA", b, 0.0)
    assert rig.outbox("acme") == []


def test_long_reassembled_message_travels_in_message_payload(rig: Rig) -> None:
    text = "x" * 400
    data = gsm7_encode(text)
    chunks = [data[i:i + 153] for i in range(0, 400, 153)]
    for seq, chunk in enumerate(chunks, 1):
        rig.inbound.message("opA", mo("447700000004", concat_udh(9, 3, seq) + chunk, 0x40), 0.0)
    [pdu] = rig.outbox("acme")
    assert pdu.short_message == b""
    assert pdu.tlvs["message_payload"] == data


def test_without_reassembly_each_part_keeps_its_udh(rig: Rig) -> None:
    body = concat_udh(5, 2, 1) + b"first"
    rig.inbound.message("opA", mo("33612345678", body, 0x40), 0.0)
    rig.inbound.message("opA", mo("33612345678", b"p2", sar_msg_ref_num=5,
                                  sar_total_segments=2, sar_segment_seqnum=2), 0.0)
    first, second = rig.outbox("gamma")
    assert (first.esm_class, first.short_message) == (0x40, body)
    assert (second.short_message, second.tlvs["sar_segment_seqnum"]) == (b"p2", 2)


def test_invalid_part_number_is_refused(rig: Rig) -> None:
    body = bytes([5, 0, 3, 5, 2, 3]) + b"x"  # part 3 of 2
    assert rig.inbound.message("opA", mo("447700000005", body, 0x40), 0.0) == \
        S.ESME_RINVESMCLASS


def test_data_sm_payload_is_delivered(rig: Rig) -> None:
    pdu = DataSm(source_addr="447911123456", destination_addr="447700000006",
                 tlvs={"message_payload": b"via data_sm"})
    assert rig.inbound.message("opA", pdu, 0.0) == S.ESME_ROK
    [out] = rig.outbox("acme")
    assert out.short_message == b"via data_sm"


def test_incomplete_message_is_delivered_partial_after_timeout(rig: Rig) -> None:
    dest = "447700000007"
    rig.inbound.message("opA", mo(dest, concat_udh(3, 3, 1) + b"part one ", 0x40), 100.0)
    rig.inbound.message("opA", mo(dest, concat_udh(3, 3, 3) + b"part three", 0x40), 101.0)
    rig.inbound.expire(699.0)
    assert rig.outbox("acme") == []
    rig.inbound.expire(700.0)
    [pdu] = rig.outbox("acme")
    assert pdu.short_message == b"part one part three"
    assert rig.inbound.partial == 1


def test_partial_ucs2_message_keeps_its_data_coding(rig: Rig) -> None:
    dest = "447700000008"
    first = encode_text("Привет ", 8)
    rig.inbound.message("opA", mo(dest, concat_udh(4, 2, 1) + first, 0x40, 8), 100.0)
    rig.inbound.expire(700.0)
    [pdu] = rig.outbox("acme")
    assert pdu.data_coding == 8
    assert decode_text(pdu.short_message, pdu.data_coding) == "Привет "


def stored_parts(rig: Rig) -> list[tuple[int, bytes]]:
    rig.commit()
    return [(p.seqnum, p.user_data) for p in rig.store.mo_parts()]


def test_acknowledged_parts_survive_a_restart_and_complete_the_message(tmp_path: Path) -> None:
    """A part answered ESME_ROK is in the store (the answer waits for that commit), so the
    operator never needs to send it again: after a restart the next part completes it."""
    path = tmp_path / "i.db"
    dest = "447700000009"
    rig = Rig(path)
    assert rig.inbound.message("opA", mo(dest, concat_udh(9, 2, 1) + b"before ", 0x40),
                               100.0) == S.ESME_ROK
    assert stored_parts(rig) == [(1, b"before ")]
    rig.store.close()

    rig = Rig(path)  # the gateway restarted
    try:
        assert rig.inbound.restored == 1
        rig.inbound.message("opA", mo(dest, concat_udh(9, 2, 2) + b"and after", 0x40), 200.0)
        [pdu] = rig.outbox("acme")
        assert pdu.short_message == b"before and after"
        assert stored_parts(rig) == []  # gone with the commit that queued the whole message
        rig.inbound.expire(10_000.0)
        assert rig.inbound.partial == 0  # the restored group was completed, not left open
    finally:
        rig.store.close()


def test_restored_parts_keep_their_deadline(tmp_path: Path) -> None:
    path = tmp_path / "i.db"
    dest = "447700000010"
    rig = Rig(path)
    rig.inbound.message("opA", mo(dest, concat_udh(10, 2, 1) + b"lonely", 0x40), 100.0)
    stored_parts(rig)
    rig.store.close()
    rig = Rig(path)
    try:
        rig.inbound.expire(699.0)
        assert rig.outbox("acme") == []
        rig.inbound.expire(700.0)  # 600 s from the part's arrival, not from the restart
        [pdu] = rig.outbox("acme")
        assert pdu.short_message == b"lonely"
        assert stored_parts(rig) == []
    finally:
        rig.store.close()


def test_a_late_part_after_expiry_in_the_same_batch_is_kept(rig: Rig) -> None:
    """The expired group's rows are dropped, but a part of the same group that arrives
    afterwards in the same group commit opens it anew and must stay on disk."""
    dest = "447700000011"
    rig.inbound.message("opA", mo(dest, concat_udh(11, 2, 1) + b"early", 0x40), 100.0)
    assert stored_parts(rig) == [(1, b"early")]
    rig.inbound.expire(700.0)
    rig.inbound.message("opA", mo(dest, concat_udh(11, 2, 2) + b"late", 0x40), 750.0)
    assert stored_parts(rig) == [(2, b"late")]
