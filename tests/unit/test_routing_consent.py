"""Consent: keyword matching, the opt-out index, history in the store, the keyword flow
(record, event, reply on the MO's operator), and admission's refusal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config import GatewayConfig, OperatorConfig, RouteConfig, TenantConfig
from encoding.pdu import DeliverSm
from encoding.text import decode_text, encode_text
from routing.admission import OPTED_OUT_STATUS, Admission
from routing.consent import Consent, ConsentRecord
from routing.events import ConsentEvent, MoEvent
from routing.keywords import Keywords, match_keyword, reply_text
from routing.model import Message
from routing.sqlite import SqliteConsent, Store
from routing.submission import Submission
from tests.routing_rig import RoutingRig

ACME = TenantConfig(system_id="acme", password="pw", numbers=("4477",))


def op(name: str) -> OperatorConfig:
    return OperatorConfig(name=name, host="127.0.0.1", port=1, system_id="gw", password="pw")


class Rig(RoutingRig):
    def __init__(self, path: Path) -> None:
        super().__init__(path, GatewayConfig(
            tenants=(ACME, TenantConfig(system_id="beta", password="pw", numbers=("33",),
                                        stop_keywords=("ARRET",), stop_reply="Beta: bye")),
            operators=(op("op1"), op("op2")),
            routes=(RouteConfig(prefix="", operators=("op2",)),)))
        self.consent = Consent(SqliteConsent(self.store, self.committer))  # type: ignore[arg-type]
        self.inbound = self.make_inbound()
        self.inbound.keywords = Keywords(self.consent, self.record, self.router)

    def mo(self, text: str, to: str = "447700", from_: str = "447911123456",
           operator: str = "op1") -> None:
        pdu = DeliverSm(source_addr=from_, source_addr_ton=1, source_addr_npi=1,
                        destination_addr=to, dest_addr_ton=1, dest_addr_npi=1,
                        short_message=encode_text(text, 0))
        assert self.inbound.message(operator, pdu, 1000.0) == 0
        self.commit()

    def queued(self, operator: str) -> list[Message]:
        return [j.message for j in self.work.drain(operator)]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path / "c.db")
    yield r
    r.store.close()


@pytest.mark.parametrize(("text", "kind"), [
    ("STOP", "stop"), ("stop", "stop"), ("  Stop!! ", "stop"), ("¡stop.", "stop"),
    ("unsubscribe\n", "stop"), ("START", "start"), ("yes", "start"), ("Help?", "help"),
    ("info", "help"), ("stop please", None), ("STOPP", None), ("", None), ("...", None),
    ("s t o p", None)])
def test_keywords_match_the_whole_text(text: str, kind: str | None) -> None:
    assert match_keyword(text, ACME) == kind


def test_keyword_lists_and_replies_are_per_tenant() -> None:
    beta = TenantConfig(system_id="beta", stop_keywords=("ARRET",), help_reply="Call us")
    assert match_keyword("arret", beta) == "stop"
    assert match_keyword("STOP", beta) is None
    assert reply_text("help", beta) == "Call us"
    assert "beta" in reply_text("stop", beta)  # the default names the tenant


def test_index_is_loaded_from_the_store_and_history_kept(tmp_path: Path) -> None:
    from tests.fakecommitter import FakeCommitter
    store = Store(tmp_path / "x.db", synchronous="OFF")
    store.open()
    book = Consent(SqliteConsent(store, FakeCommitter(store)))  # type: ignore[arg-type]
    book.change("acme", "4479", "opted_out", "keyword", 1.0, detail="STOP", inbound_id="in_1")
    assert book.change("acme", "4479", "opted_out", "api", 2.0) == (None, None)  # no repeat
    book.change("acme", "4479", "opted_in", "api", 3.0, detail="api key sha256:ab")
    book.change("acme", "4479", "opted_out", "api", 4.0)
    book.change("acme", "4480", "opted_out", "api", 5.0)
    book.change("acme", "4480", "opted_in", "api", 6.0)
    book.change("beta", "4481", "opted_out", "api", 7.0)
    assert book.opted_out("acme", "4479") and not book.opted_out("acme", "4480")
    assert not book.opted_out("beta", "4479")
    store.close()
    store = Store(tmp_path / "x.db", synchronous="OFF")
    store.open()
    again = Consent(SqliteConsent(store, FakeCommitter(store)))  # type: ignore[arg-type]
    assert again.count() == {"acme": 1, "beta": 1}
    state, history = again.current("acme", "4479")
    assert state == "opted_out"
    assert [(r.state, r.source, r.detail, r.inbound_id, r.at) for r in history] == [
        ("opted_out", "keyword", "STOP", "in_1", 1.0),
        ("opted_in", "api", "api key sha256:ab", "", 3.0), ("opted_out", "api", "", "", 4.0)]
    assert [r.number for r in again.page("acme", "", 10)] == ["4479"]
    assert again.page("acme", "4479", 10) == []
    store.close()


def test_stop_records_replies_on_the_same_operator_and_emits_an_event(rig: Rig) -> None:
    rig.mo("Stop")
    assert rig.consent.opted_out("acme", "447911123456")
    [reply] = rig.queued("op1")  # the MO's operator, not the route's op2
    assert rig.queued("op2") == []
    assert (reply.tenant, reply.source_addr, reply.destination_addr) == (
        "acme", "447700", "447911123456")
    assert "unsubscribed" in decode_text(reply.body, reply.data_coding)
    assert rig.store.get_message(reply.id) is not None  # stored before it was queued
    events = [c.event for c in rig.store.events_for("acme")]
    assert isinstance(events[0], MoEvent)  # the MO itself still reaches the tenant
    [record] = rig.consent.current("acme", "447911123456")[1]
    assert (record.source, record.detail, record.inbound_id) == (
        "keyword", "STOP", events[0].inbound_id)
    assert record.inbound_id.startswith("in_")


def test_consent_event_goes_to_the_webhook_channel(tmp_path: Path) -> None:
    hooked = TenantConfig(system_id="acme", numbers=("4477",),
                          webhook_url="http://127.0.0.1:1/h", webhook_secret="whsec_" + "A" * 32)
    r = RoutingRig(tmp_path / "w.db", GatewayConfig(
        tenants=(hooked,), operators=(op("op1"),)))
    consent = Consent(SqliteConsent(r.store, r.committer))  # type: ignore[arg-type]
    inbound = r.make_inbound()
    inbound.keywords = Keywords(consent, r.record, r.router)
    inbound.message("op1", DeliverSm(source_addr="447911123456", destination_addr="447700",
                                     short_message=b"STOP"), 1.0)
    r.commit()
    kinds = [type(c.event) for c in r.store.events_for("acme/webhook")]
    assert kinds == [MoEvent, ConsentEvent]
    r.store.close()


def test_start_undoes_and_help_answers(rig: Rig) -> None:
    rig.mo("STOP")
    rig.mo("start")
    assert not rig.consent.opted_out("acme", "447911123456")
    rig.mo("YES")  # not opted out: an ordinary answer, no reply
    rig.mo("help")
    texts = [decode_text(m.body, m.data_coding) for m in rig.queued("op1")]
    assert len(texts) == 3
    assert "subscribed again" in texts[1] and "STOP" in texts[2]
    history = rig.consent.current("acme", "447911123456")[1]
    assert [r.state for r in history] == ["opted_out", "opted_in"]


def test_other_tenant_keywords_and_plain_messages(rig: Rig) -> None:
    rig.mo("STOP", to="3312")  # beta's list has ARRET only
    rig.mo("arret", to="3312")
    rig.mo("stop by the shop")
    assert rig.consent.opted_out("beta", "447911123456")
    assert not rig.consent.opted_out("acme", "447911123456")
    [reply] = rig.queued("op1")
    assert decode_text(reply.body, reply.data_coding) == "Beta: bye"


def test_admission_refuses_an_opted_out_number(rig: Rig) -> None:
    admission = Admission(rig.config, rig.record, rig.router)
    admission.consent = rig.consent
    rig.consent.change("acme", "447911123456", "opted_out", "api", 1.0)
    sub = Submission(tenant="acme", source_addr="447700", destination_addr="+447911123456",
                     dest_addr_ton=1, body=b"hi")
    assert admission.decide(sub, ACME, 1.0) == OPTED_OUT_STATUS == 0x66
    other = Submission(tenant="acme", source_addr="447700", destination_addr="447911000000",
                       dest_addr_ton=1, body=b"hi")
    assert isinstance(admission.decide(other, ACME, 1.0), Message)
    beta = next(t for t in rig.config.tenants if t.system_id == "beta")
    assert isinstance(admission.decide(sub, beta, 1.0), Message)  # per tenant


def test_router_refuses_a_message_decided_before_the_opt_out(rig: Rig) -> None:
    """A message scheduled (or recovered after a restart) before its number opted out is
    refused where it would go to an operator: REJECTED with 0x66, nothing queued."""
    rig.router.consent = rig.consent
    m = Message(id=rig.record.new_message_id(), tenant="acme", source_addr="447700",
                destination_addr="447911123456", body=b"later", created_at=1.0)
    rig.record.accept([m], 1.0)
    rig.commit()
    rig.consent.change("acme", "447911123456", "opted_out", "api", 2.0)
    rig.router.accepted([m])
    rig.commit()
    assert rig.queued("op1") == [] and rig.queued("op2") == []
    stored = rig.store.get_message(m.id)
    assert stored is not None
    assert (stored.status.value, stored.error) == ("rejected", OPTED_OUT_STATUS)
    rig.mo("STOP")  # a keyword's reply still reaches the opted-out number
    assert len(rig.queued("op1")) == 1


def test_an_opt_in_waiting_for_its_commit_is_not_written_twice() -> None:
    class Pending:
        """A commit that has not completed yet: callbacks wait for ``done()``."""

        def __init__(self) -> None:
            self.callbacks: list[Any] = []
            self.added: list[ConsentRecord] = []

        def add(self, record: ConsentRecord) -> Pending:
            self.added.append(record)
            return self

        def add_done_callback(self, fn: Any) -> None:
            self.callbacks.append(fn)

        def exception(self) -> None:
            return None

        def done(self) -> None:
            for fn in self.callbacks:
                fn(self)
            self.callbacks.clear()

        def opted_out_now(self) -> list[tuple[str, str]]:
            return [("acme", "1")]

    store = Pending()
    book = Consent(store)  # type: ignore[arg-type]
    assert book.change("acme", "1", "opted_in", "api", 1.0)[0] is not None
    assert book.opted_out("acme", "1")  # refused until the opt-in is durable
    assert book.change("acme", "1", "opted_in", "api", 1.5) == (None, None)
    assert book.change("acme", "1", "opted_out", "api", 2.0)[0] is not None  # again
    store.done()
    assert book.opted_out("acme", "1")  # the later opt-out wins
    assert [r.state for r in store.added] == ["opted_in", "opted_out"]
