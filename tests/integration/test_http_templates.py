"""Stored templates and the preview over HTTP, against the bundled simulator.

* CRUD of ``/v1/templates``: create (201; 409 for a taken name), list by name, read, replace
  (created_at kept), delete (204, then 404); another tenant sees none of them; a template
  survives a restart (it is in the store, loaded into memory at start);
* sending with ``template`` and per-recipient ``vars``: the simulator receives each rendered
  text; an unknown template is a 400 naming ``/messages/0/template``;
* ``POST /v1/messages/preview`` for those texts says the parts, encoding and units the
  operator then receives (GSM-7 extension characters, an emoji forcing UCS-2 and named).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.httpkit import api_client, api_tenant, post_json
from tests.integration.e2e_support import Stack, operator, sent_texts, wait_until

pytestmark = pytest.mark.timeout(90)

TOKEN = "tok_tpl_0123456789abcdef0123456789abcdef0"
OTHER_TOKEN = "tok_tpl_other_0123456789abcdef012345678"
PROBLEM = "application/problem+json"


def tenants() -> tuple[Any, ...]:
    return (api_tenant("demo", TOKEN, password="demo"),
            api_tenant("other", OTHER_TOKEN, password="other"))


def test_template_crud_and_isolation_and_restart(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)], tenants=tenants())
    with api_client(gw.gateway.http_port, TOKEN) as c, \
            api_client(gw.gateway.http_port, OTHER_TOKEN) as o:
        r = post_json(c, {"name": "welcome", "content": "Hi {{name}}"}, "/v1/templates")
        assert r.status_code == 201, r.text
        made = r.json()
        assert (made["name"], made["content"]) == ("welcome", "Hi {{name}}")
        assert made["created_at"] == made["updated_at"]
        r = post_json(c, {"name": "welcome", "content": "again"}, "/v1/templates")
        assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["code"] == "template_exists"
        assert post_json(c, {"name": "a-code.v2", "content": "Code {{code}}"},
                         "/v1/templates").status_code == 201
        r = post_json(c, {"name": "bad name!", "content": "x"}, "/v1/templates")
        assert r.status_code == 400
        assert [e["pointer"] for e in r.json()["errors"]] == ["/name"]

        listed = c.get("/v1/templates").json()["data"]
        assert [t["name"] for t in listed] == ["a-code.v2", "welcome"]
        assert o.get("/v1/templates").json()["data"] == []
        assert o.get("/v1/templates/welcome").status_code == 404

        r = c.put("/v1/templates/welcome", json={"content": "Hello {{name}}!"})
        assert r.status_code == 200, r.text
        assert r.json()["content"] == "Hello {{name}}!"
        assert r.json()["created_at"] == made["created_at"]
        assert c.get("/v1/templates/welcome").json()["content"] == "Hello {{name}}!"
        assert c.put("/v1/templates/fresh", json={"content": "new"}).status_code == 200
        assert c.put("/v1/templates/no%20spaces", json={"content": "x"}).status_code == 400

        assert c.delete("/v1/templates/fresh").status_code == 204
        assert c.get("/v1/templates/fresh").status_code == 404
        assert c.delete("/v1/templates/fresh").status_code == 404
        assert o.delete("/v1/templates/welcome").status_code == 404

    # The store keeps them: a gateway on the same store has them after a restart.
    gw.stop()
    gw2 = stack.gateway([operator("A", sim.port)], tenants=tenants())
    with api_client(gw2.gateway.http_port, TOKEN) as c:
        listed = c.get("/v1/templates").json()["data"]
        assert [(t["name"], t["content"]) for t in listed] == [
            ("a-code.v2", "Code {{code}}"), ("welcome", "Hello {{name}}!")]


def templated(recipients: list[Any], name: str) -> dict[str, Any]:
    """A send request naming a stored template instead of content."""
    return {"messages": [{"recipients": recipients, "template": name}]}


def _by_destination(sim: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for pdu in sim.received():
        out.setdefault(getattr(pdu, "destination_addr", ""), []).append(pdu)
    return out


def test_send_with_template_and_preview_match_the_operator(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)], tenants=tenants())
    content = "Hi {{name}}, {{body}}"
    recipients = [
        {"to": "+447700900001", "vars": {"name": "Ann", "body": "short"}},
        # 80 euro signs: GSM-7 extension characters, two septets each: 8 + 160 > 160; the
        # first part takes 152 (an escape pair is never cut), the second 16
        {"to": "+447700900002", "vars": {"name": "Bob", "body": "€" * 80}},
        # an emoji forces UCS-2 (two UTF-16 units): 7 + 60 + 2 + 3 = 72 units > 70
        {"to": "+447700900003", "vars": {"name": "Cy", "body": "x" * 60 + "😀" + "y" * 3}},
    ]
    with api_client(gw.gateway.http_port, TOKEN) as c:
        assert post_json(c, {"name": "promo", "content": content},
                         "/v1/templates").status_code == 201
        r = post_json(c, {"template": "promo", "recipients": recipients},
                      "/v1/messages/preview")
        assert r.status_code == 200, r.text
        preview = r.json()
        assert preview["text"] == "Hi Ann, short" and preview["parts"] == 1
        assert preview["chars_left"] == 160 - 13
        shown = [(p["recipient"], p["rendering"]["parts"], p["rendering"]["encoding"])
                 for p in preview["recipients"]]
        assert shown == [("+447700900001", 1, "gsm7"), ("+447700900002", 2, "gsm7"),
                         ("+447700900003", 2, "ucs2")]
        bob, cy = preview["recipients"][1]["rendering"], preview["recipients"][2]["rendering"]
        assert (bob["units"], bob["per_part"], bob["chars_left"]) == (168, 153, 137)
        assert cy["ucs2_characters"] == [{"char": "😀", "code_point": "U+1F600",
                                          "positions": [67]}]
        assert (cy["units"], cy["per_part"], cy["chars_left"]) == (72, 67, 62)
        assert all(p["opted_out"] is False and p["deferred"] is False
                   for p in preview["recipients"])

        r = post_json(c, templated(recipients, "promo"))
        assert r.status_code == 200, r.text
        sent = r.json()["messages"]
        assert [(m["parts"], m["encoding"]) for m in sent] == [
            (p["rendering"]["parts"], p["rendering"]["encoding"])
            for p in preview["recipients"]]

        r = post_json(c, templated(["+447700900009"], "nope"))
        assert r.status_code == 400
        assert [(e["pointer"], e["code"]) for e in r.json()["errors"]] == [
            ("/messages/0/template", "unknown_template")]
        r = post_json(c, templated([{"to": "+447700900009", "vars": {"name": "Z"}}], "promo"))
        assert r.status_code == 400
        assert [(e["pointer"], e["code"]) for e in r.json()["errors"]] == [
            ("/messages/0/recipients/0", "missing_variable")]

    wait_until(lambda: sum(len(v) for v in _by_destination(sim).values()) >= 5, 15.0,
               "five parts at the simulator")
    got = _by_destination(sim)
    for p in preview["recipients"]:
        pdus = got[p["recipient"].lstrip("+")]
        assert sent_texts(pdus) == [p["rendering"]["text"]]
        assert len(pdus) == p["rendering"]["parts"]
        assert {pdu.data_coding for pdu in pdus} == {
            0 if p["rendering"]["encoding"] == "gsm7" else 8}


def test_preview_problems(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)], tenants=tenants())
    with api_client(gw.gateway.http_port, TOKEN) as c:
        r = post_json(c, {"content": "Hi {{name}}", "vars": {"name": "Ann"}},
                      "/v1/messages/preview")
        assert r.status_code == 200, r.text
        assert (r.json()["text"], r.json()["recipients"]) == ("Hi Ann", [])
        for body, want in [
            ({"content": "Hi {{name}}"}, [("/vars", "missing_variable")]),
            ({"template": "nope"}, [("/template", "unknown_template")]),
            ({"content": "x", "template": "nope"}, [("/template", "conflicting_fields")]),
            ({}, [("/content", "missing_field")]),
            ({"content": "😀", "data_coding": "text"}, [("/content", "not_gsm7")]),
        ]:
            r = post_json(c, body, "/v1/messages/preview")
            assert r.status_code == 400, (body, r.text)
            assert [(e["pointer"], e["code"]) for e in r.json()["errors"]] == want, body
        r = post_json(c, {"content": "x", "recipients": ["nope", "+447700900001"]},
                      "/v1/messages/preview")
        assert r.status_code == 200, r.text
        rs = r.json()["recipients"]
        assert rs[0]["error"]["code"] == "invalid_number" and rs[0]["rendering"] is None
        assert rs[1]["rendering"]["text"] == "x"
    assert sim.received() == []  # a preview sends nothing


def test_preview_says_quiet_hours_would_hold_a_recipient(stack: Stack) -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    london = datetime.now(ZoneInfo("Europe/London"))
    # a window around the recipient's local time now: open an hour ago, ends in two
    start, end = ((london + timedelta(hours=h)).strftime("%H:%M") for h in (-1, 2))
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)], tenants=tenants())
    with api_client(gw.gateway.http_port, TOKEN) as c:
        r = post_json(c, {"content": "x", "recipients": ["+447700900001"],
                          "quiet_hours": {"start": start, "end": end}}, "/v1/messages/preview")
        assert r.status_code == 200, r.text
        one = r.json()["recipients"][0]
        assert one["deferred"] is True and one["opted_out"] is False
        until = datetime.fromisoformat(one["deferred_until"]).astimezone(london.tzinfo)
        assert until.strftime("%H:%M") == end
        assert timedelta(hours=1) < until - london <= timedelta(hours=2, minutes=1)
        r = post_json(c, {"content": "x", "recipients": ["+447700900001"]},
                      "/v1/messages/preview")
        one = r.json()["recipients"][0]
        assert (one["deferred"], one["deferred_until"]) == (False, None)  # no quiet hours


def test_preview_says_an_opted_out_number_is_opted_out(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)], tenants=tenants())
    with api_client(gw.gateway.http_port, TOKEN) as c:
        r = c.put("/v1/opt-outs/+447700900001")
        assert r.status_code in (200, 201), r.text
        r = post_json(c, {"content": "x", "recipients": ["+447700900001", "+447700900002"]},
                      "/v1/messages/preview")
        assert r.status_code == 200, r.text
        assert [p["opted_out"] for p in r.json()["recipients"]] == [True, False]


def test_preview_counts_tracked_links_as_sending_does(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)], tenants=tenants())
    long_url = "https://shop.example/" + "p" * 150  # 171 characters: two parts as written
    body = {"content": "Hi {{name}}, see " + long_url, "track_links": True,
            "recipients": [{"to": "+447700900001", "vars": {"name": "Ann"}}]}
    with api_client(gw.gateway.http_port, TOKEN) as c:
        r = post_json(c, body, "/v1/messages/preview")
        assert r.status_code == 200, r.text
        preview = r.json()["recipients"][0]["rendering"]
        assert long_url not in preview["text"] and "/l/" in preview["text"]
        assert preview["parts"] == 1
        r = post_json(c, {"messages": [body]})
        assert r.status_code == 200, r.text
        assert r.json()["messages"][0]["parts"] == preview["parts"]
    wait_until(lambda: len(sim.received()) >= 1, 15.0, "the message at the simulator")
    pdus = sim.received()
    assert len(pdus) == preview["parts"]
    text = sent_texts(pdus)[0]
    assert len(text) == len(preview["text"]) == preview["units"]  # short links of one length
