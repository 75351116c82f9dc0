"""Tenant-facing features of an in-process gateway, over real sockets on 127.0.0.1.

A raw client (plain socket plus the codec in ``encoding.pdu``) checks what a tenant sees:
validation statuses for bad submits, ESME_RTHROTTLED past the tenant's window,
ESME_RMSGQFUL when the store queue is full, bind rules (max_binds, allowed_ips,
bind_types), submit_multi with a distribution list, data_sm, query_sm / cancel_sm /
replace_sm on a message still waiting for its operator, hex message ids, and the
Prometheus endpoint. Messages stay ACCEPTED because the only route goes to an operator
whose port refuses connections.
"""

from __future__ import annotations

import socket
import struct
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from config import OperatorConfig, RouteConfig, StoreConfig, TenantConfig
from encoding.constants import CommandId, CommandStatus, MessageState
from encoding.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    DataSm,
    DeliverSm,
    DlDest,
    EnquireLink,
    QuerySm,
    ReplaceSm,
    SmeDest,
    SubmitMulti,
    SubmitSm,
    Unbind,
    encode_pdu,
)
from tests.rawclient import RawClient

if TYPE_CHECKING:
    from tests.conftest import GatewayThread

S = CommandStatus
pytestmark = pytest.mark.timeout(60)
READ_TIMEOUT = 5.0


@pytest.fixture
def connect(gateway_factory: Callable[..., GatewayThread]) -> Iterator[Callable[..., RawClient]]:
    clients: list[RawClient] = []

    def open_client(gw: GatewayThread) -> RawClient:
        c = RawClient(gw.port)
        clients.append(c)
        return c

    yield open_client
    for c in clients:
        c.close()


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound but not listening: connections to it are refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def queued_gateway(refused_port: int,
                   gateway_factory: Callable[..., GatewayThread]) -> GatewayThread:
    """A gateway whose default route goes to an operator that never answers."""
    return gateway_factory(
        tenants=(TenantConfig(system_id="demo", password="demo"),
                 TenantConfig(system_id="hexy", password="hexy", id_format="hex"),
                 TenantConfig(system_id="other", password="other")),
        operators=(OperatorConfig(name="dead", host="127.0.0.1", port=refused_port,
                                  system_id="gw", password="gw", reconnect_min_s=30.0,
                                  reconnect_max_s=60.0),),
        routes=(RouteConfig(prefix="", operators=("dead",)),),
    )


def _submit(**fields: object) -> SubmitSm:
    base: dict[str, object] = {"source_addr": "4412345", "destination_addr": "447700900123",
                               "short_message": b"hello"}
    base.update(fields)
    return SubmitSm(**base)  # type: ignore[arg-type]


def _stored(gw: GatewayThread, message_id: str) -> object:
    return gw.run(lambda: gw.gateway.store.get_message(message_id))


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "status"), [
    ({"destination_addr": "44abc77"}, S.ESME_RINVDSTADR),
    ({"destination_addr": ""}, S.ESME_RINVDSTADR),
    ({"source_addr": "12x45"}, S.ESME_RINVSRCADR),
    ({"priority_flag": 4}, S.ESME_RINVPRTFLG),
    ({"registered_delivery": 3}, S.ESME_RINVREGDLVFLG),
    ({"schedule_delivery_time": "not-a-time"}, S.ESME_RINVSCHED),
    ({"schedule_delivery_time": "251301000000000+"}, S.ESME_RINVSCHED),  # month 13
    ({"validity_period": "200101000000000+"}, S.ESME_RINVEXPIRY),  # 2020: in the past
    ({"validity_period": "000001000000001R"}, S.ESME_RINVEXPIRY),
    ({"tlvs": {"message_payload": b"also a payload"}}, S.ESME_RINVMSGLEN),
    ({"data_coding": 0x05}, S.ESME_RSUBMITFAIL),
    ({"esm_class": 0x40, "short_message": b"\x05\x00\x03\x01"}, S.ESME_RINVESMCLASS),
    ({"esm_class": 0x04}, S.ESME_RINVESMCLASS),  # a receipt is not a submit
], ids=["dest-letters", "dest-empty", "source", "priority-4", "regdlv-3", "sched-garbage",
        "sched-month-13", "validity-past", "validity-relative-bad", "sm-and-payload", "dcs-05",
        "udh-malformed", "esm-receipt"])
