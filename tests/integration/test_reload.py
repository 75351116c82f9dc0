"""Live reload in-process: ``Gateway.reload(new_config)`` while tenants and operators are bound.

What a user sees, over real sockets on 127.0.0.1 (the gateway and the bundled simulators on
their own loop threads, tenants in the test thread):

* tenants: a changed password refuses the old one (ESME_RINVPASWD) and binds with the new
  one, while binds opened before (of that tenant and of another) stay up and still submit; a
  removed tenant's open bind is unbound by the gateway (unbind, then the close) and it cannot
  bind again; an added tenant binds;
* operators: one added by reload, with a route for a prefix, gets that prefix's traffic; one
  changed while messages flow has its bind replaced (the simulator sees the old bind unbind
  and a new one bind) and every accepted message reaches the simulator and gets exactly one
  receipt; one removed hands its queued messages to the route's other operator, and queued
  messages left without any route are REJECTD;
* the rest: a restart-only key (``[listen] port``) keeps its running value with a note while
  the rest of the file applies; a new ``[listen_tls]`` certificate is what new handshakes
  get while a bind opened before goes on; certificate material that does not load refuses
  the whole reload (one line per problem) and changes nothing.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from config import GatewayConfig, RouteConfig, TenantConfig, TlsListenConfig
from config.simulator import DelayRange, FaultsConfig
from encoding.constants import CommandId
from encoding.constants import CommandStatus as S
from encoding.pdu import BindReceiver, SubmitSm, UnbindResp, encode_pdu
from smsc.reload import ReloadError
from tests.conftest import make_config
from tests.integration.e2e_support import (
    SimThread,
    SmpplibTenant,
    Stack,
    check_receipts,
    gateway_idle,
    operator,
    operator_bound,
    sent_texts,
    smpplib_tenant,
    wait_until,
)
from tests.rawclient import RawClient
from tests.tlskit import Pki, client_context

if TYPE_CHECKING:
    from tests.conftest import GatewayThread

pytestmark = pytest.mark.timeout(90)

RECEIPT_WAIT_S = 30.0


@pytest.fixture
def clients() -> Iterator[Callable[[GatewayThread], RawClient]]:
    opened: list[RawClient] = []

    def connect(gw: GatewayThread) -> RawClient:
        c = RawClient(gw.port)
        opened.append(c)
        return c

    yield connect
    for c in opened:
        with contextlib.suppress(OSError):
            c.close()


def reload(gw: GatewayThread, **changes: Any) -> list[str]:
    """Apply the running config with ``changes``; returns the reload's notes."""
    new: GatewayConfig = msgspec.structs.replace(gw.run(lambda: gw.gateway.config), **changes)
    return gw.call(gw.gateway.reload(new))


def settled(gw: GatewayThread, timeout: float = 20.0) -> None:
    """Wait until the pool has finished replacing and retiring binds."""
    pool = gw.run(lambda: gw.gateway.pool)
    assert pool is not None
    assert gw.call(pool.settled(timeout), timeout + 5.0), "bind changes not done in time"


def submit(text: bytes = b"hello", destination: str = "447700900123") -> SubmitSm:
    return SubmitSm(source_addr="4412345", destination_addr=destination, short_message=text)


def burst(tenant: SmpplibTenant, label: str, start: int, n: int,
          destination: str = "447700900123") -> list[int]:
    return [tenant.submit(f"{label} {i:03d}".encode(), destination_addr=destination)
            for i in range(start, start + n)]


def finish(gw: GatewayThread, tenant: SmpplibTenant, ids: list[str]) -> None:
    """One receipt per id (bounded wait), and nothing more afterwards."""
    tenant.wait_receipts(len(ids), RECEIPT_WAIT_S)
    wait_until(lambda: gateway_idle(gw), 10.0, "gateway idle (queues and outbox empty)")
    tenant.settle(quiet_s=0.5)
    check_receipts(ids, tenant.receipts())


class SimBinds:
    """What the simulator saw of the gateway's binds: each bind's system_id, and the reason
    each connection closed ("unbound by peer" when the gateway unbound cleanly)."""

    def __init__(self, sim: SimThread) -> None:
        self.binds: list[Any] = []  # the simulator's Bind of each (system_id, submits)
        self.closed: list[str] = []
        simulator = sim.sim
        bound, on_closed = simulator.bound, simulator.on_closed

        def record_bound(conn: Any, bind: Any) -> None:
            self.binds.append(bind)
            bound(conn, bind)

        def record_closed(conn: Any, reason: str) -> None:
            self.closed.append(reason)
            on_closed(conn, reason)

        def install() -> None:
            simulator.bound = record_bound  # type: ignore[method-assign]
            simulator.on_closed = record_closed  # type: ignore[method-assign]

        sim.run(install)


