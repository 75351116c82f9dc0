"""End to end, mobile-originated: bundled simulator → gateway → the tenant that owns the number.

The simulator injects MO (``Simulator.inject_mo``) toward numbers the tenant "demo" owns
(``numbers = ["4479"]``); the tenant is a python-smpplib or aiosmpplib receiver over real
sockets on 127.0.0.1. A user sees: a short MO as one deliver_sm with esm_class 0 and the
text; a long MO (sent by the operator as UDH parts) as one reassembled deliver_sm, in
message_payload when it is longer than 254 octets; an MO that came while the tenant was
offline delivered once it binds; with ``mo_reassemble = false`` the parts one by one, each
with its UDH; an MO to a number nobody owns refused to the operator and delivered to no one.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiosmpplib import DeliverSm as AioDeliverSm

from config import TenantConfig
from encoding.pdu import DeliverSm, decode_pdu
from encoding.text import decode_text, reassemble
from tests.integration.e2e_support import (
    BindMode,
    SmpplibTenant,
    Stack,
    aio_tenant,
    gateway_idle,
    in_thread,
    operator,
    run_async,
    smpplib_tenant,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

OWNED = "447900000001"
HANDSET = "447700900555"
LONG_MO = "".join(f"Long MO line {i:02d} with {{braces}} and €. " for i in range(10))  # > 254
MEDIUM_MO = "".join(f"medium MO {i:02d}. " for i in range(12))  # 2 parts, 192 octets joined
EMOJI_MO = "Reply 👍 from the handset — " * 4  # UCS-2, 2 parts


def mo_text(pdu: Any) -> str:
    """The text of a deliver_sm as smpplib parsed it (short_message or message_payload)."""
    body = pdu.short_message or b""
    if not body and getattr(pdu, "message_payload", None):
        body = pdu.message_payload
    return decode_text(body, pdu.data_coding)


def wait_mo(tenant: SmpplibTenant, n: int, timeout: float = 15.0) -> list[Any]:
    tenant.pump(lambda: len(tenant.mo()) >= n, timeout, f"{n} MO deliver_sm")
    return tenant.mo()


def test_short_and_long_mo_reach_the_owner_reassembled(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)])
    with smpplib_tenant(gw.port, how="receiver") as tenant:
        parts = [sim.inject_mo(OWNED, HANDSET, "Hello MO @ {gateway}"),
                 sim.inject_mo(OWNED, HANDSET, LONG_MO),
                 sim.inject_mo(OWNED, HANDSET, MEDIUM_MO),
                 sim.inject_mo("4479123", HANDSET, EMOJI_MO)]
        assert parts[0] == 1 and parts[1] >= 3 and parts[2:] == [2, 2], parts
        got = wait_mo(tenant, 4)
        wait_until(lambda: gateway_idle(gw), 10.0, "gateway idle")
        tenant.settle()
        got = tenant.mo()
        assert not tenant.receipts()
    assert len(got) == 4, [mo_text(p) for p in got]  # one deliver_sm per MO, not per part
    by_text = {mo_text(p): p for p in got}
    assert set(by_text) == {"Hello MO @ {gateway}", LONG_MO, MEDIUM_MO, EMOJI_MO}
    for text, pdu in by_text.items():
        assert pdu.esm_class == 0, (text, pdu.esm_class)
        assert pdu.source_addr.decode() == HANDSET
        assert pdu.destination_addr.decode() in (OWNED, "4479123")
    long_pdu = by_text[LONG_MO]
    assert not long_pdu.short_message and len(long_pdu.message_payload) > 254
    medium = by_text[MEDIUM_MO]
    assert len(medium.short_message) == len(MEDIUM_MO) and not medium.message_payload
    assert by_text[EMOJI_MO].data_coding == 8
    assert sim.snapshot()["mo_acked"] == sum(parts)  # the gateway took every part


def test_mo_while_the_tenant_is_offline_arrives_after_it_binds(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)])
    sim.inject_mo(OWNED, HANDSET, "while you were away")
    sim.inject_mo(OWNED, HANDSET, LONG_MO)
    # the gateway took them (answered the operator once they were stored)
    sim.wait_for(lambda s: s.stats["mo_acked"] >= 1 + 3, 10.0)
    assert gw.run(lambda: gw.gateway.store.count("events")) == 2
    with smpplib_tenant(gw.port, how="transceiver") as tenant:
        got = wait_mo(tenant, 2)
        wait_until(lambda: gateway_idle(gw), 10.0, "outbox drained")
        tenant.settle()
        assert [mo_text(p) for p in tenant.mo()] == ["while you were away", LONG_MO]
        assert all(p.esm_class == 0 for p in got)


def test_mo_parts_passed_on_with_their_udh_when_reassembly_is_off(stack: Stack) -> None:
    sim = stack.sim()
    tenants = (TenantConfig(system_id="demo", password="demo", numbers=("4479",),
                            mo_reassemble=False),)
    gw = stack.gateway([operator("A", sim.port)], tenants=tenants)
    with smpplib_tenant(gw.port, how="receiver") as tenant:
        parts = sim.inject_mo(OWNED, HANDSET, LONG_MO)
        got = wait_mo(tenant, parts)
        tenant.settle()
        got = tenant.mo()
    assert len(got) == parts >= 3
    assert all(p.esm_class & 0x40 for p in got), [p.esm_class for p in got]
    assert reassemble([p.short_message for p in got], got[0].data_coding) == LONG_MO


def test_mo_to_a_number_nobody_owns_is_refused(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)])
    with smpplib_tenant(gw.port, how="receiver") as tenant:
        sim.inject_mo("33612345678", HANDSET, "nobody owns me")
        sim.inject_mo(OWNED, HANDSET, "for demo")
        wait_mo(tenant, 1)
        sim.wait_for(lambda s: s.stats["mo_parts_sent"] >= 2 and s.stats["mo_acked"] >= 1, 10.0)
        tenant.settle()
        assert [mo_text(p) for p in tenant.mo()] == ["for demo"]
    assert sim.snapshot()["mo_acked"] == 1  # the other one was answered with an error


def test_aiosmpplib_receiver_gets_short_and_reassembled_mo(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)])

    async def main() -> None:
        async with aio_tenant(gw.port, BindMode.RECEIVER) as (_esme, hook):
            await in_thread(lambda: sim.inject_mo(OWNED, HANDSET, "short for aiosmpplib"))
            await in_thread(lambda: sim.inject_mo(OWNED, HANDSET, MEDIUM_MO))
            await hook.wait(lambda: len(deliver_sm(hook.raw)) >= 2, "2 MO", 15.0)
            await in_thread(lambda: wait_until(lambda: gateway_idle(gw), 10.0, "idle"))
            raw = deliver_sm(hook.raw)
            assert [decode_text(p.short_message, p.data_coding) for p in raw] == [
                "short for aiosmpplib", MEDIUM_MO]
            assert all(p.esm_class == 0 for p in raw)
            parsed = hook.of(AioDeliverSm)
            assert [m.short_message for m in parsed] == ["short for aiosmpplib", MEDIUM_MO]
            assert not any(m.is_receipt() for m in parsed)
            assert {m.source.number for m in parsed} == {HANDSET}

    run_async(main())


def deliver_sm(raws: list[bytes]) -> list[DeliverSm]:
    out = [decode_pdu(r) for r in raws if r[4:8] == b"\x00\x00\x00\x05"]
    assert all(isinstance(p, DeliverSm) for p in out)
    return out  # type: ignore[return-value]
