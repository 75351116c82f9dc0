"""The HTTP door end to end: JSON in, SMS at the bundled simulator, status back over HTTP.

The gateway runs in-process on its own loop thread (``gateway_factory``), the simulator plays
the operator on another (``e2e_support.Stack``), and the tests are HTTP clients (httpx) and
SMPP clients (``tests.rawclient``) on 127.0.0.1, as a tenant would be. Checked against the
contract (http-api.md):

* the seed's example body, on both paths: one accepted entry, the text at the operator, the
  status going accepted → sent → delivered, the events at the message's ``report_url``;
* a personalised request for 1,000 recipients (GSM-7 and UCS-2, one to three parts): results
  in request order with the right parts and encoding, every text at the operator exactly;
* one lifecycle for both doors: an SMPP message is seen over HTTP, an HTTP message answers
  ``query_sm``; another tenant sees neither (404, never 403);
* listing with cursors and filters, counts per request, cancel of a sent message (409);
* the tenant's ``tps`` as one budget for both doors (ESME_RTHROTTLED / 429 with headers);
* Idempotency-Key: replay, another body (409), concurrent repeats (one set of messages;
  repeats held deterministically in flight by holding the first request's commit);
* the listener's connections (TCP_NODELAY) and listing order across store epochs.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from config.simulator import FaultRule
from encoding.constants import CommandStatus, MessageState
from encoding.pdu import QuerySm, QuerySmResp, SubmitSm, SubmitSmResp
from encoding.text import gsm7_fits
from routing import Store
from tests.conftest import make_config
from tests.httpkit import (
    SECRET,
    SEED_REQUEST,
    api_client,
    api_tenant,
    hook_receiver,
    message_body,
    post_json,
    wait_message_status,
)
from tests.integration.e2e_support import Stack, operator, sent_texts, wait_until
from tests.rawclient import RawClient

if TYPE_CHECKING:
    from tests.conftest import GatewayThread

pytestmark = pytest.mark.timeout(90)

TOKEN = "tok_demo_0123456789abcdef0123456789abcdef"
OTHER_TOKEN = "tok_other_0123456789abcdef0123456789abcd"
PROBLEM = "application/problem+json"



def demo(**fields: Any) -> Any:
    fields.setdefault("password", "demo")
    return api_tenant("demo", TOKEN, **fields)


def other(**fields: Any) -> Any:
    fields.setdefault("password", "other")
    return api_tenant("other", OTHER_TOKEN, **fields)


def stored_messages(gw: GatewayThread) -> int:
    return gw.run(lambda: gw.gateway.store.count("messages"))


def accepted_ids(answer: dict[str, Any]) -> list[str]:
    return [m["id"] for m in answer["messages"] if m["status"] == "accepted"]


def wait_counts(client: httpx.Client, request_id: str, want: dict[str, int],
                timeout: float = 30.0) -> dict[str, Any]:
    """GET /v1/requests/{id} until its counts are ``want``."""
    seen: dict[str, Any] = {}

    def probe() -> bool:
        r = client.get(f"/v1/requests/{request_id}")
        assert r.status_code == 200, r.text
        seen.clear()
        seen.update(r.json())
        return bool(seen["counts"] == want)

    wait_until(probe, timeout, f"request {request_id} counts {want}", interval=0.1)
    return seen


def rfc3339(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert t.tzinfo is not None, f"no offset in {text!r}"
    return t


# --- the seed's request ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/messages", "/messages/v1/send"])
def test_seed_request_is_sent_delivered_and_reported(stack: Stack, path: str) -> None:
    with hook_receiver() as hooks:
        sim = stack.sim()
        gw = stack.gateway([operator("A", sim.port)], tenants=(
            demo(webhook_url=hooks.url("/tenant"), webhook_secret=SECRET),))
        body = SEED_REQUEST.replace("https://...", hooks.url("/report")).encode()
        with api_client(gw.gateway.http_port, TOKEN) as client:
            r = client.post(path, content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].startswith("application/json")
            assert "idempotency-replayed" not in r.headers
            answer = r.json()
            assert answer["status"] == "accepted"
            assert answer["request_id"].startswith("r_")
            rfc3339(answer["created_at"])
            assert len(answer["messages"]) == 1
            entry = answer["messages"][0]
            assert isinstance(entry["id"], str) and entry["id"]
            assert (entry["recipient"], entry["status"], entry["parts"], entry["encoding"]) == (
                "+1234567890", "accepted", 1, "gsm7")

            status = wait_message_status(client, entry["id"], "delivered")
            assert [e["status"] for e in status["events"]] == ["accepted", "sent", "delivered"]
            at = [rfc3339(e["at"]) for e in status["events"]]
            assert at == sorted(at)
            assert status["id"] == entry["id"]
            assert status["request_id"] == answer["request_id"]
            assert status["client_ref"] == "batch-7"
            assert (status["originator"], status["recipient"]) == ("SignOTP", "+1234567890")
            assert (status["parts"], status["encoding"], status["door"]) == (1, "gsm7", "http")
            assert status["operator"] == "A" and status["error"] is None
            assert status["sent_at"] is not None and status["done_at"] is not None

        received = sim.received()
        assert sent_texts(received) == ["Your verification code is 4821"]
        submit: Any = received[0]
        assert (submit.destination_addr, submit.source_addr) == ("1234567890", "SignOTP")
        assert submit.source_addr_ton == 5  # alphanumeric
        assert submit.registered_delivery & 3 == 1

        # The message's report_url gets its events; the tenant's webhook_url none of them.
        wait_until(lambda: len(hooks.received("/report")) >= 2, 15.0, "events at report_url")
        events = [h.json() for h in hooks.received("/report")]
        assert [e["type"] for e in events] == ["message.sent", "message.delivered"]
        for e in events:
            assert e["data"]["id"] == entry["id"]
            assert e["data"]["client_ref"] == "batch-7"
        assert all(h.headers.get("webhook-signature", "").startswith("v1,")
                   for h in hooks.received("/report"))
        assert hooks.received("/tenant") == []


# --- 1,000 personalised recipients -----------------------------------------------------------


def _personalised(i: int) -> tuple[str, dict[str, str]]:
    """Recipient ``i``'s number and vars: short or long (2-3 parts), GSM-7 or UCS-2."""
    kind = i % 4
    if kind == 0:
        name = f"Ann {i}"
    elif kind == 1:
        name = f"Дмитрий {i} 👋" if i % 8 == 1 else f"Zoë {i}"
    elif kind == 2:
        name = f"Bob {i} " + "the very long name " * (8 + i % 14)
    else:
        name = f"Юлия {i} " + "длинное имя " * (5 + i % 9)
    return f"+447700{i:06d}", {"name": name, "code": f"{i:04d}"}