def test_invalid_submit_gets_its_status_and_is_not_stored(
        gateway: GatewayThread, connect: Callable[..., RawClient], fields: dict[str, object],
        status: int) -> None:
    c = connect(gateway)
    assert c.bind().command_status == S.ESME_ROK
    resp = c.request(_submit(**fields))
    assert resp.command_id == CommandId.submit_sm_resp
    assert resp.command_status == status, S(resp.command_status).name
    assert resp.message_id == ""  # type: ignore[attr-defined]
    assert gateway.run(lambda: gateway.gateway.store.count("messages")) == 0
    ok = c.request(_submit())  # the session goes on
    assert ok.command_status == S.ESME_ROK


def test_valid_variants_are_accepted(gateway: GatewayThread,
                                     connect: Callable[..., RawClient]) -> None:
    c = connect(gateway)
    c.bind()
    for fields in ({"destination_addr": "+447700900123"},
                   {"source_addr": "ACME", "source_addr_ton": 5},
                   {"validity_period": "000001000000000R", "registered_delivery": 1},
                   {"data_coding": 0x08, "short_message": "héllo 👋".encode("utf-16-be")},
                   {"esm_class": 0x40, "short_message": b"\x05\x00\x03\x2a\x02\x01part one"},
                   {"short_message": b"", "tlvs": {"message_payload": b"x" * 600}}):
        resp = c.request(_submit(**fields))
        assert resp.command_status == S.ESME_ROK, (fields, S(resp.command_status).name)


# --- throttling and queue -----------------------------------------------------------------


def test_window_exceeded_gets_throttled(gateway_factory: Callable[..., GatewayThread],
                                        connect: Callable[..., RawClient]) -> None:
    gw = gateway_factory(tenants=(TenantConfig(system_id="demo", password="demo", window=5),))
    c = connect(gw)
    c.bind()
    frames = []
    for i in range(20):
        pdu = _submit(short_message=f"burst {i}".encode())
        pdu.sequence_number = 100 + i
        frames.append(encode_pdu(pdu))
    c.sock.sendall(b"".join(frames))  # one write: none of them answered yet
    statuses = {}
    for _ in range(20):
        resp = c.read_pdu()
        assert resp is not None and resp.command_id == CommandId.submit_sm_resp
        statuses[resp.sequence_number] = resp.command_status
    assert sorted(statuses) == list(range(100, 120))
    throttled = [s for s in statuses.values() if s == S.ESME_RTHROTTLED]
    accepted = [s for s in statuses.values() if s == S.ESME_ROK]
    assert throttled and accepted and len(throttled) + len(accepted) == 20
    assert len(accepted) >= 5
    assert gw.run(lambda: gw.gateway.store.count("messages")) == len(accepted)
    assert c.request(_submit()).command_status == S.ESME_ROK  # the window reopens


def test_queue_full_gets_msgqful(gateway_factory: Callable[..., GatewayThread],
                                 tmp_path: Path, connect: Callable[..., RawClient]) -> None:
    gw = gateway_factory(store=StoreConfig(path=str(tmp_path / "smsc.db"), max_queue=1))
    c = connect(gw)
    c.bind()
    frames = []
    for i in range(30):
        pdu = _submit(short_message=f"q {i}".encode())
        pdu.sequence_number = 1000 + i
        frames.append(encode_pdu(pdu))
    c.sock.sendall(b"".join(frames))
    statuses = []
    for _ in range(30):
        resp = c.read_pdu()
        assert resp is not None and resp.command_id == CommandId.submit_sm_resp
        statuses.append(resp.command_status)
    assert S.ESME_RMSGQFUL in statuses
    assert S.ESME_ROK in statuses
    assert set(statuses) <= {S.ESME_ROK, S.ESME_RMSGQFUL}
    assert gw.run(lambda: gw.gateway.store.count("messages")) == statuses.count(S.ESME_ROK)


# --- bind rules ---------------------------------------------------------------------------


def test_max_binds(gateway_factory: Callable[..., GatewayThread],
                   connect: Callable[..., RawClient]) -> None:
    gw = gateway_factory(tenants=(TenantConfig(system_id="demo", password="demo", max_binds=2),))
    first, second, third = connect(gw), connect(gw), connect(gw)
    assert first.bind().command_status == S.ESME_ROK
    assert second.bind(cls=BindTransmitter).command_status == S.ESME_ROK
    resp = third.bind(cls=BindReceiver)
    assert resp.command_id == CommandId.bind_receiver_resp
    assert resp.command_status == S.ESME_RBINDFAIL
    # once one bind goes, a new one fits
    first.close()
    deadline = time.monotonic() + 5
    while gw.run(lambda: gw.gateway.registry.count("demo")) > 1:
        assert time.monotonic() < deadline, "closed bind still counted"
        time.sleep(0.02)
    assert connect(gw).bind().command_status == S.ESME_ROK


