"""The tenant-facing SMPP handler: binds, submits, query/cancel/replace, as a tenant sees them.

No sockets and no event loop: a fake connection carries a real SMSC-role ``Session`` (so
binds change its state and answers are encoded as on the wire), records what the handler
sent, and turns PDUs the tenant "sends" into the session's own ``RequestReceived`` events.
The routing layer is ``RoutingRig`` on a real SQLite store; the admission service, registry
and delivery are the real ones. ``HeldCommits`` keeps commits pending until the test lets
them complete, to show what waits for durability.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from config import GatewayConfig, OperatorConfig, RouteConfig, TenantConfig
from encoding.constants import CommandStatus as S
from encoding.constants import MessageState
from encoding.errors import SmppError
from encoding.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    DeliverSm,
    Pdu,
    QuerySm,
    ReplaceSm,
    SmeDest,
    SubmitMulti,
    SubmitSm,
    UnsuccessSme,
    encode_pdu,
)
from encoding.session import Event, RequestReceived, Role, Session, SessionConfig
from esme import Connection
from routing import Message, Status
from routing.admission import Admission
from routing.schedule import Scheduler
from routing.sqlite.schedules import SqliteScheduleBook
from smsc.delivery import Delivery
from smsc.metrics import Metrics
from smsc.registry import Binding, Registry
from smsc.tenant import TenantHandler
from tests.fakecommitter import FakeLoop
from tests.routing_rig import RoutingRig

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC

CONFIG = GatewayConfig(
    tenants=(
        TenantConfig(system_id="acme", password="secret", id_format="hex", deliver_window=4),
        TenantConfig(system_id="beta", password="pw"),
        TenantConfig(system_id="slow", password="pw", tps=1.0),
    ),
    operators=(OperatorConfig(name="opA", host="127.0.0.1", port=2775, system_id="gw",
                              password="pw"),),
    routes=(RouteConfig(prefix="", operators=("opA",)),),
)


class FakeConn:
    """What the handler uses of ``esme.Connection``."""

    def __init__(self, loop: FakeLoop, peer: str = "127.0.0.1:40000") -> None:
        self.context: Any = None
        self.peer = peer
        self.tls = False
        self.loop = loop
        self.writable = True
        self.session = Session(Role.SMSC, 0.0, SessionConfig())
        self.sent: list[Pdu] = []

    def try_send(self, pdu: Pdu, context: Any = None) -> int | None:
        try:
            seq = self.session.send(pdu, 0.0, context)
        except SmppError:
            return None
        self.sent.append(pdu)
        return seq

    def receive(self, *pdus: Pdu) -> list[Event]:
        """The tenant sends ``pdus`` in one read: the session's events for them."""
        for n, pdu in enumerate(pdus, 1):
            pdu.sequence_number = pdu.sequence_number or n
        return self.session.receive_data(b"".join(encode_pdu(p) for p in pdus), 0.0)

    def take(self) -> list[Pdu]:
        sent, self.sent = self.sent, []
        return sent


class Pending:
    """A commit future the test completes."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[Any], object]] = []
        self.exc: BaseException | None = None
        self.done = False

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None:
        if self.done:
            fn(self)
        else:
            self.callbacks.append(fn)

    def exception(self) -> BaseException | None:
        return self.exc


class HeldCommits:
    """Installed as the rig's ``committer.future``: commits wait for ``release``."""

    def __init__(self, rig: RoutingRig) -> None:
        self.rig = rig
        self.waiting: list[Pending] = []

    def future(self, *, deferrable: bool = False) -> Pending:
        p = Pending()
        self.waiting.append(p)
        return p

    def release(self, exc: BaseException | None = None) -> None:
        if exc is None:
            self.rig.commit()
        waiting, self.waiting = self.waiting, []
        for p in waiting:
            p.done, p.exc = True, exc
            callbacks, p.callbacks = p.callbacks, []
            for fn in callbacks:
                fn(p)


