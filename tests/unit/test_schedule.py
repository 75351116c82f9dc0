"""Scheduling: admission holds future messages, the Scheduler releases them, on a fake clock.

The routing layer is wired as the gateway wires it on a real SQLite store
(``tests.routing_rig``; the group commit is a fake whose futures are done). The scheduler's
decisions are synchronous and take the time as an argument (``release_due(now)``), so every
test picks its own clock; the asyncio timer around them is exercised by the integration
tests (tests/integration/test_scheduling.py).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec
import pytest

from config import GatewayConfig, OperatorConfig, RouteConfig, TenantConfig
from encoding.constants import CommandStatus as S
from encoding.constants import MessageState
from encoding.receipt import parse_receipt
from encoding.smpptime import format_smpp_time, parse_smpp_time
from encoding.text import gsm7_encode
from routing import Message, Status, Submission
from routing.admission import Admission
from routing.model import TRANSITIONS, smpp_state
from routing.schedule import Scheduler
from routing.sqlite.schedules import SqliteScheduleBook
from smsc.http.models import SendRequest
from smsc.http.translate import Planned, plan_request
from tests.routing_rig import RoutingRig

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
TENANT = TenantConfig(system_id="acme", password="pw")
CONFIG = GatewayConfig(
    tenants=(TENANT,),
    operators=(OperatorConfig(name="opA", host="127.0.0.1", port=2775, system_id="gw",
                              password="pw"),),
    routes=(RouteConfig(prefix="44", operators=("opA",)),))


class Rig(RoutingRig):
    def __init__(self, path: Path, batch: int = 5000) -> None:
        super().__init__(path, CONFIG)
        self.admission = Admission(CONFIG, self.record, self.router)
        self.book = SqliteScheduleBook(self.store)
        self.scheduler = Scheduler(self.book, self.record, self.lifecycle, self.router,
                                   wall=lambda: NOW, batch=batch)
        self.admission.held = self.scheduler.held
        self.held: list[Message] = []

    def submit(self, now: float = NOW, *, schedule: str = "", validity: str = "",
               text: str = "hello", dest: str = "447700900123", source: str = "ACME",
               service_type: str = "", registered_delivery: int = 1) -> Message:
        sub = Submission(tenant="acme", source_addr=source, source_addr_ton=5,
                         destination_addr=dest, dest_addr_ton=1, body=gsm7_encode(text),
                         schedule_delivery_time=schedule, validity_period=validity,
                         registered_delivery=registered_delivery, service_type=service_type)
        m = self.admission.decide(sub, TENANT, now)
        assert isinstance(m, Message), m
        oks: list[bool] = []
        self.admission.accept([m], now, oks.append)  # the fake commit is done at once
        assert oks == [True]
        return m

    def status(self, m: Message) -> Status:
        self.commit()
        stored = self.record.get(m.id)
        assert stored is not None
        return stored.status

    def queued(self) -> list[str]:
        return sorted(self.router.jobs)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path / "s.db")


def test_the_lifecycle_table_for_scheduled() -> None:
    assert TRANSITIONS[Status.SCHEDULED] == {Status.ACCEPTED, Status.CANCELLED, Status.EXPIRED}
    assert smpp_state(Status.SCHEDULED) == MessageState.ENROUTE  # 3.4 has no SCHEDULED


def test_a_relative_schedule_is_held_in_the_store_not_in_the_router(rig: Rig) -> None:
    m = rig.submit(schedule="000000000002000R")  # 2 s from now (SMPP 3.4 section 7.1.1)
    assert (m.status, m.send_at, m.schedule_delivery_time) == (Status.SCHEDULED, NOW + 2, "")
    assert rig.status(m) is Status.SCHEDULED and rig.queued() == []
    assert rig.book.next_due() == NOW + 2
    assert rig.scheduler.release_due(NOW + 1.9) == 0 and rig.queued() == []
    assert rig.scheduler.release_due(NOW + 2) == 1
    assert rig.queued() == [m.id]
    assert rig.status(m) is Status.ACCEPTED
    assert rig.book.next_due() is None
    assert [h.status for h in rig.record.history_of(m.id)] == [Status.SCHEDULED,
                                                                 Status.ACCEPTED]


def test_an_absolute_schedule_with_an_offset(rig: Rig) -> None:
    m = rig.submit(schedule="270115100000004+")  # 10:00 at UTC+1 (4 quarters) = 09:00 UTC
    assert m.send_at == NOW + 3600


def test_a_past_or_absent_schedule_goes_at_once(rig: Rig) -> None:
    past = rig.submit(schedule=format_smpp_time(NOW - 60))
    now = rig.submit()
    assert past.status is now.status is Status.ACCEPTED
    assert past.send_at == now.send_at == 0.0
    assert rig.queued() == sorted([past.id, now.id])


def test_due_ones_go_earliest_first_in_batches(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "b.db", batch=5)
    ms = [rig.submit(schedule=format_smpp_time(NOW + 10 + i)) for i in range(12)]
    rig.commit()
    later = NOW + 100
    read = []
    for _ in range(4):  # the timer makes each batch durable before the next read
        read.append(rig.scheduler.release_due(later))
        rig.commit()
    assert read == [5, 5, 2, 0]
    assert set(rig.queued()) == {m.id for m in ms}
    assert rig.scheduler.released == 12


def test_a_restart_releases_what_became_due_meanwhile(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "r.db")
    m = rig.submit(schedule="000000000010000R")
    rig.commit()
    rig.store.close()
    again = Rig(tmp_path / "r.db")  # a new process on the same store
    assert again.book.next_due() == NOW + 10
    assert again.scheduler.release_due(NOW + 3600) == 1
    assert again.queued() == [m.id]


def test_validity_ending_before_the_hold_ends_it_expired_with_a_receipt(rig: Rig) -> None:
    # A holding rule (quiet hours) puts the due time past the validity.
    rig.admission.hold_until = lambda message, tenant: NOW + 7200  # type: ignore[method-assign]
    m = rig.submit(validity="000000010000000R")  # valid for an hour
    assert m.status is Status.SCHEDULED
    assert m.send_at == m.expires_at == NOW + 3600  # wakes at the validity's end
    assert m.validity_period == format_smpp_time(NOW + 3600)  # absolute from now on
    assert rig.scheduler.release_due(NOW + 3600) == 1
    assert rig.queued() == [] and rig.status(m) is Status.EXPIRED
    [deliver] = rig.outbox("acme")
    receipt = parse_receipt(deliver.short_message)
    assert receipt is not None and receipt.stat == "EXPIRED"


def test_the_hold_hook_sees_the_asked_time_and_may_move_it_later(rig: Rig) -> None:
    seen: list[float] = []

    def later(message: Message, tenant: TenantConfig) -> float:
        seen.append(message.send_at)
        return max(message.send_at, message.created_at) + 60

    rig.admission.hold_until = later  # type: ignore[method-assign]
    m = rig.submit(schedule="000000000002000R")
    n = rig.submit()
    assert seen == [NOW + 2, 0.0]
    assert (m.send_at, n.send_at) == (NOW + 62, NOW + 60)


def test_cancel_a_scheduled_and_a_queued_message(rig: Rig) -> None:
    held = rig.submit(schedule="000000000100000R")
    queued = rig.submit()
    rig.commit()
    assert rig.scheduler.cancel(held.id, NOW) and rig.scheduler.cancel(queued.id, NOW)
    assert rig.status(held) is rig.status(queued) is Status.CANCELLED
    assert rig.scheduler.release_due(NOW + 3600) == 0
    assert not rig.scheduler.cancel(held.id, NOW)  # once
    assert rig.outbox("acme") == []  # a cancel sends no receipt


def test_a_message_changing_right_now_is_left_alone(rig: Rig) -> None:
    m = rig.submit(schedule="000000000002000R")
    rig.commit()
    assert rig.scheduler.cancel(m.id, NOW)  # not committed yet
    assert rig.scheduler.release_due(NOW + 5) == 1  # read, but skipped
    assert rig.queued() == [] and rig.status(m) is Status.CANCELLED


def test_replace_a_scheduled_message_content_and_time(rig: Rig) -> None:
    m = rig.submit(schedule="000000000100000R")
    rig.commit()
    stored = rig.record.get(m.id)
    assert stored is not None
    new = msgspec.structs.replace(stored, body=gsm7_encode("new text"),
                                  schedule_delivery_time="000000000005000R")
    assert rig.scheduler.replace(new, NOW) is not None
    rig.commit()
    got = rig.record.get(m.id)
    assert got is not None
    assert (got.status, got.body, got.send_at) == (Status.SCHEDULED, gsm7_encode("new text"),
                                                   NOW + 5)
    assert rig.scheduler.release_due(NOW + 5) == 1
    assert rig.router.jobs[m.id].message.body == gsm7_encode("new text")


def test_replace_if_present_cancels_the_one_with_the_same_addresses(rig: Rig) -> None:
    old = rig.submit(schedule="000000000100000R", service_type="CMT")
    other = rig.submit(schedule="000000000100000R", service_type="WAP")
    queued = rig.submit(source="OTHER")
    rig.commit()
    new = rig.submit(text="instead", service_type="CMT")
    assert rig.scheduler.supersede(new, NOW) == old.id
    assert rig.scheduler.supersede(rig.submit(source="OTHER"), NOW) == queued.id
    assert rig.status(old) is rig.status(queued) is Status.CANCELLED
    assert rig.status(other) is Status.SCHEDULED
    assert rig.scheduler.supersede(rig.submit(source="NOBODY"), NOW) is None


def test_smpp_times_that_do_not_parse_are_refused(rig: Rig) -> None:
    sub = Submission(tenant="acme", source_addr="ACME", source_addr_ton=5,
                     destination_addr="447700900123", dest_addr_ton=1, body=b"x",
                     schedule_delivery_time="000000000002000X")
    assert rig.admission.decide(sub, TENANT, NOW) == S.ESME_RINVSCHED
    # a validity that ends before the schedule (section 4.4.1)
    sub = msgspec.structs.replace(sub, schedule_delivery_time="000000000100000R",
                                  validity_period="000000000010000R")
    assert rig.admission.decide(sub, TENANT, NOW) == S.ESME_RINVEXPIRY


# --- the HTTP door's send_at ----------------------------------------------------------------


def _plan(**fields: object) -> list[Planned]:
    req = msgspec.json.decode(msgspec.json.encode(
        {"messages": [{"recipients": ["+447700900123"], "content": "hi", **fields}]}),
        type=SendRequest)
    p = plan_request(req, TENANT, NOW, operator_for=lambda destination: None)
    assert p.problems == []
    return [e for e in p.entries if isinstance(e, Planned)]


def test_http_send_at_in_the_future_becomes_the_schedule() -> None:
    at = dt.datetime.fromtimestamp(NOW + 90, dt.UTC).isoformat()
    [e] = _plan(send_at=at, validity_s=60)
    sub = e.submission
    assert parse_smpp_time(sub.schedule_delivery_time, NOW) == NOW + 90
    # validity counts from when it is due
    assert parse_smpp_time(sub.validity_period, NOW) == NOW + 150


def test_http_send_at_in_the_past_is_now() -> None:
    at = dt.datetime.fromtimestamp(NOW - 90, dt.UTC).isoformat()
    [e] = _plan(send_at=at, validity_s=60)
    assert e.submission.schedule_delivery_time == ""
    assert parse_smpp_time(e.submission.validity_period, NOW) == NOW + 60


def test_http_send_at_too_far_ahead_is_a_problem() -> None:
    at = dt.datetime.fromtimestamp(NOW + 400 * 86400, dt.UTC).isoformat()
    req = msgspec.json.decode(msgspec.json.encode(
        {"messages": [{"recipients": ["+447700900123"], "content": "hi", "send_at": at}]}),
        type=SendRequest)
    p = plan_request(req, TENANT, NOW, operator_for=lambda destination: None)
    assert [(q.pointer, q.code) for q in p.problems] == [("/messages/0/send_at",
                                                          "invalid_send_at")]


def test_cancel_by_address_cancels_every_one_that_has_not_left(rig: Rig) -> None:
    # cancel_sm without a message_id (SMPP 3.4 section 4.10.1)
    a = rig.submit(schedule="000000000100000R", service_type="CMT")
    b = rig.submit(schedule="000000000200000R")
    queued = rig.submit()
    elsewhere = rig.submit(schedule="000000000100000R", dest="447700900999")
    rig.commit()
    assert rig.scheduler.cancel_matching("acme", "ACME", "+447700900123", "", NOW) == 3
    assert {rig.status(m) for m in (a, b, queued)} == {Status.CANCELLED}
    assert rig.status(elsewhere) is Status.SCHEDULED
    assert rig.scheduler.cancel_matching("acme", "ACME", "447700900123", "", NOW) == 0
