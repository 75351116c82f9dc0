"""The webhook channel's pure parts: Standard Webhooks signatures (checked with the
independent ``standardwebhooks`` package), event envelopes (http-api.md, "Events") and the
retry schedule. No sockets, no event loop."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from config import HttpConfig, TenantConfig
from encoding.text import concat_udh, gsm7_encode
from routing.events import MoEvent, ReceiptEvent, SentEvent, StoredPdu
from routing.model import Status
from smsc.webhooks.render import event_type, render_webhook
from smsc.webhooks.sender import RETRY_SCHEDULE_S, retry_delay
from smsc.webhooks.signing import Signer, secret_key

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
NOW_TEXT = "2027-01-15T08:00:00Z"
OLD_SECRET = "whsec_" + base64.b64encode(bytes(range(24))).decode()  # 24 bytes: 32 chars
NEW_SECRET = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()  # 32 bytes
OTHER_SECRET = "whsec_" + base64.b64encode(b"x" * 24).decode()
BODY = b'{"type":"message.delivered","data":{"id":"1001"}}'

DECIMAL = TenantConfig(system_id="acme", webhook_url="https://hooks.acme.example/sms",
                       webhook_secret=OLD_SECRET)
HEX = TenantConfig(system_id="acme", webhook_url="https://hooks.acme.example/sms",
                   webhook_secret=(OLD_SECRET, NEW_SECRET), id_format="hex")


def verify(secret: str, body: bytes, headers: dict[str, str]) -> Any:
    return Webhook(secret).verify(body, headers)


# --- signing -------------------------------------------------------------------------------


def test_the_standard_webhooks_published_vector() -> None:
    headers = Signer(("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",)).headers(
        "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert headers == {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
                       "webhook-timestamp": "1614265330",
                       "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                       "content-type": "application/json"}


def test_the_signature_is_hmac_sha256_of_id_timestamp_body() -> None:
    headers = Signer((OLD_SECRET,)).headers("evt_1", 1_800_000_000, BODY)
    mac = hmac.new(bytes(range(24)), b"evt_1.1800000000." + BODY, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()
    assert secret_key(OLD_SECRET) == bytes(range(24))


def test_standardwebhooks_verifies_a_signed_event() -> None:
    ts = int(time.time())  # the verifier refuses timestamps 5 minutes away from its clock
    headers = Signer((OLD_SECRET,)).headers("evt_1", ts, BODY)
    assert verify(OLD_SECRET, BODY, headers) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        verify(OTHER_SECRET, BODY, headers)


def test_while_rotating_each_secret_alone_verifies() -> None:
    ts = int(time.time())
    headers = Signer((OLD_SECRET, NEW_SECRET)).headers("evt_2", ts, BODY)
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert verify(OLD_SECRET, BODY, headers) == json.loads(BODY)
    assert verify(NEW_SECRET, BODY, headers) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        verify(OTHER_SECRET, BODY, headers)
    # Each signature on its own is the one of its secret.
    for secret, signature in zip((OLD_SECRET, NEW_SECRET), signatures, strict=True):
        alone = {**headers, "webhook-signature": signature}
        assert verify(secret, BODY, alone) == json.loads(BODY)


@pytest.mark.parametrize("tamper", ["body", "timestamp", "id", "signature"])
def test_a_tampered_event_fails_verification(tamper: str) -> None:
    ts = int(time.time())
    headers = Signer((OLD_SECRET, NEW_SECRET)).headers("evt_3", ts, BODY)
    body = BODY
    if tamper == "body":
        body = BODY.replace(b"1001", b"1002")
    elif tamper == "timestamp":
        headers["webhook-timestamp"] = str(ts + 1)  # still within 5 minutes
    elif tamper == "id":
        headers["webhook-id"] = "evt_4"
    else:  # one character of each signature changed
        headers["webhook-signature"] = " ".join(
            sig[:3] + ("B" if sig[3] == "A" else "A") + sig[4:]
            for sig in headers["webhook-signature"].split(" "))
    for secret in (OLD_SECRET, NEW_SECRET):
        with pytest.raises(WebhookVerificationError):
            verify(secret, body, headers)


def test_a_stale_timestamp_is_refused_by_the_receiver() -> None:
    headers = Signer((OLD_SECRET,)).headers("evt_5", int(time.time()) - 600, BODY)
    with pytest.raises(WebhookVerificationError):
        verify(OLD_SECRET, BODY, headers)


# --- render: receipts ----------------------------------------------------------------------


def receipt(**kw: Any) -> ReceiptEvent:
    base: dict[str, Any] = dict(
        message_id="1000255", status=Status.DELIVERED, submitted_at=NOW - 60,
        done_at=NOW - 5, parts=2, source_addr="SignOTP", source_addr_ton=5,
        destination_addr="447700900100", dest_addr_ton=1, dest_addr_npi=1,
        reference="batch-7", request_id="r_abc", operator="op1", data_coding=0)
    base.update(kw)
    return ReceiptEvent(**base)


def rendered(event: Any, tenant: TenantConfig = DECIMAL, event_id: str = "evt_9") -> Any:
    body = render_webhook(event, event_id, tenant, NOW)
    assert body is not None
    return json.loads(body)


def test_a_delivered_receipt() -> None:
    assert rendered(receipt()) == {
        "type": "message.delivered",
        "timestamp": NOW_TEXT,
        "data": {
            "id": "1000255", "status": "delivered", "recipient": "+447700900100",
            "originator": "SignOTP", "parts": 2, "encoding": "gsm7", "request_id": "r_abc",
            "client_ref": "batch-7", "operator": "op1",
            "created_at": "2027-01-15T07:59:00Z", "done_at": "2027-01-15T07:59:55Z",
        },
    }


@pytest.mark.parametrize(("status", "error", "expected_error"), [
    (Status.UNDELIVERABLE, 0x0B, {"code": "undeliverable", "smpp_status": 11}),
    (Status.REJECTED, 0x45, {"code": "rejected", "smpp_status": 0x45}),
    (Status.EXPIRED, 0, {"code": "expired"}),
    (Status.UNKNOWN, 0, {"code": "unknown"}),  # no receipt within the receipt timeout
])
def test_a_failed_receipt(status: Status, error: int, expected_error: dict[str, Any]) -> None:
    doc = rendered(receipt(status=status, error=error, data_coding=8))
    assert doc["type"] == "message.failed"
    assert doc["data"]["status"] == status.value
    assert doc["data"]["error"] == expected_error
    assert doc["data"]["encoding"] == "ucs2"


@pytest.mark.parametrize(("id_format", "shown"), [("decimal", "1000255"), ("hex", "F433F")])
def test_the_id_is_shown_as_the_tenant_sees_it(id_format: str, shown: str) -> None:
    tenant = HEX if id_format == "hex" else DECIMAL
    assert rendered(receipt(), tenant)["data"]["id"] == shown
    assert rendered(SentEvent(message_id="1000255", operator="op1", at=NOW),
                    tenant)["data"]["id"] == shown
    assert f"{1000255:X}" == "F433F"


def test_an_smpp_door_receipt_leaves_out_what_it_does_not_know() -> None:
    data = rendered(receipt(reference="", request_id="", operator="", submitted_at=0.0,
                            data_coding=4))["data"]
    assert data == {"id": "1000255", "status": "delivered", "recipient": "+447700900100",
                    "originator": "SignOTP", "parts": 2, "encoding": "binary",
                    "done_at": "2027-01-15T07:59:55Z"}


def test_a_number_originator_is_shown_in_e164() -> None:
    data = rendered(receipt(source_addr="447700900200", source_addr_ton=1,
                            source_addr_npi=1))["data"]
    assert data["originator"] == "+447700900200"


# --- render: sent --------------------------------------------------------------------------


def test_a_sent_event() -> None:
    event = SentEvent(message_id="1000255", operator="op2", at=NOW - 30, created_at=NOW - 60,
                      parts=3, source_addr="ACME", destination_addr="447700900100",
                      data_coding=8, reference="", request_id="r_1",
                      report_url="https://own.example/r")
    assert event_type(event) == "message.sent"
    assert rendered(event) == {
        "type": "message.sent",
        "timestamp": NOW_TEXT,
        "data": {
            "id": "1000255", "status": "sent", "recipient": "+447700900100",
            "originator": "ACME", "parts": 3, "encoding": "ucs2", "request_id": "r_1",
            "operator": "op2", "created_at": "2027-01-15T07:59:00Z",
            "sent_at": "2027-01-15T07:59:30Z",
        },
    }


# --- render: inbound -----------------------------------------------------------------------


def mo(**kw: Any) -> MoEvent:
    base: dict[str, Any] = dict(source_addr="447700900100", destination_addr="447700900999",
                                body=b"", received_at=NOW - 2, operator="op1")
    base.update(kw)
    return MoEvent(**base)


def test_an_inbound_gsm7_message() -> None:
    event = mo(body=gsm7_encode("Hi @ 5€ [ok]"), data_coding=0)
    assert event_type(event) == "message.inbound"
    assert rendered(event, event_id="evt_42") == {
        "type": "message.inbound",
        "timestamp": NOW_TEXT,
        "data": {"id": "evt_42", "from": "+447700900100", "to": "+447700900999",
                 "content": "Hi @ 5€ [ok]", "received_at": "2027-01-15T07:59:58Z",
                 "parts": 1},
    }


def test_an_inbound_ucs2_message_joined_from_parts() -> None:
    event = mo(body="Привет, мир 👋".encode("utf-16-be"), data_coding=8, parts=3)
    data = rendered(event)["data"]
    assert (data["content"], data["parts"]) == ("Привет, мир 👋", 3)


@pytest.mark.parametrize(("coding", "user_data", "text"), [
    (8, "Жук ".encode("utf-16-be"), "Жук "),
    (0, gsm7_encode("part one, "), "part one, "),
])
def test_an_inbound_part_with_a_udh_shows_its_text_without_the_header(
        coding: int, user_data: bytes, text: str) -> None:
    event = mo(body=concat_udh(7, 2, 1) + user_data, data_coding=coding, esm_class=0x40)
    data = rendered(event)["data"]
    assert (data["content"], data["parts"]) == (text, 1)


def test_an_inbound_part_with_a_broken_udh_still_renders() -> None:
    data = rendered(mo(body=b"\x09\x00\x03AB", data_coding=0, esm_class=0x40))["data"]
    assert isinstance(data["content"], str)


def test_an_alphanumeric_sender_is_shown_as_it_is() -> None:
    assert rendered(mo(source_addr="InfoSvc", body=b"x"))["data"]["from"] == "InfoSvc"


def test_a_stored_pdu_has_no_webhook_form() -> None:
    assert render_webhook(StoredPdu(b"\x00" * 16), "evt_1", DECIMAL, NOW) is None


@pytest.mark.parametrize(("status", "kind"), [
    (Status.DELIVERED, "message.delivered"),
    (Status.UNDELIVERABLE, "message.failed"),
    (Status.EXPIRED, "message.failed"),
    (Status.REJECTED, "message.failed"),
    (Status.UNKNOWN, "message.failed"),
])
def test_event_type(status: Status, kind: str) -> None:
    assert event_type(receipt(status=status)) == kind


# --- retry schedule ------------------------------------------------------------------------


@pytest.mark.parametrize(("attempt", "base"), [
    (1, 5.0), (2, 60.0), (3, 300.0), (4, 1800.0), (5, 7200.0),
    (6, 18_000.0), (7, 18_000.0), (50, 18_000.0),  # then every 5 h
])
def test_retry_delay_follows_the_schedule_with_up_to_10_percent_jitter(
        attempt: int, base: float) -> None:
    assert retry_delay(attempt, lambda: 0.0) == base
    assert retry_delay(attempt, lambda: 0.5) == pytest.approx(base * 1.05)
    assert retry_delay(attempt, lambda: 0.999999) == pytest.approx(base * 1.1, rel=1e-6)
    assert base <= retry_delay(attempt) < base * 1.1 + 1e-9


def test_the_schedule_is_the_contracts() -> None:
    assert RETRY_SCHEDULE_S == (5.0, 60.0, 300.0, 1800.0, 7200.0, 18_000.0)
    assert HttpConfig().webhook_retry_s == RETRY_SCHEDULE_S


def test_retries_span_more_than_a_day_in_a_handful_of_attempts() -> None:
    total, attempts = 0.0, 0
    while total < 86_400:
        attempts += 1
        total += retry_delay(attempts, lambda: 0.0)
    assert attempts == 10  # 5 scheduled, then five of 5 h
