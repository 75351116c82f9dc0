"""Bad input to the HTTP API: every mistake is a problem+json answer naming what is wrong.

One in-process gateway for the module (no operator: nothing here needs to reach one), with
a small ``max_body_bytes``. Checked against the contract (http-api.md, "Authentication and
errors" and "Sending"): each bad request gets ``application/problem+json`` with ``type``,
``title``, ``status``, ``detail`` and a stable ``code``; a 400 names every bad field at once
by JSON pointer (RFC 6901); nothing a client sends is ever answered with a 5xx. Auth: a
missing or unknown token is 401 with ``WWW-Authenticate: Bearer``, a token used from outside
the tenant's ``allowed_ips`` is 403; ``/health`` and the OpenAPI document need no token.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from config import AuthConfig, HttpConfig
from tests.conftest import GatewayThread, make_config
from tests.httpkit import api_client, api_tenant, message_body, post_json

pytestmark = pytest.mark.timeout(60)

TOKEN = "tok_acme_0123456789abcdef0123456789abcdef"
FAR_TOKEN = "tok_far_0123456789abcdef0123456789abcdef0"
PROBLEM = "application/problem+json"
MAX_BODY = 262_144  # 10,001 short numbers fit (about 170 kB); 300 kB do not
TO = "+447700900100"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    tmp: Path = tmp_path_factory.mktemp("http-errors")
    config = make_config(
        tmp, tenants=(
            api_tenant("acme", TOKEN, senders=("ACME", "+447700900200")),
            # a valid token that may only be used from 10.0.0.0/8 (the tests are 127.0.0.1)
            api_tenant("far", FAR_TOKEN, allowed_ips=("10.0.0.0/8",)),
        ),
        http=HttpConfig(host="127.0.0.1", port=0, max_body_bytes=MAX_BODY),
        # these tests send dozens of bad tokens from 127.0.0.1 on purpose: no bans here
        # (tests/integration/test_auth_guard.py covers them)
        auth=AuthConfig(max_auth_failures=0))
    g = GatewayThread(config)
    try:
        yield g
    finally:
        g.stop()
    assert not g.gateway.illegal_transitions


@pytest.fixture(scope="module")
def client(gw: GatewayThread) -> Iterator[httpx.Client]:
    with api_client(gw.gateway.http_port, TOKEN) as c:
        yield c


@pytest.fixture(scope="module")
def anonymous(gw: GatewayThread) -> Iterator[httpx.Client]:
    with api_client(gw.gateway.http_port, None) as c:
        yield c


def msg(**fields: Any) -> dict[str, Any]:
    """One valid message of the acme tenant, changed by ``fields`` (None removes one)."""
    m: dict[str, Any] = {"originator": "ACME", "recipients": [TO], "content": "hello"}
    m.update(fields)
    return {k: v for k, v in m.items() if v is not None}


def problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The problem+json body of ``r``, checked (RFC 9457 members plus ``code``)."""
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["content-type"].split(";")[0].strip() == PROBLEM, r.headers
    p = r.json()
    assert isinstance(p, dict), p
    assert p["status"] == status, p
    assert isinstance(p["type"], str) and p["type"], p
    assert isinstance(p["title"], str) and p["title"], p
    assert isinstance(p["detail"], str), p
    assert isinstance(p["code"], str) and p["code"].replace("_", "").isalnum(), p
    if code is not None:
        assert p["code"] == code, p
    for e in p.get("errors", []):
        assert set(e) >= {"pointer", "code", "detail"}, e
        assert e["pointer"] == "" or e["pointer"].startswith("/"), e
    return p


def pointers(p: dict[str, Any]) -> dict[str, str]:
    """pointer -> code of a problem's field errors."""
    out: dict[str, str] = {}
    for e in p.get("errors", []):
        out[e["pointer"]] = e["code"]
    return out


# --- 400: the body's fields, each named by pointer -------------------------------------------