def _expected(text: str) -> tuple[int, str]:
    """Parts and encoding of ``text`` as udh8 splits it (these texts have no GSM-7
    extension characters, and their long UCS-2 texts no surrogate pairs)."""
    if gsm7_fits(text):
        n = len(text)
        return (1 if n <= 160 else math.ceil(n / 153)), "gsm7"
    units = len(text.encode("utf-16-be")) // 2
    return (1 if units <= 70 else math.ceil(units / 67)), "ucs2"


def test_thousand_personalised_recipients_arrive_exactly(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port, window=50)], tenants=(demo(),))
    content = "Hello {{name}}, your code is {{ code }}."
    recipients = []
    expected: list[tuple[str, str, int, str]] = []  # number, text, parts, encoding
    for i in range(1000):
        number, values = _personalised(i)
        recipients.append({"to": number, "vars": values})
        text = f"Hello {values['name']}, your code is {values['code']}."
        expected.append((number, text, *_expected(text)))
    assert {e[2] for e in expected} == {1, 2, 3}
    assert {e[3] for e in expected} == {"gsm7", "ucs2"}

    with api_client(gw.gateway.http_port, TOKEN) as client:
        r = post_json(client, message_body(recipients, content, originator="ACME"))
        assert r.status_code == 200, r.text
        answer = r.json()
        got = [(m["recipient"], m["status"], m["parts"], m["encoding"])
               for m in answer["messages"]]
        assert got == [(n, "accepted", p, e) for n, _, p, e in expected]
        ids = accepted_ids(answer)
        assert len(set(ids)) == 1000
        counts = wait_counts(client, answer["request_id"], {"delivered": 1000}, 60.0)
        assert counts["total"] == 1000

    by_destination: dict[str, list[Any]] = {}
    for pdu in sim.received():
        by_destination.setdefault(getattr(pdu, "destination_addr", ""), []).append(pdu)
    assert len(by_destination) == 1000
    wrong = []
    for number, text, parts, _ in expected:
        pdus = by_destination.get(number.lstrip("+"), [])
        if sent_texts(pdus) != [text] or len(pdus) != parts:
            wrong.append((number, parts, len(pdus), sent_texts(pdus)[:1], text))
    assert not wrong, f"{len(wrong)} texts differ at the operator, e.g. {wrong[:3]}"


