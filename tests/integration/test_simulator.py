"""The bundled operator SMSC simulator over real sockets on 127.0.0.1 (port 0).

Clients: python-smpplib (blocking, run in a thread) and a minimal asyncio ESME built on
``esme.connection.Connection``. Every wait is an event with a timeout; every loop is bounded;
everything started is stopped in a ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
import smpplib.client

from bench.simulator import Simulator
from bench.simulator.cli import default_config_path
from config.errors import ConfigError
from config.simulator import (
    DelayRange,
    FaultRule,
    FaultsConfig,
    MoConfig,
    SimAccount,
    SimulatorConfig,
    load_simulator_config,
)
from encoding.constants import CommandStatus, MessageState
from encoding.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    DataSm,
    DeliverSm,
    Pdu,
    QuerySm,
    SubmitSm,
)
from encoding.receipt import parse_receipt
from encoding.session import (
    Event,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    Role,
    SessionConfig,
)
from esme.connection import Connection

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
S = CommandStatus


def run(coro: Awaitable[T], timeout: float = 30.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def config(**fields: Any) -> SimulatorConfig:
    fields.setdefault("port", 0)
    fields.setdefault("seed", 7)
    return SimulatorConfig(**fields)


@contextlib.asynccontextmanager
async def running(cfg: SimulatorConfig, record: bool = False) -> AsyncIterator[Simulator]:
    sim = Simulator(cfg, record=record)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


class Client:
    """A minimal ESME: binds, sends requests (futures), answers and collects deliver_sm."""

    def __init__(self) -> None:
        self.delivered: asyncio.Queue[DeliverSm] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.conn: Connection | None = None

    @classmethod
    async def bind(cls, port: int,
                   kind: type[BindTransmitter | BindReceiver | BindTransceiver] = BindTransceiver,
                   system_id: str = "gw", password: str = "gw") -> Client:
        client = cls()
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            lambda: Connection(Role.ESME, SessionConfig(window=1000, enquire_link_s=0),
                               client, loop),
            "127.0.0.1", port)
        client.conn = conn
        resp = await client.request(kind(system_id=system_id, password=password))
        if resp.command_status:
            raise ConnectionRefusedError(f"bind refused: 0x{resp.command_status:X}")
        assert resp.tlvs.get("sc_interface_version") == 0x34
        return client

    def request(self, pdu: Pdu) -> asyncio.Future[Pdu]:
        assert self.conn is not None
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self.conn.send(pdu, future)
        return future

    def submit(self, dest: str = "447911123456", rd: int = 1, text: bytes = b"hello",
               source: str = "447700900001") -> asyncio.Future[Pdu]:
        return self.request(SubmitSm(source_addr=source, source_addr_ton=1,
                                     destination_addr=dest, dest_addr_ton=1,
                                     registered_delivery=rd, short_message=text))

    async def next_delivery(self, timeout: float = 5.0) -> DeliverSm:
        return await asyncio.wait_for(self.delivered.get(), timeout)

    async def close(self) -> None:
        if self.conn is not None and not self.closed.is_set():
            self.conn.abort()
            await asyncio.wait_for(self.closed.wait(), 5.0)

    # ConnectionHandler
    def on_events(self, conn: Connection, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, ResponseReceived):
                future = event.context
                if isinstance(future, asyncio.Future) and not future.done():
                    future.set_result(event.pdu)
            elif isinstance(event, RequestFailed):
                future = event.context
                if isinstance(future, asyncio.Future) and not future.done():
                    future.set_exception(ConnectionError(event.reason))
            elif isinstance(event, RequestReceived) and isinstance(event.pdu, DeliverSm):
                conn.send(event.pdu.response(0))
                self.delivered.put_nowait(event.pdu)

    def on_closed(self, conn: Connection, reason: str) -> None:
        self.closed.set()


# --- config ---------------------------------------------------------------------------------


def test_example_config_loads_and_errors_are_one_line(tmp_path: Path) -> None:
    cfg = load_simulator_config(default_config_path())
    assert (cfg.host, cfg.port, cfg.id_format) == ("127.0.0.1", 2776, "hex")
    assert [a.system_id for a in cfg.accounts] == ["gw", "gw2"]
    bad = tmp_path / "sim.toml"
    bad.write_text('[faults]\nthrotle_tps = 3\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_simulator_config(bad)
    assert str(info.value).startswith(f"{bad}: faults.throtle_tps: unknown key")
    bad.write_text('final_states = { DELIVERED = 1 }\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="final_states: unknown stat 'DELIVERED'"):
        load_simulator_config(bad)
    bad.write_text('[mo]\nfrom = "123"\nto = ["12a"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"mo\.to\[0\]: must be digits"):
        load_simulator_config(bad)


# --- receipts -------------------------------------------------------------------------------


def _smpplib_round_trip(port: int) -> tuple[str, list[Any]]:
    client = smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
    ids: list[str] = []
    delivered: list[Any] = []
    client.set_message_sent_handler(lambda pdu: ids.append(pdu.message_id.decode()))
    client.set_message_received_handler(lambda pdu: delivered.append(pdu))
    client.connect()
    try:
        client.bind_transceiver(system_id="gw", password="gw")
        client.send_message(source_addr_ton=1, source_addr="447700900001", dest_addr_ton=1,
                            destination_addr="447911123456", short_message=b"hello smpplib",
                            registered_delivery=1)
        for _ in range(20):
            if ids and delivered:
                break
            client.read_once()
        client.unbind()
    finally:
        client.disconnect()
    assert ids, "no submit_sm_resp"
    return ids[0], delivered


def test_smpplib_gets_receipt_with_the_submit_id() -> None:
    async def body() -> None:
        accounts = (SimAccount(system_id="gw", password="gw"),)
        async with running(config(accounts=accounts)) as sim:
            message_id, delivered = await asyncio.to_thread(_smpplib_round_trip, sim.port)
            assert len(delivered) == 1
            dlr = delivered[0]
            assert dlr.esm_class & 0x3C == 0x04
            assert dlr.receipted_message_id.decode() == message_id
            receipt = parse_receipt(dlr.short_message)
            assert receipt is not None
            assert (receipt.id, receipt.stat) == (message_id, "DELIVRD")
            assert dlr.source_addr.decode() == "447911123456"
            assert dlr.destination_addr.decode() == "447700900001"
            int(message_id, 16)  # hex by default
            await sim.wait_for(lambda s: s.stats["receipts_acked"] == 1)

    run(body())


@pytest.mark.parametrize(("id_format", "receipt_id_format"),
                         [("hex", "decimal"), ("decimal", "same"), ("decimal", "hex")])
def test_receipt_ids_in_both_formats(id_format: str, receipt_id_format: str) -> None:
    async def body() -> None:
        cfg = config(id_format=id_format, receipt_id_format=receipt_id_format)
        async with running(cfg) as sim:
            client = await Client.bind(sim.port)
            try:
                resp = await client.submit(text=b"ids")
                assert resp.command_status == 0
                issued = resp.message_id  # type: ignore[attr-defined]
                n = int(issued, 16 if id_format == "hex" else 10)
                dlr = await client.next_delivery()
                expected = {"same": issued, "hex": f"{n:X}", "decimal": str(n)}[
                    receipt_id_format]
                assert dlr.tlvs["receipted_message_id"] == expected
                receipt = parse_receipt(dlr.short_message)
                assert receipt is not None and receipt.id == expected
                assert dlr.tlvs["message_state"] == MessageState.DELIVERED
            finally:
                await client.close()

    run(body())


def test_failure_mix_yields_undeliv_and_rejectd() -> None:
    async def body() -> None:
        cfg = config(final_states={"UNDELIV": 1.0, "REJECTD": 1.0})
        async with running(cfg) as sim:
            client = await Client.bind(sim.port)
            try:
                resps = await asyncio.gather(*(client.submit(rd=2) for _ in range(30)))
                assert all(r.command_status == 0 for r in resps)
                stats: set[str] = set()
                for _ in range(30):
                    dlr = await client.next_delivery()
                    state = dlr.tlvs.get("message_state")
                    assert isinstance(state, int), state
                    receipt = parse_receipt(dlr.short_message, message_state=state)
                    assert receipt is not None and receipt.final
                    stats.add(receipt.stat)
                    assert dlr.tlvs["message_state"] in (MessageState.UNDELIVERABLE,
                                                         MessageState.REJECTED)
                    assert "network_error_code" in dlr.tlvs
                    assert receipt.err != "000"
                assert stats == {"UNDELIV", "REJECTD"}
            finally:
                await client.close()

    run(body())


def test_receipt_on_failure_only_skips_delivered() -> None:
    async def body() -> None:
        async with running(config()) as sim:
            client = await Client.bind(sim.port)
            try:
                await asyncio.gather(*(client.submit(rd=2) for _ in range(5)))
                resp = await client.submit(rd=1)
                dlr = await client.next_delivery()
                assert dlr.tlvs["receipted_message_id"] == resp.message_id  # type: ignore[attr-defined]
                assert client.delivered.empty()
                assert sim.stats["receipts_scheduled"] == 1
            finally:
                await client.close()

    run(body())


def test_receipt_is_held_until_a_receiver_binds() -> None:
    async def body() -> None:
        async with running(config()) as sim:
            tx = await Client.bind(sim.port, BindTransmitter)
            rx: Client | None = None
            try:
                resp = await tx.submit()
                await sim.wait_for(lambda s: s.outbox.queued("gw") == 1)
                assert sim.stats["receipts_sent"] == 0
                rx = await Client.bind(sim.port, BindReceiver)
                dlr = await rx.next_delivery()
                assert dlr.tlvs["receipted_message_id"] == resp.message_id  # type: ignore[attr-defined]
                await sim.wait_for(lambda s: s.stats["receipts_acked"] == 1)
                assert tx.delivered.empty()
            finally:
                await tx.close()
                if rx is not None:
                    await rx.close()

    run(body())


def test_delayed_receipts_query_and_cancel() -> None:
    async def body() -> None:
        cfg = config(receipt_delay_ms=DelayRange(min=300, max=300))
        async with running(cfg) as sim:
            client = await Client.bind(sim.port)
            try:
                first = (await client.submit()).message_id  # type: ignore[attr-defined]
                second = (await client.submit()).message_id  # type: ignore[attr-defined]
                query = await client.request(QuerySm(message_id=first))
                assert query.message_state == MessageState.ENROUTE  # type: ignore[attr-defined]
                cancel = await client.request(CancelSm(message_id=second))
                assert cancel.command_status == 0
                dlr = await client.next_delivery()
                assert dlr.tlvs["receipted_message_id"] == first
                query = await client.request(QuerySm(message_id=first))
                assert query.message_state == MessageState.DELIVERED  # type: ignore[attr-defined]
                query = await client.request(QuerySm(message_id=second))
                assert query.message_state == MessageState.DELETED  # type: ignore[attr-defined]
                unknown = await client.request(QuerySm(message_id="FFFFFFFFFF"))
                assert unknown.command_status == S.ESME_RQUERYFAIL
                assert sim.stats["receipts_sent"] == 1
            finally:
                await client.close()

    run(body())


def test_data_sm_is_answered_and_recorded() -> None:
    async def body() -> None:
        async with running(config(), record=True) as sim:
            client = await Client.bind(sim.port)
            try:
                resp = await client.request(DataSm(source_addr="1", destination_addr="44712",
                                                   registered_delivery=1,
                                                   tlvs={"message_payload": b"payload"}))
                assert resp.command_status == 0
                dlr = await client.next_delivery()
                assert dlr.tlvs["receipted_message_id"] == resp.message_id  # type: ignore[attr-defined]
                assert [p.command_name for p in sim.received] == ["DataSm"]
            finally:
                await client.close()

    run(body())


# --- faults ---------------------------------------------------------------------------------


def test_throttle_and_rules() -> None:
    async def body() -> None:
        cfg = config(faults=FaultsConfig(throttle_tps=5),
                     rules=(FaultRule(prefix="999", fault="reject"),
                            FaultRule(prefix="4470", fault="queue_full", every=2)))
        async with running(cfg) as sim:
            client = await Client.bind(sim.port)
            try:
                resps = await asyncio.gather(*(client.submit(rd=0) for _ in range(20)))
                statuses = [r.command_status for r in resps]
                assert statuses.count(0) >= 5
                assert statuses.count(S.ESME_RTHROTTLED) >= 10
                assert (await client.submit("9991")).command_status == S.ESME_RINVDSTADR
                ruled = [await client.submit("44701", rd=0) for _ in range(2)]
                assert ruled[1].command_status == S.ESME_RMSGQFUL
                assert sim.stats["submit_resps"]["ESME_RTHROTTLED"] >= 10
            finally:
                await client.close()

    run(body())


def test_drop_connection_every_closes_the_socket() -> None:
    async def body() -> None:
        cfg = config(faults=FaultsConfig(drop_connection_every=3))
        async with running(cfg) as sim:
            client = await Client.bind(sim.port)
            try:
                resps = [await client.submit(rd=0) for _ in range(3)]
                assert all(r.command_status == 0 for r in resps)
                await asyncio.wait_for(client.closed.wait(), 5.0)
                await sim.wait_for(lambda s: s.stats["dropped_connections"] == 1
                                   and not s.connections)
            finally:
                await client.close()

    run(body())


def test_no_response_and_generic_nack() -> None:
    async def body() -> None:
        cfg = config(faults=FaultsConfig(generic_nack_every=2, no_response_every=3))
        async with running(cfg) as sim:
            client = await Client.bind(sim.port)
            try:
                first = await client.submit(rd=0)
                second = await client.submit(rd=0)
                assert first.command_status == 0
                assert second.command_name == "GenericNack"
                assert second.command_status == S.ESME_RSYSERR
                third = client.submit(rd=0)
                fourth = await client.submit(rd=0)  # 4 % 2: generic_nack again
                fifth = await client.submit(rd=0)
                assert fourth.command_name == "GenericNack"
                assert fifth.command_status == 0 and not third.done()
                assert sim.stats["no_response"] == 1
                third.cancel()
            finally:
                await client.close()

    run(body())


def test_slow_rule_unknown_receipts_and_garbage() -> None:
    async def body() -> None:
        cfg = config(faults=FaultsConfig(unknown_receipt_every=1, garbage_every=3),
                     rules=(FaultRule(prefix="4471", fault="slow", delay_ms=200),))
        async with running(cfg) as sim:
            client = await Client.bind(sim.port)
            loop = asyncio.get_running_loop()
            try:
                started = loop.time()
                slow = await client.submit("44712")
                assert slow.command_status == 0 and loop.time() - started >= 0.19
                ids = {(await client.next_delivery()).tlvs["receipted_message_id"]
                       for _ in range(2)}
                assert slow.message_id in ids and len(ids) == 2  # type: ignore[attr-defined]
                assert sim.stats["unknown_receipts"] == 1
                await client.submit(rd=0)
                third = client.submit(rd=0)  # answered with random bytes: framing breaks
                await asyncio.wait_for(client.closed.wait(), 5.0)
                with pytest.raises(ConnectionError):
                    await third
                assert sim.stats["garbage"] == 1
            finally:
                await client.close()

    run(body())


# --- MO -------------------------------------------------------------------------------------


def test_injected_mo_arrives_as_deliver_sm() -> None:
    async def body() -> None:
        async with running(config()) as sim:
            client = await Client.bind(sim.port, BindReceiver)
            try:
                assert sim.inject_mo("447900000001", "447700900123", "hello MO") == 1
                mo = await client.next_delivery()
                assert mo.esm_class == 0
                assert (mo.source_addr, mo.destination_addr) == ("447700900123",
                                                                 "447900000001")
                assert mo.short_message == b"hello MO"
                await sim.wait_for(lambda s: s.stats["mo_acked"] == 1)
            finally:
                await client.close()

    run(body())


def test_long_mo_arrives_as_udh_parts() -> None:
    async def body() -> None:
        text = "".join(f"part{i:03d} " for i in range(40))  # 320 characters
        async with running(config()) as sim:
            client = await Client.bind(sim.port)
            try:
                parts = sim.inject_mo("447900000001", "447700900123", text)
                assert parts == 3
                got = [await client.next_delivery() for _ in range(parts)]
                pieces: dict[int, bytes] = {}
                refs = set()
                for mo in got:
                    assert mo.esm_class & 0x40
                    sm = mo.short_message
                    assert sm[:3] == b"\x05\x00\x03"
                    refs.add(sm[3])
                    assert sm[4] == parts
                    pieces[sm[5]] = sm[6:]
                assert len(refs) == 1
                assert b"".join(pieces[i] for i in sorted(pieces)).decode() == text
            finally:
                await client.close()

    run(body())


def test_generated_mo_with_count_and_long_every() -> None:
    async def body() -> None:
        mo = msgspec.convert({"to": ["12345"], "from": "447700900123", "rate_per_s": 200,
                              "count": 4, "long_every": 4}, type=MoConfig)
        async with running(config(mo=mo)) as sim:
            client = await Client.bind(sim.port)
            try:
                await sim.wait_for(lambda s: s.stats["mo_sent"] == 4, timeout=5)
                got = [await client.next_delivery() for _ in range(5)]  # 3 short + 2 parts
                assert [bool(m.esm_class & 0x40) for m in got] == [False] * 3 + [True] * 2
                assert got[0].short_message == b"MO 1 from smsc-sim"
            finally:
                await client.close()

    run(body())


# --- binds, control endpoint, failover helper ----------------------------------------------


def test_bad_credentials_are_refused_and_drop_all_closes() -> None:
    async def body() -> None:
        accounts = (SimAccount(system_id="gw", password="gw"),)
        async with running(config(accounts=accounts)) as sim:
            with pytest.raises(ConnectionRefusedError, match="0xE"):
                await Client.bind(sim.port, password="nope")
            with pytest.raises(ConnectionRefusedError, match="0xF"):
                await Client.bind(sim.port, system_id="who")
            clients = [await Client.bind(sim.port) for _ in range(2)]
            assert sim.drop_all() == 2
            for client in clients:
                await asyncio.wait_for(client.closed.wait(), 5.0)
            assert sim.stats["bind_refused"] == 2

    run(body())


async def _http_get(port: int, path: str) -> tuple[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(), 5.0)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), json.loads(body)


def test_control_endpoint_reports_stats_and_received() -> None:
    async def body() -> None:
        import socket

        with socket.socket() as probe:  # a free port for the control endpoint
            probe.bind(("127.0.0.1", 0))
            control = probe.getsockname()[1]
        async with running(config(control_port=control), record=True) as sim:
            client = await Client.bind(sim.port)
            try:
                await client.submit(text=b"see me")
                status, stats = await _http_get(sim.control_port, "/stats")
                assert status.endswith("200 OK")
                assert stats["submits"] == 1 and stats["bound"] == 1
                status, received = await _http_get(sim.control_port, "/received?limit=5")
                assert received[0]["short_message"] == "see me"
                status, _ = await _http_get(sim.control_port, "/nope")
                assert "404" in status
            finally:
                await client.close()

    run(body())


# --- CLI ------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_cli_prints_its_line_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "bench.simulator", "--port", "0"],
                            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the process prints it at once or exits
        assert line.startswith("smsc-sim listening on 127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])

        async def bind_once() -> None:
            client = await Client.bind(port)
            await client.close()

        run(bind_once(), timeout=10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None and proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_cli_bad_config_and_port_in_use_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("port = 'x'\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "bench.simulator", "--config", str(bad)],
                            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "port" in result.stderr
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "bench.simulator", "--port", str(port)],
                                cwd=ROOT, env=_env(), capture_output=True, text=True,
                                timeout=20)
    assert time.monotonic() - started < 20
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr

