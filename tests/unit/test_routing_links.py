"""Tracked links (routing.links): URL finding, rewriting, codes, bot detection; and the
store side (routing.sqlite.links) on a real SQLite file: links and clicks in the group
commit, counts per link with bots apart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from routing.links import (
    CODE_LENGTH,
    find_urls,
    is_bot,
    is_code,
    new_code,
    rewrite,
    short_url,
)
from routing.sqlite import GroupCommitter, Store
from routing.sqlite.links import SqliteLinks

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
