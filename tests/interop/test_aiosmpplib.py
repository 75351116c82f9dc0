"""aiosmpplib (asyncio) as a tenant of the gateway, over real sockets on 127.0.0.1.

The gateway runs on its own loop thread (``gateway`` fixture); each test runs aiosmpplib in
a private event loop in the test thread (``asyncio.run``). aiosmpplib is used as an
application would: ``ESME.start()`` in a task, ``SubmitSm`` objects queued on its broker,
and a hook that sees every PDU it receives (bind and submit responses, deliver_sm).
Covered: binds of all three kinds and refusals, GSM-7, UCS-2 with an emoji, client-split
long messages (UDH), long text sent as message_payload, unique ids that match the store,
ESME_RTHROTTLED past the tenant's tps, and deliver_sm from the tenant's outbox while bound
and after re-binding from offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from aiosmpplib import (
    ESME,
    NPI,
    TON,
    BindMode,
    DeliverSm,
    PhoneNumber,
    SmppCommandStatus,
    SmppError,
    SubmitSm,
    SubmitSmResp,
)
from aiosmpplib.protocol import BindTransceiverResp

from config import TenantConfig
from encoding.pdu import DeliverSm as OurDeliverSm
from encoding.pdu import encode_pdu
from routing import StoredPdu
from tests.aiosmpp_recorder import Recorder, bound_esme

if TYPE_CHECKING:
    from tests.conftest import GatewayThread

T = TypeVar("T")

DEST = "447700900123"
SOURCE = "447700900999"
TIMEOUT = 10.0


async def on_gateway(gw: GatewayThread, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the gateway's loop without blocking this loop."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, gw.loop))


async def read_gateway(gw: GatewayThread, fn: Callable[[], T]) -> T:
    async def wrapper() -> T:
        return fn()

    return await on_gateway(gw, wrapper())


@contextlib.asynccontextmanager
async def running_esme(gw: GatewayThread, mode: BindMode = BindMode.TRANSCEIVER,
                       system_id: str = "demo", password: str = "demo",
                       ) -> AsyncIterator[tuple[ESME, Recorder]]:
    """A started and bound ESME, its bind_resp checked; stopped (unbind, close) on exit."""
    async with bound_esme(gw.port, mode, system_id, password, TIMEOUT) as (esme, hook):
        [resp] = hook.of(BindTransceiverResp)  # the receiver/transmitter resps subclass it
        assert resp.command_status == SmppCommandStatus.ESME_ROK
        assert resp.system_id == "smsc"
        assert resp.sc_interface_version == 0x34
        yield esme, hook


def submit_sm(text: str = "", *, log_id: str, **kw: Any) -> SubmitSm:
    return SubmitSm(short_message=text, log_id=log_id, registered_delivery=0,
                    source=PhoneNumber(SOURCE, TON.INTERNATIONAL, NPI.ISDN),
                    destination=PhoneNumber(DEST, TON.INTERNATIONAL, NPI.ISDN), **kw)


async def submit_all(esme: ESME, hook: Recorder,
                     messages: list[SubmitSm]) -> dict[str, SubmitSmResp]:
    """Queue ``messages``; their submit_sm_resp by log_id (aiosmpplib copies it over)."""
    before = len(hook.of(SubmitSmResp))
    for m in messages:
        await esme.broker.enqueue(m)
    want = before + len(messages)
    await hook.wait(lambda: len(hook.of(SubmitSmResp)) >= want, "submit_sm_resp")
    return {r.log_id: r for r in hook.of(SubmitSmResp)[before:]}


def ok_id(resp: SubmitSmResp) -> str:
    assert resp.command_status == SmppCommandStatus.ESME_ROK, resp
    mid: str = resp.message_id  # aiosmpplib is untyped
    assert 0 < len(mid) <= 20
    return mid


def submit_sm_resp_id(raw: bytes) -> str:
    """The message_id of a raw submit_sm_resp with ESME_ROK."""
    _length, command_id, command_status, _seq = struct.unpack(">IIII", raw[:16])
    assert (command_id, command_status) == (0x80000004, 0), raw.hex()
    assert raw.endswith(b"\0")
    return raw[16:-1].decode("ascii")


def mo_pdu(text: str) -> bytes:
    return encode_pdu(OurDeliverSm(source_addr_ton=1, source_addr_npi=1, source_addr=SOURCE,
                                   dest_addr_ton=1, dest_addr_npi=1,
                                   destination_addr="4412345",
                                   short_message=text.encode("ascii")))


async def put_mo(gw: GatewayThread, text: str) -> None:
    await on_gateway(gw, gw.gateway.put_event("demo", StoredPdu(mo_pdu(text))))


async def outbox_drained(gw: GatewayThread, timeout: float = TIMEOUT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await read_gateway(gw, lambda: gw.gateway.store.count("events")):
        if loop.time() > deadline:
            pytest.fail("outbox did not drain")
        await asyncio.sleep(0.02)  # polling the store with a deadline


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 25.0))


# --- binds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [BindMode.TRANSMITTER, BindMode.RECEIVER,
                                  BindMode.TRANSCEIVER], ids=lambda m: m.name.lower())
def test_bind_each_way(gateway: GatewayThread, mode: BindMode) -> None:
    async def main() -> None:
        async with running_esme(gateway, mode):
            assert await read_gateway(gateway, lambda: gateway.gateway.registry.count(
                "demo")) == 1

    run(main())


@pytest.mark.parametrize(("system_id", "password", "status"), [
    ("demo", "wrong", SmppCommandStatus.ESME_RINVPASWD),
    ("nobody", "demo", SmppCommandStatus.ESME_RINVSYSID),
])
def test_bind_refused(gateway: GatewayThread, system_id: str, password: str,
                      status: SmppCommandStatus) -> None:
    async def main() -> None:
        hook = Recorder()
        esme = ESME("127.0.0.1", gateway.port, system_id, password, log_level="ERROR",
                    socket_timeout=5.0, hook=hook)
        try:
            # aiosmpplib 0.7.4 cannot parse a header-only bind_resp (it raises ValueError), so
            # the gateway sends error responses with their empty body (17 octets): the client
            # then reports the real status.
            with pytest.raises(SmppError) as info:
                await esme.connect()
            assert info.value.command_status == status
            [raw] = hook.raw
            length, command_id, command_status, sequence = struct.unpack(">IIII", raw[:16])
            assert (command_id, command_status, sequence) == (0x80000009, status, 1)
            assert length == len(raw) == 17
        finally:
            if esme._writer is not None:
                esme._writer.close()
                with contextlib.suppress(OSError):
                    await esme._writer.wait_closed()
        assert await read_gateway(gateway, lambda: gateway.gateway.registry.count(
            "demo")) == 0
        # the right credentials still bind
        async with running_esme(gateway):
            pass

    run(main())


# --- submits -------------------------------------------------------------------------------


def test_submit_gsm7_ucs2_long_and_payload(gateway: GatewayThread) -> None:
    long_text = "".join(f"aiosmpplib long part {i:03d}. " for i in range(16))
    payload_text = "payload " * 40

    async def main() -> None:
        async with running_esme(gateway, BindMode.TRANSMITTER) as (esme, hook):
            resps = await submit_all(esme, hook, [
                submit_sm("Hello from aiosmpplib @ 10:00 {ok}", log_id="gsm"),
                submit_sm("Grüße 👋 from смпп", log_id="ucs2"),
                submit_sm(payload_text, log_id="payload"),  # > 254 octets: message_payload
            ])
            ids = {k: ok_id(r) for k, r in resps.items()}
            # esm_class UDHI: aiosmpplib splits into parts with a concatenation UDH and
            # reports one submit_sm_resp to the application once every part is answered
            first_raw = len(hook.raw)
            await submit_all(esme, hook, [submit_sm(long_text, log_id="long", esm_class=0x40,
                                                    auto_message_payload=False)])
            long_ids = [submit_sm_resp_id(raw) for raw in hook.raw[first_raw:]]
            assert len(long_ids) == 3  # 416 GSM-7 characters, 153 per part

        store = gateway.gateway.store
        found = await read_gateway(gateway, lambda: {
            i: store.get_message(i) for i in [*ids.values(), *long_ids]})
        stored = {i: m for i, m in found.items() if m is not None}
        assert len(stored) == len(found), found  # every id is stored
        assert len(stored) == len(ids) + len(long_ids), "message ids repeat"

        gsm = stored[ids["gsm"]]
        assert gsm.data_coding == 0 and gsm.destination_addr == DEST
        assert gsm.body == b"Hello from aiosmpplib \x00 10:00 \x1b(ok\x1b)"  # GSM 03.38
        ucs2 = stored[ids["ucs2"]]
        assert ucs2.data_coding == 8
        assert ucs2.body.decode("utf-16-be") == "Grüße 👋 from смпп"
        payload = stored[ids["payload"]]
        assert payload.body == payload_text.encode("ascii") and payload.data_coding == 0

        bodies = [stored[i].body for i in long_ids]
        assert all(stored[i].esm_class & 0x40 for i in long_ids)
        udh = [b[:6] for b in bodies]
        assert {(u[0], u[1], u[2], u[4]) for u in udh} == {(5, 0, 3, 3)}
        assert sorted(u[5] for u in udh) == [1, 2, 3]
        by_part = sorted(bodies, key=lambda b: b[5])
        assert b"".join(b[6:] for b in by_part).decode("ascii") == long_text

    run(main())


def test_throttled_past_tps(gateway_factory: Callable[..., GatewayThread]) -> None:
    gw = gateway_factory(tenants=(TenantConfig(system_id="slow", password="slow", tps=2),))

    async def main() -> None:
        async with running_esme(gw, BindMode.TRANSMITTER, "slow", "slow") as (esme, hook):
            resps = await submit_all(esme, hook, [submit_sm(f"burst {i}", log_id=str(i))
                                                  for i in range(10)])
            statuses = [r.command_status for r in resps.values()]
            assert statuses.count(SmppCommandStatus.ESME_RTHROTTLED) >= 5, statuses
            assert 1 <= statuses.count(SmppCommandStatus.ESME_ROK) <= 4, statuses
            ok = [r.message_id for r in resps.values()
                  if r.command_status == SmppCommandStatus.ESME_ROK]
            assert all(r.message_id == "" for r in resps.values()
                       if r.command_status != SmppCommandStatus.ESME_ROK)
            assert len(set(ok)) == len(ok)

    run(main())


# --- deliver_sm from the outbox ------------------------------------------------------------


def test_deliver_sm_while_bound_and_after_rebinding(gateway: GatewayThread) -> None:
    async def main() -> None:
        async with running_esme(gateway, BindMode.RECEIVER) as (_esme, hook):
            await put_mo(gateway, "hello aiosmpplib")
            await hook.wait(lambda: bool(hook.of(DeliverSm)), "deliver_sm")
            [mo] = hook.of(DeliverSm)
            assert mo.short_message == "hello aiosmpplib"
            assert mo.source.number == SOURCE and mo.destination.number == "4412345"
            assert not mo.is_receipt()
            await outbox_drained(gateway)
        assert await read_gateway(gateway, lambda: gateway.gateway.registry.count(
            "demo")) == 0

        # offline: everything waits in the store
        for text in ("one", "two", "three"):
            await put_mo(gateway, text)
        assert await read_gateway(gateway, lambda: gateway.gateway.store.count("events")) == 3

        # re-bound (as a transceiver this time): all of it arrives, oldest first
        async with running_esme(gateway, BindMode.TRANSCEIVER) as (_esme, hook):
            await hook.wait(lambda: len(hook.of(DeliverSm)) >= 3, "3 deliver_sm")
            assert [m.short_message for m in hook.of(DeliverSm)] == ["one", "two", "three"]
            await outbox_drained(gateway)

    run(main())


def test_receipt_reaches_the_submitter(gateway: GatewayThread) -> None:
    """A receipt-shaped deliver_sm for our id parses as a receipt in aiosmpplib."""
    async def main() -> None:
        async with running_esme(gateway, BindMode.TRANSCEIVER) as (esme, hook):
            [resp] = (await submit_all(esme, hook, [submit_sm("receipt me",
                                                              log_id="r1")])).values()
            mid = ok_id(resp)
            text = (f"id:{mid} sub:001 dlvrd:001 submit date:2401011200 "
                    "done date:2401011201 stat:DELIVRD err:000 text:receipt me")
            pdu = encode_pdu(OurDeliverSm(source_addr=DEST, destination_addr=SOURCE,
                                          esm_class=0x04, short_message=text.encode("ascii"),
                                          tlvs={"receipted_message_id": mid,
                                                "message_state": 2}))
            await on_gateway(gateway, gateway.gateway.put_event("demo", StoredPdu(pdu, mid)))
            await hook.wait(lambda: bool(hook.of(DeliverSm)), "receipt")
            [receipt] = hook.of(DeliverSm)
            assert receipt.is_receipt()
            parsed = receipt.parse_receipt()
            assert parsed["id"] == mid and parsed["stat"] == "DELIVRD"
            assert receipt.log_id == "r1"  # aiosmpplib correlated it to the submit
            await outbox_drained(gateway)

    run(main())
