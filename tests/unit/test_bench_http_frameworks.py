"""The shared work of ``bench.http_frameworks`` on one body, without servers or timing: both
frameworks must do the same thing, so the handler logic and the models are checked here."""

from __future__ import annotations

import itertools

import msgspec
import pytest

from bench.http_frameworks import (
    TOKEN,
    BadRequest,
    SendRequest,
    SendResponse,
    accept,
    authorized,
    body_for,
    litestar_app,
)


def _request(**message: object) -> SendRequest:
    spec = {"originator": "SignOTP", "recipients": ["+15550000001"], "content": "hi", **message}
    return msgspec.json.decode(msgspec.json.encode({"messages": [spec]}), type=SendRequest)


def test_bench_body_gives_one_accepted_result_per_recipient_in_order() -> None:
    req = msgspec.json.decode(body_for(3), type=SendRequest)
    resp = accept(req, itertools.count(1))
    assert [m.recipient for m in resp.messages] == ["+15550000000", "+15550000001", "+15550000002"]
    assert [m.id for m in resp.messages] == ["m_000000000001", "m_000000000002", "m_000000000003"]
    assert {(m.status, m.parts, m.encoding) for m in resp.messages} == {("accepted", 1, "gsm7")}
    assert resp.request_id == "r_000000000004" and resp.status == "accepted"
    decoded = msgspec.json.decode(msgspec.json.encode(resp), type=SendResponse)
    assert decoded.messages == resp.messages


def test_placeholders_are_filled_per_recipient_and_a_missing_one_names_both() -> None:
    req = _request(content="Hi {{ name }}, code {{code}}" + "x" * 140,
                   recipients=[{"to": "+1", "vars": {"name": "Ann", "code": "12"}}])
    assert accept(req).messages[0].parts == 1  # 155 septets filled in, 168 as written
    with pytest.raises(BadRequest, match=r"\+2.*code"):
        accept(_request(content="{{code}}", recipients=[{"to": "+2", "vars": {}}]))


def test_encoding_and_parts_follow_data_coding() -> None:
    assert accept(_request(content="€" * 80)).messages[0].parts == 1  # 160 septets
    assert accept(_request(content="€" * 81)).messages[0].parts == 2  # an escape pair each
    ucs2 = accept(_request(content="Привет" * 12)).messages[0]
    assert (ucs2.encoding, ucs2.parts) == ("ucs2", 2)
    forced = accept(_request(data_coding="unicode")).messages[0]
    assert (forced.encoding, forced.parts) == ("ucs2", 1)
    with pytest.raises(BadRequest, match="GSM-7"):
        accept(_request(content="🙂", data_coding="text"))


def test_requests_are_strict() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        _request(colour="red")
    with pytest.raises(msgspec.ValidationError):
        _request(recipients=[])
    with pytest.raises(msgspec.ValidationError):
        _request(msg_type="binary")


def test_bearer_token_is_checked_by_its_hash() -> None:
    assert authorized(f"Bearer {TOKEN}")
    assert not authorized(f"Bearer {TOKEN}x")
    assert not authorized(TOKEN)
    assert not authorized(None)


def test_litestar_documents_the_same_structs() -> None:
    schema = litestar_app().openapi_schema.to_schema()
    body = schema["paths"]["/v1/messages"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/SendRequest"}
    assert {"SendRequest", "MessageSpec", "Recipient", "SendResponse"} <= set(
        schema["components"]["schemas"])
