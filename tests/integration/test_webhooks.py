"""End to end, events as webhooks: gateway → bundled simulator as operator → signed POSTs.

Tenants send over HTTP (httpx) or SMPP (python-smpplib); the bundled simulator plays the
operator (immediate receipts, MO injected with ``inject_mo``); a ``WebhookReceiver`` on
127.0.0.1 plays each endpoint and answers as the test programs it. Every event is checked
with an independent verifier, ``standardwebhooks.Webhook(secret).verify``, and the
contract's promises are checked from the endpoint's side (http-api.md, "Events — webhooks"):
``message.sent`` then ``message.delivered`` (or ``message.failed``) per message, with the ids
the send returned; both secrets while rotating; ``message.inbound`` for MO, on the webhook
and the receiver bind alike; the same ``webhook-id`` on every retry and nothing lost across
5xx answers; a dead endpoint's events kept as failed, listed, and sent again on request; a
restart (events waiting, or in flight) losing nothing; one tenant's hanging endpoint holding
back no other tenant, nor its own or anyone's SMPP traffic; ``report_url`` instead of
``webhook_url``. Retry schedules are short (``[http] webhook_retry_s``), so each test takes
about a second. The xfail tests name what ``GET /v1/events`` gets wrong.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from config import HttpConfig, OperatorConfig, TenantConfig
from smsc.http import hash_token
from tests.integration.e2e_support import (
    DEST,
    SimThread,
    Stack,
    gateway_config,
    gateway_idle,
    operator,
    operator_bound,
    smpplib_tenant,
    wait_until,
)
from tests.webhook_receiver import CLOSE, HANG, Received, WebhookReceiver

if TYPE_CHECKING:
    from tests.conftest import GatewayThread

pytestmark = pytest.mark.timeout(90)

OWNED = "447900000001"  # numbers = ("4479",)
HANDSET = "447700900555"
RECIPIENTS = ("+447700900101", "+447700900102", "+447700900103")
FAST = {"webhook_retry_s": (0.05, 0.1), "webhook_retry_for_s": 30.0, "webhook_timeout_s": 2.0}


# --- the pieces ------------------------------------------------------------------------------


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class Hooked(msgspec.Struct, kw_only=True):
    """A tenant with an API token and a webhook secret (or two while rotating)."""

    config: TenantConfig
    token: str
    secrets: tuple[str, ...]


def hooked_tenant(system_id: str, url: str, *, password: str | None = None,
                  two_secrets: bool = False, **fields: Any) -> Hooked:
    token = "sk_test_" + secrets.token_urlsafe(24)
    keys = (new_secret(), new_secret()) if two_secrets else (new_secret(),)
    config = TenantConfig(system_id=system_id, password=password,
                          api_keys=(hash_token(token),), webhook_url=url,
                          webhook_secret=keys if two_secrets else keys[0], **fields)
    return Hooked(config=config, token=token, secrets=keys)


class Rig:
    """A test's stack: simulators, gateways (through ``Stack``), webhook receivers, HTTP
    clients; ``close()`` stops them all (clients, gateways, simulators, receivers)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.receivers: list[WebhookReceiver] = []
        self.clients: list[httpx.Client] = []

    def receiver(self) -> WebhookReceiver:
        r = WebhookReceiver()
        self.receivers.append(r)
        return r

    def sim(self) -> SimThread:
        return self.stack.sim()

    def gateway(self, sim: SimThread, tenants: tuple[TenantConfig, ...], **http: Any
                ) -> GatewayThread:
        """A gateway on the store under tmp_path (the same one each time), its [http]
        section FAST changed by ``http``, bound to ``sim``."""
        ops: tuple[OperatorConfig, ...] = (operator("A", sim.port),)
        base = gateway_config(self.stack.tmp_path, ops, tenants=tenants)
        fields = {**FAST, **http}
        base = msgspec.structs.replace(base, http=HttpConfig(host="127.0.0.1", port=0,
                                                             **fields))
        gw = self.stack.gateway_factory(base)
        self.stack.gateways.append(gw)
        wait_until(lambda: operator_bound(gw, "A"), 10.0, "gateway bound to the simulator")
        return gw

    def api(self, gw: GatewayThread, tenant: Hooked) -> httpx.Client:
        c = httpx.Client(base_url=f"http://127.0.0.1:{gw.gateway.http_port}",
                         headers={"Authorization": f"Bearer {tenant.token}"}, timeout=10.0,
                         trust_env=False)
        self.clients.append(c)
        return c

    def close(self) -> None:
        try:
            for c in self.clients:
                c.close()
            self.stack.close()
        finally:
            for r in self.receivers:
                r.close()