# --- tenants ---------------------------------------------------------------------------------


def test_password_change_takes_the_new_one_and_open_binds_stay(
        gateway_factory: Callable[..., GatewayThread], tmp_path: Path,
        clients: Callable[[GatewayThread], RawClient]) -> None:
    gw = gateway_factory(make_config(tmp_path, tenants=(
        TenantConfig(system_id="acme", password="old-pw"),
        TenantConfig(system_id="beta", password="beta"),
    )))
    other = clients(gw)
    other.bind("beta", "beta", expect_ok=True)
    same = clients(gw)
    same.bind("acme", "old-pw", expect_ok=True)

    notes = reload(gw, tenants=(TenantConfig(system_id="acme", password="new-pw"),
                                TenantConfig(system_id="beta", password="beta")))
    assert notes == ["tenant acme changed"]

    assert clients(gw).bind("acme", "old-pw").command_status == S.ESME_RINVPASWD
    assert clients(gw).bind("acme", "new-pw").command_status == S.ESME_ROK
    # binds opened before the reload never dropped: both still submit
    for c in (other, same):
        c.assert_alive()
        assert c.request(submit()).command_status == S.ESME_ROK
    assert gw.gateway.reloads == {"applied": 1, "refused": 0}


def test_removed_tenant_is_unbound_and_an_added_one_binds(
        gateway_factory: Callable[..., GatewayThread], tmp_path: Path,
        clients: Callable[[GatewayThread], RawClient]) -> None:
    gw = gateway_factory(make_config(tmp_path, tenants=(
        TenantConfig(system_id="gone", password="gone"),
        TenantConfig(system_id="stays", password="stays"),
    )))
    leaving = clients(gw)
    leaving.bind("gone", "gone", BindReceiver, expect_ok=True)
    staying = clients(gw)
    staying.bind("stays", "stays", expect_ok=True)
    assert clients(gw).bind("fresh", "fresh").command_status == S.ESME_RINVSYSID

    notes = reload(gw, tenants=(TenantConfig(system_id="stays", password="stays"),
                                TenantConfig(system_id="fresh", password="fresh")))
    assert "tenant gone removed" in notes and "tenant fresh added" in notes, notes
    assert any(n.startswith("bind of gone from 127.0.0.1:") for n in notes), notes

    # the gateway unbinds the removed tenant's session cleanly: unbind, then it closes
    pdu = leaving.read_pdu(timeout=5.0)
    assert pdu is not None and pdu.command_id == CommandId.unbind, pdu
    leaving.send_raw(encode_pdu(UnbindResp(sequence_number=pdu.sequence_number)))
    assert leaving.read_pdu(timeout=5.0) is None, "connection still open after unbind_resp"

    assert clients(gw).bind("gone", "gone", BindReceiver).command_status == S.ESME_RINVSYSID
    assert clients(gw).bind("fresh", "fresh").command_status == S.ESME_ROK
    staying.assert_alive()
    assert staying.request(submit()).command_status == S.ESME_ROK


def test_restart_only_keys_keep_their_running_values(
        gateway_factory: Callable[..., GatewayThread], tmp_path: Path,
        clients: Callable[[GatewayThread], RawClient]) -> None:
    gw = gateway_factory(make_config(tmp_path))
    running = gw.run(lambda: gw.gateway.config)
    notes = reload(gw, listen=msgspec.structs.replace(running.listen, port=1),
                   tenants=(*running.tenants, TenantConfig(system_id="more", password="more")))
    assert notes == ["[listen] port: changed in the file; takes effect at the next start",
                     "tenant more added"]
    applied = gw.run(lambda: gw.gateway.config)
    assert applied.listen == running.listen
    # still listening where it was, with the rest of the new file applied
    assert clients(gw).bind("more", "more").command_status == S.ESME_ROK


# --- operators -------------------------------------------------------------------------------


def test_operator_added_by_reload_gets_its_prefix(stack: Stack) -> None:
    sim_a, sim_b = stack.sim(), stack.sim()
    a = operator("A", sim_a.port)
    gw = stack.gateway([a])
    with smpplib_tenant(gw.port) as tenant:
        ids = tenant.ids(burst(tenant, "before", 0, 3, "447912345678"))
        tenant.wait_receipts(3, RECEIPT_WAIT_S)
        assert sorted(sent_texts(sim_a.received())) == [f"before {i:03d}" for i in range(3)]

        notes = reload(gw, operators=(a, operator("B", sim_b.port)),
                       routes=(RouteConfig(prefix="4479", operators=("B",)),
                               RouteConfig(prefix="", operators=("A",))))
        assert "operator B added" in notes, notes
        wait_until(lambda: operator_bound(gw, "B"), 10.0, "gateway bound to the added B")
        ids += tenant.ids(burst(tenant, "to B", 0, 5, "447912345678")
                          + burst(tenant, "to A", 0, 5, "447700900123"))
        finish(gw, tenant, ids)
    assert sorted(sent_texts(sim_b.received())) == [f"to B {i:03d}" for i in range(5)]
    assert sorted(sent_texts(sim_a.received())) == sorted(
        [f"before {i:03d}" for i in range(3)] + [f"to A {i:03d}" for i in range(5)])


