"""Fuzzing the HTTP API from its own OpenAPI document (schemathesis 4 over Hypothesis).

One gateway runs in-process for the module (no operator: an accepted message is refused
with "no route" and nothing leaves the process), with one tenant and its token. The schema
is the ``/openapi.json`` that gateway serves (``schemathesis.openapi.from_url``). For every
operation, schemathesis generates requests (``APIOperation.as_strategy``) and a Hypothesis
test built here calls them over a real socket on 127.0.0.1:

* with the token, schema-valid and schema-violating requests: never a 5xx, and every error
  is ``application/problem+json`` (http-api.md, "Authentication and errors");
* with the token, schema-valid requests through ``case.call_and_validate``: the answers
  conform to the document (documented status codes, content types, response schemas);
* without a token: 401 with ``WWW-Authenticate: Bearer`` (``/health`` answers 200).

schemathesis' own pytest integration (``schemathesis.pytest.from_fixture``) does not run
under pytest 9.2 (it sets ``Function._nodeid``, which pytest 9.2 no longer has), so each
operation gets a Hypothesis test here instead. Settings are bounded and deterministic:
``derandomize=True``, no example database, a few hundred examples in all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Ok
from schemathesis.openapi import from_url
from schemathesis.schemas import APIOperation, BaseSchema
from schemathesis.specs.openapi.checks import (
    positive_data_acceptance,
)

from config import AuthConfig, TenantConfig
from smsc.http import hash_token
from tests.conftest import GatewayThread, make_config

pytestmark = pytest.mark.timeout(240)

TOKEN = "sk_fuzz_" + "k" * 40
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROBLEM = "application/problem+json"


def bounded(examples: int) -> settings:
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def fuzz_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    tenant = TenantConfig(system_id="fuzz", password="fuzz", api_keys=(hash_token(TOKEN),))
    # Bans off: the fuzzer sends made-up tokens by the hundred on purpose (bans have their
    # own tests, tests/integration/test_auth_guard.py).
    gw = GatewayThread(make_config(tmp_path_factory.mktemp("fuzz"), tenants=(tenant,),
                                   auth=AuthConfig(max_auth_failures=0)))
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture(scope="module")
def base_url(fuzz_gateway: GatewayThread) -> str:
    return f"http://127.0.0.1:{fuzz_gateway.gateway.http_port}"


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> BaseSchema:
    return from_url(f"{base_url}/openapi.json")


@pytest.fixture(scope="module")
def document(base_url: str) -> dict[str, Any]:
    doc = httpx.get(f"{base_url}/openapi.json", timeout=10.0, trust_env=False).json()
    assert isinstance(doc, dict)
    return doc


Operation = APIOperation[Any, Any, Any, Any]


def operations(schema: BaseSchema) -> list[Operation]:
    ops: list[Operation] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # every operation of the document loads
        ops.append(result.ok())
    labels = {op.label for op in ops}
    assert {"POST /v1/messages", "GET /v1/messages/{message_id}", "GET /v1/events",
            "POST /v1/events/{event_id}/retry", "GET /health"} <= labels, labels
    return ops


def fuzz(op: Operation, mode: GenerationMode, examples: int,
         check: Callable[[Case[Any]], None]) -> None:
    """Run ``check`` on ``examples`` generated requests for ``op``."""
    @bounded(examples)
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case: Case[Any]) -> None:
        check(case)

    try:
        run()
    except Unsatisfiable:
        # nothing of the operation can be made invalid (no parameters, no body, no auth)
        assert mode is GenerationMode.NEGATIVE, op.label


def header(response: Any, name: str) -> str:
    """A header of a schemathesis response (lists of values) or an httpx one (strings)."""
    value = response.headers.get(name, "")
    return str(value[0] if isinstance(value, list) and value else value)


def is_problem(response: Any) -> bool:
    return header(response, "content-type").startswith(PROBLEM)


# --- with a token ----------------------------------------------------------------------------


def test_with_a_token_never_5xx_and_errors_are_problems(api_schema: BaseSchema) -> None:
    seen: dict[str, set[int]] = {}

    for op in operations(api_schema):
        def check(case: Case[Any], label: str = op.label) -> None:
            response = case.call(headers=AUTH, timeout=10)
            seen.setdefault(label, set()).add(response.status_code)
            shown = (case.method, case.formatted_path, case.query, case.body,
                     response.text[:300])
            assert response.status_code < 500, shown
            if response.status_code >= 400:
                assert is_problem(response), shown
                problem = response.json()
                assert problem["status"] == response.status_code, shown
                assert isinstance(problem["code"], str) and problem["code"], shown

        fuzz(op, GenerationMode.POSITIVE, 20, check)
        fuzz(op, GenerationMode.NEGATIVE, 12, check)
    # the pass reached past validation: some requests were answered 2xx
    assert any(code < 300 for codes in seen.values() for code in codes), seen


# Checks left out, and why:
# * positive_data_acceptance: the API validates beyond the schema (phone numbers, opaque
#   cursors): a schema-valid request may rightly be a 400;
_EXCLUDED: dict[str, list[Any]] = {}


def test_with_a_token_answers_conform_to_the_document(api_schema: BaseSchema) -> None:
    for op in operations(api_schema):
        excluded = [positive_data_acceptance, *_EXCLUDED.get(op.label, [])]

        def check(case: Case[Any], excluded: list[Any] = excluded) -> None:
            case.call_and_validate(headers=AUTH, excluded_checks=excluded, timeout=10)

        fuzz(op, GenerationMode.POSITIVE, 12, check)


# --- without a token -------------------------------------------------------------------------


def test_without_a_token_401_never_5xx(api_schema: BaseSchema) -> None:
    """Each generated request twice: with the Authorization header schemathesis made up
    for the bearer scheme (an unknown token), and with no Authorization header at all."""
    for op in operations(api_schema):
        def check(case: Case[Any], label: str = op.label) -> None:
            for attempt in ("made-up token", "no header"):
                if attempt == "no header" and case.headers:
                    case.headers.pop("Authorization", None)
                response = case.call(timeout=10)
                shown = (attempt, case.method, case.formatted_path, case.headers,
                         response.text[:300])
                if label == "GET /health":
                    assert response.status_code == 200, shown
                    continue
                if label == "GET /l/{code}":  # public: a short link needs no token
                    assert response.status_code in (302, 404), shown
                    continue
                assert response.status_code == 401, shown
                assert header(response, "www-authenticate").startswith("Bearer"), shown
                assert is_problem(response), shown
                assert response.json()["code"] == "unauthorized", shown

        fuzz(op, GenerationMode.POSITIVE, 8, check)


def test_a_wrong_token_is_401(api_schema: BaseSchema) -> None:
    op = next(o for o in operations(api_schema) if o.label == "GET /v1/messages")

    def check(case: Case[Any]) -> None:
        response = case.call(headers={"Authorization": "Bearer sk_not_a_key_" + "z" * 30},
                             timeout=10)
        assert response.status_code == 401, response.text[:300]

    fuzz(op, GenerationMode.POSITIVE, 10, check)


# --- sends that pass validation --------------------------------------------------------------

_numbers = st.from_regex(r"\A\+?4477009[0-9]{5}\Z")
_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=400)


@st.composite
def send_bodies(draw: st.DrawFn) -> dict[str, Any]:
    message: dict[str, Any] = {
        "originator": draw(st.sampled_from(["SignOTP", "ACME", "+447700900100"])),
        "recipients": draw(st.lists(_numbers | _numbers.map(lambda n: {"to": n}),
                                    min_size=1, max_size=5)),
        "content": draw(_text),
    }
    coding = draw(st.none() | st.sampled_from(["auto", "text", "unicode"]))
    if coding is not None:
        message["data_coding"] = coding
    ref = draw(st.none() | st.text(st.characters(codec="ascii"), max_size=64))
    if ref is not None:
        message["client_ref"] = ref
    return {"messages": [message]}


def test_generated_valid_sends_are_stored_and_queryable(base_url: str) -> None:
    """Bodies that pass validation (real numbers, any text): 200 with one entry per
    recipient, or a 400 naming why (a character outside GSM-7 with data_coding "text",
    too many parts); each accepted id is then readable with GET /v1/messages/{id}."""
    answered: list[int] = []
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=10.0, trust_env=False) as c:
        @bounded(40)
        @given(body=send_bodies())
        def run(body: dict[str, Any]) -> None:
            response = c.post("/v1/messages", content=msgspec.json.encode(body),
                              headers={"Content-Type": "application/json"})
            answered.append(response.status_code)
            assert response.status_code in (200, 400), response.text[:300]
            if response.status_code == 400:
                assert is_problem(response) and response.json()["errors"], response.text
                return
            entries = response.json()["messages"]
            assert len(entries) == len(body["messages"][0]["recipients"])
            for entry in entries:
                assert entry["status"] == "accepted", entry
                shown = c.get(f"/v1/messages/{entry['id']}")
                assert shown.status_code == 200, shown.text
                assert shown.json()["recipient"] == entry["recipient"]

        run()
    assert answered.count(200) >= len(answered) // 2, answered


# --- what the fuzzing found --------------------------------------------------------------------


def test_health_is_documented_without_auth(document: dict[str, Any]) -> None:
    assert document.get("security") in (None, [])  # no document-wide requirement
    assert document["paths"]["/health"]["get"].get("security") in (None, [])
    assert document["paths"]["/v1/messages"]["post"]["security"] == [{"bearer": []}]


def test_a_bad_events_cursor_is_a_400(base_url: str) -> None:
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=10.0, trust_env=False) as c:
        assert c.get("/v1/messages", params={"cursor": "not-a-cursor"}).status_code == 400
        response = c.get("/v1/events", params={"state": "failed", "cursor": "not-a-cursor"})
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "invalid_cursor"


def test_a_bare_number_is_checked_per_recipient_not_by_the_schema(
        document: dict[str, Any], base_url: str) -> None:
    """The schema admits any string as a bare number; one that is not a number is refused
    alone (the rest of the request goes), which a schema constraint could not express."""
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=10.0, trust_env=False) as c:
        alone = c.post("/v1/messages", json={"messages": [
            {"originator": "ACME", "recipients": [""], "content": "hi"}]})
        mixed = c.post("/v1/messages", json={"messages": [
            {"originator": "ACME", "recipients": ["", "+447700900123"], "content": "hi"}]})
    assert alone.status_code == 400
    assert alone.json()["code"] == "no_usable_recipient"
    assert [(e["pointer"], e["code"]) for e in alone.json()["errors"]] == [
        ("/messages/0/recipients/0", "invalid_number")]
    assert mixed.status_code == 200
    assert [m["status"] for m in mixed.json()["messages"]] == ["rejected", "accepted"]
    spec = document["components"]["schemas"]["MessageSpec"]
    [as_text] = [s for s in spec["properties"]["recipients"]["items"]["oneOf"]
                 if s.get("type") == "string"]
    assert "minLength" not in as_text
