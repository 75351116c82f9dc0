"""Opt-out end to end: the bundled simulator sends STOP/START/HELP from a handset; both doors.

A user sees: after STOP from a handset, the confirmation comes back to that handset as a
message through the operator the STOP came from, the tenant's webhook gets the inbound
message and ``contact.opted_out`` (the consent record, naming the inbound message), and
``GET /v1/opt-outs/{number}`` shows it. From then on an SMPP tenant's submit_sm, data_sm and
submit_multi to that number are refused with ESME_RX_R_APPN (0x66) and an HTTP send gets
``opted_out`` for that recipient; nothing reaches the simulator. START lets messages through
again. ``PUT``/``DELETE /v1/opt-outs/{number}`` do the same by API, and the list pages.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from encoding.constants import CommandId
from encoding.constants import CommandStatus as S
from encoding.pdu import DataSm, SmeDest, SubmitMulti, SubmitSm
from tests.httpkit import (
    SECRET,
    HookReceiver,
    api_client,
    api_tenant,
    hook_receiver,
    message_body,
    post_json,
)
from tests.integration.e2e_support import Stack, operator, sent_texts, wait_until
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(90)

OWNED = "447900000001"
HANDSET = "447700900555"
OTHER = "447700900556"
TOKEN = "tok-consent"


@pytest.fixture
def hooks() -> Iterator[HookReceiver]:
    with hook_receiver() as r:
        yield r


def envelopes(hooks: HookReceiver, kind: str) -> list[dict[str, Any]]:
    return [e for e in (h.json() for h in hooks.received()) if e["type"] == kind]


def texts_to(sim: Any, number: str) -> list[str]:
    pdus = [p for p in sim.received() if getattr(p, "destination_addr", "") == number]
    return sent_texts(pdus)


def test_stop_start_help_from_a_handset_and_both_doors_refused(
        stack: Stack, hooks: HookReceiver) -> None:
    sim = stack.sim()
    tenant = api_tenant("demo", TOKEN, password="demo", numbers=("4479",),
                        webhook_url=hooks.url(), webhook_secret=SECRET)
    gw = stack.gateway([operator("A", sim.port)], tenants=(tenant,))
    assert gw.gateway.consent is not None  # what the preview part asks
    smpp = RawClient(gw.port)
    smpp.bind(expect_ok=True)
    with api_client(gw.gateway.http_port, TOKEN) as client:
        # STOP (with the spacing and punctuation a person types)
        sim.inject_mo(OWNED, HANDSET, " Stop! ")
        wait_until(lambda: any("unsubscribed" in t for t in texts_to(sim, HANDSET)), 15.0,
                   "the STOP confirmation at the simulator")
        [reply] = [p for p in sim.received()
                   if getattr(p, "destination_addr", "") == HANDSET]
        assert getattr(reply, "source_addr", "") == OWNED
        wait_until(lambda: envelopes(hooks, "contact.opted_out"), 15.0, "contact.opted_out")
        [inbound] = envelopes(hooks, "message.inbound")
        [opted] = envelopes(hooks, "contact.opted_out")
        assert opted["data"]["number"] == "+" + HANDSET
        assert (opted["data"]["state"], opted["data"]["source"], opted["data"]["detail"]) == (
            "opted_out", "keyword", "STOP")
        assert opted["data"]["inbound_id"] == inbound["data"]["id"]
        assert inbound["data"]["content"] == " Stop! "  # the MO still reaches the tenant
        r = client.get(f"/v1/opt-outs/+{HANDSET}")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "opted_out"
        [record] = r.json()["history"]
        assert record["inbound_id"] == inbound["data"]["id"]
        page = client.get("/v1/opt-outs").json()
        assert [d["number"] for d in page["data"]] == ["+" + HANDSET]

        # both doors refuse the number; nothing reaches the simulator
        before = len(sim.received())
        resp = smpp.request(SubmitSm(source_addr=OWNED, dest_addr_ton=1,
                                     destination_addr=HANDSET, short_message=b"promo"))
        assert resp.command_status == S.ESME_RX_R_APPN
        resp = smpp.request(DataSm(source_addr=OWNED, destination_addr="+" + HANDSET,
                                   tlvs={"message_payload": b"promo"}))
        assert (resp.command_id, resp.command_status) == (CommandId.data_sm_resp, 0x66)
        resp = smpp.request(SubmitMulti(source_addr=OWNED, short_message=b"promo",
                                        dest_address=[SmeDest(HANDSET, 1, 1),
                                                      SmeDest(OTHER, 1, 1)]))
        assert resp.command_status == S.ESME_ROK
        [refused] = resp.unsuccess_sme  # type: ignore[attr-defined]
        assert (refused.destination_addr, refused.error_status_code) == (HANDSET, 0x66)
        r = post_json(client, message_body(["+" + HANDSET, "+" + OTHER], "promo"))
        assert r.status_code == 200, r.text
        results = r.json()["messages"]
        assert results[0]["status"] == "rejected"
        assert results[0]["error"]["code"] == "opted_out"
        assert results[0]["error"]["smpp_status"] == 0x66
        assert results[1]["status"] == "accepted"
        r = post_json(client, message_body(["+" + HANDSET], "promo"))
        assert r.status_code == 400, r.text  # nobody usable
        assert r.json()["errors"][0]["code"] == "opted_out"
        wait_until(lambda: len(texts_to(sim, OTHER)) == 2, 15.0, "the two messages to OTHER")
        assert len(sim.received()) == before + 2
        assert len(texts_to(sim, HANDSET)) == 1  # the confirmation only

        # HELP gets the help text; START lets messages through again
        sim.inject_mo(OWNED, HANDSET, "help")
        wait_until(lambda: len(texts_to(sim, HANDSET)) == 2, 15.0, "the HELP reply")
        assert "STOP" in texts_to(sim, HANDSET)[1]
        sim.inject_mo(OWNED, HANDSET, "START")
        wait_until(lambda: envelopes(hooks, "contact.opted_in"), 15.0, "contact.opted_in")
        wait_until(lambda: len(texts_to(sim, HANDSET)) == 3, 15.0, "the START reply")
        resp = smpp.request(SubmitSm(source_addr=OWNED, dest_addr_ton=1,
                                     destination_addr=HANDSET, short_message=b"welcome"))
        assert resp.command_status == S.ESME_ROK
        wait_until(lambda: "welcome" in texts_to(sim, HANDSET), 15.0, "welcome at the sim")
        history = client.get(f"/v1/opt-outs/{HANDSET}").json()
        assert history["state"] == "opted_in"
        assert [h["state"] for h in history["history"]] == ["opted_out", "opted_in"]
    smpp.close()


def test_opt_out_by_api(stack: Stack, hooks: HookReceiver) -> None:
    sim = stack.sim()
    tenant = api_tenant("demo", TOKEN, numbers=("4479",), webhook_url=hooks.url(),
                        webhook_secret=SECRET)
    gw = stack.gateway([operator("A", sim.port)], tenants=(tenant,))
    with api_client(gw.gateway.http_port, TOKEN) as client:
        numbers = [f"4477009006{i:02d}" for i in range(5)]
        for n in numbers:
            r = client.put(f"/v1/opt-outs/+{n}")
            assert r.status_code == 200, r.text
            assert r.json()["state"] == "opted_out"
        again = client.put(f"/v1/opt-outs/{numbers[0]}").json()  # idempotent: no new record
        assert len(again["history"]) == 1
        record = again["history"][0]
        assert record["source"] == "api" and record["detail"].startswith("api key sha256:")
        assert TOKEN not in record["detail"]
        first = client.get("/v1/opt-outs", params={"limit": 3}).json()
        assert [d["number"] for d in first["data"]] == ["+" + n for n in numbers[:3]]
        rest = client.get("/v1/opt-outs", params={"cursor": first["next_cursor"]}).json()
        assert [d["number"] for d in rest["data"]] == ["+" + n for n in numbers[3:]]
        assert rest["next_cursor"] is None
        r = post_json(client, message_body(["+" + numbers[1]], "promo"))
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "opted_out"
        r = client.delete(f"/v1/opt-outs/+{numbers[1]}")
        assert r.status_code == 200 and r.json()["state"] == "opted_in"
        r = post_json(client, message_body(["+" + numbers[1]], "promo"))
        assert r.status_code == 200 and r.json()["messages"][0]["status"] == "accepted"
        wait_until(lambda: len(envelopes(hooks, "contact.opted_out")) == 5
                   and len(envelopes(hooks, "contact.opted_in")) == 1, 15.0, "consent events")
        assert client.get("/v1/opt-outs/not-a-number").status_code == 400
        assert client.get("/v1/opt-outs", params={"cursor": "x"}).status_code == 400
        never = client.get("/v1/opt-outs/+447700900999").json()
        assert never == {"number": "+447700900999", "state": "opted_in", "history": []}
    # the index comes back from the store after a restart
    gw.stop()
    gw2 = stack.gateway([operator("A", sim.port)], tenants=(tenant,))
    assert gw2.run(lambda: gw2.gateway.consent.count()) == {"demo": 4}