def test_allowed_ips_refuses_other_addresses(gateway_factory: Callable[..., GatewayThread],
                                             connect: Callable[..., RawClient]) -> None:
    gw = gateway_factory(tenants=(
        TenantConfig(system_id="far", password="far", allowed_ips=("10.0.0.0/8",)),
        TenantConfig(system_id="near", password="near", allowed_ips=("127.0.0.0/8",)),
    ))
    resp = connect(gw).bind("far", "far")
    assert resp.command_status == S.ESME_RBINDFAIL
    assert connect(gw).bind("near", "near").command_status == S.ESME_ROK


def test_bind_types_and_credentials(gateway_factory: Callable[..., GatewayThread],
                                    connect: Callable[..., RawClient]) -> None:
    gw = gateway_factory(tenants=(
        TenantConfig(system_id="rx", password="rx", bind_types=("receiver",)),
    ))
    assert connect(gw).bind("rx", "rx", BindTransmitter).command_status == S.ESME_RBINDFAIL
    assert connect(gw).bind("rx", "rx", BindTransceiver).command_status == S.ESME_RBINDFAIL
    assert connect(gw).bind("rx", "nope", BindReceiver).command_status == S.ESME_RINVPASWD
    assert connect(gw).bind("nobody", "rx", BindReceiver).command_status == S.ESME_RINVSYSID
    ok = connect(gw).bind("rx", "rx", BindReceiver)
    assert ok.command_status == S.ESME_ROK
    assert ok.system_id  # type: ignore[attr-defined]
    assert ok.tlvs.get("sc_interface_version") == 0x34


def test_refused_bind_closes_and_other_sessions_continue(
        gateway: GatewayThread, connect: Callable[..., RawClient]) -> None:
    good = connect(gateway)
    good.bind()
    bad = connect(gateway)
    assert bad.bind("demo", "wrong").command_status == S.ESME_RINVPASWD
    assert bad.read_pdu() is None  # the session is closed after a refused bind
    assert good.request(_submit()).command_status == S.ESME_ROK


# --- other submit forms -------------------------------------------------------------------


def test_submit_multi_with_a_distribution_list(gateway: GatewayThread,
                                               connect: Callable[..., RawClient]) -> None:
    c = connect(gateway)
    c.bind()
    dests: list[SmeDest | DlDest] = [SmeDest("447700900001", 1, 1), SmeDest("447700900002"),
                                     DlDest("friends"), SmeDest("447700900003")]
    resp = c.request(SubmitMulti(source_addr="4412345", dest_address=dests,
                                 short_message=b"to many"))
    assert resp.command_id == CommandId.submit_multi_resp
    assert resp.command_status == S.ESME_ROK
    assert resp.message_id  # type: ignore[attr-defined]
    unsuccess = resp.unsuccess_sme  # type: ignore[attr-defined]
    assert len(unsuccess) == 1
    assert unsuccess[0].destination_addr == "friends"
    assert unsuccess[0].error_status_code == S.ESME_RCNTSUBDL
    rows = gateway.run(lambda: gateway.gateway.store.reader.execute(
        "SELECT destination_addr FROM messages ORDER BY id").fetchall())
    assert [r[0] for r in rows] == ["447700900001", "447700900002", "447700900003"]


def test_submit_multi_refuses_bad_destinations_one_by_one(
        gateway: GatewayThread, connect: Callable[..., RawClient]) -> None:
    c = connect(gateway)
    c.bind()
    resp = c.request(SubmitMulti(source_addr="4412345",
                                 dest_address=[SmeDest("447700900001"), SmeDest("bad!")],
                                 short_message=b"x"))
    assert resp.command_status == S.ESME_ROK
    [refused] = resp.unsuccess_sme  # type: ignore[attr-defined]
    assert (refused.destination_addr, refused.error_status_code) == ("bad!", S.ESME_RINVDSTADR)
    everyone_bad = c.request(SubmitMulti(source_addr="4412345", dest_address=[DlDest("a")],
                                         short_message=b"x"))
    assert everyone_bad.command_status == S.ESME_RCNTSUBDL


def test_data_sm_gets_an_id(gateway: GatewayThread, connect: Callable[..., RawClient]) -> None:
    c = connect(gateway)
    c.bind()
    resp = c.request(DataSm(source_addr="4412345", destination_addr="447700900123",
                            tlvs={"message_payload": b"data sm text"}))
    assert resp.command_id == CommandId.data_sm_resp
    assert resp.command_status == S.ESME_ROK
    mid = resp.message_id  # type: ignore[attr-defined]
    assert mid and len(mid) <= 20
    stored = _stored(gateway, mid)
    assert stored is not None and stored.body == b"data sm text"  # type: ignore[attr-defined]