@pytest.fixture
def rig(tmp_path: Path, gateway_factory: Callable[..., GatewayThread]) -> Iterator[Rig]:
    r = Rig(Stack(tmp_path, gateway_factory))
    yield r
    r.close()


def send_request(client: httpx.Client, recipients: tuple[str, ...] = RECIPIENTS, *,
                 content: str = "Your code is 4821", **fields: Any) -> dict[str, Any]:
    """POST /v1/messages with one message, every recipient accepted; the answer."""
    body = {"messages": [{"originator": "SignOTP", "recipients": list(recipients),
                          "content": content, **fields}]}
    resp = client.post("/v1/messages", json=body)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert isinstance(answer, dict)
    results = answer["messages"]
    assert [m["status"] for m in results] == ["accepted"] * len(recipients), results
    return answer


def send(client: httpx.Client, recipients: tuple[str, ...] = RECIPIENTS, **fields: Any
         ) -> list[str]:
    """The ids ``send_request`` was given, in recipient order."""
    return [str(m["id"]) for m in send_request(client, recipients, **fields)["messages"]]


def verified(requests: list[Received], secret: str) -> list[dict[str, Any]]:
    """Each request's envelope, after ``standardwebhooks`` verified its signature."""
    hook = Webhook(secret)
    out = []
    for r in requests:
        payload = hook.verify(r.body, r.headers)
        assert isinstance(payload, dict), payload
        out.append(payload)
    return out


def by_message(requests: list[Received]) -> dict[str, list[tuple[str, Received]]]:
    """Message id -> [(event type, request)] in arrival order (message events only)."""
    out: dict[str, list[tuple[str, Received]]] = {}
    for r in requests:
        env = r.json()
        data = env["data"]
        assert isinstance(data, dict)
        if env["type"] != "message.inbound":
            out.setdefault(str(data["id"]), []).append((str(env["type"]), r))
    return out


def check_sent_then_delivered(requests: list[Received], ids: list[str]) -> None:
    """For each id: one ``message.sent`` answered 2xx, then ``message.delivered`` answered
    2xx, and no ``message.delivered`` attempt before the ``message.sent`` was answered."""
    found = by_message(requests)
    assert set(found) == set(ids), (sorted(found), ids)
    for mid in ids:
        events = found[mid]
        ok = [(kind, r) for kind, r in events if r.ok]
        assert [kind for kind, _ in ok] == ["message.sent", "message.delivered"], (mid, events)
        sent_ok = ok[0][1]
        first_delivered = next(r for kind, r in events if kind == "message.delivered")
        assert first_delivered.n > sent_ok.n, f"{mid}: delivered tried before sent was taken"


def failed_events(client: httpx.Client) -> list[dict[str, Any]]:
    resp = client.get("/v1/events", params={"state": "failed"})
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert isinstance(data, list)
    return data


def wait_failed(client: httpx.Client, count: int, timeout: float = 15.0
                ) -> list[dict[str, Any]]:
    """Until ``count`` events are listed as failed; the list."""
    found: list[dict[str, Any]] = []

    def probe() -> bool:
        found[:] = failed_events(client)
        return len(found) >= count

    wait_until(probe, timeout, f"{count} events kept as failed")
    return found


def store_events(gw: GatewayThread) -> int:
    return gw.run(lambda: gw.gateway.store.count("events"))


def wait_idle(gw: GatewayThread) -> None:
    """No message waiting for the operator and no event (pending or failed) in the store."""
    wait_until(lambda: gateway_idle(gw), 10.0, "gateway idle, event store empty")


# --- receipts as signed webhooks -------------------------------------------------------------


