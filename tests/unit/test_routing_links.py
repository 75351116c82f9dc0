"""Tracked links (routing.links): URL finding, rewriting, codes, bot detection; and the
store side (routing.sqlite.links) on a real SQLite file: links and clicks in the group
commit, counts per link with bots apart."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from config import TenantConfig
from routing.channels import Channels, webhook_queue
from routing.events import ClickEvent, decode_event, encode_event
from routing.links import (
    CODE_LENGTH,
    StoredLink,
    find_urls,
    is_bot,
    is_code,
    new_code,
    rewrite,
    short_url,
)
from routing.sqlite import GroupCommitter, Store
from routing.sqlite.links import SqliteLinks
from smsc.http.links import LinkDesk
from smsc.http.problems import ApiError
from smsc.webhooks.render import event_type, render_webhook
from tests.httpkit import SECRET

BASE = "https://sms.example/"


def urls(text: str) -> list[str]:
    return [text[a:b] for a, b in find_urls(text)]


@pytest.mark.parametrize(("text", "want"), [
    ("no link here", []),
    ("", []),
    ("see https://a.example/x.", ["https://a.example/x"]),
    ("see https://a.example/x, then", ["https://a.example/x"]),
    ("Go: http://a.example/path?q=1&r=2!", ["http://a.example/path?q=1&r=2"]),
    ("(https://a.example/x)", ["https://a.example/x"]),
    ("wiki https://en.wikipedia.org/wiki/Foo_(bar).",
     ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
    ('"https://a.example/q"', ["https://a.example/q"]),
    ("two: https://a.example/1 and HTTP://B.example/2?",
     ["https://a.example/1", "HTTP://B.example/2"]),
    ("ftp://a.example/x and mailto:x@y.z", []),
    ("bare http:// scheme", []),
    ("line https://a.example/x\nnext", ["https://a.example/x"]),
    ("glued xhttps://a.example", []),
])
def test_urls_are_found_without_trailing_punctuation(text: str, want: list[str]) -> None:
    assert urls(text) == want


def test_rewrite_replaces_each_url_by_a_short_link_under_the_base() -> None:
    text, links = rewrite("A https://a.example/1. B https://b.example/2 "
                          "again https://a.example/1", BASE)
    assert [link.url for link in links] == ["https://a.example/1", "https://b.example/2"]
    a, b = (link.code for link in links)
    assert text == (f"A https://sms.example/l/{a}. B https://sms.example/l/{b} "
                    f"again https://sms.example/l/{a}")
    assert short_url("http://h:1", a) == f"http://h:1/l/{a}"


def test_a_text_without_urls_is_unchanged() -> None:
    assert rewrite("hello, no links", BASE) == ("hello, no links", [])


def test_each_rewrite_makes_new_codes_so_a_click_belongs_to_one_message() -> None:
    _, first = rewrite("https://a.example", BASE)
    _, second = rewrite("https://a.example", BASE)
    assert first[0].code != second[0].code


def test_codes_are_url_safe_unguessable_and_unique() -> None:
    codes = {new_code() for _ in range(20_000)}
    assert len(codes) == 20_000
    for code in list(codes)[:500]:
        assert len(code) == CODE_LENGTH and is_code(code)
        assert code.isascii() and all(c.isalnum() or c in "-_" for c in code)
    assert CODE_LENGTH * 6 >= 40  # bits of entropy, the contract's floor
    assert not is_code("short") and not is_code("a" * 11 + "!") and not is_code("a" * 13)


@pytest.mark.parametrize("ua", [
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot/1.0", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "WhatsApp/2.23.20.0 A", "TelegramBot (like TwitterBot)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
])
def test_link_preview_bots_are_recognised(ua: str) -> None:
    assert is_bot(ua)


@pytest.mark.parametrize("ua", [
    None, "",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Mobile Safari/537.36",
    "python-httpx/0.27",
])
def test_people_are_not_bots(ua: str | None) -> None:
    assert not is_bot(ua)


def test_links_and_clicks_ride_the_group_commit(tmp_path: Path) -> None:
    async def run() -> None:
        store = Store(tmp_path / "s.db", synchronous="OFF")
        store.open()
        committer = GroupCommitter(store, asyncio.get_running_loop(), threaded=False,
                                   checkpoint_every_s=0)
        committer.start()
        try:
            book = SqliteLinks(store, committer)
            _, links = rewrite("https://b.example https://a.example", BASE)
            book.remember("acme", "42", links, 1000.0)
            assert book.resolve(links[0].code) is None  # not committed yet
            await committer.future()
            got = book.resolve(links[0].code)
            assert got is not None
            assert (got.tenant, got.message_id, got.url) == ("acme", "42", "https://b.example")
            assert book.resolve("x" * CODE_LENGTH) is None
            await book.record_click(got, 1001.0, bot=True)  # type: ignore[misc]
            assert [(c.url, c.clicks, c.first_clicked_at) for c in book.clicks_of("42")] == [
                ("https://a.example", 0, None), ("https://b.example", 0, None)]
            await book.record_click(got, 1002.0, bot=False)  # type: ignore[misc]
            await book.record_click(got, 1003.0, bot=False)  # type: ignore[misc]
            assert [(c.url, c.clicks, c.first_clicked_at) for c in book.clicks_of("42")] == [
                ("https://a.example", 0, None), ("https://b.example", 2, 1002.0)]
            assert book.clicks_of("43") == []
            assert store.reader.execute("SELECT count(*), sum(bot) FROM clicks").fetchone() == (
                3, 1)
        finally:
            committer.stop()
            store.close()

    asyncio.run(run())


def test_a_click_is_a_message_clicked_webhook_on_the_webhook_channel_only() -> None:
    tenant = TenantConfig(system_id="acme", password="pw", webhook_url="https://h.example/",
                          webhook_secret=SECRET, id_format="hex")
    event = ClickEvent(message_id=str(0x1F), url="https://a.example/x", clicked_at=1_800_000_000.5)
    assert event_type(event) == "message.clicked"
    body = json.loads(render_webhook(event, "evt_1", tenant, 1_800_000_001.0) or b"")
    assert body["type"] == "message.clicked"
    assert body["data"] == {"message_id": "1F", "url": "https://a.example/x",
                            "clicked_at": "2027-01-15T08:00:00.500000Z"}
    assert decode_event(encode_event(event)) == event

    published: list[tuple[str, list[object]]] = []

    class Events:
        def publish(self, queue: str, events: list[object], now: float) -> None:
            published.append((queue, list(events)))

    channels = Channels(Events(), [tenant])  # type: ignore[arg-type]
    channels.publish("acme", [event], 1.0)
    assert published == [(webhook_queue("acme"), [event])]  # never to an SMPP bind


def test_the_desk_counts_people_and_bots_and_redirects_even_when_the_store_fails() -> None:
    link = StoredLink(code="A" * CODE_LENGTH, tenant="acme", message_id="7",
                      url="https://a.example/", created_at=0.0)
    published: list[object] = []

    class Book:
        fail = False

        def resolve(self, code: str) -> StoredLink | None:
            return link if code == link.code else None

        def record_click(self, found: StoredLink, at: float, *, bot: bool) -> object:
            fut = asyncio.get_running_loop().create_future()
            if self.fail:
                fut.set_exception(OSError("disk full"))
            else:
                fut.set_result(None)
            return fut

    class Record:
        def get(self, message_id: str) -> None:
            return None

    def publish(tenant: str, events: list[object], now: float) -> None:
        published.extend(events)

    book = Book()
    desk = LinkDesk(book, Record(), publish, wall=lambda: 5.0)  # type: ignore[arg-type]

    async def run() -> None:
        assert await desk.follow(link.code, head=False, user_agent="Mozilla/5.0") == link.url
        assert await desk.follow(link.code, head=True, user_agent=None) == link.url
        assert await desk.follow(link.code, head=False, user_agent="Slackbot 1.0") == link.url
        book.fail = True
        assert await desk.follow(link.code, head=False, user_agent=None) == link.url
        with pytest.raises(ApiError) as missing:
            await desk.follow("B" * CODE_LENGTH, head=False, user_agent=None)
        assert missing.value.status == 404
        with pytest.raises(ApiError):
            await desk.follow("../etc", head=False, user_agent=None)

    asyncio.run(run())
    assert (desk.clicks, desk.bot_fetches, desk.lost) == (2, 2, 1)
    assert published == [ClickEvent(message_id="7", url=link.url, clicked_at=5.0)] * 2
