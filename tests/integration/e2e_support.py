"""Helpers of the end-to-end tests: simulator threads, gateway configs, tenant clients.

The pieces run as a user runs them, over real sockets on 127.0.0.1 with ports chosen by the
OS: each bundled simulator (``bench.simulator.Simulator``) on its own event-loop thread
(``SimThread``), the gateway on its own (``tests.conftest.GatewayThread``, through the
``gateway_factory`` fixture), and the tenants in the test thread: python-smpplib (blocking,
``SmpplibTenant``) or aiosmpplib (asyncio, ``AioTenant``). ``Stack`` starts them and stops
everything it started, gateways first.

Receipts are read the way a tenant would: the ``id:``/``stat:`` words of the text and the
receipted_message_id / message_state TLVs. ``sent_texts`` turns what the simulator recorded
back into message texts (parts joined by their UDH or SAR TLVs, message_payload as is).
Every wait has a deadline; every loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import pytest
import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp
from aiosmpplib import ESME, BindMode

from bench.simulator import Simulator
from config import (
    GatewayConfig,
    HttpConfig,
    ListenConfig,
    MetricsConfig,
    OperatorConfig,
    RouteConfig,
    StoreConfig,
    TenantConfig,
)
from config.simulator import SimulatorConfig
from encoding.constants import EsmClass
from encoding.pdu import Pdu
from encoding.text import decode_text, parse_udh
from tests.aiosmpp_recorder import Recorder, bound_esme
from tests.loopthread import LoopThread
from tests.waiting import wait_until

if TYPE_CHECKING:
    from tests.conftest import GatewayThread

T = TypeVar("T")

SOURCE = "447700900999"
DEST = "447700900123"
RECEIPT_TEXT = re.compile(r"id:(?P<id>\S+) .*stat:(?P<stat>[A-Z]+)")
#: message_state values of SMPP 3.4 section 5.2.28 for the stat words of receipts.
STATE_OF_STAT = {"DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5, "ACCEPTD": 6,
                 "UNKNOWN": 7, "REJECTD": 8}


# --- the simulator on its own loop thread ----------------------------------------------------


class SimThread(LoopThread):
    """A started ``Simulator`` on a private loop thread; ``close()`` is idempotent.

    ``restart()`` stops the simulator and starts a fresh one on the same port (a new process
    would lose its queues the same way); the instances that ran before are in ``previous``.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        super().__init__("simulator-loop")
        self.config = config
        self.previous: list[Simulator] = []
        self.sim = Simulator(config, record=True)
        self.running = False
        try:
            self.port = self.call(self.sim.start())
        except BaseException:
            self.end_loop()
            raise
        self.running = True

    def snapshot(self) -> dict[str, Any]:
        return self.run(self.sim.snapshot)

    def received(self) -> list[Pdu]:
        """Every submit this simulator (and the ones before a restart) recorded."""
        return self.run(lambda: [p for s in (*self.previous, self.sim) for p in s.received])

    def bound(self) -> int:
        return int(self.snapshot()["bound"])

    def wait_for(self, predicate: Callable[[Simulator], bool], timeout: float) -> None:
        self.call(self.sim.wait_for(predicate, timeout), timeout + 5.0)

    def inject_mo(self, to: str, from_: str, text: str) -> int:
        return self.run(lambda: self.sim.inject_mo(to, from_, text))

    def stop(self) -> None:
        """Stop the simulator (connections aborted, the port closed); the thread stays."""
        if self.running:
            self.running = False
            self.call(self.sim.stop(), 15.0)

    def start(self, **changes: Any) -> None:
        """Start a new simulator on the same port, its config changed by ``changes``."""
        assert not self.running
        self.previous.append(self.sim)
        config = msgspec.structs.replace(self.config, port=self.port, **changes)
        self.sim = Simulator(config, record=True)
        deadline = time.monotonic() + 10.0
        for _ in range(200):  # the old listener may take a moment to release the port
            try:
                self.call(self.sim.start())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.running = True

    def restart(self, **changes: Any) -> None:
        self.stop()
        self.start(**changes)

    def close(self) -> None:
        if self.thread.is_alive():
            try:
                self.stop()
            finally:
                self.end_loop()


def sim_config(**fields: Any) -> SimulatorConfig:
    """A simulator config on a free port with immediate receipts (override any field)."""
    fields.setdefault("port", 0)
    return SimulatorConfig(**fields)


# --- the gateway -----------------------------------------------------------------------------


