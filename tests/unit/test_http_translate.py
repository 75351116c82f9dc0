"""Send planning of the HTTP door (``smsc.http.translate``): a JSON send request into
submissions, every problem named with its JSON pointer.

Pure functions: the time is an argument, the route's first operator is a lambda; no sockets,
no event loop. Request bodies go through JSON and msgspec exactly as the API decodes them.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import msgspec
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from config import OperatorConfig, TenantConfig
from encoding.constants import RegisteredDelivery
from encoding.smpptime import format_smpp_time
from encoding.text import decode_text
from routing.submission import Door
from smsc.http.models import FieldProblem, MessageSpec, SendRequest
from smsc.http.translate import Plan, Planned, Refused, fill, normalise_number, plan_request
from tests.httpkit import SEED_REQUEST

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
TO = "+447700900100"
SECRET = "whsec_" + "A" * 32
ACME = TenantConfig(system_id="acme", webhook_secret=SECRET)  # report_url needs a secret
SENDERS = TenantConfig(system_id="acme", senders=("ACME", "+447700900200"),
                       webhook_secret=SECRET)

# The example body of http-api.md, "Sending", character for character.


def operator(**kw: Any) -> OperatorConfig:
    base: dict[str, Any] = dict(name="op1", host="127.0.0.1", port=2775, system_id="gw",
                                password="pw")
    base.update(kw)
    return OperatorConfig(**base)


def plan(body: dict[str, Any] | str, tenant: TenantConfig = ACME, now: float = NOW,
         op: OperatorConfig | None = None) -> Plan:
    raw = body if isinstance(body, str) else json.dumps(body)
    req = msgspec.json.decode(raw, type=SendRequest)
    return plan_request(req, tenant, now, operator_for=lambda destination: op)


def one(content: str, **fields: Any) -> dict[str, Any]:
    """A body of one message with ``content`` to TO."""
    return {"messages": [{"recipients": [TO], "content": content, **fields}]}


def planned(p: Plan) -> list[Planned]:
    assert p.problems == [] and p.forbidden == [], (p.problems, p.forbidden)
    out = [e for e in p.entries if isinstance(e, Planned)]
    assert out, p.entries
    return out


def single(body: dict[str, Any], **kw: Any) -> Planned:
    (entry,) = planned(plan(body, **kw))
    return entry


def codes(problems: list[FieldProblem]) -> list[tuple[str, str]]:
    return [(p.pointer, p.code) for p in problems]


# --- the contract's example ---------------------------------------------------------------


def test_the_contracts_example_body_plans_one_gsm7_message() -> None:
    p = plan(SEED_REQUEST)
    (entry,) = planned(p)
    assert (entry.index, entry.parts, entry.encoding) == (0, 1, "gsm7")
    s = entry.submission
    assert (s.source_addr, s.source_addr_ton, s.source_addr_npi) == ("SignOTP", 5, 0)
    assert (s.destination_addr, s.dest_addr_ton, s.dest_addr_npi) == ("1234567890", 1, 1)
    assert s.data_coding == 0x00
    assert decode_text(s.body, s.data_coding) == "Your verification code is 4821"
    assert s.registered_delivery == RegisteredDelivery.RECEIPT_ALWAYS == 1
    assert s.door is Door.HTTP
    assert s.tenant == "acme"
    assert s.reference == "batch-7"  # client_ref of message_globals
    assert s.report_url == "https://..."
    assert s.validity_period == ""  # no validity_s: the operator's default


# --- personalisation ------------------------------------------------------------------------


def test_placeholders_are_filled_from_each_recipients_vars() -> None:
    p = plan({"messages": [{
        "recipients": [{"to": TO, "vars": {"name": "Ann"}},
                       {"to": "+447700900101", "vars": {"name": "Bob", "unused": "x"}}],
        "content": "Hi {{name}}, hi {{ name }}!"}]})
    texts = [decode_text(e.submission.body, e.submission.data_coding) for e in planned(p)]
    assert texts == ["Hi Ann, hi Ann!", "Hi Bob, hi Bob!"]


def test_a_missing_variable_names_the_recipient_and_the_variable() -> None:
    p = plan({"messages": [{
        "recipients": [{"to": TO, "vars": {"name": "Ann"}}, {"to": "+447700900101"}],
        "content": "Hi {{name}}"}]})
    assert codes(p.problems) == [("/messages/0/recipients/1", "missing_variable")]
    assert "{{name}}" in p.problems[0].detail


def test_every_missing_variable_of_the_request_is_reported_at_once() -> None:
    p = plan({"messages": [
        {"recipients": [{"to": TO, "vars": {"a": "1"}}, {"to": "+447700900101"},
                        {"to": "+447700900102", "vars": {"a": "1", "b": "2"}}],
         "content": "{{a}} {{b}}"},
        {"recipients": ["+447700900103", {"to": TO, "vars": {"c": "3"}}],
         "content": "{{c}}"},
    ]})
    assert codes(p.problems) == [
        ("/messages/0/recipients/0", "missing_variable"),
        ("/messages/0/recipients/1", "missing_variable"),
        ("/messages/1/recipients/0", "missing_variable"),
    ]
    assert "{{b}}" in p.problems[0].detail and "{{a}}" not in p.problems[0].detail
    assert "{{a}}" in p.problems[1].detail and "{{b}}" in p.problems[1].detail
    assert "{{c}}" in p.problems[2].detail


def test_fill() -> None:
    assert fill("Hi {{name}} ({{ id }})", {"name": "Ann", "id": "7"}) == "Hi Ann (7)"
    assert fill("{{a}}{{b}}{{a}}", {}) == ["a", "b", "a"]
    assert fill("no placeholders, {single} {{ }}", {}) == "no placeholders, {single} {{ }}"
    assert fill("{{x}}", {"x": "{{y}}"}) == "{{y}}"  # values are not filled again


# --- encoding ------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "data_coding", "encoding"), [
    ("plain ascii", "auto", "gsm7"),
    ("price 5€ [ok] ~ {x} | \\ ^", "auto", "gsm7"),  # extension characters are GSM-7
    ("Ångström é ñ ü Ø £ ¥ ¿ ¡", "auto", "gsm7"),
    ("Жук", "auto", "ucs2"),
    ("thumbs 👍", "auto", "ucs2"),
    ("€ is GSM", "text", "gsm7"),
    ("plain ascii", "unicode", "ucs2"),
])
def test_data_coding_choice(content: str, data_coding: str, encoding: str) -> None:
    entry = single(one(content, data_coding=data_coding))
    assert entry.encoding == encoding
    s = entry.submission
    assert s.data_coding == (0x00 if encoding == "gsm7" else 0x08)
    assert decode_text(s.body, s.data_coding) == content


def test_default_data_coding_is_auto() -> None:
    assert single(one("Жук")).encoding == "ucs2"
    assert single(one("plain")).encoding == "gsm7"


@pytest.mark.parametrize("dcs0", ["latin1", "ascii"])
def test_a_tenant_whose_dcs0_is_a_charset_keeps_text_that_fits_it(
        dcs0: Literal["latin1", "ascii"]) -> None:
    tenant = TenantConfig(system_id="acme", dcs0=dcs0)
    s = single(one("plain text"), tenant=tenant).submission
    assert (s.data_coding, s.body) == (0x00, b"plain text")  # DCS 0 in the tenant's meaning
    s = single(one("Жук"), tenant=tenant).submission
    assert s.data_coding == 0x08


def test_text_coding_is_gsm7_whatever_the_tenants_dcs0() -> None:
    # "€" is GSM-7 (ESC 0x65); the contract: "text" is GSM-7, a 400 only if a character
    # does not fit. For a dcs0 = "latin1" tenant _encode falls back to UCS-2 because "€" is
    # not Latin-1, though the caller asked for GSM-7 and the text fits it.
    entry = single(one("5€", data_coding="text"),
                   tenant=TenantConfig(system_id="acme", dcs0="latin1"))
    assert entry.encoding == "gsm7"


def test_ucs2_body_is_utf16be_with_surrogate_pairs() -> None:
    s = single(one("Ж👍", data_coding="auto")).submission
    assert s.body == "Ж👍".encode("utf-16-be") == b"\x04\x16\xd8\x3d\xdc\x4d"


@pytest.mark.parametrize("content", ["Жук", "emoji 👍"])
def test_text_coding_refuses_a_character_outside_gsm7(content: str) -> None:
    p = plan(one(content, data_coding="text"))
    assert codes(p.problems) == [("/messages/0/content", "not_gsm7")]
    assert p.entries == []


def test_not_gsm7_after_personalisation_points_at_the_recipient() -> None:
    p = plan({"messages": [{"recipients": [{"to": TO, "vars": {"n": "Ann"}},
                                           {"to": "+447700900101", "vars": {"n": "Жанна"}}],
                            "content": "Hi {{n}}", "data_coding": "text"}]})
    assert codes(p.problems) == [("/messages/0/recipients/1", "not_gsm7")]


# --- parts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "parts"), [
    ("a", 1),
    ("a" * 160, 1),
    ("a" * 161, 2),
    ("a" * 306, 2),  # 2 x 153
    ("a" * 307, 3),
    ("€" * 80, 1),  # 160 septets: extension characters count two
    ("€" * 81, 2),
    ("a" * 159 + "€", 2),  # 161 septets
    ("Ж" * 70, 1),
    ("Ж" * 71, 2),
    ("Ж" * 134, 2),  # 2 x 67
    ("Ж" * 135, 3),
    ("👍" * 35, 1),  # 70 UTF-16 units
    ("👍" * 36, 2),
])
def test_parts_with_8_bit_reference_headers(content: str, parts: int) -> None:
    assert single(one(content)).parts == parts
    assert single(one(content), op=operator(split="udh8")).parts == parts


@pytest.mark.parametrize(("content", "udh8", "udh16"), [
    ("a" * 160, 1, 1),
    ("a" * 304, 2, 2),  # 2 x 152
    ("a" * 305, 2, 3),
    ("a" * 306, 2, 3),
    ("Ж" * 132, 2, 2),  # 2 x 66
    ("Ж" * 133, 2, 3),
])
def test_parts_follow_the_operators_split(content: str, udh8: int, udh16: int) -> None:
    assert single(one(content), op=operator(split="udh8")).parts == udh8
    assert single(one(content), op=operator(split="udh16")).parts == udh16
    assert single(one(content), op=operator(split="sar")).parts == udh16  # 16-bit limits
    assert single(one(content), op=operator(split="payload")).parts == udh8


def test_an_escape_pair_is_never_cut_so_parts_count_septets() -> None:
    # '€' is septets 153-154 (ESC, code): the first part of 153 ends before the ESC, so the
    # second part starts at the escape pair.
    assert single(one("a" * 152 + "€" + "a" * 151)).parts == 2  # 152 + 153 septets
    # 306 septets would fill two parts exactly, but not with the pair kept whole.
    assert single(one("a" * 152 + "€" + "a" * 152)).parts == 3


def test_more_parts_than_the_operator_takes_is_content_too_long() -> None:
    op = operator(max_parts=2)
    assert single(one("a" * 306), op=op).parts == 2
    p = plan(one("a" * 307), op=op)
    assert codes(p.problems) == [("/messages/0/content", "content_too_long")]
    assert p.entries == []


def test_more_than_255_parts_is_content_too_long_without_a_route() -> None:
    assert single(one("a" * 255 * 153)).parts == 255
    p = plan(one("a" * (255 * 153 + 1)))
    assert codes(p.problems) == [("/messages/0/content", "content_too_long")]


def test_content_too_long_after_personalisation_points_at_the_recipient() -> None:
    p = plan({"messages": [{"recipients": [{"to": TO, "vars": {"x": "short"}},
                                           {"to": "+447700900101", "vars": {"x": "a" * 400}}],
                            "content": "{{x}}"}]}, op=operator(max_parts=2))
    assert codes(p.problems) == [("/messages/0/recipients/1", "content_too_long")]


# --- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "digits"), [
    ("+447700900100", "447700900100"),
    ("447700900100", "447700900100"),  # a missing '+' is tolerated
    (" +447700900100 ", "447700900100"),
    ("+1234567890", "1234567890"),
    ("abc", None),
    ("+123", None),  # too short
    ("+999999999999", None),  # no such country calling code
    ("+1234567890123456", None),  # 16 digits: longer than E.164
    ("+44 7700 900100", None),
    ("+٤٤٧٧٠٠٩٠٠١٠٠", None),  # Arabic-Indic digits are digits, but not ASCII
    ("", None),
    ("+", None),
])
def test_normalise_number(text: str, digits: str | None) -> None:
    assert normalise_number(text) == digits


def test_invalid_numbers_are_refused_alone_in_request_order() -> None:
    p = plan({"messages": [
        {"recipients": ["abc", TO, "+123"], "content": "one", "client_ref": "r1"},
        {"recipients": ["447700900101", {"to": "+999999999999"}], "content": "two"},
    ]})
    assert p.problems == [] and p.forbidden == []
    assert [e.index for e in p.entries] == [0, 1, 2, 3, 4]
    kinds = [type(e).__name__ for e in p.entries]
    assert kinds == ["Refused", "Planned", "Refused", "Planned", "Refused"]
    refused = [e for e in p.entries if isinstance(e, Refused)]
    assert [(r.recipient, r.error.code, r.pointer) for r in refused] == [
        ("abc", "invalid_number", "/messages/0/recipients/0"),
        ("+123", "invalid_number", "/messages/0/recipients/2"),
        ("+999999999999", "invalid_number", "/messages/1/recipients/1"),
    ]
    assert [r.client_ref for r in refused] == ["r1", "r1", None]
    ok = [e for e in p.entries if isinstance(e, Planned)]
    assert [e.submission.destination_addr for e in ok] == ["447700900100", "447700900101"]


# --- originator ----------------------------------------------------------------------------


def test_an_originator_outside_senders_is_forbidden() -> None:
    p = plan(one("x", originator="OTHER"), SENDERS)
    assert codes(p.forbidden) == [("/messages/0/originator", "sender_not_allowed")]
    assert p.problems == []


def test_without_an_originator_the_first_sender_is_used() -> None:
    s = single(one("x"), tenant=SENDERS).submission
    assert (s.source_addr, s.source_addr_ton) == ("ACME", 5)


@pytest.mark.parametrize("originator", ["+447700900200", "447700900200"])
def test_a_number_sender_matches_with_or_without_plus(originator: str) -> None:
    s = single(one("x", originator=originator), tenant=SENDERS).submission
    assert (s.source_addr, s.source_addr_ton, s.source_addr_npi) == ("447700900200", 1, 1)


def test_without_senders_any_originator_goes() -> None:
    s = single(one("x", originator="Whatever")).submission
    assert (s.source_addr, s.source_addr_ton) == ("Whatever", 5)
    s = single(one("x")).submission
    assert (s.source_addr, s.source_addr_ton, s.source_addr_npi) == ("", 0, 0)


@pytest.mark.parametrize(("originator", "addr", "ton", "npi"), [
    ("12345", "12345", 3, 0),  # a short code
    ("+12345", "12345", 1, 1),
    ("447700900100", "447700900100", 1, 1),
    ("Shop 24", "Shop 24", 5, 0),
])
def test_originator_ton_and_npi(originator: str, addr: str, ton: int, npi: int) -> None:
    s = single(one("x", originator=originator)).submission
    assert (s.source_addr, s.source_addr_ton, s.source_addr_npi) == (addr, ton, npi)


def test_an_alphanumeric_originator_over_11_characters_is_a_problem() -> None:
    p = plan(one("x", originator="TwelveLetter"))
    assert codes(p.problems) == [("/messages/0/originator", "invalid_originator")]


# quiet_hours: tests/unit/test_http_quiet_hours.py; a future send_at:
# tests/unit/test_schedule.py


def test_an_unknown_template_is_named_and_its_recipients_keep_their_places() -> None:
    p = plan({"messages": [{"recipients": [TO, "+447700900101"], "template": "t"},
                           {"recipients": [TO], "content": "x"}]})
    assert codes(p.problems) == [("/messages/0/template", "unknown_template")]
    # The second message's recipient keeps its place in request order.
    assert [e.index for e in p.entries] == [2]


def test_neither_content_nor_template_is_a_missing_field() -> None:
    p = plan({"messages": [{"recipients": [TO]}]})
    assert codes(p.problems) == [("/messages/0/content", "missing_field")]


@pytest.mark.parametrize("fields", [
    {"send_at": "2020-01-01T00:00:00Z"},  # in the past: now
    {"send_at": "2027-01-15T08:00:00Z"},  # exactly now
    {"send_at": "2027-01-15T09:00:00+01:00"},  # 08:00 UTC: now, in another offset
    {"track_links": False},
])
def test_past_send_at_and_track_links_false_are_accepted(fields: dict[str, Any]) -> None:
    entry = single(one("x", **fields))
    assert entry.submission.schedule_delivery_time == ""


def test_problems_of_globals_point_at_them_once() -> None:
    p = plan({"messages": [{"recipients": [TO], "content": "a"},
                           {"recipients": [TO], "content": "b"}],
              "message_globals": {"originator": "ABCDEFGHIJKLM"}})
    # one problem, where the field is, for all the messages that inherit it
    assert codes(p.problems) == [("/message_globals/originator", "invalid_originator")]


def test_a_report_url_needs_the_accounts_webhook_secret() -> None:
    body = {"messages": [{"recipients": [TO], "content": "a",
                          "report_url": "https://own.example/r"}]}
    p = plan(body, tenant=TenantConfig(system_id="acme"))
    assert codes(p.problems) == [("/messages/0/report_url", "no_webhook_secret")]
    assert plan(body).problems == []


# --- globals, validity ---------------------------------------------------------------------


def test_globals_fill_what_a_message_lacks_and_never_override_it() -> None:
    p = plan({"messages": [
        {"recipients": [TO], "content": "own", "originator": "Mine", "client_ref": "own-ref",
         "report_url": "https://own.example/r", "data_coding": "auto"},
        {"recipients": [TO], "content": "Жук"},
    ], "message_globals": {"originator": "Global", "client_ref": "g-ref",
                           "report_url": "https://global.example/r", "content": "ignored",
                           "data_coding": "unicode", "validity_s": 60}})
    first, second = (e.submission for e in planned(p))
    assert (first.source_addr, first.reference, first.report_url) == (
        "Mine", "own-ref", "https://own.example/r")
    assert decode_text(first.body, first.data_coding) == "own"
    assert first.data_coding == 0x00  # its own "auto", not the global "unicode"
    assert first.validity_period == second.validity_period == format_smpp_time(NOW + 60)
    assert (second.source_addr, second.reference, second.report_url) == (
        "Global", "g-ref", "https://global.example/r")
    assert decode_text(second.body, second.data_coding) == "Жук"
    assert second.data_coding == 0x08


def test_global_content_fills_a_message_without_content() -> None:
    s = single({"messages": [{"recipients": [TO]}], "message_globals": {"content": "shared"}})
    assert decode_text(s.submission.body, s.submission.data_coding) == "shared"


def test_validity_s_gives_a_validity_period() -> None:
    s = single(one("x", validity_s=3600)).submission
    assert s.validity_period == format_smpp_time(NOW + 3600) == "270115090000000+"


# --- property ------------------------------------------------------------------------------


ROUTES = [None, operator(max_parts=1), operator(split="udh16", max_parts=2)]


@settings(max_examples=300, deadline=None)
@given(st.text(), st.sampled_from(ROUTES))
def test_auto_coding_plans_the_text_losslessly_or_says_why_not(
        text: str, op: OperatorConfig | None) -> None:
    assume(not isinstance(fill(text, {}), list))  # "{{x}}" would need a value
    req = SendRequest(messages=[MessageSpec(recipients=[TO], content=text, data_coding="auto")])
    p = plan_request(req, ACME, NOW, operator_for=lambda destination: op)
    if p.problems:
        assert [q.code for q in p.problems] == ["content_too_long"]
        return
    (entry,) = planned(p)
    s = entry.submission
    assert decode_text(s.body, s.data_coding) == text
    assert entry.encoding == ("gsm7" if s.data_coding == 0x00 else "ucs2")
    assert 1 <= entry.parts <= 255