def test_http_and_smpp_sends_give_signed_sent_then_delivered(rig: Rig) -> None:
    hook = rig.receiver()
    acme = hooked_tenant("acme", hook.url, password="acmepw")
    sim = rig.sim()
    gw = rig.gateway(sim, (acme.config,))
    client = rig.api(gw, acme)
    answer = send_request(client, client_ref="batch-7")
    ids = [str(m["id"]) for m in answer["messages"]]
    with smpplib_tenant(gw.port, system_id="acme", password="acmepw") as smpp:
        seq = smpp.submit(b"over SMPP, receipt wanted", registered_delivery=1)
        [smpp_id] = smpp.ids([seq])
        # every channel the tenant has gets every event: its receiver bind still gets the
        # receipts (of the HTTP sends too) as deliver_sm
        every = [*ids, smpp_id]
        smpp.wait_receipts(len(every), 15.0)
        assert sorted(r.receipted_message_id for r in smpp.receipts()) == sorted(every)
    got = hook.wait_ids(2 * len(every), 15.0)
    wait_idle(gw)
    envelopes = verified(got, acme.secrets[0])
    check_sent_then_delivered(got, every)
    assert {r.webhook_id for r in got} == {r.webhook_id for r in hook.delivered()}
    for env, r in zip(envelopes, got, strict=True):
        assert set(env) == {"type", "timestamp", "data"}
        assert datetime.fromisoformat(env["timestamp"]).tzinfo is not None
        assert r.headers["content-type"].startswith("application/json")
        assert r.path == "/hook" and r.method == "POST"
        data = env["data"]
        assert data["status"] == ("sent" if env["type"] == "message.sent" else "delivered")
        assert data["operator"] == "A" and data["parts"] == 1 and data["encoding"] == "gsm7"
        if data["id"] != smpp_id:
            assert data["recipient"] in RECIPIENTS and data["originator"] == "SignOTP"
            assert data["client_ref"] == "batch-7"
            assert data["request_id"] == answer["request_id"]
        else:
            assert data["recipient"] == "+" + DEST
        # the same message as GET /v1/messages/{id} shows it
        shown = client.get(f"/v1/messages/{data['id']}").json()
        common = ("id", "recipient", "originator", "parts", "encoding", "operator",
                  "request_id", "client_ref")
        assert {k: data.get(k) for k in common} == {k: shown[k] for k in common}
    assert len({r.webhook_id for r in got}) == len(got) == 2 * len(every)  # unique per event
    assert gw.gateway.webhooks.gave_up == 0


def test_an_undelivered_message_gives_message_failed_with_its_error(rig: Rig) -> None:
    hook = rig.receiver()
    acme = hooked_tenant("acme", hook.url, id_format="hex")  # data.id as the tenant sees it
    sim = rig.stack.sim(final_states={"UNDELIV": 1.0})
    gw = rig.gateway(sim, (acme.config,))
    [mid] = send(rig.api(gw, acme), RECIPIENTS[:1])
    got = hook.wait_ids(2, 15.0)
    wait_idle(gw)
    sent, final = verified(got, acme.secrets[0])
    assert (sent["type"], final["type"]) == ("message.sent", "message.failed")
    assert sent["data"]["id"] == final["data"]["id"] == mid
    assert mid == mid.upper() and int(mid, 16) > 0
    assert final["data"]["status"] == "undeliverable"
    assert final["data"]["error"]["code"] == "undeliverable"


def test_two_secrets_each_alone_verifies(rig: Rig) -> None:
    hook = rig.receiver()
    acme = hooked_tenant("acme", hook.url, two_secrets=True)
    sim = rig.sim()
    gw = rig.gateway(sim, (acme.config,))
    ids = send(rig.api(gw, acme), RECIPIENTS[:1])
    got = hook.wait_ids(2, 15.0)
    old, new = acme.secrets
    assert verified(got, old) == verified(got, new)
    for r in got:
        assert len(r.headers["webhook-signature"].split(" ")) == 2
        with pytest.raises(WebhookVerificationError):
            Webhook(new_secret()).verify(r.body, r.headers)
    check_sent_then_delivered(got, ids)


# --- inbound ---------------------------------------------------------------------------------