def operator(name: str, port: int, **fields: Any) -> OperatorConfig:
    """An operator on 127.0.0.1 that reconnects fast (tests restart simulators)."""
    fields.setdefault("reconnect_min_s", 0.2)
    fields.setdefault("reconnect_max_s", 1.0)
    fields.setdefault("window", 20)
    return OperatorConfig(name=name, host="127.0.0.1", port=port, system_id="gw",
                          password="pw", **fields)


def gateway_config(tmp_path: Path, operators: Iterable[OperatorConfig], *,
                   tenants: tuple[TenantConfig, ...] | None = None,
                   routes: tuple[RouteConfig, ...] | None = None) -> GatewayConfig:
    ops = tuple(operators)
    return GatewayConfig(
        listen=ListenConfig(host="127.0.0.1", port=0),
        store=StoreConfig(path=str(tmp_path / "smsc.db")),
        metrics=MetricsConfig(enabled=False),
        http=HttpConfig(host="127.0.0.1", port=0),
        tenants=tenants if tenants is not None else (
            TenantConfig(system_id="demo", password="demo", numbers=("4479",)),),
        operators=ops,
        routes=routes if routes is not None else (
            RouteConfig(prefix="", operators=tuple(op.name for op in ops)),),
    )


class Stack:
    """What a test started: simulators and gateways, stopped in ``close()``."""

    def __init__(self, tmp_path: Path, gateway_factory: Callable[..., GatewayThread]) -> None:
        self.tmp_path = tmp_path
        self.gateway_factory = gateway_factory
        self.sims: list[SimThread] = []
        self.gateways: list[GatewayThread] = []

    def sim(self, **fields: Any) -> SimThread:
        s = SimThread(sim_config(**fields))
        self.sims.append(s)
        return s

    def gateway(self, operators: Iterable[OperatorConfig], *, wait_bound: bool = True,
                **kw: Any) -> GatewayThread:
        ops = tuple(operators)
        gw = self.gateway_factory(gateway_config(self.tmp_path, ops, **kw))
        self.gateways.append(gw)
        if wait_bound:
            wait_until(lambda: all(operator_bound(gw, op.name) for op in ops), 10.0,
                       "gateway bound to its operators")
        return gw

    def close(self) -> None:
        try:
            for gw in self.gateways:
                gw.stop()
        finally:
            for s in self.sims:
                s.close()


def operator_bound(gw: GatewayThread, name: str) -> bool:
    def probe() -> bool:
        pool = gw.gateway.pool
        return pool is not None and pool.available(name)
    return gw.run(probe)


def gateway_idle(gw: GatewayThread) -> bool:
    """Nothing queued for an operator, nothing waiting for a tenant."""
    def probe() -> bool:
        g = gw.gateway
        return g.router.backlog() == 0 and g.store.count("events") == 0
    return gw.run(probe)


# --- reading what reached the simulator ------------------------------------------------------


def sent_texts(pdus: Iterable[Pdu], *, dcs0: str = "gsm7") -> list[str]:
    """The texts of the recorded submits, concatenated parts joined (in order of arrival).

    A part is joined with the others of its (reference, total) group by UDH (IEI 0/8) or SAR
    TLVs; a group appears once, at its first part, when all its parts arrived (a part sent
    twice counts once). Incomplete groups are reported as ``<incomplete ...>``.
    """
    out: list[tuple[int, str]] = []
    groups: dict[tuple[str, int, int, int], dict[int, bytes]] = {}
    first: dict[tuple[str, int, int, int], tuple[int, int]] = {}
    for n, recorded in enumerate(pdus):
        pdu: Any = recorded  # submit_sm or data_sm: the fields read here are on both
        body = pdu.tlvs.get("message_payload") or getattr(pdu, "short_message", b"")
        assert isinstance(body, bytes)
        esm, coding = pdu.esm_class, pdu.data_coding
        concat: tuple[int, int, int] | None = None
        kind = "udh"
        if esm & EsmClass.UDHI:
            udh, body = parse_udh(body)
            concat = udh.concat
        elif "sar_msg_ref_num" in pdu.tlvs:
            kind = "sar"
            concat = (int(pdu.tlvs["sar_msg_ref_num"]), int(pdu.tlvs["sar_total_segments"]),
                      int(pdu.tlvs["sar_segment_seqnum"]))
        if concat is None:
            out.append((n, decode_text(body, coding, dcs0=dcs0)))
            continue
        ref, total, seq = concat
        key = (f"{kind}:{pdu.destination_addr}", ref, total, coding)
        groups.setdefault(key, {}).setdefault(seq, body)
        first.setdefault(key, (n, coding))
    for key, parts in groups.items():
        n, coding = first[key]
        total = key[2]
        if sorted(parts) != list(range(1, total + 1)):
            out.append((n, f"<incomplete {key}: parts {sorted(parts)}>"))
            continue
        joined = b"".join(parts[i] for i in range(1, total + 1))
        out.append((n, decode_text(joined, coding, dcs0=dcs0)))
    return [text for _, text in sorted(out)]


