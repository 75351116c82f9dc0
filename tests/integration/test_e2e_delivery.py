"""End to end: tenant → gateway → bundled simulator → receipt back to the tenant.

Real sockets on 127.0.0.1 with OS-chosen ports: the simulator and the gateway each on their
own event-loop thread, python-smpplib and aiosmpplib as tenants in the test thread. Checked
as a user would see it:

* GSM-7 (with extension characters), UCS-2 with an emoji, a long text sent in
  message_payload that the gateway must split, and a message the client split itself (UDH):
  every submit_sm_resp id gets exactly one receipt, carrying that id in the text and in
  receipted_message_id, stat DELIVRD; what reached the operator is what the tenant sent
  (same text once the parts are joined), split the operator's way (udh8 by default, SAR
  TLVs, or one message_payload).
* Receipts still match when the operator answers with hex ids and writes them in decimal in
  its receipts; failed outcomes (UNDELIV, REJECTD from the operator's receipts, REJECTD for a
  refused submit) reach the tenant with that stat; registered_delivery 0 means no receipt.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

import pytest
from aiosmpplib import NPI, TON, PhoneNumber, SubmitSm
from aiosmpplib import DeliverSm as AioDeliverSm

from config.simulator import DelayRange, FaultRule
from encoding.constants import EsmClass
from encoding.pdu import DeliverSm as OurDeliverSm
from encoding.pdu import SubmitSm as OurSubmitSm
from encoding.pdu import decode_pdu
from encoding.text import encode_text, parse_udh
from tests.integration.e2e_support import (
    DEST,
    SOURCE,
    BindMode,
    Receipt,
    Stack,
    check_receipts,
    gateway_idle,
    in_thread,
    operator,
    read_receipt,
    run_async,
    sent_texts,
    smpplib_tenant,
    submit_resp_ids,
    wait_until,
)
from tests.integration.e2e_support import aio_tenant as aio_tenant_cm

pytestmark = pytest.mark.timeout(60)

GSM_TEXT = "Hello @ 10:00 {ok} £5 €3 [x] ~ ^ | \\"
UCS2_TEXT = "Grüße 👋 from смпп"
# 406 characters with extension characters (2 septets each) spread over the text, so the
# split must count septets and never cut an escape pair.
LONG_GSM = "".join(f"Part {i:02d}: long text {{braces}} and €uro €€ [{i}]. " for i in range(9))
LONG_UCS2 = "Emoji 😀 long text — " * 6  # 126 UTF-16 units: two UCS-2 parts, a pair kept


def client_split(text: str, reference: int) -> list[bytes]:
    """``text`` (ASCII) as a client splits it: 153 septets a part behind an 8-bit UDH."""
    data = text.encode("ascii")
    chunks = [data[i:i + 153] for i in range(0, len(data), 153)]
    return [bytes((5, 0, 3, reference, len(chunks), n)) + chunk
            for n, chunk in enumerate(chunks, 1)]


def submits(received: list[Any]) -> list[OurSubmitSm]:
    assert all(isinstance(p, OurSubmitSm) for p in received), received
    return received


def udh_parts(received: list[OurSubmitSm]) -> list[OurSubmitSm]:
    return [p for p in received if p.esm_class & EsmClass.UDHI]


def check_udh8_split(parts: list[OurSubmitSm], expected_groups: int) -> None:
    """Concatenated parts carry an 8-bit reference UDH and fit one SMS (140 octets)."""
    groups: set[tuple[int, int]] = set()
    for p in parts:
        udh, user_data = parse_udh(p.short_message)
        assert udh.concat is not None and not udh.ref16, p
        groups.add((udh.concat[0], udh.concat[1]))
        if p.data_coding == 8:  # each part decodes alone: no surrogate pair was cut
            assert len(udh.elements) == 1 and len(p.short_message) <= 140, p
            user_data.decode("utf-16-be")
        else:  # unpacked GSM-7: header (6 octets = 7 septets) + 153 septets at most
            assert len(user_data) <= 153 and not user_data.endswith(b"\x1b"), p
        assert "message_payload" not in p.tlvs and "sar_msg_ref_num" not in p.tlvs, p
    assert len(groups) == expected_groups, groups


# --- smpplib ---------------------------------------------------------------------------------


def test_smpplib_texts_reach_the_operator_and_each_id_gets_one_receipt(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)])
    split_by_client = "".join(f"client split part text {i:02d} " for i in range(14))
    with smpplib_tenant(gw.port) as tenant:
        seqs = [
            tenant.submit(encode_text(GSM_TEXT, 0)),
            tenant.submit(UCS2_TEXT.encode("utf-16-be"), data_coding=8),
            tenant.submit(b"", message_payload=encode_text(LONG_GSM, 0)),
            tenant.submit(b"", data_coding=8, message_payload=LONG_UCS2.encode("utf-16-be")),
        ]
        seqs += [tenant.submit(part, esm_class=0x40) for part in client_split(split_by_client,
                                                                              0x5A)]
        ids = tenant.ids(seqs)
        tenant.wait_receipts(len(ids), 20.0)
        wait_until(lambda: gateway_idle(gw), 10.0, "gateway idle")
        tenant.settle()
        check_receipts(ids, tenant.receipts())

    received = submits(sim.received())
    assert sorted(sent_texts(received)) == sorted(
        [GSM_TEXT, UCS2_TEXT, LONG_GSM, LONG_UCS2, split_by_client])
    # the gateway split LONG_GSM and LONG_UCS2 (udh8); the client's parts went through as is
    check_udh8_split(udh_parts(received), expected_groups=3)
    client_parts = [p for p in received if p.short_message[:4] == b"\x05\x00\x03\x5a"]
    assert [p.short_message for p in client_parts] == client_split(split_by_client, 0x5A)
    # one submit per part: 1 + 1 + 4 (468 septets) + 2 + 3 parts
    assert len(received) == 1 + 1 + 4 + 2 + 3, [p.short_message for p in received]
    assert all(p.registered_delivery & 3 == 1 for p in received)


@pytest.mark.parametrize("split", ["sar", "payload"])
def test_operator_split_method_is_honoured(stack: Stack, split: str) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port, split=split)])
    with smpplib_tenant(gw.port) as tenant:
        seqs = [tenant.submit(b"", message_payload=encode_text(LONG_GSM, 0)),
                tenant.submit(b"", data_coding=8,
                              message_payload=LONG_UCS2.encode("utf-16-be")),
                tenant.submit(encode_text(GSM_TEXT, 0))]
        ids = tenant.ids(seqs)
        tenant.wait_receipts(len(ids), 20.0)
        wait_until(lambda: gateway_idle(gw), 10.0, "gateway idle")
        tenant.settle()
        check_receipts(ids, tenant.receipts())

    received = submits(sim.received())
    assert sorted(sent_texts(received)) == sorted([LONG_GSM, LONG_UCS2, GSM_TEXT])
    assert not udh_parts(received), "no UDH when the operator wants " + split
    if split == "payload":
        assert len(received) == 3
        long_ones = [p for p in received if "message_payload" in p.tlvs]
        assert len(long_ones) == 2 and all(p.short_message == b"" for p in long_ones)
    else:
        sar = [p for p in received if "sar_msg_ref_num" in p.tlvs]
        assert len(sar) == len(received) - 1 >= 4
        for p in sar:
            assert "message_payload" not in p.tlvs
            limit = 132 if p.data_coding == 8 else 152  # as with a 16-bit reference UDH
            assert len(p.short_message) <= limit, p
        refs = {(p.tlvs["sar_msg_ref_num"], p.tlvs["sar_total_segments"]) for p in sar}
        assert len(refs) == 2, refs


# --- aiosmpplib ------------------------------------------------------------------------------


def aio_submit(text: str, log_id: str, **kw: Any) -> SubmitSm:
    return SubmitSm(short_message=text, log_id=log_id, registered_delivery=1,
                    source=PhoneNumber(SOURCE, TON.INTERNATIONAL, NPI.ISDN),
                    destination=PhoneNumber(DEST, TON.INTERNATIONAL, NPI.ISDN), **kw)


def aio_receipt(pdu: AioDeliverSm) -> Receipt:
    params = {p.tag: p.value for p in pdu.optional_params or ()}
    return read_receipt(pdu.short_message.encode("latin-1"), params.get(0x001E),
                        params.get(0x0427))


def raw_deliver_sm(raws: list[bytes]) -> list[OurDeliverSm]:
    out: list[OurDeliverSm] = []
    for raw in raws:
        if raw[4:8] == b"\x00\x00\x00\x05":
            pdu = decode_pdu(raw)
            assert isinstance(pdu, OurDeliverSm), pdu
            out.append(pdu)
    return out


def tlv_receipt(pdu: OurDeliverSm) -> Receipt:
    """The receipt in ``pdu``, its id and state from the TLVs when present."""
    rid = pdu.tlvs.get("receipted_message_id")
    state = pdu.tlvs.get("message_state")
    assert rid is None or isinstance(rid, (str, bytes)), rid
    assert state is None or isinstance(state, int), state
    return read_receipt(pdu.short_message, rid, state)


def test_aiosmpplib_texts_reach_the_operator_and_each_id_gets_one_receipt(
        stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)])
    long_split = "".join(f"aiosmpplib long part {i:03d}. " for i in range(16))
    payload_text = "".join(f"payload line {i:02d} {{x}} " for i in range(16))  # > 254 octets

    async def main() -> None:
        async with aio_tenant_cm(gw.port, BindMode.TRANSCEIVER) as (esme, hook):
            messages = [aio_submit("Hello from aiosmpplib @ 10:00 {ok}", "gsm"),
                        aio_submit(UCS2_TEXT, "ucs2"),
                        aio_submit(payload_text, "payload"),
                        # aiosmpplib splits this one itself (UDH), one submit_sm per part
                        aio_submit(long_split, "split", esm_class=0x40,
                                   auto_message_payload=False)]
            for m in messages:
                await esme.broker.enqueue(m)
            await hook.wait(lambda: len(submit_resp_ids(hook.raw)) >= 6, "6 submit_sm_resp",
                            15.0)
            ids = submit_resp_ids(hook.raw)
            await hook.wait(lambda: len(raw_deliver_sm(hook.raw)) >= len(ids), "receipts",
                            20.0)
            await in_thread(lambda: wait_until(lambda: gateway_idle(gw), 10.0, "idle"))
            # aiosmpplib hands the application one receipt per log_id (the split message's
            # parts share one), so every receipt is read from the PDUs as received
            check_receipts(ids, [tlv_receipt(p) for p in raw_deliver_sm(hook.raw)])
            parsed = hook.of(AioDeliverSm)
            assert parsed and all(r.is_receipt() for r in parsed)
            assert {r.parse_receipt()["id"] for r in parsed} <= set(ids)
            assert all(aio_receipt(r).stat == "DELIVRD" for r in parsed)

        received = submits(await in_thread(sim.received))
        assert sorted(sent_texts(received)) == sorted(
            ["Hello from aiosmpplib @ 10:00 {ok}", UCS2_TEXT, payload_text, long_split])
        assert len(received) == 1 + 1 + 3 + 3  # payload_text: 352 septets → 3 udh8 parts

    run_async(main())


# --- receipt ids, failures, registered_delivery ----------------------------------------------


def test_receipt_ids_written_in_decimal_for_hex_answers(stack: Stack) -> None:
    sim = stack.sim(id_format="hex", receipt_id_format="decimal")
    gw = stack.gateway([operator("A", sim.port)])
    with smpplib_tenant(gw.port) as tenant:
        seqs = [tenant.submit(f"decimal receipt {i}".encode()) for i in range(20)]
        seqs.append(tenant.submit(b"", message_payload=encode_text(LONG_GSM, 0)))
        ids = tenant.ids(seqs)
        tenant.wait_receipts(len(ids), 20.0)
        tenant.settle()
        check_receipts(ids, tenant.receipts())
    assert gw.run(lambda: gw.gateway.router.outcomes.unmatched) == 0
    assert not gw.run(lambda: dict(gw.gateway.router.outcomes.parked))


def test_failed_outcomes_reach_the_tenant_with_their_stat(stack: Stack) -> None:
    refused_prefix = "4471111"  # the operator refuses these in submit_sm_resp (permanent)
    sim = stack.sim(seed=11, final_states={"DELIVRD": 1.0, "UNDELIV": 1.0, "REJECTD": 1.0},
                    rules=(FaultRule(prefix=refused_prefix, fault="reject"),))
    gw = stack.gateway([operator("A", sim.port)])
    with smpplib_tenant(gw.port) as tenant:
        seqs = [tenant.submit(f"mix {i}".encode()) for i in range(30)]
        refused = [tenant.submit(f"refused {i}".encode(), destination_addr=f"{refused_prefix}{i}")
                   for i in range(3)]
        ids = tenant.ids(seqs + refused)
        tenant.wait_receipts(len(ids), 20.0)
        tenant.settle()
        receipts = tenant.receipts()
        stats = {r.receipted_message_id: r.stat for r in receipts}
        check_receipts(ids, receipts, stats)  # one each, text and TLVs agree
    refused_ids = ids[len(seqs):]
    assert {stats[i] for i in refused_ids} == {"REJECTD"}
    # the operator's own mix arrives as it was drawn: as many of each stat, every kind seen
    operator_mix = sim.snapshot()["receipt_stats"]
    tenant_mix = Counter(stats[i] for i in ids[:len(seqs)])
    assert tenant_mix == Counter(operator_mix), (tenant_mix, operator_mix)
    assert set(tenant_mix) == {"DELIVRD", "UNDELIV", "REJECTD"}


def test_operator_that_never_sends_a_receipt_gives_unknown_at_its_timeout(
        stack: Stack) -> None:
    """The simulator holds its receipts for 10 minutes; the operator's receipt_timeout_s
    is 1 s: each message is acknowledged, then its tenant gets exactly one UNKNOWN receipt."""
    sim = stack.sim(receipt_delay_ms=DelayRange(min=600_000, max=600_000))
    gw = stack.gateway([operator("A", sim.port, receipt_timeout_s=1.0)])
    with smpplib_tenant(gw.port) as tenant:
        ids = tenant.ids([tenant.submit(f"silent {i}".encode()) for i in range(3)])
        tenant.wait_receipts(len(ids), 20.0)
        tenant.settle()
        receipts = tenant.receipts()
        stats = {r.receipted_message_id: r.stat for r in receipts}
        check_receipts(ids, receipts, stats)  # one each, text and TLVs agree
    assert set(stats.values()) == {"UNKNOWN"}
    counted = gw.run(lambda: gw.gateway.metrics.operator_events.get(("A", "receipt_timeout")))
    assert counted == len(ids)  # smsc_operator_events{operator="A",event="receipt_timeout"}
    for mid in ids:
        m = gw.run(partial(gw.gateway.store.get_message, mid))
        assert m is not None and m.status == "unknown"


def test_no_receipt_when_registered_delivery_is_0(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)])
    with smpplib_tenant(gw.port) as tenant:
        wanted = [tenant.submit(f"receipt please {i}".encode()) for i in range(5)]
        silent = [tenant.submit(f"no receipt {i}".encode(), registered_delivery=0)
                  for i in range(5)]
        failure_only = [tenant.submit(f"failure only {i}".encode(), registered_delivery=2)
                        for i in range(3)]
        wanted_ids = tenant.ids(wanted)
        tenant.ids(silent + failure_only)
        # the operator was asked for a receipt of every message and delivered them all
        sim.wait_for(lambda s: s.stats["receipts_acked"] >= 13, 20.0)
        tenant.wait_receipts(len(wanted_ids), 20.0)
        wait_until(lambda: gateway_idle(gw), 10.0, "gateway idle")
        tenant.settle()
        check_receipts(wanted_ids, tenant.receipts())