# --- query, cancel, replace on a queued message -------------------------------------------


def test_query_cancel_replace_on_a_queued_message(queued_gateway: GatewayThread,
                                                  connect: Callable[..., RawClient]) -> None:
    gw = queued_gateway
    c = connect(gw)
    c.bind()
    ids = []
    for i in range(3):
        resp = c.request(_submit(short_message=f"queued {i}".encode()))
        assert resp.command_status == S.ESME_ROK
        ids.append(resp.message_id)  # type: ignore[attr-defined]
    assert len(set(ids)) == 3

    q = c.request(QuerySm(message_id=ids[0], source_addr="4412345"))
    assert q.command_status == S.ESME_ROK, S(q.command_status).name
    assert q.message_id == ids[0]  # type: ignore[attr-defined]
    assert q.message_state == MessageState.ENROUTE, (  # type: ignore[attr-defined]
        "message is not queued: was it rejected for lack of a route?")
    assert q.final_date == ""  # type: ignore[attr-defined]

    r = c.request(ReplaceSm(message_id=ids[1], source_addr="4412345",
                            short_message=b"replaced text"))
    assert r.command_id == CommandId.replace_sm_resp and r.command_status == S.ESME_ROK
    assert _stored(gw, ids[1]).body == b"replaced text"  # type: ignore[attr-defined]

    cancel = c.request(CancelSm(message_id=ids[0], source_addr="4412345"))
    assert cancel.command_id == CommandId.cancel_sm_resp
    assert cancel.command_status == S.ESME_ROK
    q = c.request(QuerySm(message_id=ids[0], source_addr="4412345"))
    assert q.message_state == MessageState.DELETED  # type: ignore[attr-defined]
    assert len(q.final_date) == 16  # type: ignore[attr-defined]

    # a cancelled message cannot be cancelled or replaced again
    again = c.request(CancelSm(message_id=ids[0], source_addr="4412345"))
    assert again.command_status == S.ESME_RCANCELFAIL
    late = c.request(ReplaceSm(message_id=ids[0], source_addr="4412345", short_message=b"z"))
    assert late.command_status == S.ESME_RREPLACEFAIL
    # the others are untouched
    q2 = c.request(QuerySm(message_id=ids[2], source_addr="4412345"))
    assert q2.message_state == MessageState.ENROUTE  # type: ignore[attr-defined]


def test_query_unknown_or_foreign_ids(queued_gateway: GatewayThread,
                                      connect: Callable[..., RawClient]) -> None:
    gw = queued_gateway
    mine, theirs = connect(gw), connect(gw)
    mine.bind()
    theirs.bind("other", "other")
    mid = mine.request(_submit()).message_id  # type: ignore[attr-defined]
    for message_id in ("999999", "not-an-id", mid):
        q = theirs.request(QuerySm(message_id=message_id, source_addr="4412345"))
        assert q.command_status == S.ESME_RINVMSGID, message_id
    cancel = theirs.request(CancelSm(message_id=mid, source_addr="4412345"))
    assert cancel.command_status != S.ESME_ROK
    replace = theirs.request(ReplaceSm(message_id=mid, short_message=b"hijack"))
    assert replace.command_status == S.ESME_RINVMSGID
    assert _stored(gw, mid).body == b"hello"  # type: ignore[attr-defined]


def test_hex_ids_round_trip_through_query(queued_gateway: GatewayThread,
                                          connect: Callable[..., RawClient]) -> None:
    gw = queued_gateway
    c = connect(gw)
    c.bind("hexy", "hexy")
    resp = c.request(_submit())
    mid = resp.message_id  # type: ignore[attr-defined]
    assert mid and len(mid) <= 20
    assert all(ch in "0123456789ABCDEF" for ch in mid), mid
    assert _stored(gw, str(int(mid, 16))) is not None
    q = c.request(QuerySm(message_id=mid, source_addr="4412345"))
    assert q.command_status == S.ESME_ROK
    assert q.message_id == mid  # type: ignore[attr-defined]
    assert q.message_state == MessageState.ENROUTE  # type: ignore[attr-defined]
    q = c.request(QuerySm(message_id=mid.lower(), source_addr="4412345"))
    assert q.command_status == S.ESME_ROK


