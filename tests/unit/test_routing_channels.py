"""Routing pieces the HTTP door added: per-channel event fan-out (``routing.channels``), the
token bucket's borrowing for bulk requests (``routing.throttle``, ``routing.admission``) and
the senders allowlist (``routing.validate.sender_allowed``).

The event queue, the record and the router are small fakes that record what they are asked;
time is an argument; nothing sleeps.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from config import GatewayConfig, StoreConfig, TenantConfig
from encoding.constants import CommandStatus as S
from routing.admission import Admission
from routing.channels import Channels, tenant_of_queue, webhook_queue
from routing.events import MoEvent, ReceiptEvent, SentEvent, StoredPdu, TenantEvent
from routing.model import Message, Status
from routing.repository import Durable
from routing.throttle import TokenBucket
from routing.validate import sender_allowed

NOW = 1_800_000_000.0
SECRET = "whsec_" + base64.b64encode(bytes(24)).decode()
HOOK = "https://hooks.example/sms"

SMPP = TenantConfig(system_id="smpp", password="pw")
HOOKED = TenantConfig(system_id="hooked", webhook_url=HOOK, webhook_secret=SECRET)
BOTH = TenantConfig(system_id="both", password="", webhook_url=HOOK, webhook_secret=SECRET)
HTTP_ONLY = TenantConfig(system_id="http")  # no password, no webhook_url
# no webhook_url, but a secret: its messages may name their own report_url
SIGNED = TenantConfig(system_id="http", webhook_secret=SECRET)
SIGNED_SMPP = TenantConfig(system_id="smpp", password="pw", webhook_secret=SECRET)

RECEIPT = ReceiptEvent(message_id="1", status=Status.DELIVERED)
MO = MoEvent(source_addr="447700900100", destination_addr="447700900999", body=b"hi")
SENT = SentEvent(message_id="1", operator="op1", at=NOW)
PDU = StoredPdu(b"\x00" * 16)
OWN_URL = "https://own.example/r"


class Done:
    """A Durable the fake queue hands back; names the publish it came from."""

    def __init__(self, queue: str) -> None:
        self.queue = queue

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None:
        fn(self)

    def exception(self) -> BaseException | None:
        return None


class FakeEvents:
    """What Channels uses of an EventQueue: ``publish``, recorded."""

    def __init__(self) -> None:
        self.published: list[tuple[str, list[TenantEvent], float]] = []

    def publish(self, tenant: str, events: Sequence[TenantEvent], now: float) -> Done:
        self.published.append((tenant, list(events), now))
        return Done(tenant)

    def queues(self) -> dict[str, list[TenantEvent]]:
        out: dict[str, list[TenantEvent]] = {}
        for queue, events, _ in self.published:
            out.setdefault(queue, []).extend(events)
        return out


def fan_out(tenant: TenantConfig, events: Sequence[TenantEvent], *, configured: bool = True
            ) -> tuple[dict[str, list[TenantEvent]], Durable, FakeEvents]:
    fake = FakeEvents()
    others = [t for t in (SMPP, HOOKED, BOTH, HTTP_ONLY) if t.system_id != tenant.system_id]
    channels = Channels(fake, [*others, *([tenant] if configured else [])])  # type: ignore[arg-type]
    done = channels.publish(tenant.system_id, events, NOW)
    return fake.queues(), done, fake


def completed(done: Durable) -> bool:
    seen: list[object] = []
    done.add_done_callback(seen.append)
    return seen == [done] and done.exception() is None


# --- channels ------------------------------------------------------------------------------


def test_queue_names() -> None:
    assert webhook_queue("acme") == "acme/webhook"
    assert tenant_of_queue("acme/webhook") == ("acme", "webhook")
    assert tenant_of_queue("acme") == ("acme", "smpp")  # as stores before webhooks name it


def test_a_tenant_with_a_password_gets_receipts_and_mo_in_its_smpp_queue() -> None:
    queues, done, fake = fan_out(SMPP, [RECEIPT, SENT, MO, PDU])
    assert queues == {"smpp": [RECEIPT, MO, PDU]}  # "sent" has no SMPP form
    assert fake.published[0][2] == NOW
    assert isinstance(done, Done) and done.queue == "smpp"


def test_a_tenant_with_a_webhook_gets_receipts_mo_and_sent_in_its_webhook_queue() -> None:
    queues, done, _ = fan_out(HOOKED, [RECEIPT, SENT, MO, PDU])
    assert queues == {"hooked/webhook": [RECEIPT, SENT, MO]}  # a stored PDU is SMPP only
    assert isinstance(done, Done) and done.queue == "hooked/webhook"


def test_a_tenant_with_both_gets_each_event_in_both() -> None:
    queues, done, fake = fan_out(BOTH, [RECEIPT, SENT, MO])
    assert queues == {"both": [RECEIPT, MO], "both/webhook": [RECEIPT, SENT, MO]}
    assert len(fake.published) == 2  # one publish per channel, the batch kept together
    assert completed(done)


def test_an_http_only_tenant_without_a_webhook_gets_nothing_queued() -> None:
    queues, done, _ = fan_out(HTTP_ONLY, [RECEIPT, SENT, MO, PDU])
    assert queues == {}
    assert completed(done)  # nothing to store: already durable


def test_an_empty_batch_publishes_nothing() -> None:
    for tenant in (SMPP, HOOKED, BOTH):
        queues, done, _ = fan_out(tenant, [])
        assert queues == {} and completed(done)


def test_an_unknown_tenant_gets_nothing_queued() -> None:
    queues, done, _ = fan_out(TenantConfig(system_id="ghost", password="x"), [RECEIPT, MO],
                              configured=False)
    assert queues == {} and completed(done)


def test_events_of_a_message_with_its_own_report_url_reach_the_webhook_queue() -> None:
    receipt = ReceiptEvent(message_id="2", status=Status.UNDELIVERABLE, report_url=OWN_URL)
    sent = SentEvent(message_id="2", operator="op1", at=NOW, report_url=OWN_URL)
    queues, done, _ = fan_out(SIGNED, [RECEIPT, receipt, SENT, sent, MO])
    assert queues == {"http/webhook": [receipt, sent]}  # MO has no report_url
    assert isinstance(done, Done) and done.queue == "http/webhook"
    queues, _, _ = fan_out(SIGNED_SMPP, [RECEIPT, receipt, MO])
    assert queues == {"smpp": [RECEIPT, receipt, MO], "smpp/webhook": [receipt]}


def test_without_a_secret_a_report_url_gets_nothing_queued() -> None:
    """Events are signed: nobody could send them (and the HTTP door refuses report_url for
    such a tenant), so they would wait in the store for ever."""
    receipt = ReceiptEvent(message_id="2", status=Status.UNDELIVERABLE, report_url=OWN_URL)
    queues, done, _ = fan_out(HTTP_ONLY, [receipt])
    assert queues == {} and completed(done)


def test_wants_sent() -> None:
    channels = Channels(FakeEvents(), [SMPP, HOOKED, BOTH, HTTP_ONLY])  # type: ignore[arg-type]
    assert channels.wants_sent("hooked", "") and channels.wants_sent("both", "")
    assert not channels.wants_sent("smpp", "") and not channels.wants_sent("http", "")
    assert not channels.wants_sent("http", OWN_URL)  # no secret to sign with
    signed = Channels(FakeEvents(), [SIGNED, SIGNED_SMPP])  # type: ignore[arg-type]
    assert signed.wants_sent("http", OWN_URL) and signed.wants_sent("smpp", OWN_URL)


# --- token bucket: borrowing ---------------------------------------------------------------


def test_borrow_lets_a_bulk_request_through_and_goes_into_debt() -> None:
    bucket = TokenBucket(2.0, NOW)  # 2/s, burst 2
    assert bucket.borrow(NOW, 10)
    assert bucket.tokens == -8
    assert not bucket.take(NOW)
    assert bucket.delay(NOW) == pytest.approx(4.5)  # 9 tokens to come back at 2/s
    assert not bucket.take(NOW + 4.4)
    assert bucket.take(NOW + 4.5)
    assert not bucket.take(NOW + 4.5)


def test_borrow_needs_one_token_and_takes_nothing_when_refused() -> None:
    bucket = TokenBucket(2.0, NOW)
    assert bucket.borrow(NOW, 3)  # 2 there, 1 owed
    assert not bucket.borrow(NOW + 0.5, 3)  # 0 there
    assert bucket.tokens == pytest.approx(0.0)  # the refusal took nothing
    assert not bucket.borrow(NOW + 0.9, 1)  # 0.8 of a token
    assert bucket.borrow(NOW + 1.0, 100)  # one token is enough to borrow
    assert bucket.tokens == pytest.approx(-99.0)


def test_debt_is_repaid_at_the_rate_never_above_the_burst() -> None:
    bucket = TokenBucket(10.0, NOW, burst=5.0)
    assert bucket.borrow(NOW, 25)
    assert bucket.delay(NOW) == pytest.approx(2.1)
    assert bucket.delay(NOW + 100) == 0.0
    assert bucket.tokens == 5.0


def test_an_unlimited_bucket_always_lends() -> None:
    bucket = TokenBucket(0.0, NOW)
    assert all(bucket.borrow(NOW, 10_000) for _ in range(10))
    assert bucket.delay(NOW) == 0.0


# --- admission: bulk -----------------------------------------------------------------------


class Record:
    def __init__(self) -> None:
        self.writes = 0

    def backlog(self) -> int:
        return self.writes


class Sink:
    def __init__(self) -> None:
        self.queued = 0

    def accepted(self, messages: list[Message]) -> None:
        pass

    def backlog(self) -> int:
        return self.queued


ACME = TenantConfig(system_id="acme", tps=2.0)
FREE = TenantConfig(system_id="free")


def admission(max_queue: int = 100) -> tuple[Admission, Record, Sink]:
    record, sink = Record(), Sink()
    config = GatewayConfig(store=StoreConfig(max_queue=max_queue), tenants=(ACME, FREE))
    return Admission(config, record, sink), record, sink  # type: ignore[arg-type]


def test_a_bulk_request_borrows_and_the_next_single_submit_waits_for_the_debt() -> None:
    a, _, _ = admission()
    assert a.admit(ACME, NOW, count=10) == S.ESME_ROK
    assert a.admit(ACME, NOW) == S.ESME_RTHROTTLED
    assert a.retry_after(ACME, NOW) == pytest.approx(4.5)
    assert a.admit(ACME, NOW + 4.0) == S.ESME_RTHROTTLED  # still 1 token in debt
    assert a.admit(ACME, NOW + 4.5) == S.ESME_ROK
    assert a.admit(ACME, NOW + 4.5) == S.ESME_RTHROTTLED


def test_a_bulk_request_while_in_debt_is_throttled() -> None:
    a, _, _ = admission()
    assert a.admit(ACME, NOW, count=5) == S.ESME_ROK
    assert a.admit(ACME, NOW + 1.0, count=5) == S.ESME_RTHROTTLED  # -3 + 2 = -1
    assert a.retry_after(ACME, NOW + 1.0) == pytest.approx(1.0)
    assert a.admit(ACME, NOW + 2.0, count=5) == S.ESME_ROK


def test_a_single_submit_does_not_borrow() -> None:
    a, _, _ = admission()
    assert [a.admit(ACME, NOW) for _ in range(3)] == [S.ESME_ROK, S.ESME_ROK,
                                                      S.ESME_RTHROTTLED]
    assert a.retry_after(ACME, NOW) == pytest.approx(0.5)


def test_bulk_requests_of_an_unlimited_tenant_are_never_throttled() -> None:
    a, _, _ = admission(max_queue=100_000)
    assert all(a.admit(FREE, NOW, count=1000) == S.ESME_ROK for _ in range(50))


def test_a_bulk_request_must_fit_the_queue() -> None:
    a, record, sink = admission(max_queue=100)
    record.writes, sink.queued = 50, 40
    assert a.admit(FREE, NOW, count=10) == S.ESME_ROK
    assert a.admit(FREE, NOW, count=11) == S.ESME_RMSGQFUL
    assert a.admit(ACME, NOW, count=11) == S.ESME_RMSGQFUL
    record.writes = sink.queued = 0
    # Refused for a full queue took nothing from acme's rate: its burst of 2 is still there.
    assert [a.admit(ACME, NOW) for _ in range(3)] == [S.ESME_ROK, S.ESME_ROK,
                                                      S.ESME_RTHROTTLED]


def test_a_bulk_request_larger_than_the_queue_goes_when_the_queue_is_empty() -> None:
    a, record, _ = admission(max_queue=100)
    assert a.admit(FREE, NOW, count=500) == S.ESME_ROK
    record.writes = 1
    assert a.admit(FREE, NOW, count=500) == S.ESME_RMSGQFUL


def test_a_bulk_request_while_stopping_is_queue_full() -> None:
    a, _, _ = admission()
    a.stop_accepting()
    assert a.admit(FREE, NOW, count=3) == S.ESME_RMSGQFUL


# --- senders -------------------------------------------------------------------------------


@pytest.mark.parametrize(("senders", "source", "allowed"), [
    ((), "anything", True),
    ((), "", True),
    (("ACME",), "ACME", True),
    (("ACME",), "acme", False),  # alphanumeric senders match exactly
    (("ACME",), "ACME2", False),
    (("ACME",), "", False),
    (("ACME", "+447700900100"), "+447700900100", True),
    (("ACME", "+447700900100"), "447700900100", True),
    (("447700900100",), "+447700900100", True),
    (("447700900100",), "447700900100", True),
    (("+447700900100",), "+447700900101", False),
    (("+447700900100",), "44770090010", False),
])
def test_sender_allowed(senders: tuple[str, ...], source: str, allowed: bool) -> None:
    assert sender_allowed(senders, source) is allowed
