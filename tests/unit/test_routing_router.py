"""Router: routing, per-operator queues, cancel/replace, retry and failover, receipts to tenants.

The group commit is replaced by a fake whose futures are already done; ``Rig.commit`` applies
what the router queued to a real SQLite store, and the assertions read the store: message
status, segment rows, and the deliver_sm receipts waiting in the tenant's outbox.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from config import GatewayConfig, OperatorConfig, RouteConfig, TenantConfig
from encoding.constants import CommandStatus as S
from encoding.constants import MessageState
from encoding.pdu import DeliverSm, SubmitSm
from encoding.receipt import Receipt, parse_receipt
from encoding.text import decode_text, gsm7_encode
from routing import Message, Status
from routing.retry import MAX_ATTEMPTS, MAX_FLOW_WAITS, Outcome
from routing.router import Job
from tests.routing_rig import RoutingRig

STATE = {"DELIVRD": MessageState.DELIVERED, "UNDELIV": MessageState.UNDELIVERABLE,
         "EXPIRED": MessageState.EXPIRED, "REJECTD": MessageState.REJECTED,
         "ENROUTE": MessageState.ENROUTE, "ACCEPTD": MessageState.ACCEPTED}


def operator(name: str, **kw: Any) -> OperatorConfig:
    return OperatorConfig(name=name, host="127.0.0.1", port=2775, system_id="gw",
                          password="pw", **kw)


class Rig(RoutingRig):
    def __init__(self, path: Path, *, policy: str = "aggregate", id_format: str = "decimal",
                 ops: dict[str, dict[str, Any]] | None = None,
                 config: GatewayConfig | None = None) -> None:
        ops = ops if ops is not None else {}
        super().__init__(path, config or GatewayConfig(
            tenants=(TenantConfig(system_id="acme", password="pw",
                                  multipart_receipt=policy,  # type: ignore[arg-type]
                                  id_format=id_format),),  # type: ignore[arg-type]
            operators=tuple(operator(n, **ops.get(n, {})) for n in ("opA", "opB", "opC")),
            routes=(RouteConfig(prefix="44", operators=("opA", "opB")),
                    RouteConfig(prefix="33", operators=("opC",)))))

    def submit(self, text: str = "hello", dest: str = "447700900123", **kw: Any) -> Message:
        m = Message(id=str(self.store.new_message_number()), tenant="acme", source_addr="ACME",
                    source_addr_ton=5, destination_addr=dest, dest_addr_ton=1,
                    body=gsm7_encode(text), created_at=time.time(),
                    **{"registered_delivery": 1, **kw})
        self.record.accept([m], m.created_at)
        self.commit()
        self.router.accepted([m])
        return m

    def send(self, name: str, now: float = 0.0) -> list[Job]:
        """What a bind does: take jobs, build parts, mark them sent."""
        jobs = self.router.take(name, 100, now)
        for job in jobs:
            for i in self.router.parts_for(job, now):
                self.router.part_sending(job, i)
        return jobs

    def stored(self, m: Message) -> Message:
        self.commit()
        got = self.store.get_message(m.id)
        assert got is not None
        return got

    def receipts(self) -> list[tuple[DeliverSm, Receipt]]:
        out = []
        for pdu in self.outbox("acme"):
            assert pdu.esm_class == 0x04
            r = parse_receipt(pdu.short_message)
            assert r is not None
            out.append((pdu, r))
        return out

    def dlr(self, name: str, rid: str, stat: str = "DELIVRD", err: str = "000") -> bool:
        return self.router.receipt(name, Receipt(id=rid, stat=stat, err=err,
                                                 message_state=STATE[stat]), time.time())


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path / "r.db")
    yield r
    r.store.close()


def make(tmp_path: Path, **kw: Any) -> Rig:
    return Rig(tmp_path / "k.db", **kw)


# --- routing and queues -----------------------------------------------------------------


def test_accepted_message_queues_on_the_first_operator_of_its_route(rig: Rig) -> None:
    m = rig.submit(dest="447700900123")
    assert rig.router.pending("opA") == 1 and rig.router.pending("opB") == 0
    assert rig.woken == ["opA"]
    assert rig.router.backlog() == 1
    [job] = rig.router.take("opA", 10, 0.0)
    assert job.message.id == m.id
    assert rig.router.parts_for(job, 0.0) == [0]
    pdu = job.parts[0].pdu
    assert isinstance(pdu, SubmitSm)
    assert (pdu.destination_addr, pdu.short_message) == ("447700900123", gsm7_encode("hello"))


def test_unavailable_operator_is_skipped(rig: Rig) -> None:
    rig.router.operator_down("opA")
    rig.submit()
    assert rig.router.pending("opA") == 0 and rig.router.pending("opB") == 1


def test_operator_down_moves_its_queue_to_the_next_operator(rig: Rig) -> None:
    rig.submit()
    rig.submit()
    rig.router.operator_down("opA")
    assert rig.router.pending("opA") == 0 and rig.router.pending("opB") == 2
    assert rig.woken[-1] == "opB"


def test_no_route_is_rejected_with_a_receipt(rig: Rig) -> None:
    m = rig.submit(dest="12025550100")
    got = rig.stored(m)
    assert (got.status, got.error) == (Status.REJECTED, S.ESME_RINVDSTADR)
    [(pdu, r)] = rig.receipts()
    assert (r.id, r.stat, r.err) == (m.id, "REJECTD", "011")
    assert pdu.tlvs["receipted_message_id"] == m.id
    assert pdu.tlvs["message_state"] == MessageState.REJECTED
    assert (pdu.source_addr, pdu.destination_addr) == ("12025550100", "ACME")
    assert [getattr(c.event, "message_id", None) for c in rig.delivered] == [m.id]
    assert rig.router.backlog() == 0


def test_no_route_without_registered_delivery_has_no_receipt(rig: Rig) -> None:
    m = rig.submit(dest="12025550100", registered_delivery=0)
    assert rig.stored(m).status is Status.REJECTED
    assert rig.receipts() == [] and rig.delivered == []


def test_hex_tenant_gets_hex_ids_in_receipts(tmp_path: Path) -> None:
    rig = make(tmp_path, id_format="hex")
    m = rig.submit(dest="12025550100")
    [(pdu, r)] = rig.receipts()
    assert r.id == pdu.tlvs["receipted_message_id"] == f"{int(m.id):X}"
    rig.store.close()


# --- cancel, replace --------------------------------------------------------------------


def test_cancel_before_sending_drops_the_job(rig: Rig) -> None:
    m = rig.submit()
    assert rig.router.cancel(m.id, 0.0)
    assert rig.router.take("opA", 10, 0.0) == []
    assert rig.router.backlog() == 0
    assert not rig.router.cancel(m.id, 0.0)
    assert not rig.router.cancel("nope", 0.0)


def test_cancel_and_replace_refused_once_a_part_left(rig: Rig) -> None:
    m = rig.submit()
    rig.send("opA")
    assert not rig.router.cancel(m.id, 0.0)
    assert not rig.router.replace(msgspec.structs.replace(m, body=b"new"), 0.0)


def test_replace_before_sending_changes_what_is_sent(rig: Rig) -> None:
    m = rig.submit("old text")
    assert rig.router.replace(msgspec.structs.replace(m, body=gsm7_encode("new text")), 0.0)
    [job] = rig.router.take("opA", 10, 0.0)
    rig.router.parts_for(job, 0.0)
    assert job.parts[0].pdu.short_message == gsm7_encode("new text")  # type: ignore[attr-defined]


# --- take: readiness and validity -------------------------------------------------------


def test_expired_in_queue_finishes_expired_with_receipt(rig: Rig) -> None:
    m = rig.submit(expires_at=time.time() - 1)
    assert rig.router.take("opA", 10, 0.0) == []
    assert rig.stored(m).status is Status.EXPIRED
    [(_, r)] = rig.receipts()
    assert r.stat == "EXPIRED"
    live = rig.submit(expires_at=time.time() + 3600)
    assert [j.message.id for j in rig.router.take("opA", 10, 0.0)] == [live.id]


def test_take_respects_limit_and_order(rig: Rig) -> None:
    ms = [rig.submit(str(i)) for i in range(5)]
    first = rig.router.take("opA", 2, 0.0)
    rest = rig.router.take("opA", 10, 0.0)
    assert [j.message.id for j in first + rest] == [m.id for m in ms]


def test_flow_control_requeues_same_operator_after_delay(rig: Rig) -> None:
    m = rig.submit()
    [job] = rig.send("opA", now=100.0)
    assert rig.router.part_failed(job, 0, S.ESME_RTHROTTLED, 100.0) is Outcome.FLOW
    assert rig.router.next_due("opA") == pytest.approx(100.2)
    assert rig.router.take("opA", 10, 100.1) == []
    other = rig.submit("other")
    # The deferred job stays queued; the one behind it is ready now.
    assert [j.message.id for j in rig.router.take("opA", 10, 100.1)] == [other.id]
    assert rig.router.pending("opA") == 1
    [again] = rig.router.take("opA", 10, 100.2)
    assert again is job and rig.router.parts_for(job, 100.2) == [0]
    assert rig.stored(m).status is Status.ACCEPTED


def test_flow_delay_grows_with_attempts(rig: Rig) -> None:
    rig.submit()
    readies = []
    for k in range(3):
        now = 1000.0 * (k + 1)
        [job] = rig.send("opA", now=now)
        rig.router.part_failed(job, 0, S.ESME_RMSGQFUL, now)
        readies.append(rig.router.next_due("opA") - now)  # type: ignore[operator]
    assert readies == pytest.approx([0.2, 0.4, 0.8])


def test_temporary_error_fails_over_to_the_next_operator(rig: Rig) -> None:
    m = rig.submit()
    [job] = rig.send("opA", now=10.0)
    assert rig.router.part_failed(job, 0, S.ESME_RSYSERR, 10.0) is Outcome.TEMPORARY
    assert rig.router.pending("opA") == 0
    [job2] = rig.send("opB", now=10.0)
    assert job2 is job
    rig.router.part_acked(job, 0, "opB", "b-1")
    got = rig.stored(m)
    assert (got.status, got.operator) == (Status.SUBMITTED, "opB")
    assert [(g.part, g.parts, g.operator, g.operator_id, g.status, g.error)
            for g in rig.store.segments_of(m.id)] == [(1, 1, "opB", "B-1", "submitted", 0)]


def test_submit_fail_is_tried_once_on_the_next_operator_then_rejected(rig: Rig) -> None:
    m = rig.submit()
    [job] = rig.send("opA", now=10.0)
    assert rig.router.part_failed(job, 0, S.ESME_RSUBMITFAIL, 10.0) is Outcome.FAILOVER
    assert rig.router.pending("opA") == 0 and rig.router.pending("opB") == 1
    assert rig.stored(m).status is Status.ACCEPTED
    [again] = rig.send("opB", now=10.0)  # due at once: no back-off for a failover
    assert again is job
    assert rig.router.part_failed(job, 0, S.ESME_RSUBMITFAIL, 10.0) is Outcome.FAILOVER
    got = rig.stored(m)
    assert (got.status, got.error) == (Status.REJECTED, S.ESME_RSUBMITFAIL)
    assert rig.router.pending("opA") == rig.router.pending("opB") == 0
    [(_, r)] = rig.receipts()
    assert (r.stat, r.err) == ("REJECTD", "069")


def test_submit_fail_with_no_other_operator_is_rejected_at_once(rig: Rig) -> None:
    m = rig.submit(dest="33612345678")  # route 33: opC only
    [job] = rig.send("opC")
    rig.router.part_failed(job, 0, S.ESME_RSUBMITFAIL, 0.0)
    assert rig.stored(m).status is Status.REJECTED
    assert rig.router.pending("opC") == 0
    assert [r.stat for _, r in rig.receipts()] == ["REJECTD"]


def test_failover_rebuilds_parts_for_the_new_operators_dcs0(tmp_path: Path) -> None:
    rig = make(tmp_path, ops={"opA": {"dcs0": "latin1"}, "opB": {"dcs0": "gsm7"}})
    rig.submit("café")
    [job] = rig.send("opA")
    first = job.parts[0].pdu
    assert decode_text(first.short_message, first.data_coding,  # type: ignore[attr-defined]
                       dcs0="latin1") == "café"
    rig.router.part_failed(job, 0, None, 0.0)  # no answer: temporary, fail over
    [job] = rig.send("opB")
    pdu = job.parts[0].pdu
    assert decode_text(pdu.short_message, pdu.data_coding,  # type: ignore[attr-defined]
                       dcs0="gsm7") == "café"
    rig.store.close()


def test_temporary_error_on_single_operator_route_retries_there(rig: Rig) -> None:
    rig.submit(dest="33612345678")
    [job] = rig.send("opC")
    rig.router.part_failed(job, 0, S.ESME_RX_T_APPN, 5.0)
    assert rig.router.pending("opC") == 1
    [again] = rig.send("opC", now=5.0)
    assert again is job


def test_session_error_retries_on_the_same_operator(rig: Rig) -> None:
    rig.submit()
    [job] = rig.send("opA")
    assert rig.router.part_failed(job, 0, S.ESME_RINVBNDSTS, 0.0) is Outcome.SESSION
    assert rig.router.pending("opA") == 1 and rig.router.pending("opB") == 0


def test_permanent_error_rejects_with_a_receipt(rig: Rig) -> None:
    m = rig.submit()
    [job] = rig.send("opA")
    assert rig.router.part_failed(job, 0, S.ESME_RINVDSTADR, 0.0) is Outcome.PERMANENT
    got = rig.stored(m)
    assert (got.status, got.error) == (Status.REJECTED, S.ESME_RINVDSTADR)
    [(_, r)] = rig.receipts()
    assert (r.stat, r.err) == ("REJECTD", "011")
    assert rig.router.pending("opA") == rig.router.pending("opB") == 0


def test_too_many_attempts_is_undeliverable(rig: Rig) -> None:
    m = rig.submit()
    for k in range(MAX_ATTEMPTS + 1):
        now = 1000.0 * (k + 1)
        jobs = rig.send("opA", now) + rig.send("opB", now)
        assert len(jobs) == 1, f"attempt {k + 1} was not requeued"
        rig.router.part_failed(jobs[0], 0, None, now)
    got = rig.stored(m)
    assert (got.status, got.error) == (Status.UNDELIVERABLE, S.ESME_RSYSERR)
    [(_, r)] = rig.receipts()
    assert r.stat == "UNDELIV"
    assert rig.router.pending("opA") == rig.router.pending("opB") == 0


def test_throttling_does_not_use_up_the_attempts(rig: Rig) -> None:
    """An operator that throttles means "later": a message throttled more often than the
    failure limit still goes out once the operator takes it again."""
    m = rig.submit()
    now = 1000.0
    for _ in range(MAX_ATTEMPTS * 2):
        [job] = rig.send("opA", now)
        assert rig.router.part_failed(job, 0, S.ESME_RTHROTTLED, now) is Outcome.FLOW
        now += 1000.0
    assert rig.stored(m).status is Status.ACCEPTED
    [job] = rig.send("opA", now)
    assert job.operator == "opA"  # throttling does not fail over either
    rig.router.part_acked(job, 0, "opA", "ok-1")
    assert rig.stored(m).status is Status.SUBMITTED
    assert rig.receipts() == []


def test_throttled_past_its_validity_the_message_expires(rig: Rig) -> None:
    wall = time.time()
    m = rig.submit(expires_at=wall + 3600.0)
    [job] = rig.send("opA", 100.0)
    rig.router.part_failed(job, 0, S.ESME_RTHROTTLED, 100.0)
    assert rig.stored(m).status is Status.ACCEPTED  # still valid: it waits
    m_in_memory = job.message
    m_in_memory.expires_at = wall - 1.0  # the validity period has run out meanwhile
    [job] = rig.send("opA", 1000.0)
    rig.router.part_failed(job, 0, S.ESME_RMSGQFUL, 1000.0)
    assert rig.stored(m).status is Status.EXPIRED
    [(_, r)] = rig.receipts()
    assert r.stat == "EXPIRED"


def test_endless_throttling_ends_as_undeliverable(rig: Rig) -> None:
    m = rig.submit()
    now = 1000.0
    for _ in range(MAX_FLOW_WAITS + 1):
        jobs = rig.send("opA", now)
        assert len(jobs) == 1, "a throttled message left the queue before the limit"
        rig.router.part_failed(jobs[0], 0, S.ESME_RTHROTTLED, now)
        now += 1000.0
    assert rig.stored(m).status is Status.UNDELIVERABLE
    assert rig.router.pending("opA") == 0
    [(_, r)] = rig.receipts()
    assert r.stat == "UNDELIV"


def test_message_the_operator_cannot_take_is_rejected(tmp_path: Path) -> None:
    rig = make(tmp_path, ops={"opA": {"max_parts": 1}})
    m = rig.submit("x" * 200)
    [job] = rig.router.take("opA", 10, 0.0)
    assert rig.router.parts_for(job, 0.0) == []
    got = rig.stored(m)
    assert (got.status, got.error) == (Status.REJECTED, S.ESME_RINVMSGLEN)
    assert [r.stat for _, r in rig.receipts()] == ["REJECTD"]
    rig.store.close()


# --- acks -------------------------------------------------------------------------------


def test_ack_of_every_part_makes_the_message_submitted(rig: Rig) -> None:
    m = rig.submit("y" * 400)  # three parts
    [job] = rig.send("opA")
    assert len(job.parts) == 3
    rig.router.part_acked(job, 0, "opA", "id-1")
    rig.router.part_acked(job, 2, "opA", "id-3")
    assert rig.stored(m).status is Status.ACCEPTED
    rig.router.part_acked(job, 1, "opA", "id-2")
    assert rig.stored(m).status is Status.SUBMITTED
    assert [(g.part, g.parts, g.operator_id) for g in rig.store.segments_of(m.id)] == [
        (1, 3, "ID-1"), (2, 3, "ID-2"), (3, 3, "ID-3")]
    assert rig.router.backlog() == 0


def test_an_acked_part_lets_go_of_its_pdu_the_others_keep_theirs(rig: Rig) -> None:
    """Jobs stay in the receipt index long after sending (tens of thousands of them): a part
    that was acked is never sent again, so its submit_sm is not kept."""
    rig.submit("y" * 400)  # three parts
    [job] = rig.send("opA")
    rig.router.part_acked(job, 0, "opA", "id-1")
    assert job.parts[0].pdu is None
    assert all(p.pdu is not None for p in job.parts[1:])


# --- receipt timeout ---------------------------------------------------------------------


def test_no_receipt_within_the_timeout_gives_one_unknown_receipt(rig: Rig) -> None:
    m = rig.submit()
    [job] = rig.send("opA")
    rig.router.part_acked(job, 0, "opA", "late-1")
    rig.commit()
    timeout = rig.config.operators[0].receipt_timeout_s
    assert timeout > 0
    now = time.time()
    assert rig.router.receipt_timeouts(now + timeout - 60) == {}
    assert rig.router.receipt_timeouts(now + timeout + 60) == {"opA": 1}
    assert rig.stored(m).status is Status.UNKNOWN
    [(pdu, r)] = rig.receipts()
    assert r.stat == "UNKNOWN" and pdu.tlvs["message_state"] == 7
    assert rig.router.receipt_timeouts(now + timeout + 120) == {}  # once only
    # The operator's receipt comes after all: the status is put right, no second receipt.
    assert rig.dlr("opA", "late-1")
    assert rig.stored(m).status is Status.DELIVERED
    assert [r.stat for _, r in rig.receipts()] == ["UNKNOWN"]


def test_a_receipt_not_yet_committed_wins_over_the_timeout(rig: Rig) -> None:
    m = rig.submit()
    [job] = rig.send("opA")
    rig.router.part_acked(job, 0, "opA", "just-1")
    rig.commit()
    assert rig.dlr("opA", "just-1")  # DELIVERED, still in the pending batch
    assert rig.router.receipt_timeouts(time.time() + 10**9) == {}
    assert rig.stored(m).status is Status.DELIVERED
    assert [r.stat for _, r in rig.receipts()] == ["DELIVRD"]


def test_receipt_timeout_zero_waits_for_ever(tmp_path: Path) -> None:
    rig = make(tmp_path, ops={"opA": {"receipt_timeout_s": 0}})
    m = rig.submit()
    [job] = rig.send("opA")
    rig.router.part_acked(job, 0, "opA", "x-1")
    rig.commit()
    assert rig.router.receipt_timeouts(time.time() + 10**9) == {}
    assert rig.stored(m).status is Status.SUBMITTED
    rig.store.close()


def test_receipted_messages_are_not_timed_out(rig: Rig) -> None:
    m = rig.submit()
    [job] = rig.send("opA")
    rig.router.part_acked(job, 0, "opA", "d-1")
    assert rig.dlr("opA", "d-1")
    rig.commit()
    assert rig.router.receipt_timeouts(time.time() + 10**9) == {}
    assert rig.stored(m).status is Status.DELIVERED
    assert [r.stat for _, r in rig.receipts()] == ["DELIVRD"]


# --- receipts ---------------------------------------------------------------------------


def acked(rig: Rig, text: str = "hello", ids: tuple[str, ...] = ("abc1",),
          name: str = "opA", **kw: Any) -> Message:
    m = rig.submit(text, **kw)
    [job] = rig.send(name)
    assert len(job.parts) == len(ids)
    for i, oid in enumerate(ids):
        rig.router.part_acked(job, i, name, oid)
    rig.commit()
    return m


def test_delivered_receipt_reaches_the_tenant_once(rig: Rig) -> None:
    m = acked(rig)
    assert rig.dlr("opA", "ABC1")
    got = rig.stored(m)
    assert got.status is Status.DELIVERED
    [(pdu, r)] = rig.receipts()
    assert (r.id, r.stat, r.dlvrd, r.text) == (m.id, "DELIVRD", "001", "hello")
    assert (pdu.source_addr, pdu.destination_addr) == ("447700900123", "ACME")
    assert rig.store.segments_of(m.id)[0].status is Status.DELIVERED


def test_delivered_receipt_without_registered_delivery_is_recorded_silently(rig: Rig) -> None:
    m = acked(rig, registered_delivery=0)
    assert rig.dlr("opA", "abc1")
    assert rig.stored(m).status is Status.DELIVERED
    assert rig.receipts() == []


def test_failure_only_receipts(rig: Rig) -> None:
    ok = acked(rig, ids=("a1",), registered_delivery=2)
    bad = acked(rig, ids=("a2",), registered_delivery=2)
    rig.dlr("opA", "a1", "DELIVRD")
    rig.dlr("opA", "a2", "UNDELIV", err="034")
    assert rig.stored(ok).status is Status.DELIVERED
    got = rig.stored(bad)
    assert (got.status, got.error) == (Status.UNDELIVERABLE, 34)
    assert [(r.id, r.stat, r.err) for _, r in rig.receipts()] == [(bad.id, "UNDELIV", "034")]


def test_intermediate_receipt_changes_nothing(rig: Rig) -> None:
    m = acked(rig)
    assert rig.dlr("opA", "abc1", "ENROUTE")
    assert rig.dlr("opA", "abc1", "ACCEPTD")
    assert rig.stored(m).status is Status.SUBMITTED
    assert rig.receipts() == []
    rig.dlr("opA", "abc1", "DELIVRD")
    assert rig.stored(m).status is Status.DELIVERED


@pytest.mark.parametrize(("fmt", "resp_id", "receipt_id"), [
    ("hex", "33E95179", "870928761"),
    ("hex", "33e95179", "0870928761"),
    ("decimal", "870928761", "33E95179"),
    ("auto", "33E95179", "870928761"),
    ("auto", "870928761", "33e95179"),
    ("opaque", "abc-01", "ABC-01"),
])
def test_receipt_ids_match_across_hex_and_decimal(tmp_path: Path, fmt: str, resp_id: str,
                                                  receipt_id: str) -> None:
    rig = make(tmp_path, ops={"opA": {"id_format": fmt}})
    m = acked(rig, ids=(resp_id,))
    assert rig.dlr("opA", receipt_id)
    assert rig.stored(m).status is Status.DELIVERED
    assert len(rig.receipts()) == 1
    rig.store.close()


def test_opaque_ids_are_not_converted(tmp_path: Path) -> None:
    rig = make(tmp_path, ops={"opA": {"id_format": "opaque"}})
    m = acked(rig, ids=("255",))
    assert not rig.dlr("opA", "FF")
    assert rig.stored(m).status is Status.SUBMITTED
    rig.store.close()


def test_receipt_from_another_operator_does_not_match(rig: Rig) -> None:
    m = acked(rig, ids=("X1",))
    assert not rig.dlr("opB", "X1")
    assert rig.stored(m).status is Status.SUBMITTED


def test_duplicate_receipt_is_ignored(rig: Rig) -> None:
    m = acked(rig, ids=("D1",))
    assert rig.dlr("opA", "D1")
    rig.commit()
    assert rig.dlr("opA", "D1")
    assert rig.dlr("opA", "D1", "UNDELIV")
    assert rig.stored(m).status is Status.DELIVERED
    assert len(rig.receipts()) == 1


def test_duplicate_receipt_in_the_same_commit_window_is_ignored(rig: Rig) -> None:
    m = acked(rig, ids=("D1",))
    assert rig.dlr("opA", "D1")
    assert rig.dlr("opA", "D1")  # before the first one's writes are durable
    assert rig.stored(m).status is Status.DELIVERED
    assert len(rig.receipts()) == 1
    assert len(rig.delivered) == 1


def test_receipt_before_ack_is_parked_then_applied(rig: Rig) -> None:
    m = rig.submit()
    [job] = rig.send("opA")
    assert not rig.dlr("opA", "early1")
    assert rig.stored(m).status is Status.ACCEPTED
    rig.router.part_acked(job, 0, "opA", "EARLY1")
    assert rig.stored(m).status is Status.DELIVERED
    assert [r.stat for _, r in rig.receipts()] == ["DELIVRD"]


def test_receipt_before_ack_in_the_other_base_is_parked_then_applied(tmp_path: Path) -> None:
    rig = make(tmp_path, ops={"opA": {"id_format": "hex"}})
    m = rig.submit()
    [job] = rig.send("opA")
    assert not rig.dlr("opA", "870928761")  # decimal receipt overtakes the hex resp
    rig.router.part_acked(job, 0, "opA", "33E95179")
    assert rig.stored(m).status is Status.DELIVERED
    assert [r.stat for _, r in rig.receipts()] == ["DELIVRD"]
    rig.store.close()


TWO = "z" * 200  # two parts


@pytest.mark.parametrize(("policy", "steps", "final"), [
    ("aggregate", [("P1", "DELIVRD", None), ("P2", "DELIVRD", "DELIVRD")], Status.DELIVERED),
    ("aggregate", [("P2", "DELIVRD", None), ("P1", "DELIVRD", "DELIVRD")], Status.DELIVERED),
    ("aggregate", [("P1", "UNDELIV", "UNDELIV"), ("P2", "DELIVRD", None)],
     Status.UNDELIVERABLE),
    ("aggregate", [("P1", "DELIVRD", None), ("P2", "EXPIRED", "EXPIRED")], Status.EXPIRED),
    ("first", [("P2", "UNDELIV", None), ("P1", "DELIVRD", "DELIVRD")], Status.DELIVERED),
    ("first", [("P1", "REJECTD", "REJECTD"), ("P2", "DELIVRD", None)], Status.REJECTED),
    ("last", [("P1", "DELIVRD", None), ("P2", "EXPIRED", "EXPIRED")], Status.EXPIRED),
    ("last", [("P2", "DELIVRD", "DELIVRD"), ("P1", "UNDELIV", None)], Status.DELIVERED),
])
def test_multipart_receipts_combine_into_exactly_one(
        tmp_path: Path, policy: str, steps: list[tuple[str, str, str | None]],
        final: Status) -> None:
    rig = make(tmp_path, policy=policy)
    m = acked(rig, TWO, ids=("P1", "P2"))
    expected: list[str] = []
    for rid, stat, tenant_gets in steps:
        assert rig.dlr("opA", rid, stat)
        if tenant_gets:
            expected.append(tenant_gets)
        assert [r.stat for _, r in rig.receipts()] == expected
    assert rig.stored(m).status is final
    rig.store.close()


# --- after a restart: receipts matched from the store -----------------------------------


def restarted(rig: Rig) -> Rig:
    rig.commit()
    rig.store.close()
    return Rig(rig.path, config=rig.config)


def test_receipt_after_restart_is_matched_from_segments(tmp_path: Path) -> None:
    before = make(tmp_path, ops={"opA": {"id_format": "hex"}})
    m = acked(before, ids=("33E95179",))
    rig = restarted(before)
    assert rig.router.operators["opA"].id_format == "hex"
    assert rig.dlr("opA", "870928761")
    assert rig.stored(m).status is Status.DELIVERED
    [(pdu, r)] = rig.receipts()
    assert (r.id, r.stat, r.text) == (m.id, "DELIVRD", "hello")
    assert pdu.tlvs["receipted_message_id"] == m.id
    # A duplicate after the restart is ignored.
    assert rig.dlr("opA", "870928761")
    assert len(rig.receipts()) == 1
    rig.store.close()


def test_multipart_receipts_across_a_restart_combine(tmp_path: Path) -> None:
    before = make(tmp_path)
    m = acked(before, TWO, ids=("P1", "P2"))
    assert before.dlr("opA", "P1")
    rig = restarted(before)
    assert rig.stored(m).status is Status.SUBMITTED
    assert rig.dlr("opA", "P1")  # duplicate of the part already final
    assert rig.receipts() == []
    assert rig.dlr("opA", "P2")
    assert rig.stored(m).status is Status.DELIVERED
    assert [r.stat for _, r in rig.receipts()] == ["DELIVRD"]
    rig.store.close()


def test_receipt_for_nothing_we_sent_is_reported_unmatched(rig: Rig) -> None:
    assert not rig.dlr("opA", "nope")
    assert rig.receipts() == []


def test_multipart_receipts_after_a_restart_in_one_commit_window(tmp_path: Path) -> None:
    before = make(tmp_path)
    m = acked(before, TWO, ids=("P1", "P2"))
    rig = restarted(before)
    # Both parts' receipts arrive before the first one's writes are durable.
    assert rig.dlr("opA", "P1")
    assert rig.dlr("opA", "P2")
    assert rig.dlr("opA", "P2")
    assert rig.stored(m).status is Status.DELIVERED
    assert [r.stat for _, r in rig.receipts()] == ["DELIVRD"]
    rig.store.close()


def test_claims_are_counted_until_every_part_is_out_or_the_job_goes_back(rig: Rig) -> None:
    one = rig.submit("short")
    two = rig.submit("y" * 400)  # three parts
    jobs = rig.router.take("opA", 10, 0.0)
    assert rig.work.claimed("opA") == 2
    first, second = jobs
    for i in rig.router.parts_for(first, 0.0):
        rig.router.part_sending(first, i)
    assert rig.work.claimed("opA") == 1  # the one-part job is out
    [i0, *_] = rig.router.parts_for(second, 0.0)
    rig.router.part_sending(second, i0)
    rig.router.put_back([second], "opA")  # no room for the other two parts
    assert rig.work.claimed("opA") == 0 and rig.router.pending("opA") == 1
    [again] = rig.router.take("opA", 10, 0.0)
    assert again is second and rig.router.parts_for(second, 0.0) == [1, 2]
    for i in (1, 2):
        rig.router.part_sending(second, i)
    assert rig.work.claimed("opA") == 0
    assert {one.id, two.id} == {first.message.id, second.message.id}