def test_inbound_message_arrives_as_message_inbound(rig: Rig) -> None:
    hook = rig.receiver()
    acme = hooked_tenant("acme", hook.url, numbers=("4479",))
    sim = rig.sim()
    gw = rig.gateway(sim, (acme.config,))
    sim.inject_mo(OWNED, HANDSET, "Hello from the handset")
    long_text = "".join(f"long MO line {i:02d}, reassembled. " for i in range(8))
    assert sim.inject_mo(OWNED, HANDSET, long_text) >= 2
    got = hook.wait_ids(2, 15.0)
    envelopes = verified(got, acme.secrets[0])
    assert [e["type"] for e in envelopes] == ["message.inbound"] * 2
    datas = [e["data"] for e in envelopes]
    assert [d["content"] for d in datas] == ["Hello from the handset", long_text]
    for d in datas:
        assert d["from"] == "+" + HANDSET and d["to"] == "+" + OWNED
        assert set(d) == {"id", "from", "to", "content", "received_at", "parts"}
    assert datas[0]["parts"] == 1 and datas[1]["parts"] >= 2
    assert len({d["id"] for d in datas}) == 2
    wait_idle(gw)


def test_inbound_reaches_both_the_receiver_bind_and_the_webhook(rig: Rig) -> None:
    hook = rig.receiver()
    acme = hooked_tenant("acme", hook.url, password="acmepw", numbers=("4479",))
    sim = rig.sim()
    gw = rig.gateway(sim, (acme.config,))
    with smpplib_tenant(gw.port, system_id="acme", password="acmepw", how="receiver") as smpp:
        sim.inject_mo(OWNED, HANDSET, "to both channels")
        smpp.pump(lambda: len(smpp.mo()) >= 1, 15.0, "MO deliver_sm")
        got = hook.wait_ids(1, 15.0)
        wait_idle(gw)
        smpp.settle(quiet_s=0.3)
        assert [p.short_message for p in smpp.mo()] == [b"to both channels"]
    [env] = verified(got, acme.secrets[0])
    assert env["type"] == "message.inbound"
    assert env["data"]["content"] == "to both channels"
    assert env["data"]["from"] == "+" + HANDSET


# --- retries ---------------------------------------------------------------------------------


def test_5xx_for_a_while_then_200_loses_nothing(rig: Rig) -> None:
    hook = rig.receiver()
    hook.fail_first(20, status=500)
    acme = hooked_tenant("acme", hook.url)
    sim = rig.sim()
    gw = rig.gateway(sim, (acme.config,))
    client = rig.api(gw, acme)
    ids = send(client, tuple(f"+4477009002{i:02d}" for i in range(12)))
    got = hook.wait_ids(2 * len(ids), 20.0)
    wait_idle(gw)
    assert sum(1 for r in got if r.answer == 500) == 20
    verified(got, acme.secrets[0])
    check_sent_then_delivered(got, ids)
    # every id that was refused came again with the same webhook-id until it was taken
    refused = {r.webhook_id for r in got if not r.ok}
    assert refused <= hook.delivered_ids()
    attempts: dict[str, list[Received]] = {}
    for r in got:
        attempts.setdefault(r.webhook_id, []).append(r)
    for wid, tries in attempts.items():
        assert [t.ok for t in tries] == [False] * (len(tries) - 1) + [True], (wid, tries)
        first = tries[0].json()
        for t in tries[1:]:  # the same event: type and data (the envelope time may move)
            again = t.json()
            assert (again["type"], again["data"]) == (first["type"], first["data"]), wid
    assert failed_events(client) == []
    assert store_events(gw) == 0
    assert gw.gateway.webhooks.gave_up == 0