INVALID = "invalid_value"
BAD_BODIES: list[tuple[str, Any, str, dict[str, str]]] = [
    ("wrong types, all named at once",
     {"messages": [msg(originator=5, recipients="x", content=["a"], validity_s="a",
                       data_coding=1)],
      "message_globals": {"client_ref": 7}},
     "invalid_request",
     {"/messages/0/originator": INVALID, "/messages/0/recipients": INVALID,
      "/messages/0/content": INVALID, "/messages/0/validity_s": INVALID,
      "/messages/0/data_coding": INVALID, "/message_globals/client_ref": INVALID}),
    ("unknown field at the top level", {"messages": [msg()], "foo": 1}, "invalid_request",
     {"/foo": "unknown_field"}),
    ("unknown field in a message", {"messages": [msg(), msg(bar=2)]}, "invalid_request",
     {"/messages/1/bar": "unknown_field"}),
    ("unknown field in a recipient object",
     {"messages": [msg(recipients=[TO, {"to": TO, "name": "Ann"}])]}, "invalid_request",
     {"/messages/0/recipients/1/name": "unknown_field"}),
    ("unknown field in message_globals", {"messages": [msg()], "message_globals": {"x": 1}},
     "invalid_request", {"/message_globals/x": "unknown_field"}),
    ("problems in two messages", {"messages": [msg(colour="red"), msg(validity_s=0)]},
     "invalid_request",
     {"/messages/0/colour": "unknown_field", "/messages/1/validity_s": INVALID}),
    ("a pointer escapes ~ and /", {"messages": [msg()], "a/b~c": 1}, "invalid_request",
     {"/a~1b~0c": "unknown_field"}),
    ("empty recipients", {"messages": [msg(recipients=[])]}, "invalid_request",
     {"/messages/0/recipients": INVALID}),
    ("no recipients", {"messages": [msg(recipients=None)]}, "invalid_request",
     {"/messages/0/recipients": "missing_field"}),
    ("empty messages", {"messages": []}, "invalid_request", {"/messages": INVALID}),
    ("no messages", {}, "invalid_request", {"/messages": "missing_field"}),
    ("messages not a list", {"messages": {}}, "invalid_request", {"/messages": INVALID}),
    ("the body an array", [msg()], "invalid_request", {"": INVALID}),
    ("the body a string", "hello", "invalid_request", {"": INVALID}),
    ("the body null", None, "invalid_request", {"": INVALID}),
    ("a recipient object without to", {"messages": [msg(recipients=[{"vars": {}}])]},
     "invalid_request", {"/messages/0/recipients/0/to": "missing_field"}),
    ("a recipient a number", {"messages": [msg(recipients=[TO, 447700900101])]},
     "invalid_request", {"/messages/0/recipients/1": INVALID}),
    ("a var not a string",
     {"messages": [msg(content="Hi {{name}}", recipients=[{"to": TO, "vars": {"name": 5}}])]},
     "invalid_request", {"/messages/0/recipients/0/vars/name": INVALID}),
    ("no content", {"messages": [msg(content=None)]}, "invalid_request",
     {"/messages/0/content": "missing_field"}),
    ("an alphanumeric originator of 12", {"messages": [msg(originator="ACMEACMEACME")]},
     "invalid_request", {"/messages/0/originator": "invalid_originator"}),
    ("an empty originator", {"messages": [msg(originator="")]}, "invalid_request",
     {"/messages/0/originator": INVALID}),
    ("client_ref of 65", {"messages": [msg()], "message_globals": {"client_ref": "x" * 65}},
     "invalid_request", {"/message_globals/client_ref": INVALID}),
    ("report_url not http", {"messages": [msg(report_url="ftp://127.0.0.1/x")]},
     "invalid_request", {"/messages/0/report_url": INVALID}),
    ("data_coding unknown", {"messages": [msg(data_coding="binary")]}, "invalid_request",
     {"/messages/0/data_coding": INVALID}),
    ("msg_type unknown", {"messages": [msg(msg_type="flash")]}, "invalid_request",
     {"/messages/0/msg_type": INVALID}),
    ("validity_s 0", {"messages": [msg(validity_s=0)]}, "invalid_request",
     {"/messages/0/validity_s": INVALID}),
    ("validity_s over a week", {"messages": [msg(validity_s=604_801)]}, "invalid_request",
     {"/messages/0/validity_s": INVALID}),
    ("send_at not a time", {"messages": [msg(send_at="tomorrow")]}, "invalid_request",
     {"/messages/0/send_at": INVALID}),
    ("quiet_hours malformed", {"messages": [msg(quiet_hours={"start": "25:00"})]},
     "invalid_request", {"/messages/0/quiet_hours/start": INVALID,
                         "/messages/0/quiet_hours/end": "missing_field"}),
    ("content over 255 parts", {"messages": [msg(content="a" * 40_000)]}, "invalid_request",
     {"/messages/0/content": "content_too_long"}),
    ("not GSM-7 with data_coding text",
     {"messages": [msg(content="Привет", data_coding="text")]}, "invalid_request",
     {"/messages/0/content": "not_gsm7"}),
    ("not GSM-7 (an emoji) with data_coding text from message_globals",
     {"messages": [msg(content="ok 👍")], "message_globals": {"data_coding": "text"}},
     "invalid_request", {"/messages/0/content": "not_gsm7"}),
    ("a missing variable names the recipient",
     {"messages": [msg(content="Hi {{name}}, code {{code}}",
                       recipients=[{"to": TO, "vars": {"name": "Ann", "code": "1"}},
                                   {"to": "+447700900101", "vars": {"code": "2"}}])]},
     "invalid_request", {"/messages/0/recipients/1": "missing_variable"}),
    ("a variable of a plain-number recipient",
     {"messages": [msg(content="Hi {{name}}", recipients=[TO])]}, "invalid_request",
     {"/messages/0/recipients/0": "missing_variable"}),
    ("an unknown template", {"messages": [msg(content=None, template="welcome")]},
     "invalid_request", {"/messages/0/template": "unknown_template"}),
    ("quiet_hours that are empty",
     {"messages": [msg(quiet_hours={"start": "21:00", "end": "21:00"})]}, "invalid_request",
     {"/messages/0/quiet_hours/end": "invalid_value"}),
    ("a send_at more than 366 days ahead",
     {"messages": [msg(send_at="2099-01-01T00:00:00+00:00")]}, "invalid_request",
     {"/messages/0/send_at": "invalid_send_at"}),
    ("every recipient an invalid number",
     {"messages": [msg(recipients=["not a number", "12", "+", "+999999999999"])]},
     "no_usable_recipient",
     {"/messages/0/recipients/0": "invalid_number", "/messages/0/recipients/1":
      "invalid_number", "/messages/0/recipients/2": "invalid_number",
      "/messages/0/recipients/3": "invalid_number"}),
]