class Gateway:
    def __init__(self, path: Path) -> None:
        self.rig = RoutingRig(path, CONFIG)
        self.admission = Admission(CONFIG, self.rig.record, self.rig.router)
        self.registry = Registry()
        self.delivery = Delivery(self.rig.events, self.registry,
                                 {t.system_id: t for t in CONFIG.tenants})
        self.metrics = Metrics()
        # cancel and replace go through the scheduler, as the gateway wires them
        control = Scheduler(SqliteScheduleBook(self.rig.store), self.rig.record,
                            self.rig.lifecycle, self.rig.router, wall=lambda: NOW)
        self.handler = TenantHandler(CONFIG, self.admission, self.rig.record, control,
                                     self.registry, self.delivery, self.metrics,
                                     wall=lambda: NOW)
        self.accepts: list[int] = []  # batch sizes handed to Admission.accept
        accept = self.admission.accept

        def counting_accept(messages: list[Message], now: float,
                            on_durable: Callable[[bool], None]) -> Any:
            self.accepts.append(len(messages))
            return accept(messages, now, on_durable)

        self.admission.accept = counting_accept  # type: ignore[method-assign]

    def conn(self, peer: str = "127.0.0.1:40000") -> FakeConn:
        return FakeConn(self.rig.loop, peer)

    def send(self, conn: FakeConn, *pdus: Pdu) -> list[Pdu]:
        """Deliver the tenant's PDUs to the handler as one read; what it answered."""
        self.handler.on_events(cast(Connection, conn), conn.receive(*pdus))
        return conn.take()

    def bound(self, system_id: str = "acme", password: str = "secret",
              bind: type[Pdu] = BindTransceiver) -> FakeConn:
        conn = self.conn()
        [resp] = self.send(conn, bind(system_id=system_id, password=password))  # type: ignore[call-arg]
        assert resp.command_status == S.ESME_ROK
        return conn

    def stored(self, internal: str) -> Message:
        self.rig.commit()
        m = self.rig.store.get_message(internal)
        assert m is not None
        return m


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    g = Gateway(tmp_path / "t.db")
    yield g
    g.rig.store.close()


def submit(dest: str = "447700900123", **kw: Any) -> SubmitSm:
    return SubmitSm(source_addr="ACME", source_addr_ton=5, destination_addr=dest,
                    dest_addr_ton=1, short_message=b"hello", **kw)


def message_id(resp: Pdu) -> str:
    mid = getattr(resp, "message_id", None)
    assert isinstance(mid, str) and mid, f"no message_id in {resp!r}"
    return mid


def internal(hex_id: str) -> str:
    return str(int(hex_id, 16))


# --- binds ---------------------------------------------------------------------------------


def test_bind_ok_registers_the_connection_with_the_tenant_settings(gw: Gateway) -> None:
    conn = gw.conn()
    [resp] = gw.send(conn, BindTransceiver(system_id="acme", password="secret"))
    assert type(resp).__name__ == "BindTransceiverResp"
    assert resp.command_status == S.ESME_ROK
    assert getattr(resp, "system_id", None) == "smsc"
    assert resp.tlvs.get("sc_interface_version") == 0x34
    assert conn.session.bound
    assert isinstance(conn.context, Binding) and conn.context.tenant.system_id == "acme"
    assert gw.registry.count("acme") == 1
    assert conn.session.window.size == 4  # deliver_window: deliver_sm outstanding
    assert conn.session.config.inbound_window == 100  # window: submits outstanding
    # A receiving bind asks delivery to look for waiting events, after this callback.
    assert [(fn, args) for fn, args in gw.rig.loop.soon] == [(gw.delivery.on_bound, ("acme",))]


def test_transmitter_bind_does_not_ask_for_deliveries(gw: Gateway) -> None:
    gw.bound(bind=BindTransmitter)
    assert gw.rig.loop.soon == []