def test_dead_endpoint_events_kept_as_failed_then_retried_on_request(rig: Rig) -> None:
    hook = rig.receiver()
    hook.always(503)
    acme = hooked_tenant("acme", hook.url, id_format="decimal")
    other = hooked_tenant("other", rig.receiver().url)
    sim = rig.sim()
    gw = rig.gateway(sim, (acme.config, other.config), webhook_retry_for_s=0.5)
    client = rig.api(gw, acme)
    [mid] = send(client, RECIPIENTS[:1])
    failed = wait_failed(client, 2)
    assert [e["type"] for e in failed] == ["message.sent", "message.delivered"]
    assert all(e["state"] == "failed" for e in failed)
    assert [e["message_id"] for e in failed] == [mid, mid]
    tried = {r.webhook_id for r in hook.requests()}
    assert {e["id"] for e in failed} == tried  # the ids the endpoint saw
    assert not hook.delivered()
    assert store_events(gw) == 2  # kept in the store
    # one page at a time
    page = client.get("/v1/events", params={"state": "failed", "limit": 1}).json()
    assert [e["id"] for e in page["data"]] == [failed[0]["id"]]
    rest = client.get("/v1/events", params={"state": "failed", "limit": 1,
                                            "cursor": page["next_cursor"]}).json()
    assert [e["id"] for e in rest["data"]] == [failed[1]["id"]]
    # another tenant neither sees nor can retry them
    theirs = rig.api(gw, other)
    assert failed_events(theirs) == []
    assert theirs.post(f"/v1/events/{failed[0]['id']}/retry").status_code == 404
    hook.always(200)
    for e in failed:
        resp = client.post(f"/v1/events/{e['id']}/retry")
        assert resp.status_code == 200, resp.text
        assert resp.json()["id"] == e["id"]
    got = hook.wait_ids(2, 15.0)
    assert hook.delivered_ids() == {e["id"] for e in failed}
    verified(hook.delivered(), acme.secrets[0])
    assert [r.json()["type"] for r in hook.delivered()] == ["message.sent",
                                                            "message.delivered"]
    wait_until(lambda: failed_events(client) == [], 10.0, "failed list empty")
    wait_idle(gw)
    # a second retry of a delivered event, and an unknown id, are 404
    assert client.post(f"/v1/events/{failed[0]['id']}/retry").status_code == 404
    assert client.post("/v1/events/evt_999999/retry").status_code == 404
    assert len(got) >= 4


def kept_as_failed(rig: Rig, **tenant: Any) -> tuple[Hooked, WebhookReceiver,
                                                     httpx.Client, str, list[dict[str, Any]]]:
    """One message to an endpoint that always drops the connection, until both its events
    are kept as failed: (tenant, receiver, client, message id, failed events)."""
    hook = rig.receiver()
    hook.always(CLOSE)
    acme = hooked_tenant("acme", hook.url, **tenant)
    gw = rig.gateway(rig.sim(), (acme.config,), webhook_retry_for_s=0.3)
    client = rig.api(gw, acme)
    [mid] = send(client, RECIPIENTS[:1])
    failed = wait_failed(client, 2)
    return acme, hook, client, mid, failed


def test_failed_event_names_the_message_by_the_tenants_id(rig: Rig) -> None:
    _, _, _, mid, failed = kept_as_failed(rig, id_format="hex")
    assert [e["message_id"] for e in failed] == [mid, mid]


def test_failed_event_attempts_count_every_request(rig: Rig) -> None:
    _, hook, _, _, failed = kept_as_failed(rig)
    seen: dict[str, int] = {}
    for r in hook.requests():
        seen[r.webhook_id] = seen.get(r.webhook_id, 0) + 1
    assert {e["id"]: e["attempts"] for e in failed} == seen


# --- isolation -------------------------------------------------------------------------------


def test_a_hanging_endpoint_holds_back_no_other_tenant_nor_smpp(rig: Rig) -> None:
    stuck, quick = rig.receiver(), rig.receiver()
    stuck.always(HANG)
    a = hooked_tenant("alpha", stuck.url, password="alpha")
    b = hooked_tenant("bravo", quick.url)
    c = TenantConfig(system_id="charlie", password="charlie")
    sim = rig.sim()
    gw = rig.gateway(sim, (a.config, b.config, c), webhook_timeout_s=1.0,
                     webhook_concurrency=2)
    a_ids = send(rig.api(gw, a), RECIPIENTS * 3)
    stuck.wait_count(2, 10.0)  # alpha's endpoint holds requests open
    b_ids = send(rig.api(gw, b), RECIPIENTS * 2)
    with smpplib_tenant(gw.port, system_id="charlie", password="charlie") as smpp:
        seqs = [smpp.submit(f"charlie {i}".encode()) for i in range(10)]
        c_ids = smpp.ids(seqs)
        receipts = smpp.wait_receipts(len(c_ids), 15.0)
    assert sorted(r.receipted_message_id for r in receipts) == sorted(c_ids)
    # alpha's own SMPP channel is not held by its webhook either: its receipts (of the HTTP
    # sends too) reach its bind
    with smpplib_tenant(gw.port, system_id="alpha", password="alpha") as smpp:
        [own] = smpp.ids([smpp.submit(b"alpha over SMPP")])
        receipts = smpp.wait_receipts(len(a_ids) + 1, 15.0)
    assert sorted(r.receipted_message_id for r in receipts) == sorted([*a_ids, own])
    got = quick.wait_ids(2 * len(b_ids), 15.0)
    verified(got, b.secrets[0])
    check_sent_then_delivered(got, b_ids)
    assert not stuck.delivered()  # alpha's events are all still stuck
    assert {r.json()["data"]["id"] for r in stuck.requests()} <= set(a_ids)
    assert gw.run(lambda: gw.gateway.events.depths().get("alpha/webhook", 0)) > 0