@pytest.mark.parametrize(("body", "code", "want"), [c[1:] for c in BAD_BODIES],
                         ids=[c[0] for c in BAD_BODIES])
def test_bad_body_is_400_naming_each_field(client: httpx.Client, body: Any, code: str,
                                           want: dict[str, str]) -> None:
    p = problem(post_json(client, body), 400, code)
    assert pointers(p) == want, p


def test_track_links_false_and_a_past_send_at_are_fine(client: httpx.Client) -> None:
    r = post_json(client, {"messages": [msg(track_links=False,
                                            send_at="2001-01-01T00:00:00+00:00")]})
    assert r.status_code == 200, r.text


def test_problems_of_message_globals_point_into_message_globals(client: httpx.Client
                                                                ) -> None:
    p = problem(post_json(client, {"messages": [msg(originator=None)],
                                   "message_globals": {"originator": "ABCDEFGHIJKLM"}}), 400)
    assert pointers(p) == {"/message_globals/originator": "invalid_originator"}, p


def test_recipient_limit(client: httpx.Client) -> None:
    many = [f"+44770{i:07d}" for i in range(10_001)]
    p = problem(post_json(client, message_body(many, originator="ACME")), 400,
                "too_many_recipients")
    assert "10001" in p["detail"] or "10,001" in p["detail"], p
    # the limit counts every message's recipients together
    split = {"messages": [msg(recipients=many[:5001]), msg(recipients=many[5001:])]}
    problem(post_json(client, split), 400, "too_many_recipients")
    r = post_json(client, message_body(many[:10_000], originator="ACME"))
    assert r.status_code == 200, r.text[:300]
    assert len(r.json()["messages"]) == 10_000


def test_invalid_numbers_are_refused_alone(client: httpx.Client) -> None:
    numbers = [TO, "not a number", "447700900101", "+12", "+447700900102"]
    r = post_json(client, message_body(numbers, originator="ACME"))
    assert r.status_code == 200, r.text
    got = r.json()["messages"]
    assert [m["status"] for m in got] == ["accepted", "rejected", "accepted", "rejected",
                                         "accepted"]
    assert [m["recipient"] for m in got] == [TO, "not a number", "+447700900101", "+12",
                                            "+447700900102"]
    for m in got:
        if m["status"] == "rejected":
            assert m["id"] is None and m["error"]["code"] == "invalid_number", m
        else:
            assert m["id"] and m["error"] is None, m


# --- 403: the token may not do this ----------------------------------------------------------