def test_receiver_bind_of_a_3_3_client_gets_no_tlv(gw: Gateway) -> None:
    conn = gw.conn()
    [resp] = gw.send(conn, BindReceiver(system_id="acme", password="secret",
                                        interface_version=0x33))
    assert resp.command_status == S.ESME_ROK
    assert resp.tlvs == {}
    assert isinstance(conn.context, Binding) and conn.context.interface_version == 0x33


@pytest.mark.parametrize(("system_id", "password", "status"), [
    ("acme", "wrong", S.ESME_RINVPASWD),
    ("nobody", "secret", S.ESME_RINVSYSID),
])
def test_bind_refused(gw: Gateway, system_id: str, password: str, status: int) -> None:
    conn = gw.conn()
    [resp] = gw.send(conn, BindTransceiver(system_id=system_id, password=password))
    assert resp.command_status == status
    assert conn.context is None
    assert gw.registry.count(system_id) == 0
    assert conn.session.closed  # the session closes after a refused bind
    assert gw.rig.loop.soon == []


def test_bind_refused_while_stopping(gw: Gateway) -> None:
    gw.admission.stop_accepting()
    conn = gw.conn()
    [resp] = gw.send(conn, BindTransceiver(system_id="acme", password="secret"))
    assert resp.command_status == S.ESME_RBINDFAIL


# --- submits -------------------------------------------------------------------------------