# --- durability ------------------------------------------------------------------------------


def test_events_for_a_dead_endpoint_survive_a_restart(rig: Rig) -> None:
    hook = rig.receiver()
    hook.always(503)
    acme = hooked_tenant("acme", hook.url)
    sim = rig.sim()
    gw = rig.gateway(sim, (acme.config,), webhook_retry_for_s=120.0)
    ids = send(rig.api(gw, acme))
    wait_until(lambda: gw.run(lambda: gw.gateway.router.backlog()) == 0
               and store_events(gw) == 2 * len(ids)
               and len({r.webhook_id for r in hook.requests()}) == len(ids),
               15.0, "every event stored, each message.sent tried")
    before = {r.webhook_id for r in hook.requests()}
    hook.pause()  # from now on connections are refused
    gw.stop()
    gw2 = rig.gateway(sim, (acme.config,), webhook_retry_for_s=120.0)  # the same store
    assert store_events(gw2) == 2 * len(ids)  # nothing was lost in the restart
    wait_until(lambda: gw2.gateway.webhooks.failed_attempts >= 1, 10.0,
               "the restarted gateway tried the dead endpoint")
    hook.always(200)
    hook.resume()
    got = hook.wait_ids(2 * len(ids), 20.0)
    verified(got, acme.secrets[0])
    check_sent_then_delivered(got, ids)
    assert before <= hook.delivered_ids()  # the same webhook-ids after the restart
    assert len(hook.delivered()) == 2 * len(ids)
    wait_idle(gw2)
    assert failed_events(rig.api(gw2, acme)) == []


def test_an_event_in_flight_at_stop_is_sent_after_the_restart(rig: Rig) -> None:
    hook = rig.receiver()
    hook.always(HANG)
    acme = hooked_tenant("acme", hook.url)
    sim = rig.sim()
    gw = rig.gateway(sim, (acme.config,), webhook_timeout_s=30.0)
    ids = send(rig.api(gw, acme), RECIPIENTS[:1])
    hook.wait_count(1, 10.0)  # message.sent is in flight, held by the endpoint
    wait_until(lambda: store_events(gw) == 2, 10.0, "both events stored")
    gw.stop()  # cancels the request in flight; its event stays in the store
    hook.always(200)
    hook.release()
    gw2 = rig.gateway(sim, (acme.config,))
    got = hook.wait_ids(2, 15.0)
    verified(got, acme.secrets[0])
    check_sent_then_delivered(got, ids)
    wait_idle(gw2)


# --- report_url ------------------------------------------------------------------------------


def test_report_url_gets_the_messages_events_instead_of_webhook_url(rig: Rig) -> None:
    hook, report = rig.receiver(), rig.receiver()
    acme = hooked_tenant("acme", hook.url)
    sim = rig.sim()
    gw = rig.gateway(sim, (acme.config,))
    client = rig.api(gw, acme)
    own = send(client, RECIPIENTS[:2], report_url=report.url)
    plain = send(client, RECIPIENTS[2:])
    got_report = report.wait_ids(2 * len(own), 15.0)
    got_hook = hook.wait_ids(2 * len(plain), 15.0)
    wait_idle(gw)
    verified(got_report, acme.secrets[0])
    check_sent_then_delivered(got_report, own)
    check_sent_then_delivered(got_hook, plain)


def test_report_url_works_for_a_tenant_without_webhook_url(rig: Rig) -> None:
    report = rig.receiver()
    acme = hooked_tenant("acme", "")
    sim = rig.sim()
    gw = rig.gateway(sim, (acme.config,))
    ids = send(rig.api(gw, acme), RECIPIENTS[:1], report_url=report.url)
    got = report.wait_ids(2, 15.0)
    wait_idle(gw)
    verified(got, acme.secrets[0])
    check_sent_then_delivered(got, ids)