# --- receipts as a tenant reads them ---------------------------------------------------------


class Receipt(msgspec.Struct, frozen=True):
    text_id: str
    stat: str
    receipted_message_id: str
    message_state: int


def read_receipt(short_message: bytes, receipted_message_id: str | bytes | None,
                 message_state: int | None) -> Receipt:
    text = short_message.decode("ascii", errors="replace")
    match = RECEIPT_TEXT.search(text)
    assert match is not None, f"not a receipt text: {text!r}"
    rid = receipted_message_id
    if isinstance(rid, bytes):
        rid = rid.rstrip(b"\0").decode("ascii")
    return Receipt(match["id"], match["stat"], rid or "", int(message_state or 0))


def check_receipts(ids: Iterable[str], receipts: list[Receipt],
                   stats: dict[str, str] | str = "DELIVRD") -> None:
    """Exactly one receipt per id, consistent in text and TLVs, with the expected stat."""
    ids = list(ids)
    assert len(set(ids)) == len(ids), f"message ids repeat: {ids}"
    by_id: dict[str, list[Receipt]] = {}
    for r in receipts:
        assert r.text_id == r.receipted_message_id, r
        assert r.message_state == STATE_OF_STAT[r.stat], r
        by_id.setdefault(r.receipted_message_id, []).append(r)
    unknown = sorted(set(by_id) - set(ids))
    assert not unknown, f"receipts for ids the tenant was never given: {unknown}"
    twice = {k: len(v) for k, v in by_id.items() if len(v) > 1}
    assert not twice, f"receipts delivered more than once: {twice}"
    missing = [i for i in ids if i not in by_id]
    assert not missing, f"{len(missing)} of {len(ids)} ids without a receipt: {missing[:10]}"
    for i in ids:
        want = stats if isinstance(stats, str) else stats[i]
        assert by_id[i][0].stat == want, (i, by_id[i][0], want)


# --- python-smpplib tenant -------------------------------------------------------------------


