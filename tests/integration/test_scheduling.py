"""Scheduling end to end: both doors, the bundled simulator as the operator, real sockets.

* a message scheduled 2 s ahead over SMPP (relative schedule_delivery_time, SMPP 3.4 section
  7.1.1) and over HTTP (``send_at``) reaches the simulator no earlier than due and within
  1 s after; until then it is ``scheduled`` (HTTP status, query_sm ENROUTE);
* 10,000 scheduled messages are released on time although the gateway is stopped and
  started again on the same store in between (in-process, bounded waits);
* cancel_sm (by id, and by address) and ``DELETE /v1/messages/{id}`` of a scheduled
  message: nothing is sent;
* replace_sm of a scheduled message, and a submit_sm with replace_if_present_flag: the new
  text is what the operator gets, once;
* a validity that ends before the message is due: ``expired`` and an EXPIRED receipt (SMPP),
  a ``message.failed`` webhook (HTTP);
* query_sm of a scheduled message: ENROUTE to a 3.4 bind, SCHEDULED to a v5.0 one.

The gateway runs in-process (``stack``); SMPP tenants are ``tests.rawclient`` clients.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from encoding.constants import CommandStatus, MessageState
from encoding.pdu import (
    BindTransceiver,
    CancelSm,
    DeliverSm,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    SubmitSm,
    encode_pdu,
)
from encoding.receipt import parse_receipt
from tests.conftest import GatewayThread
from tests.httpkit import SECRET, api_client, api_tenant, hook_receiver, message_body, post_json
from tests.integration.e2e_support import Stack, operator, operator_bound, sent_texts
from tests.rawclient import RawClient
from tests.waiting import wait_until

if TYPE_CHECKING:
    from tests.integration.e2e_support import SimThread

pytestmark = pytest.mark.timeout(120)

TOKEN = "tok_demo_0123456789abcdef0123456789abcdef"
DEST = "447700900123"


def _tenant() -> Any:
    return api_tenant("demo", TOKEN, password="demo")


def _start(stack: Stack) -> tuple[SimThread, GatewayThread]:
    sim = stack.sim()
    gw = stack.gateway([operator("sim", sim.port)], tenants=(_tenant(),))
    return sim, gw


@contextmanager
def _smpp(gw: GatewayThread) -> Iterator[RawClient]:
    c = RawClient(gw.port)
    try:
        c.bind("demo", "demo", expect_ok=True)
        yield c
    finally:
        c.close()


def _submit(c: RawClient, text: bytes, **fields: Any) -> str:
    fields.setdefault("registered_delivery", 0)
    resp = c.request(SubmitSm(source_addr_ton=1, source_addr_npi=1,
                              source_addr="447700900999", dest_addr_ton=1, dest_addr_npi=1,
                              destination_addr=DEST, short_message=text, **fields))
    assert resp.command_status == 0, resp
    return str(resp.message_id)  # type: ignore[attr-defined]


def _arrival(sim: SimThread, text: str, timeout: float) -> float:
    """When ``text`` was first seen at the simulator (polled every 5 ms)."""
    wait_until(lambda: text in sent_texts(sim.received()), timeout, f"{text!r} at the operator",
               interval=0.005)
    return time.time()


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def test_two_seconds_ahead_over_smpp_and_http_arrive_on_time(stack: Stack) -> None:
    sim, gw = _start(stack)
    with _smpp(gw) as c, api_client(gw.gateway.http_port, TOKEN) as client:
        before = time.time()
        mid = _submit(c, b"smpp later", schedule_delivery_time="000000000002000R")
        after = time.time()
        q = c.request(QuerySm(message_id=mid, source_addr_ton=1, source_addr_npi=1,
                              source_addr="447700900999"))
        assert isinstance(q, QuerySmResp) and q.message_state == MessageState.ENROUTE
        due = time.time() + 2.0
        r = post_json(client, message_body([f"+{DEST}"], "http later", originator="ACME",
                                           send_at=_rfc3339(due)))
        assert r.status_code == 200, r.text
        answered = r.json()["messages"][0]
        # The answer says it is held, and until when.
        assert answered["status"] == "scheduled" and answered["send_at"] is not None
        hid = answered["id"]
        shown = client.get(f"/v1/messages/{hid}").json()
        assert shown["status"] == "scheduled" and shown["send_at"] is not None
        assert client.get(f"/v1/messages/{mid}").json()["status"] == "scheduled"
        listed = client.get("/v1/messages", params={"status": "scheduled"}).json()
        assert {m["id"] for m in listed["data"]} == {mid, hid}
        smpp_at = _arrival(sim, "smpp later", 10.0)
        http_at = _arrival(sim, "http later", 10.0)
    assert before + 2.0 <= smpp_at <= after + 2.0 + 1.0, (smpp_at - before)
    assert due - 0.1 <= http_at <= due + 1.0, (http_at - due)  # send_at kept to 0.1 s


def _release_times(path: str) -> list[float]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute(
            "SELECT h.at - m.send_at FROM history h JOIN messages m ON m.id = h.message_id "
            "WHERE h.status = 'accepted'")]
    finally:
        conn.close()


def test_ten_thousand_released_on_time_across_a_restart(stack: Stack, tmp_path: Path) -> None:
    sim = stack.sim()
    ops = [operator("sim", sim.port, window=100)]
    tenants = (_tenant(),)
    gw = stack.gateway(ops, tenants=tenants)
    due = time.time() + 8.0
    numbers = [f"+4477009{i:05d}" for i in range(10_000)]
    with api_client(gw.gateway.http_port, TOKEN, timeout=60) as client:
        for half, at in ((numbers[:5000], due), (numbers[5000:], due + 1.0)):
            r = post_json(client, message_body(half, "batch", originator="ACME",
                                               send_at=_rfc3339(at)))
            assert r.status_code == 200, r.text[:500]
    assert gw.run(lambda: gw.gateway.scheduler.book.count()) == 10_000  # type: ignore[attr-defined]
    gw.stop()  # in the middle: nothing has left yet
    assert sent_texts(sim.received()) == []
    again = stack.gateway_factory(gw.config)
    stack.gateways.append(again)
    wait_until(lambda: operator_bound(again, "sim"), 10.0, "bound again")
    assert time.time() < due, "the restart took longer than the schedule allows"
    wait_until(lambda: len(sim.received()) >= 10_000, 60.0, "10,000 at the operator",
               interval=0.05)
    first_seen = time.time()
    assert first_seen >= due
    lags = _release_times(gw.config.store.path)
    assert len(lags) == 10_000
    assert min(lags) >= 0.0 and max(lags) <= 1.0, (min(lags), max(lags))
    assert len(sim.received()) == 10_000  # each once


def test_cancel_sm_and_delete_of_scheduled_messages(stack: Stack) -> None:
    sim, gw = _start(stack)
    with _smpp(gw) as c, api_client(gw.gateway.http_port, TOKEN) as client:
        mid = _submit(c, b"never smpp", schedule_delivery_time="000000000003000R")
        resp = c.request(CancelSm(message_id=mid, source_addr_ton=1, source_addr_npi=1,
                                  source_addr="447700900999"))
        assert resp.command_status == 0, resp
        q = c.request(QuerySm(message_id=mid, source_addr_ton=1, source_addr_npi=1,
                              source_addr="447700900999"))
        assert isinstance(q, QuerySmResp) and q.message_state == MessageState.DELETED
        r = post_json(client, message_body([f"+{DEST}"], "never http", originator="ACME",
                                           send_at=_rfc3339(time.time() + 3.0)))
        hid = r.json()["messages"][0]["id"]
        d = client.delete(f"/v1/messages/{hid}")
        assert d.status_code == 200 and d.json()["status"] == "cancelled", d.text
        assert client.delete(f"/v1/messages/{hid}").status_code == 409
        assert client.get(f"/v1/messages/{hid}").json()["status"] == "cancelled"
        # without a message_id: every one from source_addr to destination_addr (4.10.1)
        both = [_submit(c, t, schedule_delivery_time="000000000003000R")
                for t in (b"never one", b"never two")]
        resp = c.request(CancelSm(source_addr_ton=1, source_addr_npi=1,
                                  source_addr="447700900999", dest_addr_ton=1,
                                  dest_addr_npi=1, destination_addr=DEST))
        assert resp.command_status == 0, resp
        for one in both:
            assert client.get(f"/v1/messages/{one}").json()["status"] == "cancelled"
        marker = _submit(c, b"after them", schedule_delivery_time="000000000004000R")
        assert marker
        _arrival(sim, "after them", 10.0)
    assert sent_texts(sim.received()) == ["after them"]


def test_replace_sm_and_replace_if_present_send_the_new_text(stack: Stack) -> None:
    sim, gw = _start(stack)
    with _smpp(gw) as c:
        mid = _submit(c, b"old text", schedule_delivery_time="000000000002000R")
        resp = c.request(ReplaceSm(message_id=mid, source_addr_ton=1, source_addr_npi=1,
                                   source_addr="447700900999", short_message=b"new text"))
        assert resp.command_status == 0, resp
        first = _submit(c, b"first version", schedule_delivery_time="000000000002000R",
                        service_type="CMT")
        second = _submit(c, b"second version", schedule_delivery_time="000000000002000R",
                         service_type="CMT", replace_if_present_flag=1)
        assert first != second
        _arrival(sim, "new text", 10.0)
        _arrival(sim, "second version", 10.0)
        q = c.request(QuerySm(message_id=first, source_addr_ton=1, source_addr_npi=1,
                              source_addr="447700900999"))
        assert isinstance(q, QuerySmResp) and q.message_state == MessageState.DELETED
    assert sorted(sent_texts(sim.received())) == ["new text", "second version"]


def test_validity_ending_before_release_is_an_expired_receipt(stack: Stack) -> None:
    sim, gw = _start(stack)

    def hold_an_hour() -> None:  # a holding rule (quiet hours) past the validity
        gw.gateway.admission.hold_until = (  # type: ignore[method-assign]
            lambda message, tenant: time.time() + 3600)

    gw.run(hold_an_hour)
    with _smpp(gw) as c:
        mid = _submit(c, b"too late", validity_period="000000000001000R",
                      registered_delivery=1)
        deadline = time.monotonic() + 10.0
        while not c.delivered and time.monotonic() < deadline:
            pdu = c.read_pdu(timeout=max(0.01, deadline - time.monotonic()))
            assert pdu is not None
            if isinstance(pdu, DeliverSm):
                c.delivered.append(pdu)
            if not pdu.is_response:
                c.send_raw(encode_pdu(pdu.response()))
        [receipt] = [p for p in c.delivered if isinstance(p, DeliverSm)]
        parsed = parse_receipt(receipt.short_message)
        assert parsed is not None and parsed.stat == "EXPIRED" and parsed.id == mid
        q = c.request(QuerySm(message_id=mid, source_addr_ton=1, source_addr_npi=1,
                              source_addr="447700900999"))
        assert isinstance(q, QuerySmResp) and q.message_state == MessageState.EXPIRED
        assert q.command_status == CommandStatus.ESME_ROK
    assert sent_texts(sim.received()) == []


def test_http_validity_ending_first_is_expired_with_a_failed_webhook(stack: Stack) -> None:
    sim = stack.sim()
    with hook_receiver() as hooks:
        gw = stack.gateway([operator("sim", sim.port)], tenants=(api_tenant(
            "demo", TOKEN, password="demo", webhook_url=hooks.url("/tenant"),
            webhook_secret=SECRET),))

        def hold_an_hour() -> None:
            gw.gateway.admission.hold_until = (  # type: ignore[method-assign]
                lambda message, tenant: time.time() + 3600)

        gw.run(hold_an_hour)
        with api_client(gw.gateway.http_port, TOKEN) as client:
            r = post_json(client, message_body([f"+{DEST}"], "too late", originator="ACME",
                                               validity_s=1))
            assert r.status_code == 200, r.text
            mid = r.json()["messages"][0]["id"]
            assert client.get(f"/v1/messages/{mid}").json()["status"] == "scheduled"
            wait_until(lambda: hooks.received("/tenant"), 10.0, "the webhook")
            [event] = [h.json() for h in hooks.received("/tenant")]
            assert event["type"] == "message.failed" and event["data"]["id"] == mid
            shown = client.get(f"/v1/messages/{mid}").json()
            assert shown["status"] == "expired" and shown["error"]["code"] == "expired"
    assert sent_texts(sim.received()) == []


def test_query_sm_of_a_scheduled_message_for_a_v50_bind(stack: Stack) -> None:
    _, gw = _start(stack)
    c = RawClient(gw.port)
    try:
        resp = c.request(BindTransceiver(system_id="demo", password="demo",
                                         interface_version=0x50))
        assert resp.command_status == 0, resp
        mid = _submit(c, b"later", schedule_delivery_time="000000000100000R")
        q = c.request(QuerySm(message_id=mid, source_addr_ton=1, source_addr_npi=1,
                              source_addr="447700900999"))
        # SMPP 5.0 section 4.7.15: SCHEDULED (a 3.4 bind gets ENROUTE)
        assert isinstance(q, QuerySmResp) and q.message_state == MessageState.SCHEDULED
    finally:
        c.close()