# --- one lifecycle for both doors ------------------------------------------------------------


def _query(client: RawClient, message_id: str) -> QuerySmResp | int:
    resp = client.request(QuerySm(message_id=message_id, source_addr_ton=1,
                                  source_addr_npi=1, source_addr="447700900999"))
    if resp.command_status:
        return int(resp.command_status)
    assert isinstance(resp, QuerySmResp), resp
    return resp


def test_smpp_and_http_see_the_same_messages_and_other_tenants_none(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)], tenants=(demo(), other()))
    port = gw.gateway.http_port
    smpp = RawClient(gw.port)
    stranger = RawClient(gw.port)
    try:
        smpp.bind("demo", "demo", expect_ok=True)
        stranger.bind("other", "other", expect_ok=True)
        resp = smpp.request(SubmitSm(
            source_addr_ton=1, source_addr_npi=1, source_addr="447700900999",
            dest_addr_ton=1, dest_addr_npi=1, destination_addr="447700900123",
            short_message=b"over smpp", registered_delivery=1))
        assert resp.command_status == 0 and isinstance(resp, SubmitSmResp), resp
        smpp_id = resp.message_id

        with api_client(port, TOKEN) as client, api_client(port, OTHER_TOKEN) as theirs:
            seen = wait_message_status(client, smpp_id, "delivered")
            assert (seen["door"], seen["recipient"], seen["request_id"]) == (
                "smpp", "+447700900123", None)
            assert [e["status"] for e in seen["events"]] == ["accepted", "sent", "delivered"]

            r = post_json(client, message_body(["+447700900124"], "over http",
                                               originator="ACME"))
            assert r.status_code == 200, r.text
            answer = r.json()
            http_id = answer["messages"][0]["id"]
            wait_message_status(client, http_id, "delivered")
            state = _query(smpp, http_id)
            assert not isinstance(state, int), f"query_sm refused: 0x{state:08X}"
            assert state.message_state == MessageState.DELIVERED
            assert state.final_date != ""
            state = _query(smpp, smpp_id)
            assert not isinstance(state, int) and state.message_state == MessageState.DELIVERED

            # Another tenant: neither message exists for it, on either door.
            for mid in (smpp_id, http_id):
                for method in ("GET", "DELETE"):
                    r = theirs.request(method, f"/v1/messages/{mid}")
                    assert r.status_code == 404, (method, mid, r.status_code, r.text)
                    assert r.headers["content-type"].startswith(PROBLEM)
                    assert r.json()["code"] == "not_found"
                assert _query(stranger, mid) == CommandStatus.ESME_RINVMSGID
            assert theirs.get(f"/v1/requests/{answer['request_id']}").status_code == 404
            listed = theirs.get("/v1/messages").json()["data"]
            assert not {m["id"] for m in listed} & {smpp_id, http_id}
            assert theirs.get("/v1/messages",
                              params={"request_id": answer["request_id"]}).json() == {
                "data": [], "next_cursor": None}
    finally:
        smpp.close()
        stranger.close()


# --- listing, counts, cancel -----------------------------------------------------------------