class SmpplibTenant:
    """A blocking smpplib client bound to the gateway; collects responses and deliver_sm."""

    def __init__(self, port: int, system_id: str = "demo", password: str = "demo",
                 how: str = "transceiver", *, ssl_context: ssl.SSLContext | None = None
                 ) -> None:
        # Over TLS (smpplib's ``ssl_context``) the handshake happens in connect: 5 s for it,
        # then reads get 0.2 s like a plain client's.
        self.client = smpplib.client.Client("127.0.0.1", port,
                                            timeout=5.0 if ssl_context else 0.2,
                                            ssl_context=ssl_context,
                                            allow_unknown_opt_params=False)
        self.resps: dict[int, Any] = {}
        self.delivered: list[Any] = []
        self.client.set_message_sent_handler(lambda pdu, **kw: self._resp(pdu))
        self.client.set_message_received_handler(lambda pdu, **kw: self.delivered.append(pdu))
        self.client.set_error_pdu_handler(lambda pdu: self._resp(pdu))
        self.client.connect()
        try:
            with _longer_timeout(self.client):
                getattr(self.client, f"bind_{how}")(system_id=system_id, password=password)
        except BaseException:
            self.client.disconnect()
            raise
        if ssl_context is not None:
            self.client._socket.settimeout(0.2)

    def _resp(self, pdu: Any) -> None:
        self.resps[pdu.sequence] = pdu

    def submit(self, text: bytes | None = None, *, data_coding: int = 0, esm_class: int = 0,
               destination_addr: str = DEST, registered_delivery: int = 1,
               **extra: Any) -> int:
        """Send one submit_sm; returns its sequence number (the answer comes later)."""
        kw: dict[str, Any] = dict(
            source_addr_ton=1, source_addr_npi=1, source_addr=SOURCE, dest_addr_ton=1,
            dest_addr_npi=1, destination_addr=destination_addr, data_coding=data_coding,
            esm_class=esm_class, registered_delivery=registered_delivery, **extra)
        if text is not None:
            kw["short_message"] = text
        pdu = self.client.send_message(**kw)
        return int(pdu.sequence)

    def pump(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        """Read PDUs (answering deliver_sm and enquire_link) until ``done()``."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                pytest.fail(f"smpplib tenant: {what} not within {timeout} s "
                            f"({len(self.resps)} responses, {len(self.delivered)} deliver_sm)")
            self.client.read_once()

    def ids(self, seqs: list[int], timeout: float = 20.0) -> list[str]:
        """The message ids of the submits ``seqs`` (each must be accepted)."""
        self.pump(lambda: all(s in self.resps for s in seqs), timeout, "submit_sm_resp")
        out = []
        for s in seqs:
            resp = self.resps[s]
            assert resp.command == "submit_sm_resp", resp.command
            assert resp.status == 0, f"submit {s} refused with 0x{resp.status:08X}"
            out.append(resp.message_id.decode("ascii"))
        return out

    def receipts(self) -> list[Receipt]:
        out = []
        for pdu in self.delivered:
            if pdu.esm_class & 0x3C == 0x04:
                out.append(read_receipt(pdu.short_message, pdu.receipted_message_id,
                                        pdu.message_state))
        return out

    def mo(self) -> list[Any]:
        return [pdu for pdu in self.delivered if pdu.esm_class & 0x3C == 0]

    def wait_receipts(self, n: int, timeout: float) -> list[Receipt]:
        self.pump(lambda: len(self.receipts()) >= n, timeout, f"{n} receipts")
        return self.receipts()

    def settle(self, quiet_s: float = 0.5, timeout: float = 5.0) -> None:
        """Keep reading until nothing arrives for ``quiet_s`` (catches extra deliver_sm)."""
        deadline = time.monotonic() + timeout
        last, changed = len(self.delivered), time.monotonic()
        while time.monotonic() < deadline:
            self.client.read_once()
            if len(self.delivered) != last:
                last, changed = len(self.delivered), time.monotonic()
            elif time.monotonic() - changed >= quiet_s:
                return

    def close(self) -> None:
        with (contextlib.suppress(smpplib.exceptions.PDUError,
                                  smpplib.exceptions.ConnectionError, OSError),
              _longer_timeout(self.client)):
            self.client.unbind()
        with contextlib.suppress(OSError):
            self.client.disconnect()


@contextlib.contextmanager
def _longer_timeout(client: smpplib.client.Client, seconds: float = 5.0) -> Any:
    """Blocking request/answer exchanges (bind, unbind) with a longer socket timeout."""
    sock: socket.socket | None = client._socket
    old = sock.gettimeout() if sock is not None else None
    if sock is not None:
        sock.settimeout(seconds)
    try:
        yield
    finally:
        if sock is not None and client._socket is sock:
            sock.settimeout(old)


@contextlib.contextmanager
def smpplib_tenant(port: int, **kw: Any) -> Any:
    tenant = SmpplibTenant(port, **kw)
    try:
        yield tenant
    finally:
        tenant.close()


# --- aiosmpplib tenant -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def aio_tenant(port: int, mode: BindMode = BindMode.TRANSCEIVER,
                     system_id: str = "demo", password: str = "demo",
                     ) -> AsyncIterator[tuple[ESME, Recorder]]:
    """A started and bound aiosmpplib ESME; stopped (unbind, close) on exit."""
    async with bound_esme(port, mode, system_id, password) as bound:
        yield bound


def submit_resp_ids(raws: Iterable[bytes]) -> list[str]:
    """The message ids of the raw submit_sm_resp PDUs among ``raws`` (status must be 0)."""
    out = []
    for raw in raws:
        command_id, status = int.from_bytes(raw[4:8], "big"), int.from_bytes(raw[8:12], "big")
        if command_id == 0x80000004:
            assert status == 0, f"submit refused with 0x{status:08X}"
            out.append(raw[16:-1].decode("ascii"))
    return out


async def in_thread(fn: Callable[[], T]) -> T:
    """Run a blocking helper (a SimThread or GatewayThread call) off the asyncio loop."""
    return await asyncio.to_thread(fn)


def run_async(coro: Coroutine[Any, Any, None], timeout: float = 40.0) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


__all__ = [
    "DEST",
    "SOURCE",
    "BindMode",
    "Receipt",
    "Recorder",
    "SimThread",
    "SmpplibTenant",
    "Stack",
    "aio_tenant",
    "check_receipts",
    "gateway_config",
    "gateway_idle",
    "in_thread",
    "operator",
    "operator_bound",
    "read_receipt",
    "run_async",
    "sent_texts",
    "sim_config",
    "smpplib_tenant",
    "submit_resp_ids",
    "wait_until",
]
