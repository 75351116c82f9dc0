"""Request models of the HTTP API and its problem+json errors (``smsc.http.models``,
``smsc.http.problems``): the contract's bodies decode, unknown fields are refused, and one
400 names every bad field with its RFC 6901 pointer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from smsc.http.models import (
    MessageGlobals,
    MessageSpec,
    Recipient,
    RecipientResult,
    SendRequest,
    SendResponse,
)
from smsc.http.problems import ApiError, field_problems, pointer, problem_of
from tests.httpkit import SEED_REQUEST

# http-api.md, "Sending": the request body and the 200 answer, as given.
CONTRACT_RESPONSE = """\
{
  "request_id": "r_...",
  "status": "accepted",
  "created_at": "2026-12-03T10:00:00Z",
  "messages": [
    {"id": "…", "recipient": "+1234567890", "status": "accepted", "parts": 1, "encoding": "gsm7"},
    {"id": null, "recipient": "+1234567891", "status": "rejected", "error": {"code": "opted_out", "detail": "..."}}
  ]
}
"""  # noqa: E501


def problems(raw: Any) -> list[tuple[str, str]]:
    return [(p.pointer, p.code) for p in field_problems(raw, SendRequest)]


def good(**fields: Any) -> dict[str, Any]:
    return {"recipients": ["+447700900100"], "content": "x", **fields}


# --- models --------------------------------------------------------------------------------


def test_the_contracts_example_request_decodes() -> None:
    req = msgspec.json.decode(SEED_REQUEST, type=SendRequest)
    assert req == SendRequest(
        messages=[MessageSpec(originator="SignOTP", recipients=["+1234567890"],
                              content="Your verification code is 4821", msg_type="text",
                              data_coding="text")],
        message_globals=MessageGlobals(report_url="https://...", client_ref="batch-7"))
    assert field_problems(json.loads(SEED_REQUEST), SendRequest) == []


def test_the_contracts_example_response_decodes() -> None:
    resp = msgspec.json.decode(CONTRACT_RESPONSE, type=SendResponse)
    assert resp.created_at == datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    accepted, rejected = resp.messages
    assert accepted == RecipientResult(id="…", recipient="+1234567890", status="accepted",
                                       parts=1, encoding="gsm7")
    assert (rejected.id, rejected.status, rejected.error is not None
            and rejected.error.code) == (None, "rejected", "opted_out")


def test_recipients_may_be_numbers_or_objects_with_vars() -> None:
    req = msgspec.json.decode(json.dumps({"messages": [{"recipients": [
        "+447700900100", {"to": "+447700900101", "vars": {"name": "Ann"}},
        {"to": "447700900102"}], "content": "Hi {{name}}"}]}), type=SendRequest)
    assert req.messages[0].recipients == [
        "+447700900100", Recipient(to="+447700900101", vars={"name": "Ann"}),
        Recipient(to="447700900102")]


def test_options_left_out_are_none_so_globals_can_fill_them() -> None:
    spec = msgspec.json.decode(b'{"recipients": ["+447700900100"]}', type=MessageSpec)
    assert all(getattr(spec, f.name) is None for f in msgspec.structs.fields(MessageGlobals))


@pytest.mark.parametrize("body", [
    {"messages": [good()], "extra": 1},
    {"messages": [good(colour="red")]},
    {"messages": [good()], "message_globals": {"flash": True}},
    {"messages": [{"recipients": [{"to": "+447700900100", "name": "Ann"}], "content": "x"}]},
    {"messages": [good(quiet_hours={"start": "21:00", "end": "08:00", "tz": "UTC"})]},
])
def test_unknown_fields_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.json.decode(json.dumps(body), type=SendRequest)
    assert [code for _, code in problems(body)] == ["unknown_field"]


# --- field_problems ------------------------------------------------------------------------


def test_a_valid_body_has_no_problems() -> None:
    assert field_problems({"messages": [good(), {
        "recipients": [{"to": "+447700900101", "vars": {"a": "b"}}], "content": "{{a}}",
        "data_coding": "unicode", "validity_s": 60, "send_at": "2027-01-01T00:00:00Z",
        "quiet_hours": {"start": "21:00", "end": "08:00"}, "track_links": False,
        "report_url": "http://hooks.example/r", "client_ref": "c" * 64}],
        "message_globals": {"originator": "ACME"}}, SendRequest) == []


def test_every_bad_field_of_every_message_is_named_at_once() -> None:
    body = {
        "messages": [
            {"recipients": [], "content": 5, "colour": "red", "data_coding": "klingon"},
            {"content": "no recipients"},
            {"recipients": ["+447700900100", 7, "", {"vars": {}}, {"to": "+1", "x": 1}],
             "content": "x", "validity_s": 0, "send_at": "tomorrow",
             "quiet_hours": {"start": "25:00", "end": "08:00"}, "track_links": "yes",
             "report_url": "ftp://x", "client_ref": "c" * 65, "msg_type": "binary"},
        ],
        "message_globals": {"data_coding": "auto", "originator": "", "extra": True},
        "top": None,
    }
    assert sorted(problems(body)) == sorted([
        ("/top", "unknown_field"),
        ("/messages/0/colour", "unknown_field"),
        ("/messages/0/content", "invalid_value"),  # wrong type
        ("/messages/0/data_coding", "invalid_value"),  # bad enum
        ("/messages/0/recipients", "invalid_value"),  # an empty list
        ("/messages/1/recipients", "missing_field"),
        ("/messages/2/recipients/1", "invalid_value"),  # a number, not a string
        # "" (recipients/2) is a string: checked per recipient later (invalid_number)
        ("/messages/2/recipients/3/to", "missing_field"),
        ("/messages/2/recipients/4/x", "unknown_field"),
        ("/messages/2/validity_s", "invalid_value"),
        ("/messages/2/send_at", "invalid_value"),
        ("/messages/2/quiet_hours/start", "invalid_value"),
        ("/messages/2/track_links", "invalid_value"),
        ("/messages/2/report_url", "invalid_value"),
        ("/messages/2/client_ref", "invalid_value"),
        ("/messages/2/msg_type", "invalid_value"),
        ("/message_globals/originator", "invalid_value"),
        ("/message_globals/extra", "unknown_field"),
    ])


def test_problems_say_what_is_wrong() -> None:
    by_pointer = {p.pointer: p for p in field_problems(
        {"messages": [{"recipients": [], "content": 5, "data_coding": "klingon"}]},
        SendRequest)}
    assert "int" in by_pointer["/messages/0/content"].detail
    assert "klingon" in by_pointer["/messages/0/data_coding"].detail
    assert "length >= 1" in by_pointer["/messages/0/recipients"].detail


@pytest.mark.parametrize(("raw", "expected"), [
    ({}, [("/messages", "missing_field")]),
    ({"messages": []}, [("/messages", "invalid_value")]),
    ({"messages": "hello"}, [("/messages", "invalid_value")]),
    ({"messages": [42]}, [("/messages/0", "invalid_value")]),
    ([], [("", "invalid_value")]),  # not an object at all: the whole document
    ("text", [("", "invalid_value")]),
    ({"messages": [good()], "message_globals": []}, [("/message_globals", "invalid_value")]),
])
def test_problems_of_the_outer_shape(raw: Any, expected: list[tuple[str, str]]) -> None:
    assert problems(raw) == expected


def test_a_field_name_with_slash_or_tilde_is_escaped_in_its_pointer() -> None:
    assert problems({"messages": [good(**{"a/b~c": 1})]}) == [
        ("/messages/0/a~1b~0c", "unknown_field")]


def test_a_bad_variable_value_points_at_its_key() -> None:
    body = {"messages": [{"recipients": [{"to": "+447700900100",
                                          "vars": {"name": 1, "code": 2}}], "content": "x"}]}
    assert problems(body) == [("/messages/0/recipients/0/vars/name", "invalid_value"),
                              ("/messages/0/recipients/0/vars/code", "invalid_value")]


def test_problems_against_a_nested_type_carry_the_base_pointer() -> None:
    quiet_hours = {f.name: f.type for f in msgspec.structs.fields(MessageSpec)}["quiet_hours"]
    got = field_problems({"start": "9pm"}, quiet_hours, "/messages/0/quiet_hours")
    assert [(p.pointer, p.code) for p in got] == [
        ("/messages/0/quiet_hours/start", "invalid_value"),
        ("/messages/0/quiet_hours/end", "missing_field")]
    assert field_problems(None, quiet_hours, "/x") == []  # optional


# --- pointer, problem_of -------------------------------------------------------------------


def test_pointer() -> None:
    assert pointer() == ""
    assert pointer("messages", 0, "recipients", 3) == "/messages/0/recipients/3"
    assert pointer("a/b", "m~n", "") == "/a~1b/m~0n/"
    assert pointer("~1") == "/~01"  # "~" first, so "~1" is not read back as "/"


def test_problem_of_a_400_names_the_fields() -> None:
    exc = ApiError(400, "invalid_request", "2 fields are invalid", errors=[
        *field_problems({"messages": [{"recipients": []}], "x": 1}, SendRequest)])
    doc = msgspec.json.decode(msgspec.json.encode(problem_of(exc)))
    assert doc == {
        "type": "urn:smsc:problem:invalid-request", "title": "Bad request",
        "status": 400, "code": "invalid_request", "detail": "2 fields are invalid",
        "errors": [
            {"pointer": "/x", "code": "unknown_field", "detail": "unknown field"},
            {"pointer": "/messages/0/recipients", "code": "invalid_value",
             "detail": "Expected `array` of length >= 1"},
        ]}


@pytest.mark.parametrize(("status", "code", "title"), [
    (401, "unauthorized", "Unauthorized"),
    (403, "sender_not_allowed", "Forbidden"),
    (429, "rate_limited", "Too many requests"),
    (503, "queue_full", "Service unavailable"),
    (418, "teapot", "Error"),
])
def test_problem_of_other_statuses(status: int, code: str, title: str) -> None:
    exc = ApiError(status, code, headers={"Retry-After": "1"})
    doc = msgspec.json.decode(msgspec.json.encode(problem_of(exc)))
    assert doc == {"type": "urn:smsc:problem:" + code.replace("_", "-"),
                   "title": title, "status": status, "code": code}  # no empty errors
    assert exc.headers == {"Retry-After": "1"}
    assert str(exc) == code  # no detail: the code