def test_originator_outside_senders_is_403(client: httpx.Client) -> None:
    p = problem(post_json(client, {"messages": [msg(), msg(originator="Other")]}), 403,
                "sender_not_allowed")
    assert pointers(p) == {"/messages/1/originator": "sender_not_allowed"}, p
    for allowed in ("ACME", "+447700900200", "447700900200", None):  # None: senders[0]
        r = post_json(client, {"messages": [msg(originator=allowed)]})
        assert r.status_code == 200, (allowed, r.text)


def test_token_from_outside_allowed_ips_is_403(gw: GatewayThread) -> None:
    with api_client(gw.gateway.http_port, FAR_TOKEN) as far:
        problem(post_json(far, {"messages": [msg()]}), 403)
        problem(far.get("/v1/messages"), 403)


# --- 401: no token, or not one of ours -------------------------------------------------------

AUTHED = [("POST", "/v1/messages"), ("GET", "/v1/messages"), ("GET", "/v1/messages/1"),
          ("DELETE", "/v1/messages/1"), ("GET", "/v1/requests/r_x"), ("GET", "/v1/events")]


@pytest.mark.parametrize(("method", "path"), AUTHED)
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic YWNtZTpwdw==",
                                           "Bearer", "Token " + TOKEN])
def test_missing_or_unknown_token_is_401(anonymous: httpx.Client, method: str, path: str,
                                         authorization: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    r = anonymous.request(method, path, headers=headers, content=json.dumps(
        {"messages": [msg()]}) if method == "POST" else None)
    problem(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"].split()[0] == "Bearer", r.headers


@pytest.mark.parametrize("body", [b'{"bogus": 1}', b"{not json", b"\xff" * 10])
def test_no_token_is_401_whatever_the_body(anonymous: httpx.Client, body: bytes) -> None:
    r = anonymous.post("/v1/messages", content=body,
                       headers={"Content-Type": "application/json"})
    problem(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


# --- the body as bytes: JSON, media type, size -----------------------------------------------


@pytest.mark.parametrize("body", [b"{bad", b'{"messages": [1,]}', b"", b"\xff\xfe{}",
                                  b'{"messages": []} trailing', b'{"a": NaN}'],
                         ids=["syntax", "trailing comma", "empty", "not UTF-8", "trailing",
                              "NaN"])
def test_invalid_json_is_400_invalid_json(client: httpx.Client, body: bytes) -> None:
    r = client.post("/v1/messages", content=body, headers={"Content-Type": "application/json"})
    problem(r, 400, "invalid_json")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
def test_wrong_content_type_is_415(client: httpx.Client, content_type: str | None) -> None:
    request = client.build_request("POST", "/v1/messages",
                                   content=json.dumps({"messages": [msg()]}).encode())
    if content_type is None:
        request.headers.pop("Content-Type", None)
    else:
        request.headers["Content-Type"] = content_type
    problem(client.send(request), 415)


def test_json_media_types_are_accepted(client: httpx.Client) -> None:
    for media in ("application/json; charset=utf-8", "Application/JSON"):
        r = client.post("/v1/messages", content=json.dumps({"messages": [msg()]}).encode(),
                        headers={"Content-Type": media})
        assert r.status_code == 200, (media, r.text)


def test_body_over_max_body_bytes_is_413(client: httpx.Client) -> None:
    big = json.dumps({"messages": [msg(content="x" * (MAX_BODY + 1000))]}).encode()
    assert len(big) > MAX_BODY
    problem(client.post("/v1/messages", content=big,
                        headers={"Content-Type": "application/json"}), 413)
    # chunked (no Content-Length): the limit holds as the body streams in
    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 65_536):
            yield big[i:i + 65_536]

    problem(client.post("/v1/messages", content=chunks(),
                        headers={"Content-Type": "application/json"}), 413)


# --- never a 5xx -----------------------------------------------------------------------------

ODD_REQUESTS: list[tuple[str, str, bytes | None, dict[str, str]]] = [
    ("GET", "/v1/messages?limit=0", None, {}),
    ("GET", "/v1/messages?limit=abc", None, {}),
    ("GET", "/v1/messages?limit=100000", None, {}),
    ("GET", "/v1/messages?status=lost", None, {}),
    ("GET", "/v1/messages?since=yesterday", None, {}),
    ("GET", "/v1/messages?cursor=not-ours", None, {}),
    ("GET", "/v1/messages/" + "9" * 200, None, {}),
    ("GET", "/v1/messages/%20", None, {}),
    ("GET", "/v1/messages/-1", None, {}),
    ("DELETE", "/v1/messages/1e5", None, {}),
    ("GET", "/v1/requests/" + "r" * 300, None, {}),
    ("GET", "/v1/events?state=pending", None, {}),
    ("GET", "/v1/events?cursor=evt_x", None, {}),
    ("POST", "/v1/events/evt_99999999999999999999999/retry", None, {}),
    ("POST", "/v1/events/nope/retry", None, {}),
    ("PUT", "/v1/messages", b"{}", {"Content-Type": "application/json"}),
    ("GET", "/v1/nothing-here", None, {}),
    ("POST", "/v1/messages", json.dumps({"messages": [msg()]}).encode(),
     {"Content-Type": "application/json", "Idempotency-Key": "k" * 300}),
    ("POST", "/v1/messages", b'{"messages": [{"recipients": ["+447700900100"], '
     b'"content": "x", "validity_s": 1' + b"0" * 400 + b"}]}",
     {"Content-Type": "application/json"}),
    ("POST", "/v1/messages", b'{"messages": [{"originator": "ACME", "recipients": '
     b'[{"to": "+447700900100", "vars": {"' + b"k" * 100 + b'": "v"}}], "content": "x"}]}',
     {"Content-Type": "application/json"}),
    ("POST", "/v1/messages", json.dumps({"messages": [msg(recipients=["\u0000", "+" * 32])]})
     .encode(), {"Content-Type": "application/json"}),
]


@pytest.mark.parametrize(("method", "path", "body", "headers"), ODD_REQUESTS,
                         ids=[f"{m} {p[:40]}" for m, p, _, _ in ODD_REQUESTS])
def test_odd_requests_get_a_problem_never_a_5xx(client: httpx.Client, method: str, path: str,
                                                body: bytes | None,
                                                headers: dict[str, str]) -> None:
    r = client.request(method, path, content=body, headers=headers)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    problem(r, r.status_code)


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"messages": [{"originator": "ACME", "recipients": ' + b"[" * 5000 + b"]" * 5000
    + b', "content": "x"}]}'], ids=["top level", "in recipients"])
def test_deeply_nested_json_is_a_400(client: httpx.Client, body: bytes) -> None:
    assert len(body) < MAX_BODY
    r = client.post("/v1/messages", content=body, headers={"Content-Type": "application/json"})
    problem(r, 400)


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/events/evt_9223372036854775808/retry"),
    ("GET", "/v1/events?cursor=evt_9999999999999999999")])