@pytest.mark.parametrize(("change", "receipt_delay_ms"), [
    ({"system_id": "gw2", "window": 3}, DelayRange()),
    # receipts up to 0.3 s late: some of the old bind's arrive on the new one
    ({"window": 3}, DelayRange(min=0.0, max=300.0)),
], ids=["system_id", "window"])
def test_changed_operator_replaces_its_bind_without_losing_a_message(
        stack: Stack, change: dict[str, Any], receipt_delay_ms: DelayRange) -> None:
    # slow answers keep submits in flight on the old bind when it retires
    sim = stack.sim(faults=FaultsConfig(slow_response_ms=20.0), receipt_delay_ms=receipt_delay_ms)
    seen = SimBinds(sim)
    a = operator("A", sim.port, window=5)
    gw = stack.gateway([a])
    n, step = 240, 40
    with smpplib_tenant(gw.port) as tenant:
        ids = tenant.ids(burst(tenant, "flow", 0, step))
        for start in range(step, n, step):
            if start == 2 * step:
                notes = reload(gw, operators=(msgspec.structs.replace(a, **change),))
                assert notes == ["operator A changed",
                                 "operator A changed: its binds are replaced one by one"]
            ids += tenant.ids(burst(tenant, "flow", start, step))
        settled(gw)
        finish(gw, tenant, ids)
    texts = sent_texts(sim.received())
    want = [f"flow {i:03d}" for i in range(n)]
    assert sorted(set(texts)) == want
    assert len(texts) == n, "a message was sent twice"
    want_ids = ["gw", change.get("system_id", "gw")]
    binds = sim.run(lambda: [(b.system_id, b.submits) for b in seen.binds])
    assert [system_id for system_id, _ in binds] == want_ids
    assert sim.run(lambda: list(seen.closed)) == ["unbound by peer"]
    assert sim.bound() == 1
    # both binds carried part of the stream: it went on across the replacement
    assert all(submits > 0 for _, submits in binds), binds
    stats = sim.snapshot()
    assert stats["receipts_nacked"] == 0, stats


@pytest.mark.parametrize("old_route", [("A", "B"), ("A",)], ids=["failover-list", "A-only"])
def test_removed_operator_hands_its_queue_to_the_other(stack: Stack,
                                                       old_route: tuple[str, ...]) -> None:
    """With ``["A", "B"]`` B is A's failover already; with ``["A"]`` only the new route
    table sends A's queued messages to B."""
    sim_a, sim_b = stack.sim(), stack.sim()
    a = operator("A", sim_a.port, tps=1.0)  # slow: most of the burst waits in A's queue
    b = operator("B", sim_b.port)
    gw = stack.gateway([a, b], routes=(RouteConfig(prefix="", operators=old_route),
                                       RouteConfig(prefix="4479", operators=("B",))))
    n = 20
    with smpplib_tenant(gw.port) as tenant:
        ids = tenant.ids(burst(tenant, "queued", 0, n))
        sim_a.wait_for(lambda s: s.stats["submits"] >= 1, 10.0)
        notes = reload(gw, operators=(b,), routes=(RouteConfig(prefix="", operators=("B",)),))
        assert "operator A removed" in notes, notes
        settled(gw)
        finish(gw, tenant, ids)
    to_a, to_b = sent_texts(sim_a.received()), sent_texts(sim_b.received())
    assert 1 <= len(to_a) <= 3, to_a  # sent before the reload (1/s)
    assert sorted(to_a + to_b) == [f"queued {i:03d}" for i in range(n)]
    assert not set(to_a) & set(to_b), "a message went to both operators"
    assert sim_a.bound() == 0
    assert not operator_bound(gw, "A")


