"""Opt-out keywords in inbound messages: STOP, START and HELP, and what each one does.

An inbound (MO) message whose whole text, case-insensitive and with surrounding whitespace
and punctuation ignored, is one of the owning tenant's ``stop_keywords`` opts its sender out
of that tenant's messages; one of ``start_keywords`` opts it back in; one of
``help_keywords`` asks for help (http-api.md, "Two-way, consent and opt-out"). The sender
gets the tenant's reply text (``stop_reply``/``start_reply``/``help_reply``, defaults naming
the tenant) as a message from the number it wrote to, through the operator the inbound came
from; a change of consent is a record (``routing.consent``) and a ``contact.opted_out`` /
``contact.opted_in`` event for the tenant, all in one group commit. The inbound message
itself still reaches the tenant as any other.

A start keyword from a number that is not opted out changes nothing and gets no reply ("YES"
is an ordinary answer too); a stop keyword is confirmed every time.
"""

from __future__ import annotations

import logging
import unicodedata
from typing import Final, Literal, Protocol

from config import TenantConfig
from encoding.errors import SmppError
from encoding.text import decode_text, encode_text, gsm7_fits

from .consent import OPTED_IN, OPTED_OUT, Consent, State, normalise
from .events import ConsentEvent, MoEvent, TenantEvent
from .model import Message
from .repository import Durable, MessageRecord

__all__ = ["Keywords", "KeywordKind", "ReplySink", "match_keyword", "reply_text"]

log = logging.getLogger(__name__)
KeywordKind = Literal["stop", "start", "help"]
_LONGEST: Final = 40  # longer texts are not keywords (nothing to normalise)
_DEFAULTS: Final[dict[KeywordKind, str]] = {
    "stop": "{tenant}: you are unsubscribed and will get no more messages. "
            "Reply START to subscribe again.",
    "start": "{tenant}: you are subscribed again. Reply STOP to unsubscribe.",
    "help": "{tenant}: reply STOP to unsubscribe, START to subscribe again.",
}


class ReplySink(Protocol):
    """Where a keyword's reply goes once stored (the router)."""

    def reply(self, message: Message, operator: str) -> None: ...

    def publish(self, tenant: str, events: list[TenantEvent], now: float) -> Durable: ...


def _trim(text: str) -> str:
    """``text`` without surrounding whitespace and punctuation (Unicode categories P*, Z*,
    and control characters)."""
    def edge(c: str) -> bool:
        return c.isspace() or unicodedata.category(c)[0] in "PZC"

    start, end = 0, len(text)
    while start < end and edge(text[start]):
        start += 1
    while end > start and edge(text[end - 1]):
        end -= 1
    return text[start:end]


def match_keyword(text: str, tenant: TenantConfig) -> KeywordKind | None:
    """Which of ``tenant``'s keyword lists the whole of ``text`` is in, if any."""
    if len(text) > _LONGEST:
        return None
    word = _trim(text).upper()
    if not word:
        return None
    if any(word == k.upper() for k in tenant.stop_keywords):
        return "stop"
    if any(word == k.upper() for k in tenant.start_keywords):
        return "start"
    if any(word == k.upper() for k in tenant.help_keywords):
        return "help"
    return None


def reply_text(kind: KeywordKind, tenant: TenantConfig) -> str:
    configured = {"stop": tenant.stop_reply, "start": tenant.start_reply,
                  "help": tenant.help_reply}[kind]
    return configured or _DEFAULTS[kind].format(tenant=tenant.system_id)


class Keywords:
    """Acts on the keywords of inbound messages (called by ``Inbound`` for each whole one)."""

    def __init__(self, consent: Consent, record: MessageRecord, sink: ReplySink) -> None:
        self.consent = consent
        self.record = record
        self.sink = sink
        self.seen: dict[KeywordKind, int] = {"stop": 0, "start": 0, "help": 0}

    def handle(self, tenant: TenantConfig, event: MoEvent, now: float) -> KeywordKind | None:
        """Act on ``event`` if its text is a keyword of ``tenant``; which one it was."""
        if len(event.body) > _LONGEST * 2:
            return None  # cheap first: no keyword is this long in any coding
        try:
            text = decode_text(event.body, event.data_coding)
        except SmppError:
            return None
        kind = match_keyword(text, tenant)
        if kind is None:
            return None
        self.seen[kind] += 1
        number = normalise(event.source_addr)
        changed = False
        if kind != "help":
            state: State = OPTED_OUT if kind == "stop" else OPTED_IN
            detail = _trim(text).upper()
            record, _ = self.consent.change(tenant.system_id, number, state, "keyword", now,
                                            detail=detail, inbound_id=event.inbound_id)
            if record is not None:
                changed = True
                self.sink.publish(tenant.system_id, [ConsentEvent(
                    number=number, state=state, source="keyword", detail=detail,
                    inbound_id=event.inbound_id, at=now)], now)
        if kind == "start" and not changed:
            return kind
        self._reply(tenant, event, reply_text(kind, tenant), now)
        return kind

    def _reply(self, tenant: TenantConfig, mo: MoEvent, text: str, now: float) -> None:
        """The reply as a message of ``tenant`` from the number it was written to, queued on
        the operator the inbound came from once stored (it needs no admission: it answers
        the number, opted out or not, and asks for no receipt)."""
        if gsm7_fits(text) and tenant.dcs0 == "gsm7":
            body, coding = encode_text(text, 0x00), 0x00
        else:
            body, coding = encode_text(text, 0x08), 0x08
        m = Message(
            id=self.record.new_message_id(), tenant=tenant.system_id,
            source_addr=mo.destination_addr.removeprefix("+"),
            source_addr_ton=mo.dest_addr_ton, source_addr_npi=mo.dest_addr_npi,
            destination_addr=mo.source_addr.removeprefix("+"),
            dest_addr_ton=mo.source_addr_ton, dest_addr_npi=mo.source_addr_npi,
            data_coding=coding, body=body, created_at=now, reference="keyword-reply")
        operator = mo.operator

        def stored(fut: object) -> None:
            if getattr(fut, "exception", lambda: None)() is None:
                self.sink.reply(m, operator)
            else:
                log.error("reply to a keyword from %s could not be stored", operator)

        self.record.accept([m], now).add_done_callback(stored)