def test_submit_sm_is_answered_only_once_the_batch_is_durable(
        gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = gw.bound()
    held = HeldCommits(gw.rig)
    monkeypatch.setattr(gw.rig.committer, "future", held.future)
    assert gw.send(conn, submit()) == []  # not durable yet: no answer
    assert gw.rig.router.pending("opA") == 0  # nor sent on
    held.release()
    [resp] = conn.take()
    assert type(resp).__name__ == "SubmitSmResp" and resp.command_status == S.ESME_ROK
    mid = message_id(resp)
    m = gw.stored(internal(mid))
    assert mid == f"{int(m.id):X}"  # acme's id_format is hex
    assert (m.tenant, m.status, m.destination_addr, m.body) == (
        "acme", Status.ACCEPTED, "447700900123", b"hello")
    assert gw.rig.router.pending("opA") == 1


def test_submit_sm_gets_a_decimal_id_for_a_decimal_tenant(gw: Gateway) -> None:
    conn = gw.bound("beta", "pw")
    [resp] = gw.send(conn, submit())
    mid = message_id(resp)
    assert gw.stored(mid).tenant == "beta"


def test_failed_commit_answers_system_error(gw: Gateway,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    conn = gw.bound()
    held = HeldCommits(gw.rig)
    monkeypatch.setattr(gw.rig.committer, "future", held.future)
    gw.send(conn, submit())
    held.release(OSError("disk I/O error"))
    [resp] = conn.take()
    assert resp.command_status == S.ESME_RSYSERR
    assert gw.rig.router.pending("opA") == 0


def test_submits_of_one_read_share_one_accept(gw: Gateway) -> None:
    conn = gw.bound()
    resps = gw.send(conn, submit("447700900001"), submit("447700900002"),
                    submit("447700900003"))
    assert gw.accepts == [3]
    assert [r.sequence_number for r in resps] == [1, 2, 3]
    assert all(r.command_status == S.ESME_ROK for r in resps)
    ids = [message_id(r) for r in resps]
    assert len(set(ids)) == 3
    assert [gw.stored(internal(i)).destination_addr for i in ids] == [
        "447700900001", "447700900002", "447700900003"]


def test_invalid_submit_is_answered_at_once_and_not_stored(gw: Gateway) -> None:
    conn = gw.bound()
    [bad, good] = gw.send(conn, submit(), submit("not-a-number"))
    # The refusal goes out at once, ahead of the answer that waits for the commit.
    assert bad.command_status == S.ESME_RINVDSTADR and bad.sequence_number == 2
    assert good.command_status == S.ESME_ROK and good.sequence_number == 1
    assert gw.accepts == [1]


def test_submit_multi_lists_the_refused_destination(gw: Gateway) -> None:
    conn = gw.bound()
    pdu = SubmitMulti(source_addr="ACME", source_addr_ton=5, short_message=b"hi all",
                      dest_address=[SmeDest("447700900001", 1, 1), SmeDest("4477x", 1, 1),
                                    SmeDest("447700900003", 1, 1)])
    [resp] = gw.send(conn, pdu)
    assert type(resp).__name__ == "SubmitMultiResp" and resp.command_status == S.ESME_ROK
    assert getattr(resp, "unsuccess_sme", None) == [
        UnsuccessSme("4477x", S.ESME_RINVDSTADR, 1, 1)]
    assert gw.accepts == [2]  # the two good destinations, one batch
    stored = gw.rig.record.query(tenant="acme")
    assert sorted(m.destination_addr for m in stored) == ["447700900001", "447700900003"]
    assert internal(message_id(resp)) in {m.id for m in stored}


def test_submit_multi_with_no_good_destination_is_refused(gw: Gateway) -> None:
    conn = gw.bound()
    pdu = SubmitMulti(source_addr="ACME", source_addr_ton=5, short_message=b"hi",
                      dest_address=[SmeDest("nope", 1, 1)])
    [resp] = gw.send(conn, pdu)
    assert resp.command_status == S.ESME_RINVDSTADR
    assert gw.accepts == []


def test_submit_over_the_tenant_tps_is_throttled(gw: Gateway) -> None:
    conn = gw.bound("slow", "pw")
    # The refusal goes out at once, the accepted one after its commit: match by sequence.
    first, second = sorted(gw.send(conn, submit(), submit()), key=lambda r: r.sequence_number)
    assert first.command_status == S.ESME_ROK
    assert second.command_status == S.ESME_RTHROTTLED
    assert gw.metrics.throttled == {("slow", "tps"): 1}
    assert gw.accepts == [1]


# --- query, cancel, replace ----------------------------------------------------------------


def test_query_sm_of_own_message_and_not_of_another_tenants(gw: Gateway) -> None:
    acme = gw.bound()
    mid = message_id(gw.send(acme, submit())[0])
    [resp] = gw.send(acme, QuerySm(message_id=mid, source_addr="ACME"))
    assert resp.command_status == S.ESME_ROK
    assert getattr(resp, "message_id", None) == mid
    assert getattr(resp, "message_state", None) == MessageState.ENROUTE
    assert getattr(resp, "final_date", None) == ""
    # beta asks for the same message, in its own (decimal) id format and in acme's.
    beta = gw.bound("beta", "pw")
    for guess in (internal(mid), mid):
        [resp] = gw.send(beta, QuerySm(message_id=guess))
        assert resp.command_status == S.ESME_RINVMSGID, guess


def test_query_sm_of_an_unknown_id(gw: Gateway) -> None:
    conn = gw.bound()
    [resp] = gw.send(conn, QuerySm(message_id="FFFFFF"))
    assert resp.command_status == S.ESME_RINVMSGID
    [resp] = gw.send(conn, QuerySm(message_id="not hex"))
    assert resp.command_status == S.ESME_RINVMSGID


def test_cancel_sm_before_the_message_left(gw: Gateway) -> None:
    conn = gw.bound()
    mid = message_id(gw.send(conn, submit())[0])
    [resp] = gw.send(conn, CancelSm(message_id=mid, source_addr="ACME"))
    assert type(resp).__name__ == "CancelSmResp" and resp.command_status == S.ESME_ROK
    assert gw.stored(internal(mid)).status == Status.CANCELLED
    [resp] = gw.send(conn, QuerySm(message_id=mid))
    assert getattr(resp, "message_state", None) == MessageState.DELETED
    # Nothing left for the operator: a bind finds no work.
    assert gw.rig.router.take("opA", 10, 0.0) == []
    # A second cancel has nothing to cancel.
    [resp] = gw.send(conn, CancelSm(message_id=mid))
    assert resp.command_status == S.ESME_RCANCELFAIL


def test_cancel_sm_of_another_tenants_message(gw: Gateway) -> None:
    acme = gw.bound()
    mid = message_id(gw.send(acme, submit())[0])
    beta = gw.bound("beta", "pw")
    [resp] = gw.send(beta, CancelSm(message_id=internal(mid)))
    assert resp.command_status == S.ESME_RINVMSGID
    assert gw.stored(internal(mid)).status == Status.ACCEPTED


def send_to_operator(gw: Gateway) -> None:
    """What an operator bind does with the queue: take the job, send its part."""
    [job] = gw.rig.router.take("opA", 10, 0.0)
    for i in gw.rig.router.parts_for(job, 0.0):
        gw.rig.router.part_sending(job, i)


def test_replace_sm_before_the_message_left(gw: Gateway) -> None:
    conn = gw.bound()
    mid = message_id(gw.send(conn, submit())[0])
    [resp] = gw.send(conn, ReplaceSm(message_id=mid, source_addr="ACME",
                                     short_message=b"new text"))
    assert type(resp).__name__ == "ReplaceSmResp" and resp.command_status == S.ESME_ROK
    assert gw.stored(internal(mid)).body == b"new text"
    [job] = gw.rig.router.take("opA", 10, 0.0)
    assert job.message.body == b"new text"  # what goes to the operator


def test_replace_sm_after_the_part_left(gw: Gateway) -> None:
    conn = gw.bound()
    mid = message_id(gw.send(conn, submit())[0])
    send_to_operator(gw)
    [resp] = gw.send(conn, ReplaceSm(message_id=mid, source_addr="ACME",
                                     short_message=b"too late"))
    assert resp.command_status == S.ESME_RREPLACEFAIL
    assert gw.stored(internal(mid)).body == b"hello"
    [resp] = gw.send(conn, CancelSm(message_id=mid))
    assert resp.command_status == S.ESME_RCANCELFAIL


def test_replace_sm_with_a_validity_in_the_past(gw: Gateway) -> None:
    conn = gw.bound()
    mid = message_id(gw.send(conn, submit())[0])
    [resp] = gw.send(conn, ReplaceSm(message_id=mid, validity_period="260101000000000+",
                                     short_message=b"x"))
    assert resp.command_status == S.ESME_RINVEXPIRY


def test_replace_sm_with_a_new_validity_moves_the_expiry(gw: Gateway) -> None:
    conn = gw.bound()
    mid = message_id(gw.send(conn, submit(validity_period="000000010000000R"))[0])  # 1 h
    assert gw.stored(internal(mid)).expires_at == NOW + 3600
    [resp] = gw.send(conn, ReplaceSm(message_id=mid, validity_period="000002000000000R",
                                     short_message=b"later"))  # 2 days
    assert resp.command_status == S.ESME_ROK
    m = gw.stored(internal(mid))
    assert m.validity_period == "000002000000000R"
    assert m.expires_at == NOW + 2 * 86_400, (
        f"replace_sm gave a 2-day validity, yet the message still expires at "
        f"NOW + {m.expires_at - NOW:.0f} s (the router expires it in the queue then)")


# --- the rest ------------------------------------------------------------------------------


def test_unsupported_command_gets_invalid_command_id(gw: Gateway) -> None:
    conn = gw.bound()
    # A deliver_sm from a tenant: the session passes requests on; the handler serves none
    # of this kind.
    gw.handler.on_events(cast(Connection, conn),
                         [RequestReceived(DeliverSm(sequence_number=9,
                                                    short_message=b"hi"))])
    [resp] = conn.take()
    assert type(resp).__name__ == "DeliverSmResp"
    assert (resp.sequence_number, resp.command_status) == (9, S.ESME_RINVCMDID)
    assert gw.accepts == []


def test_closed_session_leaves_the_registry(gw: Gateway) -> None:
    conn = gw.bound()
    assert gw.registry.count("acme") == 1
    gw.handler.on_events(cast(Connection, conn), conn.session.connection_lost(0.0))
    assert gw.registry.count("acme") == 0
    assert conn.context is None
