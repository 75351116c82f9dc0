"""The admission service: queue and rate limits, validation, id minting, durable accept.

The record and the sink (the router) are small fakes: the record mints ids, counts what is
not durable yet and completes each accept when the test says so; the sink records what it
got. Time is an argument (``now``); nothing sleeps.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from config import GatewayConfig, StoreConfig, TenantConfig
from encoding.constants import CommandStatus as S
from routing import Door, Message, Submission
from routing.admission import Admission

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC


class Pending:
    """A Durable the test completes: callbacks run once ``finish`` is called."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[Any], object]] = []
        self._done = False
        self._exc: BaseException | None = None

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None:
        if self._done:
            fn(self)
        else:
            self._callbacks.append(fn)

    def exception(self) -> BaseException | None:
        return self._exc

    def finish(self, exc: BaseException | None = None) -> None:
        self._done, self._exc = True, exc
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn(self)


class FakeRecord:
    """What Admission uses of a MessageRecord: ids, accept, backlog."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.next_id = 1000
        self.writes = 0  # rows recorded and not durable yet
        self.accepted: list[list[Message]] = []
        self.pending: list[Pending] = []

    def new_message_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def accept(self, messages: Sequence[Message], now: float) -> Pending:
        self.log.append(f"record.accept {len(messages)}")
        self.accepted.append(list(messages))
        fut = Pending()
        self.pending.append(fut)
        return fut

    def backlog(self) -> int:
        return self.writes


class FakeSink:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.got: list[Message] = []
        self.queued = 0

    def accepted(self, messages: list[Message]) -> None:
        self.log.append(f"sink.accepted {len(messages)}")
        self.got.extend(messages)

    def backlog(self) -> int:
        return self.queued


ACME = TenantConfig(system_id="acme", password="pw", tps=2.0)
BETA = TenantConfig(system_id="beta", password="pw", tps=2.0)
FREE = TenantConfig(system_id="free", password="pw")  # tps 0: unlimited


class Rig:
    def __init__(self, max_queue: int = 100) -> None:
        self.log: list[str] = []
        self.record = FakeRecord(self.log)
        self.sink = FakeSink(self.log)
        config = GatewayConfig(store=StoreConfig(max_queue=max_queue),
                               tenants=(ACME, BETA, FREE))
        self.admission = Admission(config, self.record, self.sink)  # type: ignore[arg-type]


def sub(**kw: Any) -> Submission:
    base: dict[str, Any] = dict(tenant="free", source_addr="447911123456", source_addr_ton=1,
                                destination_addr="447700900123", dest_addr_ton=1,
                                body=b"hello")
    base.update(kw)
    return Submission(**base)


def decided(rig: Rig, s: Submission | None = None, tenant: TenantConfig = FREE,
            now: float = NOW) -> Message:
    m = rig.admission.decide(s or sub(), tenant, now)
    assert isinstance(m, Message), f"refused with 0x{m:X}"
    return m


# --- admit: queue --------------------------------------------------------------------------


def test_admit_is_ok_below_the_queue_limit() -> None:
    rig = Rig(max_queue=3)
    assert rig.admission.admit(FREE, NOW) == S.ESME_ROK


def test_queue_full_counts_what_the_record_and_the_router_hold() -> None:
    rig = Rig(max_queue=3)
    rig.record.writes = 1
    rig.sink.queued = 1
    assert rig.admission.admit(FREE, NOW) == S.ESME_ROK
    rig.sink.queued = 2
    assert rig.admission.admit(FREE, NOW) == S.ESME_RMSGQFUL


def test_queue_full_counts_messages_decided_in_the_current_batch() -> None:
    rig = Rig(max_queue=2)
    batch = []
    for _ in range(2):
        assert rig.admission.admit(FREE, NOW) == S.ESME_ROK
        batch.append(decided(rig))
    # Two decided and not yet handed to accept: the queue is full for the third submit.
    assert rig.admission.admit(FREE, NOW) == S.ESME_RMSGQFUL
    rig.admission.accept(batch, NOW, lambda ok: None)
    # Handed over (the fake record reports no backlog): room again.
    assert rig.admission.admit(FREE, NOW) == S.ESME_ROK


def test_a_refused_decision_does_not_take_queue_room() -> None:
    rig = Rig(max_queue=1)
    assert rig.admission.decide(sub(destination_addr="abc"), FREE, NOW) == S.ESME_RINVDSTADR
    assert rig.admission.admit(FREE, NOW) == S.ESME_ROK


def test_stop_accepting_refuses_with_queue_full() -> None:
    rig = Rig()
    rig.admission.stop_accepting()
    assert rig.admission.accepting is False
    assert rig.admission.admit(FREE, NOW) == S.ESME_RMSGQFUL


# --- admit: tps ----------------------------------------------------------------------------


def test_tps_bucket_throttles_then_refills_with_time() -> None:
    rig = Rig()
    a = rig.admission
    assert [a.admit(ACME, NOW) for _ in range(2)] == [S.ESME_ROK, S.ESME_ROK]
    assert a.admit(ACME, NOW) == S.ESME_RTHROTTLED
    assert a.admit(ACME, NOW + 0.1) == S.ESME_RTHROTTLED  # 0.2 of a token
    assert a.admit(ACME, NOW + 0.5) == S.ESME_ROK  # one token back after 1/tps seconds
    assert a.admit(ACME, NOW + 0.5) == S.ESME_RTHROTTLED


def test_unlimited_tenant_is_never_throttled() -> None:
    rig = Rig()
    assert all(rig.admission.admit(FREE, NOW) == S.ESME_ROK for _ in range(1000))


def test_one_budget_per_tenant_whatever_the_door() -> None:
    rig = Rig()
    a = rig.admission

    def submit(tenant: TenantConfig, door: Door) -> int | Message:
        status = a.admit(tenant, NOW)
        return status or a.decide(sub(tenant=tenant.system_id, door=door), tenant, NOW)

    assert isinstance(submit(ACME, Door.SMPP), Message)
    assert isinstance(submit(ACME, Door.HTTP), Message)
    # The SMPP and the HTTP submit spent acme's two tokens: both doors are throttled now.
    assert submit(ACME, Door.HTTP) == S.ESME_RTHROTTLED
    assert submit(ACME, Door.SMPP) == S.ESME_RTHROTTLED
    # Another tenant has its own budget.
    assert isinstance(submit(BETA, Door.HTTP), Message)


def test_throttled_and_queue_full_take_no_token() -> None:
    rig = Rig(max_queue=1)
    rig.sink.queued = 1
    for _ in range(5):
        assert rig.admission.admit(ACME, NOW) == S.ESME_RMSGQFUL
    rig.sink.queued = 0
    assert rig.admission.admit(ACME, NOW) == S.ESME_ROK
    assert rig.admission.admit(ACME, NOW) == S.ESME_ROK


# --- decide --------------------------------------------------------------------------------


def test_decide_mints_an_id_and_copies_the_submission() -> None:
    rig = Rig()
    s = sub(tenant="acme", destination_addr="+447700900123", data_coding=8,
            body="hé".encode("utf-16-be"), registered_delivery=1, esm_class=0,
            service_type="CMT", priority_flag=1, tlvs=b"\x02\x04\x00\x02\x00\x07")
    m = decided(rig, s, ACME)
    assert m.id == "1001"
    assert m.tenant == "acme"
    assert m.destination_addr == "447700900123"  # leading '+' dropped
    assert (m.data_coding, m.body, m.registered_delivery) == (8, s.body, 1)
    assert (m.service_type, m.priority_flag, m.tlvs) == ("CMT", 1, s.tlvs)
    assert m.created_at == NOW
    assert m.expires_at == 0.0  # no validity_period: the operator's default
    assert decided(rig, s, ACME).id == "1002"  # every decision its own id


def test_decide_takes_expiry_from_an_absolute_validity_period() -> None:
    rig = Rig()
    m = decided(rig, sub(validity_period="280101000000000+"))
    assert m.expires_at == calendar.timegm((2028, 1, 1, 0, 0, 0, 0, 0, 0))
    assert m.validity_period == "280101000000000+"  # passed on as given
    # Quarter hours ahead of UTC: 04+ is one hour ahead, so an hour earlier in UTC.
    m = decided(rig, sub(validity_period="280101000000004+"))
    assert m.expires_at == calendar.timegm((2028, 1, 1, 0, 0, 0, 0, 0, 0)) - 3600


def test_decide_takes_expiry_from_a_relative_validity_period() -> None:
    rig = Rig()
    m = decided(rig, sub(validity_period="000001020304000R"))  # 1 day 2 h 3 min 4 s
    assert m.expires_at == NOW + 86_400 + 2 * 3600 + 3 * 60 + 4


@pytest.mark.parametrize(("fields", "status"), [
    ({"destination_addr": "not-a-number"}, S.ESME_RINVDSTADR),
    ({"destination_addr": ""}, S.ESME_RINVDSTADR),
    ({"source_addr": "ACME", "source_addr_ton": 1}, S.ESME_RINVSRCADR),
    ({"esm_class": 0x04}, S.ESME_RINVESMCLASS),  # a tenant may not send a receipt
    ({"esm_class": 0x40, "body": b"\x05\x00\x03"}, S.ESME_RINVESMCLASS),  # UDH cut short
    ({"registered_delivery": 3}, S.ESME_RINVREGDLVFLG),
    ({"validity_period": "260101000000000+"}, S.ESME_RINVEXPIRY),  # already past
    ({"validity_period": "tomorrow"}, S.ESME_RINVEXPIRY),
    ({"schedule_delivery_time": "99"}, S.ESME_RINVSCHED),
])
def test_decide_refuses_an_invalid_submission(fields: dict[str, Any], status: int) -> None:
    rig = Rig()
    assert rig.admission.decide(sub(**fields), FREE, NOW) == status
    assert rig.record.next_id == 1000  # no id minted for a refusal


@pytest.mark.parametrize(("interface_version", "status"), [
    (0x34, S.ESME_RSUBMITFAIL),  # 3.4 has no status for a bad data_coding
    (0x50, S.ESME_RINVDCS),
])
def test_unsupported_data_coding_status_depends_on_the_interface_version(
        interface_version: int, status: int) -> None:
    rig = Rig()
    s = sub(data_coding=0x05, interface_version=interface_version)  # JIS: not carried
    assert rig.admission.decide(s, FREE, NOW) == status


# --- accept --------------------------------------------------------------------------------


def test_accept_answers_the_door_before_the_router_gets_the_messages() -> None:
    rig = Rig()
    batch = [decided(rig), decided(rig)]
    answers: list[bool] = []

    def on_durable(ok: bool) -> None:
        rig.log.append(f"on_durable {ok}")
        answers.append(ok)

    rig.admission.accept(batch, NOW, on_durable)
    assert rig.record.accepted == [batch]
    assert answers == [] and rig.sink.got == []  # nothing before the batch is durable
    rig.record.pending[0].finish()
    assert rig.log == ["record.accept 2", "on_durable True", "sink.accepted 2"]
    assert rig.sink.got == batch


def test_failed_commit_answers_the_door_and_the_router_gets_nothing() -> None:
    rig = Rig()
    batch = [decided(rig)]
    answers: list[bool] = []
    rig.admission.accept(batch, NOW, answers.append)
    rig.record.pending[0].finish(OSError("disk full"))
    assert answers == [False]
    assert rig.sink.got == []
    assert "sink.accepted 1" not in rig.log
