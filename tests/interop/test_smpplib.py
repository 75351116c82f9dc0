"""python-smpplib (blocking) as a tenant of the gateway, over real sockets on 127.0.0.1.

The gateway runs on its own loop thread (``gateway`` fixture); smpplib runs in the test
thread. Each test drives smpplib's own PDU classes and reads what the gateway answers:
binds of all three kinds, submits in GSM-7, UCS-2 (with an emoji), client-split long
messages (UDH) and message_payload, each acknowledged with a unique id and found in the
store as sent; bind refusals and throttling with the right status; deliver_sm put in the
tenant's outbox arriving while bound and after re-binding from offline, oldest first;
query_sm of a submitted message.

smpplib is created with ``allow_unknown_opt_params=False`` (strict): if the gateway sent a
TLV smpplib does not know, parsing would raise and the test would fail.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import smpplib.client
import smpplib.consts as C
import smpplib.exceptions
import smpplib.gsm
import smpplib.smpp

from config import TenantConfig
from encoding.pdu import DeliverSm, encode_pdu
from routing import StoredPdu
from tests.waiting import wait_until

if TYPE_CHECKING:
    from tests.conftest import GatewayThread


DEST = "447700900123"
SOURCE = "447700900999"
ESME_RINVMSGID = 0x0C
MESSAGE_STATE_REJECTED = 8


# --- helpers -------------------------------------------------------------------------------


@contextlib.contextmanager
def smpp_client(gw: GatewayThread, timeout: float = 5.0) -> Iterator[smpplib.client.Client]:
    """A connected (not yet bound) smpplib client; unbound and closed on exit."""
    client = smpplib.client.Client("127.0.0.1", gw.port, timeout=timeout,
                                   allow_unknown_opt_params=False)
    client.connect()
    try:
        yield client
    finally:
        if client.state in (C.SMPP_CLIENT_STATE_BOUND_TX, C.SMPP_CLIENT_STATE_BOUND_RX,
                            C.SMPP_CLIENT_STATE_BOUND_TRX):
            with contextlib.suppress(smpplib.exceptions.PDUError,
                                     smpplib.exceptions.ConnectionError, OSError):
                client.unbind()
        client.disconnect()


@contextlib.contextmanager
def bound(gw: GatewayThread, how: str = "transceiver", system_id: str = "demo",
          password: str = "demo", timeout: float = 5.0) -> Iterator[smpplib.client.Client]:
    with smpp_client(gw, timeout) as client:
        getattr(client, f"bind_{how}")(system_id=system_id, password=password)
        yield client


def read_responses(client: smpplib.client.Client, sequences: list[int]) -> list[Any]:
    """The responses to ``sequences``, in that order, whatever order they arrive in.

    SMPP lets responses overtake each other (a throttled submit is answered at once, an
    accepted one after its commit); enquire_link from the gateway is answered on the way.
    """
    wanted = set(sequences)
    got: dict[int, Any] = {}
    for _ in range(len(sequences) + 50):
        if len(got) == len(wanted):
            break
        pdu = client.read_pdu()
        if pdu.command == "enquire_link":
            client.send_pdu(smpplib.smpp.make_pdu("enquire_link_resp", client=client,
                                                  sequence=pdu.sequence))
            continue
        assert pdu.sequence in wanted and pdu.sequence not in got, (
            f"unexpected {pdu.command} seq {pdu.sequence}")
        got[pdu.sequence] = pdu
    assert len(got) == len(wanted), f"{len(wanted) - len(got)} responses missing"
    return [got[s] for s in sequences]


def read_response(client: smpplib.client.Client, sequence: int) -> Any:
    return read_responses(client, [sequence])[0]


def submit(client: smpplib.client.Client, short_message: bytes | None = b"hello", *,
           data_coding: int = 0, esm_class: int = 0, destination_addr: str = DEST,
           **extra: Any) -> Any:
    sent = client.send_message(
        source_addr_ton=1, source_addr_npi=1, source_addr=SOURCE,
        dest_addr_ton=1, dest_addr_npi=1, destination_addr=destination_addr,
        short_message=short_message, data_coding=data_coding, esm_class=esm_class, **extra)
    resp = read_response(client, sent.sequence)
    assert resp.command == "submit_sm_resp"
    return resp


def accepted_id(resp: Any) -> str:
    assert resp.status == C.SMPP_ESME_ROK, f"submit refused with 0x{resp.status:X}"
    mid: str = resp.message_id.decode("ascii")
    assert 0 < len(mid) <= 20, mid
    return mid


def stored(gw: GatewayThread, mid: str) -> Any:
    message = gw.run(lambda: gw.gateway.store.get_message(mid))
    assert message is not None, f"message {mid} acknowledged but not in the store"
    return message


def receive_deliver_sm(client: smpplib.client.Client, count: int,
                       timeout: float = 10.0) -> list[Any]:
    """Read ``count`` deliver_sm (smpplib answers each with deliver_sm_resp ESME_ROK)."""
    got: list[Any] = []
    client.set_message_received_handler(lambda pdu: got.append(pdu))
    deadline = time.monotonic() + timeout
    while len(got) < count:
        if time.monotonic() >= deadline:
            pytest.fail(f"received {len(got)} of {count} deliver_sm within {timeout} s")
        client.read_once()  # on a read timeout smpplib sends enquire_link and returns
    return got


def mo_pdu(text: str, source: str = SOURCE) -> bytes:
    return encode_pdu(DeliverSm(source_addr_ton=1, source_addr_npi=1, source_addr=source,
                                dest_addr_ton=1, dest_addr_npi=1, destination_addr="4412345",
                                short_message=text.encode("ascii")))


def put_mo(gw: GatewayThread, text: str) -> None:
    gw.call(gw.gateway.put_event("demo", StoredPdu(mo_pdu(text))))


def outbox_count(gw: GatewayThread) -> int:
    return gw.run(lambda: gw.gateway.store.count("events"))


# --- binds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["transmitter", "receiver", "transceiver"])
def test_bind_each_way(gateway: GatewayThread, how: str) -> None:
    with smpp_client(gateway) as client:
        resp = getattr(client, f"bind_{how}")(system_id="demo", password="demo")
        assert resp.status == C.SMPP_ESME_ROK
        assert resp.command == f"bind_{how}_resp"
        assert resp.system_id == b"smsc"
        assert resp.sc_interface_version == 0x34
        assert gateway.run(lambda: gateway.gateway.registry.count("demo")) == 1
        unbind = client.unbind()
        assert unbind.command == "unbind_resp" and unbind.status == C.SMPP_ESME_ROK
    wait_until(lambda: gateway.run(lambda: gateway.gateway.registry.count("demo")) == 0)


@pytest.mark.parametrize(("system_id", "password", "status"), [
    ("demo", "wrong", C.SMPP_ESME_RINVPASWD),
    ("nobody", "demo", C.SMPP_ESME_RINVSYSID),
])
def test_bind_refused(gateway: GatewayThread, system_id: str, password: str,
                      status: int) -> None:
    with smpp_client(gateway) as client:
        with pytest.raises(smpplib.exceptions.PDUError) as info:
            client.bind_transceiver(system_id=system_id, password=password)
        assert info.value.args[1] == status
        assert client.state == C.SMPP_CLIENT_STATE_OPEN
    # the refusal did not leave a bind behind and the right credentials still work
    with bound(gateway) as client:
        accepted_id(submit(client))


# --- submits -------------------------------------------------------------------------------


def test_submit_gsm7_ucs2_long_and_payload(gateway: GatewayThread) -> None:
    ids: list[str] = []
    with bound(gateway, "transmitter") as client:
        # short GSM-7 (smpplib's own encoder: unpacked septets, data_coding 0)
        parts, coding, esm = smpplib.gsm.make_parts("Hello from smpplib @ 10:00!")
        assert len(parts) == 1 and coding == C.SMPP_ENCODING_DEFAULT
        mid = accepted_id(submit(client, parts[0], data_coding=coding, esm_class=esm))
        m = stored(gateway, mid)
        assert (m.body, m.data_coding, m.destination_addr, m.tenant) == (parts[0], 0, DEST,
                                                                         "demo")
        assert m.source_addr == SOURCE
        ids.append(mid)

        # UCS-2 with an emoji (a surrogate pair in UTF-16)
        text = "Grüße 👋 from смпп"
        parts, coding, esm = smpplib.gsm.make_parts(text)
        assert coding == C.SMPP_ENCODING_ISO10646 and len(parts) == 1
        mid = accepted_id(submit(client, parts[0], data_coding=coding, esm_class=esm))
        m = stored(gateway, mid)
        assert m.data_coding == 8
        assert m.body.decode("utf-16-be") == text
        ids.append(mid)

        # client-split long message: each part carries a UDH (esm_class 0x40)
        long_text = "".join(f"part of a long message {i:03d}. " for i in range(20))
        parts, coding, esm = smpplib.gsm.make_parts(long_text)
        assert len(parts) > 1 and esm == C.SMPP_GSMFEAT_UDHI
        joined = b""
        for part in parts:
            mid = accepted_id(submit(client, part, data_coding=coding, esm_class=esm))
            m = stored(gateway, mid)
            assert (m.body, m.esm_class & 0x40, m.data_coding) == (part, 0x40, coding)
            joined += m.body[6:]  # 8-bit reference concatenation IE: 6 octets of UDH
            ids.append(mid)
        assert joined.decode("ascii") == long_text

        # message_payload TLV instead of short_message (longer than short_message allows)
        payload = ("payload " * 40).encode("ascii")
        assert len(payload) > 254
        mid = accepted_id(submit(client, None, message_payload=payload))
        m = stored(gateway, mid)
        assert (m.body, m.data_coding) == (payload, 0)
        ids.append(mid)

        # Latin-1 (data_coding 3), which smpplib offers as ISO-8859-1
        mid = accepted_id(submit(client, "café".encode("latin-1"), data_coding=3))
        assert stored(gateway, mid).body == "café".encode("latin-1")
        ids.append(mid)
    assert len(set(ids)) == len(ids), f"message ids repeat: {ids}"


def test_data_sm(gateway: GatewayThread) -> None:
    """data_sm (text in message_payload) is accepted like submit_sm and stored."""
    with bound(gateway, "transceiver") as client:
        payload = "data_sm via smpplib 👍".encode("utf-16-be")
        pdu = smpplib.smpp.make_pdu("data_sm", client=client, source_addr_ton=1,
                                    source_addr_npi=1, source_addr=SOURCE, dest_addr_ton=1,
                                    dest_addr_npi=1, destination_addr=DEST, data_coding=8,
                                    message_payload=payload)
        client.send_pdu(pdu)
        resp = read_response(client, pdu.sequence)
        assert resp.command == "data_sm_resp"
        mid = accepted_id(resp)
        m = stored(gateway, mid)
        assert (m.body, m.data_coding, m.destination_addr) == (payload, 8, DEST)


def test_many_submits_get_unique_ids(gateway: GatewayThread) -> None:
    """A full window of pipelined submits (no waiting between them): each its own id."""
    n = 100  # the tenant's default window: outstanding submits beyond it are throttled
    with bound(gateway, "transceiver") as client:
        sent = [client.send_message(source_addr=SOURCE, destination_addr=DEST,
                                    short_message=f"msg {i}".encode()) for i in range(n)]
        resps = read_responses(client, [s.sequence for s in sent])
    ids = [accepted_id(r) for r in resps]
    assert len(set(ids)) == n
    stored = gateway.run(lambda: [gateway.gateway.store.get_message(i) for i in ids])
    bodies = [m.body if m is not None else None for m in stored]
    assert bodies == [f"msg {i}".encode() for i in range(n)]


def test_throttled_past_window(gateway_factory: Callable[..., GatewayThread]) -> None:
    """More submits outstanding than the tenant's window: the excess gets ESME_RTHROTTLED,
    every submit gets an answer, and the session goes on."""
    gw = gateway_factory(tenants=(TenantConfig(system_id="demo", password="demo", window=5),))
    with bound(gw, "transmitter") as client:
        pdus = [smpplib.smpp.make_pdu("submit_sm", client=client, source_addr=SOURCE,
                                      destination_addr=DEST, short_message=f"w{i}".encode())
                for i in range(30)]
        client._socket.sendall(b"".join(p.generate() for p in pdus))  # one write, one read
        resps = read_responses(client, [p.sequence for p in pdus])
        statuses = [r.status for r in resps]
        assert set(statuses) <= {C.SMPP_ESME_ROK, C.SMPP_ESME_RTHROTTLED}, statuses
        assert statuses.count(C.SMPP_ESME_ROK) >= 5, statuses
        assert statuses.count(C.SMPP_ESME_RTHROTTLED) >= 1, statuses
        accepted = [accepted_id(r) for r in resps if r.status == C.SMPP_ESME_ROK]
        assert len(set(accepted)) == len(accepted)
        accepted_id(submit(client, b"after the burst"))


def test_throttled_past_tps(gateway_factory: Callable[..., GatewayThread]) -> None:
    gw = gateway_factory(tenants=(TenantConfig(system_id="slow", password="slow", tps=2),))
    with bound(gw, "transmitter", "slow", "slow") as client:
        sent = [client.send_message(source_addr=SOURCE, destination_addr=DEST,
                                    short_message=b"burst") for _ in range(10)]
        statuses = [r.status for r in read_responses(client, [s.sequence for s in sent])]
        assert statuses.count(C.SMPP_ESME_RTHROTTLED) >= 5, statuses
        assert 1 <= statuses.count(C.SMPP_ESME_ROK) <= 4, statuses
        assert set(statuses) <= {C.SMPP_ESME_ROK, C.SMPP_ESME_RTHROTTLED}, statuses
        # the session survives throttling, and submits go through again once under the rate
        deadline = time.monotonic() + 5
        while True:
            resp = submit(client, b"later")
            if resp.status == C.SMPP_ESME_ROK or time.monotonic() > deadline:
                break
            assert resp.status == C.SMPP_ESME_RTHROTTLED
            time.sleep(0.1)  # pacing the retries, not synchronisation
        accepted_id(resp)


# --- query_sm ------------------------------------------------------------------------------


def test_query_sm(gateway: GatewayThread) -> None:
    # smpplib's state table allows query_sm only on receiver/transceiver binds
    with bound(gateway, "transceiver") as client:
        mid = accepted_id(submit(client, b"where are you?"))
        # no route is configured: the gateway rejects the message; query_sm must say so
        wait_until(lambda: stored(gateway, mid).status.value == "rejected")
        q = client.query_message(message_id=mid, source_addr_ton=1, source_addr_npi=1,
                                 source_addr=SOURCE)
        resp = read_response(client, q.sequence)
        assert resp.command == "query_sm_resp" and resp.status == C.SMPP_ESME_ROK
        assert resp.message_id == mid.encode()
        assert resp.message_state == MESSAGE_STATE_REJECTED
        assert len(resp.final_date) in (12, 16), resp.final_date  # YYMMDDhhmmss(tnnp)

        q = client.query_message(message_id="99999999999", source_addr=SOURCE)
        resp = read_response(client, q.sequence)
        assert resp.status == ESME_RINVMSGID


# --- deliver_sm from the outbox ------------------------------------------------------------


def test_deliver_sm_while_bound(gateway: GatewayThread) -> None:
    with bound(gateway, "receiver", timeout=1.0) as client:
        put_mo(gateway, "hello tenant")
        [pdu] = receive_deliver_sm(client, 1)
        assert pdu.short_message == b"hello tenant"
        assert pdu.source_addr == SOURCE.encode()
        assert pdu.destination_addr == b"4412345"
        assert pdu.esm_class == 0
        wait_until(lambda: outbox_count(gateway) == 0)


def test_deliver_sm_after_rebinding_from_offline(gateway: GatewayThread) -> None:
    # a receiver that binds, takes one, and goes away
    with bound(gateway, "receiver", timeout=1.0) as client:
        put_mo(gateway, "first")
        assert [p.short_message for p in receive_deliver_sm(client, 1)] == [b"first"]
    wait_until(lambda: gateway.run(lambda: gateway.gateway.registry.count("demo")) == 0)
    wait_until(lambda: outbox_count(gateway) == 0)

    # offline (a transmitter bind cannot take deliver_sm): everything waits in the store
    with bound(gateway, "transmitter") as tx:
        for text in ("second", "third", "fourth"):
            put_mo(gateway, text)
        accepted_id(submit(tx, b"still submitting"))
    assert outbox_count(gateway) == 3

    # on re-binding they arrive, oldest first, and the outbox drains
    with bound(gateway, "transceiver", timeout=1.0) as client:
        got = receive_deliver_sm(client, 3)
        assert [p.short_message for p in got] == [b"second", b"third", b"fourth"]
        wait_until(lambda: outbox_count(gateway) == 0)


def test_deliver_sm_receipt_fields_survive(gateway: GatewayThread) -> None:
    """A receipt-shaped deliver_sm keeps the TLVs smpplib knows (receipted id, state)."""
    with bound(gateway, "transceiver", timeout=1.0) as client:
        mid = accepted_id(submit(client, b"receipt me"))
        text = (f"id:{mid} sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 "
                "stat:DELIVRD err:000 text:receipt me")
        pdu = encode_pdu(DeliverSm(source_addr=DEST, destination_addr=SOURCE, esm_class=0x04,
                                   short_message=text.encode("ascii"),
                                   tlvs={"receipted_message_id": mid, "message_state": 2}))
        gateway.call(gateway.gateway.put_event("demo", StoredPdu(pdu, mid)))
        [got] = receive_deliver_sm(client, 1)
        assert got.esm_class == 0x04
        assert got.short_message == text.encode("ascii")
        assert got.receipted_message_id == mid.encode()
        assert got.message_state == 2
        wait_until(lambda: outbox_count(gateway) == 0)


def test_dropped_connection_frees_bind(gateway: GatewayThread) -> None:
    """Closing the TCP connection without unbind frees the bind slot."""
    client = smpplib.client.Client("127.0.0.1", gateway.port, timeout=2,
                                   allow_unknown_opt_params=False)
    client.connect()
    try:
        client.bind_transceiver(system_id="demo", password="demo")
        assert gateway.run(lambda: gateway.gateway.registry.count("demo")) == 1
    finally:
        with contextlib.suppress(OSError):
            client._socket.shutdown(socket.SHUT_RDWR)
        client.disconnect()
    wait_until(lambda: gateway.run(lambda: gateway.gateway.registry.count("demo")) == 0)