def test_event_ids_beyond_64_bits_are_not_found(client: httpx.Client, method: str,
                                                path: str) -> None:
    r = client.request(method, path)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    problem(r, r.status_code)


# --- what needs no token ---------------------------------------------------------------------


def test_health_and_openapi_need_no_token(anonymous: httpx.Client) -> None:
    r = anonymous.get("/health")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok"
    r = anonymous.get("/openapi.json")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    r = anonymous.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")


def _schema(doc: dict[str, Any], ref_or_schema: dict[str, Any]) -> dict[str, Any]:
    ref = ref_or_schema.get("$ref")
    if ref is None:
        return ref_or_schema
    name = ref.rsplit("/", 1)[1]
    schema: dict[str, Any] = doc["components"]["schemas"][name]
    return schema


def test_openapi_describes_sending_with_the_request_types(anonymous: httpx.Client) -> None:
    doc = anonymous.get("/openapi.json").json()
    for path in ("/v1/messages", "/messages/v1/send"):
        post = doc["paths"][path]["post"]
        body = post["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/SendRequest"}, body
    send = doc["components"]["schemas"]["SendRequest"]
    assert set(send["properties"]) == {"messages", "message_globals"}
    assert send["required"] == ["messages"]
    spec = _schema(doc, send["properties"]["messages"]["items"])
    assert {"originator", "recipients", "content", "data_coding", "client_ref",
            "report_url"} <= set(spec["properties"])
    assert "bearer" in json.dumps(doc.get("components", {}).get("securitySchemes", {}))


def test_openapi_request_schemas_forbid_unknown_fields(anonymous: httpx.Client) -> None:
    doc = anonymous.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for name in ("SendRequest", "MessageSpec", "MessageGlobals", "Recipient"):
        s = schemas[name]
        closed = (s.get("additionalProperties") is False
                  or s.get("unevaluatedProperties") is False)
        assert closed, (name, s)
