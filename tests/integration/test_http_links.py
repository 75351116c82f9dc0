"""Tracked links end to end (http-api.md "Short links", ``track_links``, ``message.clicked``).

A tenant sends over HTTP with ``track_links``; the bundled simulator (the operator) receives
the short link, not the URL, in a message whose parts were counted on the rewritten text;
``GET /l/{code}`` redirects (302) and counts one click per GET, while HEAD requests and a
link-preview bot are redirected but not counted; each click is a signed ``message.clicked``
event at the tenant's webhook with the right message id; the status and the analytics
show the clicks.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.httpkit import SECRET, api_client, api_tenant, message_body, post_json
from tests.integration.e2e_support import Stack, operator, sent_texts, wait_until
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.timeout(90)

TOKEN = "tok_links_0123456789abcdef0123456789abcdef"
LONG_URL = "https://shop.example/offers/winter?campaign=" + "x" * 150 + "&ref=sms"
OTHER_URL = "https://help.example/faq"
SHORT = re.compile(r"http://127\.0\.0\.1:\d+/l/([A-Za-z0-9_-]{12})")


def clicked(hooks: WebhookReceiver) -> list[dict[str, Any]]:
    return [r.json() for r in hooks.requests() if r.json()["type"] == "message.clicked"]


def test_links_are_shortened_redirected_counted_and_reported(stack: Stack) -> None:
    with WebhookReceiver() as hooks:
        sim = stack.sim()
        gw = stack.gateway([operator("A", sim.port)], tenants=(
            api_tenant("shop", TOKEN, webhook_url=hooks.url, webhook_secret=SECRET),))
        port = gw.gateway.http_port
        content = f"Winter sale: {LONG_URL}. Questions? {OTHER_URL}"
        assert len(content) > 160  # two parts as written
        with api_client(port, TOKEN) as client, httpx.Client(
                base_url=f"http://127.0.0.1:{port}", trust_env=False,
                timeout=20.0) as phone:
            r = post_json(client, message_body(["+447700900123"], content,
                                               originator="SHOP", track_links=True))
            assert r.status_code == 200, r.text
            entry = r.json()["messages"][0]
            # one part: counted on the rewritten text, which fits 160 GSM-7 characters
            assert (entry["status"], entry["parts"], entry["encoding"]) == (
                "accepted", 1, "gsm7")
            mid = entry["id"]

            wait_until(lambda: len(sim.received()) >= 1, 15.0, "the message at the operator")
            [text] = sent_texts(sim.received())
            assert LONG_URL not in text and OTHER_URL not in text
            codes = SHORT.findall(text)
            assert len(codes) == 2 and len(set(codes)) == 2
            assert all(f"http://127.0.0.1:{port}/l/{c}" in text for c in codes)  # public_url
            assert SHORT.sub("<link>", text) == "Winter sale: <link>. Questions? <link>"
            long_code, other_code = codes

            # No clicks yet: the status lists both links at zero.
            links = client.get(f"/v1/messages/{mid}").json()["links"]
            assert sorted((x["url"], x["clicks"], x["first_clicked_at"]) for x in links) == [
                (OTHER_URL, 0, None), (LONG_URL, 0, None)]

            # Public: no token. Two GETs are two clicks.
            for _ in range(2):
                got = phone.get(f"/l/{long_code}", follow_redirects=False,
                                headers={"User-Agent": "Mozilla/5.0 (iPhone) Safari/604.1"})
                assert got.status_code == 302, got.text
                assert got.headers["location"] == LONG_URL
                assert got.headers["cache-control"] == "no-store"
            # A HEAD and a link-preview bot are redirected but are not clicks.
            got = phone.head(f"/l/{long_code}", follow_redirects=False)
            assert (got.status_code, got.headers["location"]) == (302, LONG_URL)
            got = phone.get(f"/l/{other_code}", follow_redirects=False,
                            headers={"User-Agent": "facebookexternalhit/1.1"})
            assert (got.status_code, got.headers["location"]) == (302, OTHER_URL)
            # Unknown and malformed codes.
            for bad in ("AAAAAAAAAAAA", "nope", long_code + "x"):
                missing = phone.get(f"/l/{bad}", follow_redirects=False)
                assert missing.status_code == 404, missing.text
                assert missing.headers["content-type"].startswith("application/problem+json")

            shown = client.get(f"/v1/messages/{mid}").json()
            by_url = {x["url"]: x for x in shown["links"]}
            assert by_url[LONG_URL]["clicks"] == 2
            assert by_url[LONG_URL]["first_clicked_at"] is not None
            assert by_url[OTHER_URL]["clicks"] == 0  # only a bot fetched it
            assert by_url[OTHER_URL]["first_clicked_at"] is None

            stored = gw.run(lambda: gw.gateway.store.reader.execute(
                "SELECT count(*), sum(bot) FROM clicks WHERE message_id = ?",
                (gw.gateway.store.reader.execute(
                    "SELECT message_id FROM links WHERE code = ?",
                    (long_code,)).fetchone()[0],)).fetchone())
            assert tuple(stored) == (4, 2)  # two clicks, a HEAD and a bot, no IP column

            # The first and each later click: a message.clicked event each, signed.
            hooks.wait(lambda rs: len([r for r in rs if b"message.clicked" in r.body]) >= 2,
                       15.0, "two message.clicked events")
            events = clicked(hooks)
            assert len(events) == 2
            for e in events:
                assert e["data"]["message_id"] == mid
                assert e["data"]["url"] == LONG_URL
                assert e["data"]["clicked_at"].endswith("Z") or "+00:00" in e["data"][
                    "clicked_at"]
            assert all(r.headers["webhook-signature"].startswith("v1,")
                       for r in hooks.requests() if b"message.clicked" in r.body)
            # The analytics count the same clicks (bots left out).
            now = datetime.now(UTC)
            report = client.get("/v1/analytics", params={
                "since": (now - timedelta(days=1)).isoformat(),
                "until": (now + timedelta(days=1)).isoformat(), "group_by": "day"})
            assert report.status_code == 200, report.text
            assert report.json()["totals"]["clicks"] == 2
            # Listing pages leave links out (null); the single status has them.
            page = client.get("/v1/messages").json()["data"]
            assert [m["links"] for m in page if m["id"] == mid] == [None]


def test_without_track_links_urls_go_as_written(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)], tenants=(api_tenant("shop", TOKEN),))
    with api_client(gw.gateway.http_port, TOKEN) as client:
        r = post_json(client, message_body(["+447700900123"], f"see {OTHER_URL}",
                                           originator="SHOP", track_links=False))
        assert r.status_code == 200, r.text
        mid = r.json()["messages"][0]["id"]
        wait_until(lambda: len(sim.received()) >= 1, 15.0, "the message at the operator")
        assert sent_texts(sim.received()) == [f"see {OTHER_URL}"]
        assert client.get(f"/v1/messages/{mid}").json()["links"] is None