def _pages(client: httpx.Client, params: dict[str, Any], limit: int,
           between: Callable[[], None] | None = None) -> list[list[dict[str, Any]]]:
    """Every page of GET /v1/messages, following next_cursor (bounded)."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    for _ in range(1000):
        q = dict(params, limit=limit)
        if cursor is not None:
            q["cursor"] = cursor
        r = client.get("/v1/messages", params=q)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["data"]) <= limit
        pages.append(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        if between is not None:
            between()
    raise AssertionError("more than 1000 pages")


def test_listing_pages_filters_counts_and_cancel(stack: Stack) -> None:
    # destinations 4477001... are undeliverable at this operator, the rest are delivered
    sim = stack.sim(rules=(FaultRule(prefix="4477001", fault="undeliverable"),))
    gw = stack.gateway([operator("A", sim.port)], tenants=(demo(),))
    delivered = [f"+447700000{i:03d}" for i in range(30)]
    undeliverable = [f"+447700100{i:03d}" for i in range(7)]
    recipients = [n for pair in zip(delivered, undeliverable, strict=False) for n in pair]
    recipients += [*delivered[len(undeliverable):], "not a number"]
    with api_client(gw.gateway.http_port, TOKEN) as client:
        r = post_json(client, message_body(recipients, "listed", originator="ACME"))
        assert r.status_code == 200, r.text
        answer = r.json()
        rid = answer["request_id"]
        assert answer["messages"][-1]["status"] == "rejected"
        ids = accepted_ids(answer)
        assert len(ids) == 37
        counts = wait_counts(client, rid, {"delivered": 30, "undeliverable": 7})
        assert counts == {"request_id": rid, "total": 37,
                          "counts": {"delivered": 30, "undeliverable": 7}}

        # Pages of 8 until done: every message once, newest first.
        pages = _pages(client, {"request_id": rid}, 8)
        listed = [m["id"] for page in pages for m in page]
        assert len(listed) == len(set(listed)), "a message listed twice"
        assert set(listed) == set(ids)
        assert [len(p) for p in pages[:-1]] == [8] * (len(pages) - 1)
        assert all(m["request_id"] == rid for page in pages for m in page)

        # Filters: status, recipient (with or without '+').
        only = _pages(client, {"request_id": rid, "status": "undeliverable"}, 5)
        got = sorted(m["recipient"] for page in only for m in page)
        assert got == sorted(undeliverable)
        assert all(m["status"] == "undeliverable" and m["error"] is not None
                   for page in only for m in page)
        for shown in (delivered[3], delivered[3].lstrip("+")):
            one = client.get("/v1/messages", params={"recipient": shown}).json()
            assert [m["recipient"] for m in one["data"]] == [delivered[3]]
            assert one["next_cursor"] is None
        assert client.get("/v1/messages", params={"request_id": rid, "status": "accepted"}
                          ).json()["data"] == []

        # Stable under inserts: new messages while paging do not shift the pages.
        before = {m["id"] for page in _pages(client, {}, 100) for m in page}
        sent_meanwhile: list[str] = []

        def insert() -> None:
            r = post_json(client, message_body(["+447700000999"], "meanwhile",
                                               originator="ACME"))
            assert r.status_code == 200, r.text
            sent_meanwhile.extend(accepted_ids(r.json()))

        paged = [m["id"] for page in _pages(client, {}, 6, between=insert) for m in page]
        assert len(paged) == len(set(paged))
        assert set(paged) == before
        assert sent_meanwhile and not set(sent_meanwhile) & set(paged)

        # Cancel: a message already handed to the operator cannot be.
        r = client.delete(f"/v1/messages/{ids[0]}")
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["status"] == 409
        assert client.get(f"/v1/messages/{ids[0]}").json()["status"] == "delivered"


def test_cancel_of_a_queued_message(stack: Stack) -> None:
    """An operator that is down keeps messages queued: DELETE cancels them (200), once."""
    sim = stack.sim()
    sim.stop()  # the operator's port refuses connections: the messages wait in the queue
    gw = stack.gateway([operator("A", sim.port)], tenants=(demo(),), wait_bound=False)
    with api_client(gw.gateway.http_port, TOKEN) as client:
        r = post_json(client, message_body(["+447700900100", "+447700900101"], "queued",
                                           originator="ACME"))
        assert r.status_code == 200, r.text
        first, second = accepted_ids(r.json())
        assert client.get(f"/v1/messages/{first}").json()["status"] == "accepted"
        r = client.delete(f"/v1/messages/{first}")
        assert r.status_code == 200, r.text
        assert r.json() == {"id": first, "status": "cancelled"}
        assert client.get(f"/v1/messages/{first}").json()["status"] == "cancelled"
        again = client.delete(f"/v1/messages/{first}")
        assert again.status_code == 409, again.text
        sim.start()
        wait_message_status(client, second, "delivered")
        assert client.get(f"/v1/messages/{first}").json()["status"] == "cancelled"
    assert sent_texts(sim.received()) == ["queued"]


# --- one tps budget for both doors -----------------------------------------------------------


def _check_429(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == "rate_limited"
    assert int(r.headers["Retry-After"]) >= 1
    assert r.headers.get("RateLimit-Policy") and r.headers.get("RateLimit")


def _smpp_submit(client: RawClient, n: int) -> int:
    resp = client.request(SubmitSm(source_addr="ACME", source_addr_ton=5,
                                   destination_addr=f"447700800{n:03d}", dest_addr_ton=1,
                                   dest_addr_npi=1, short_message=b"smpp"))
    return int(resp.command_status)


def test_http_bulk_borrows_the_tps_budget_of_smpp_too(stack: Stack) -> None:
    sim = stack.sim()
    # 5 messages/s: a request for 500 borrows 100 s of budget.
    gw = stack.gateway([operator("A", sim.port)], tenants=(demo(tps=5.0), other()))
    smpp = RawClient(gw.port)
    try:
        smpp.bind("demo", "demo", expect_ok=True)
        port = gw.gateway.http_port
        with api_client(port, TOKEN) as client, api_client(port, OTHER_TOKEN) as theirs:
            bulk = [f"+447700{i:06d}" for i in range(500)]
            r = post_json(client, message_body(bulk, "bulk", originator="ACME"))
            assert r.status_code == 200, r.text
            assert len(accepted_ids(r.json())) == 500
            assert _smpp_submit(smpp, 1) == CommandStatus.ESME_RTHROTTLED
            stored = stored_messages(gw)
            r = post_json(client, message_body(["+447700900100"], "one more",
                                               originator="ACME"))
            _check_429(r)
            assert int(r.headers["Retry-After"]) > 10  # the debt is ~100 s
            assert stored_messages(gw) == stored, "a refused request stored messages"
            # Another tenant has its own budget.
            ok = post_json(theirs, message_body(["+447700900100"], "theirs"))
            assert ok.status_code == 200, ok.text
    finally:
        smpp.close()


def test_smpp_spends_the_tps_budget_of_http_too(stack: Stack) -> None:
    sim = stack.sim()
    # one token, refilled in 100 s: the first submit takes it
    gw = stack.gateway([operator("A", sim.port)], tenants=(demo(tps=0.01),))
    smpp = RawClient(gw.port)
    try:
        smpp.bind("demo", "demo", expect_ok=True)
        assert _smpp_submit(smpp, 1) == CommandStatus.ESME_ROK
        with api_client(gw.gateway.http_port, TOKEN) as client:
            _check_429(post_json(client, message_body(["+447700900100"], "no budget",
                                                      originator="ACME")))
        assert _smpp_submit(smpp, 2) == CommandStatus.ESME_RTHROTTLED
    finally:
        smpp.close()


# --- idempotency -----------------------------------------------------------------------------


def test_idempotency_key_replays_and_refuses_another_body(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)], tenants=(demo(), other()))
    port = gw.gateway.http_port
    body = message_body([f"+44770090{i:04d}" for i in range(5)], "once", originator="ACME")
    key = {"Idempotency-Key": "order-1234"}
    with api_client(port, TOKEN) as client, api_client(port, OTHER_TOKEN) as theirs:
        first = post_json(client, body, headers=key)
        assert first.status_code == 200, first.text
        assert "idempotency-replayed" not in first.headers
        assert stored_messages(gw) == 5

        again = post_json(client, body, headers=key, path="/messages/v1/send")
        assert again.status_code == 200, again.text
        assert again.headers.get("Idempotency-Replayed") == "true"
        assert again.content == first.content
        assert stored_messages(gw) == 5

        changed = post_json(client, message_body(["+447700900000"], "twice",
                                                 originator="ACME"), headers=key)
        assert changed.status_code == 409, changed.text
        assert changed.headers["content-type"].startswith(PROBLEM)
        assert changed.json()["status"] == 409
        assert stored_messages(gw) == 5

        # Keys are per tenant: the same key from another tenant is another request.
        theirs_first = post_json(theirs, body, headers=key)
        assert theirs_first.status_code == 200, theirs_first.text
        assert "idempotency-replayed" not in theirs_first.headers
        assert theirs_first.json()["request_id"] != first.json()["request_id"]
        assert stored_messages(gw) == 10

        rid = first.json()["request_id"]
        wait_counts(client, rid, {"delivered": 5})
    texts = sent_texts(sim.received())
    assert texts.count("once") == 10 and "twice" not in texts


def _concurrently(port: int, bodies: list[bytes], key: str) -> list[httpx.Response]:
    """POST ``bodies`` at once (one thread and connection each) with the same key."""
    barrier = threading.Barrier(len(bodies), timeout=10)
    out: list[httpx.Response | BaseException | None] = [None] * len(bodies)

    def one(i: int) -> None:
        try:
            with api_client(port, TOKEN) as client:
                client.get("/health")  # connected before the barrier
                barrier.wait()
                out[i] = client.post("/v1/messages", content=bodies[i], headers={
                    "Content-Type": "application/json", "Idempotency-Key": key})
        except BaseException as exc:
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return _finished(threads, out)


def _finished(threads: list[threading.Thread], out: list[Any]) -> list[httpx.Response]:
    """The responses of joined request threads (each thread put one, or what it raised)."""
    assert all(not t.is_alive() for t in threads), "a request did not finish"
    responses = []
    for r in out:
        assert isinstance(r, httpx.Response), r
        responses.append(r)
    return responses


def _big_body(text: str) -> bytes:
    """A request large enough that repeats sent with it arrive while it is being stored."""
    return json.dumps(message_body([f"+447700{i:06d}" for i in range(CONCURRENT)], text,
                                   originator="ACME")).encode()


CONCURRENT = 5000
_KEYERROR = ("sending.SendService.send: a repeat waiting on the first request reads "
             "self._fingerprints[slot] after the first one's finally deleted it: KeyError, "
             "answered 500 internal_error")


def test_concurrent_repeats_store_one_set_of_messages(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)], tenants=(demo(),))
    responses = _concurrently(gw.gateway.http_port, [_big_body("concurrent")] * 4, "same-key")
    ok = [r for r in responses if r.status_code == 200]
    assert ok, [r.text[:200] for r in responses]
    assert len({r.content for r in ok}) == 1, "repeats got different answers"
    assert stored_messages(gw) == CONCURRENT
    # whatever the repeats got, a later one replays the first answer
    with api_client(gw.gateway.http_port, TOKEN) as client:
        later = client.post("/v1/messages", content=_big_body("concurrent"), headers={
            "Content-Type": "application/json", "Idempotency-Key": "same-key"})
    assert later.status_code == 200 and later.content == ok[0].content
    assert later.headers.get("Idempotency-Replayed") == "true"
    assert stored_messages(gw) == CONCURRENT


class _HeldCommit:
    """Requests that reach the send service are counted, and the first commit of accepted
    messages is held until ``release()``: repeats sent meanwhile find the first request in
    flight, deterministically (no race with its commit)."""

    def __init__(self, gw: GatewayThread) -> None:
        self.gw = gw
        self.entered = 0
        self._release: asyncio.Event | None = None
        gw.run(self._install)

    def _install(self) -> None:
        sending = self.gw.gateway.sending
        admission = sending.admission
        send, accept = sending.send, admission.accept
        self._release = release = asyncio.Event()
        loop = asyncio.get_running_loop()

        async def counted_send(*args: Any) -> Any:
            self.entered += 1
            return await send(*args)

        def held_accept(*args: Any) -> Any:
            inner = accept(*args)
            outer: asyncio.Future[None] = loop.create_future()

            async def later() -> None:
                await release.wait()
                try:
                    await inner  # type: ignore[misc]
                except Exception as exc:
                    outer.set_exception(exc)
                else:
                    outer.set_result(None)

            self._tasks.add(loop.create_task(later()))
            return outer

        self._tasks: set[asyncio.Task[None]] = set()
        sending.send = counted_send  # type: ignore[method-assign,assignment]
        admission.accept = held_accept  # type: ignore[method-assign,assignment]

    def release(self) -> None:
        def go() -> None:
            assert self._release is not None
            self._release.set()
        self.gw.run(go)


def _held_concurrently(gw: GatewayThread, bodies: list[bytes], key: str
                       ) -> list[httpx.Response]:
    held = _HeldCommit(gw)
    out: list[httpx.Response | BaseException | None] = [None] * len(bodies)
    port = gw.gateway.http_port

    def one(i: int) -> None:
        try:
            with api_client(port, TOKEN) as client:
                out[i] = client.post("/v1/messages", content=bodies[i], headers={
                    "Content-Type": "application/json", "Idempotency-Key": key})
        except BaseException as exc:
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: gw.run(lambda: held.entered) == len(bodies), 10.0,
                   "every request at the send service")
    finally:
        held.release()
        for t in threads:
            t.join(timeout=30)
    return _finished(threads, out)


def _small_body(text: str) -> bytes:
    return json.dumps(message_body([f"+447700{i:06d}" for i in range(10)], text,
                                   originator="ACME")).encode()


def test_concurrent_repeats_all_get_the_first_answer(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)], tenants=(demo(),))
    responses = _held_concurrently(gw, [_small_body("concurrent")] * 4, "same-key")
    assert [r.status_code for r in responses] == [200] * 4, [
        (r.status_code, r.text[:120]) for r in responses]
    assert len({r.content for r in responses}) == 1, "repeats got different answers"
    originals = [r for r in responses if "idempotency-replayed" not in r.headers]
    assert len(originals) == 1
    assert all(r.headers.get("Idempotency-Replayed") == "true"
               for r in responses if r is not originals[0])
    assert stored_messages(gw) == 10


def test_concurrent_requests_with_another_body_get_409(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)], tenants=(demo(),))
    bodies = [_small_body(f"body {n}") for n in range(4)]
    responses = _held_concurrently(gw, bodies, "shared-key")
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409], [
        (r.status_code, r.text[:120]) for r in responses]
    assert stored_messages(gw) == 10


# --- the HTTP listener's sockets -------------------------------------------------------------


def test_http_connections_have_tcp_nodelay(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)], tenants=(demo(),))
    with api_client(gw.gateway.http_port, TOKEN) as client:
        assert client.get("/health").status_code == 200

        def flags() -> list[int]:
            server: Any = gw.gateway.http._server  # the uvicorn.Server
            return [conn.transport.get_extra_info("socket").getsockopt(
                        socket.IPPROTO_TCP, socket.TCP_NODELAY)
                    for conn in server.server_state.connections]

        seen = gw.run(flags)
    assert seen, "no connection seen"
    assert all(seen), f"TCP_NODELAY off on the server side of {seen.count(0)} connections"


# --- ids across restarts ---------------------------------------------------------------------


def test_listing_is_newest_first_across_store_epochs(
        tmp_path: Path, gateway_factory: Callable[..., GatewayThread]) -> None:
    for _ in range(8):  # as if the gateway had been restarted 8 times
        store = Store(tmp_path / "smsc.db")
        store.open()
        store.close()
    config = make_config(tmp_path, tenants=(demo(),))
    pages: list[list[str]] = []
    first_gw = gateway_factory(config)  # the 9th opening
    with api_client(first_gw.gateway.http_port, TOKEN) as client:
        r = post_json(client, message_body(["+447700900100", "+447700900101"], "older"))
        older = accepted_ids(r.json())
    first_gw.stop()
    gw = gateway_factory(config)  # the 10th
    with api_client(gw.gateway.http_port, TOKEN) as client:
        r = post_json(client, message_body(["+447700900102"], "newer"))
        newer = accepted_ids(r.json())
        listed = [m["id"] for m in client.get("/v1/messages").json()["data"]]
        assert listed == [*newer, *reversed(older)], (listed, newer, older)

        def insert() -> None:
            r = post_json(client, message_body(["+447700900103"], "meanwhile"))
            pages.append(accepted_ids(r.json()))

        paged = [m["id"] for page in _pages(client, {}, 1, between=insert) for m in page]
    inserted = {i for ids in pages for i in ids}
    assert not inserted & set(paged), "a message sent while paging appeared in the pages"