# --- metrics ------------------------------------------------------------------------------


def _scrape(gw: GatewayThread) -> str:
    url = f"http://127.0.0.1:{gw.gateway.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200
        body: bytes = r.read()
    return body.decode()


def _sample(text: str, name: str, **labels: str) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    prefix = f"{name}{{{want}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return None


def test_metrics_endpoint(gateway: GatewayThread, connect: Callable[..., RawClient]) -> None:
    assert gateway.gateway.metrics_port > 0
    c = connect(gateway)
    c.bind()
    for _ in range(3):
        assert c.request(_submit()).command_status == S.ESME_ROK
    assert c.request(_submit(priority_flag=9)).command_status == S.ESME_RINVPRTFLG
    c.request(EnquireLink())
    text = _scrape(gateway)
    assert _sample(text, "smsc_pdus_in_total", command="SubmitSm") == 4
    assert _sample(text, "smsc_binds", tenant="demo") == 1
    assert _sample(text, "smsc_pdus_out_total", command="SubmitSmResp", status="ESME_ROK") == 3
    assert _sample(text, "smsc_pdus_out_total", command="SubmitSmResp",
                   status="ESME_RINVPRTFLG") == 1
    assert _sample(text, "smsc_submit_resp_latency_seconds_count") == 3
    assert "447700900123" not in text  # never a phone number in a label
    c.close()
    deadline = time.monotonic() + 5
    while _sample(_scrape(gateway), "smsc_binds", tenant="demo") not in (None, 0.0):
        assert time.monotonic() < deadline, "smsc_binds did not drop after the unbind"
        time.sleep(0.05)
    # anything but GET /metrics is a 404
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"http://127.0.0.1:{gateway.gateway.metrics_port}/x", timeout=5)
    assert info.value.code == 404
    info.value.close()


def test_bind_response_header(gateway: GatewayThread, connect: Callable[..., RawClient]) -> None:
    """A raw check of the wire: bind_transceiver_resp echoes the sequence number."""
    c = connect(gateway)
    body = b"demo\x00demo\x00\x00\x34\x00\x00\x00"
    c.sock.sendall(struct.pack(">IIII", 16 + len(body), CommandId.bind_transceiver, 0, 4242)
                   + body)
    resp = c.read_pdu()
    assert resp is not None
    assert (resp.command_id, resp.command_status, resp.sequence_number) == (
        CommandId.bind_transceiver_resp, 0, 4242)


# --- receipts to SMPP 3.3 and 3.4 binds ---------------------------------------------------


def _receipt_for(client: RawClient, interface_version: int) -> DeliverSm:
    """Bind with ``interface_version``, submit to a number no route covers, return the
    REJECTD receipt the gateway built for it."""
    bind = client.request(BindTransceiver(system_id="demo", password="demo",
                                          interface_version=interface_version))
    assert bind.command_status == S.ESME_ROK, bind
    resp = client.request(_submit(destination_addr="3312345678", registered_delivery=1))
    assert resp.command_status == S.ESME_ROK, resp
    for _ in range(50):  # bounded: the receipt may already be in ``delivered``
        receipts = [p for p in client.delivered if isinstance(p, DeliverSm)]
        if receipts:
            return receipts[0]
        pdu = client.read_pdu(READ_TIMEOUT)
        assert pdu is not None, "gateway closed the connection"
        if isinstance(pdu, DeliverSm):
            client.send_raw(encode_pdu(pdu.response()))
            return pdu
    raise AssertionError("no receipt")


def test_receipts_carry_tlvs_for_3_4_binds_and_text_only_for_3_3(
        gateway_factory: Callable[..., GatewayThread],
        connect: Callable[..., RawClient]) -> None:
    """Reference 2.1 policy: a 3.3 bind gets the receipt text without TLVs, a 3.4 bind gets
    receipted_message_id and message_state too; the same code path builds both."""
    gw = gateway_factory(tenants=(TenantConfig(system_id="demo", password="demo"),),
                         routes=())
    first = connect(gw)
    old = _receipt_for(first, 0x33)
    assert old.esm_class == 0x04 and old.tlvs == {}
    assert b"stat:REJECTD" in old.short_message
    # Receipts go to any receiver bind of the tenant: only the 3.4 bind may be left.
    assert first.request(Unbind()).command_status == S.ESME_ROK
    new = _receipt_for(connect(gw), 0x34)
    assert new.esm_class == 0x04 and b"stat:REJECTD" in new.short_message
    assert new.tlvs.get("message_state") == MessageState.REJECTED
    assert new.tlvs.get("receipted_message_id")