def test_queued_messages_without_a_route_after_reload_are_rejected(stack: Stack) -> None:
    sim_a, sim_b = stack.sim(), stack.sim()
    a = operator("A", sim_a.port, tps=1.0)
    b = operator("B", sim_b.port)
    gw = stack.gateway([a, b], routes=(RouteConfig(prefix="4477", operators=("A",)),
                                       RouteConfig(prefix="4479", operators=("B",))))
    n = 10
    with smpplib_tenant(gw.port) as tenant:
        ids = tenant.ids(burst(tenant, "stranded", 0, n))
        sim_a.wait_for(lambda s: s.stats["submits"] >= 1, 10.0)
        reload(gw, operators=(b,), routes=(RouteConfig(prefix="4479", operators=("B",)),))
        settled(gw)
        tenant.wait_receipts(n, RECEIPT_WAIT_S)
        wait_until(lambda: gateway_idle(gw), 10.0, "gateway idle")
        tenant.settle(quiet_s=0.5)
        receipts = tenant.receipts()
    sent = set(sent_texts(sim_a.received()))
    assert 1 <= len(sent) <= 3 and not sim_b.received(), sent
    # what had left keeps its outcome; the rest has no operator any more: REJECTD at once
    want = {i: "DELIVRD" if f"stranded {k:03d}" in sent else "REJECTD"
            for k, i in enumerate(ids)}
    check_receipts(ids, receipts, want)


def test_first_operator_added_to_a_gateway_started_without_one(stack: Stack) -> None:
    sim = stack.sim()
    gw = stack.gateway([], routes=())
    assert gw.run(lambda: gw.gateway.pool) is None
    notes = reload(gw, operators=(operator("A", sim.port),),
                   routes=(RouteConfig(prefix="", operators=("A",)),))
    assert "operator A added" in notes, notes
    wait_until(lambda: operator_bound(gw, "A"), 10.0, "gateway bound to the added A")
    with smpplib_tenant(gw.port) as tenant:
        ids = tenant.ids(burst(tenant, "first", 0, 5))
        finish(gw, tenant, ids)
    assert sorted(sent_texts(sim.received())) == [f"first {i:03d}" for i in range(5)]


# --- certificates ----------------------------------------------------------------------------


def _tls_client(port: int, trust: Pki) -> RawClient:
    """A RawClient over TLS to 127.0.0.1:``port`` that verifies the server against ``trust``."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5.0)
    try:
        sock = client_context(trust).wrap_socket(raw)
    except BaseException:
        raw.close()
        raise
    return RawClient(port, sock=sock)


def test_reloaded_certificate_for_new_handshakes_while_an_open_bind_goes_on(
        gateway_factory: Callable[..., GatewayThread], tmp_path: Path) -> None:
    one, two = Pki(tmp_path, "one"), Pki(tmp_path, "two")
    first = one.server()
    gw = gateway_factory(make_config(tmp_path, listen_tls=TlsListenConfig(
        host="127.0.0.1", port=0, cert=first.cert, key=first.key)))
    port = gw.gateway.tls_port
    before = _tls_client(port, one)
    try:
        before.bind(expect_ok=True)
        running = gw.run(lambda: gw.gateway.config)
        assert running.listen_tls is not None
        second = two.server()
        notes = reload(gw, listen_tls=msgspec.structs.replace(
            running.listen_tls, cert=second.cert, key=second.key))
        assert notes == ["[listen_tls] changed"]

        after = _tls_client(port, two)  # a new handshake gets the new certificate
        try:
            assert after.bind().command_status == S.ESME_ROK
        finally:
            after.close()
        with pytest.raises(ssl.SSLCertVerificationError):
            _tls_client(port, one).close()
        # the session opened before the reload goes on over its old handshake
        before.assert_alive()
        assert before.request(submit()).command_status == S.ESME_ROK
    finally:
        before.close()


# --- a reload that cannot apply --------------------------------------------------------------


def test_unloadable_tls_material_refuses_the_reload_and_changes_nothing(
        stack: Stack, tmp_path: Path, clients: Callable[[GatewayThread], RawClient]) -> None:
    sim = stack.sim()
    a = operator("A", sim.port)
    gw = stack.gateway([a])
    bad_ca = tmp_path / "ca.pem"
    bad_ca.write_text("not a certificate\n")
    running = gw.run(lambda: gw.gateway.config)
    new = msgspec.structs.replace(
        running,
        tenants=(*running.tenants, TenantConfig(system_id="fresh", password="fresh")),
        operators=(a, operator("T", sim.port, tls=True, ca=str(bad_ca))),
        routes=(RouteConfig(prefix="", operators=("A", "T")),))
    with pytest.raises(ReloadError) as info:
        gw.call(gw.gateway.reload(new))
    problems = info.value.problems
    assert problems and all("\n" not in p for p in problems), problems
    assert len(set(problems)) == len(problems), f"a problem is reported twice: {problems}"
    assert any("ca" in p for p in problems), problems
    assert gw.gateway.reloads == {"applied": 0, "refused": 1}
    assert gw.run(lambda: gw.gateway.config) is running
    assert clients(gw).bind("fresh", "fresh").command_status == S.ESME_RINVSYSID
    assert gw.run(lambda: sorted(gw.gateway.pool.binds)) == ["A"]  # type: ignore[union-attr]
