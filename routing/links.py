"""Tracked links: finding URLs in a text, short codes, and telling bots from people.

With ``track_links`` (http-api.md, "Sending" and "Templates, links, analytics") each http(s)
URL of a message's text becomes ``{public_url}/l/{code}``, one code per message and URL, so
a click belongs to one recipient. The rewritten text is the one that is encoded and split,
so the parts a customer is billed for count the short links, not the long URLs.

Codes are 72 random bits from ``secrets`` (12 URL-safe characters): unguessable (the
contract asks for at least 40 bits) and, at a billion links, with about one chance in ten
thousand that two ever collide (birthday bound n^2 / 2^73).

Fetches by link-preview bots (a chat app unfurling the link) and HEAD requests are recorded
apart from clicks (``is_bot``): they are not the recipient opening the link. Pure functions;
the store side is ``routing.sqlite.links``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from typing import Final, Protocol

import msgspec

from .repository import Durable

__all__ = ["LinkBook", "Link", "LinkClicks", "StoredLink", "find_urls", "new_code", "is_code",
           "rewrite", "is_bot", "CODE_BYTES", "CODE_LENGTH", "short_url"]

CODE_BYTES: Final = 9  # 72 bits
CODE_LENGTH: Final = 12  # base64url of 9 bytes, no padding
_URL: Final = re.compile(r"\bhttps?://[^\s<>\"'`]+", re.IGNORECASE)
# Punctuation that ends a sentence rather than the URL (RFC 3986 allows it, but a URL
# written at the end of a sentence almost never means it).
_TRAILING: Final = ".,;:!?'\"*"
_CLOSERS: Final = {")": "(", "]": "[", "}": "{"}
_CODE: Final = re.compile(rf"[A-Za-z0-9_-]{{{CODE_LENGTH}}}")
# Link-preview and crawler User-Agents (case-insensitive substrings).
_BOTS: Final = (
    "facebookexternalhit", "facebot", "meta-externalagent", "twitterbot", "slackbot",
    "slack-imgproxy", "whatsapp", "telegrambot", "discordbot", "linkedinbot", "googlebot",
    "google-inspectiontool", "adsbot-google", "bingbot", "bingpreview", "applebot",
    "skypeuripreview", "redditbot", "pinterest", "embedly", "iframely", "vkshare",
    "yandexbot", "duckduckbot", "baiduspider", "mattermost", "microsoftpreview",
    "preview", "crawler", "spider",
)


class Link(msgspec.Struct, frozen=True, gc=False):
    """One URL of one message and the code that stands for it."""

    code: str
    url: str


class StoredLink(msgspec.Struct, frozen=True, gc=False):
    """A link as the store keeps it (``links`` table)."""

    code: str
    tenant: str
    message_id: str
    url: str
    created_at: float


class LinkClicks(msgspec.Struct, frozen=True, gc=False):
    """Clicks of one link of a message (bots not counted)."""

    url: str
    clicks: int
    first_clicked_at: float | None


def _trim(url: str) -> str:
    """``url`` without the sentence punctuation after it; a closing bracket stays when the
    URL opened it (``https://en.wikipedia.org/wiki/Foo_(bar)``)."""
    while url:
        last = url[-1]
        unopened = last in _CLOSERS and url.count(_CLOSERS[last]) < url.count(last)
        if last in _TRAILING or unopened:
            url = url[:-1]
        else:
            break
    return url


def find_urls(text: str) -> list[tuple[int, int]]:
    """(start, end) of each http(s) URL in ``text``, in order."""
    spans = []
    for m in _URL.finditer(text):
        url = _trim(m[0])
        if len(url) > len(m[0].split("://", 1)[0]) + 3:  # more than the bare scheme
            spans.append((m.start(), m.start() + len(url)))
    return spans


def new_code() -> str:
    return secrets.token_urlsafe(CODE_BYTES)


def is_code(text: str) -> bool:
    """Whether ``text`` could be a code (refused before any lookup when not)."""
    return _CODE.fullmatch(text) is not None


def short_url(base: str, code: str) -> str:
    return f"{base.rstrip('/')}/l/{code}"


def rewrite(text: str, base: str) -> tuple[str, list[Link]]:
    """``text`` with each URL replaced by a short link under ``base``, and the links (a URL
    written twice in one message gets one code)."""
    spans = find_urls(text)
    if not spans:
        return text, []
    out: list[str] = []
    links: dict[str, Link] = {}
    at = 0
    for start, end in spans:
        url = text[start:end]
        link = links.get(url)
        if link is None:
            link = links[url] = Link(new_code(), url)
        out.append(text[at:start])
        out.append(short_url(base, link.code))
        at = end
    out.append(text[at:])
    return "".join(out), list(links.values())


def is_bot(user_agent: str | None) -> bool:
    """Whether a User-Agent is a link-preview bot or crawler (an empty one counts as a
    person: some mail and SMS apps send none)."""
    if not user_agent:
        return False
    ua = user_agent.lower()
    return any(b in ua for b in _BOTS)


class LinkBook(Protocol):
    """Where links and clicks are kept (``routing.sqlite.links`` on SQLite)."""

    def remember(self, tenant: str, message_id: str, links: Sequence[Link], now: float
                 ) -> None:
        """Store ``links`` of a message in the same commit as the message (call before
        the message is accepted; nothing is committed by this call alone)."""

    def resolve(self, code: str) -> StoredLink | None: ...

    def record_click(self, link: StoredLink, at: float, *, bot: bool) -> Durable:
        """Record a fetch of ``link``; the returned ``Durable`` completes once it is
        stored."""

    def clicks_of(self, message_id: str) -> list[LinkClicks]:
        """Each link of a message with its clicks (bots not counted), in URL order."""
