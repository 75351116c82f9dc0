"""An MO part the gateway acknowledged survives SIGKILL: after a restart, the next part
completes the message and the tenant receives it whole.

The test plays the operator's SMSC on a listening socket (127.0.0.1, port 0): it accepts the
gateway's bind, sends part 1 of a two-part concatenated deliver_sm, waits for the gateway's
deliver_sm_resp, then SIGKILLs the gateway. A second gateway on the same store binds again;
part 2 arrives; a tenant bound as receiver must get the joined text. Subprocesses are killed
by PID and sockets closed in ``finally``.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from encoding.constants import CommandId, CommandStatus
from encoding.pdu import BindReceiver, DeliverSm, encode_pdu
from tests.gatewayproc import GatewayProcess
from tests.gatewaytoml import loopback_sections
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)

TENANT_NUMBER = "447900000001"


def _config(tmp_path: Path, operator_port: int) -> Path:
    cfg = tmp_path / "smsc.toml"
    cfg.write_text(
        loopback_sections(tmp_path) +
        "[[tenants]]\nsystem_id = \"demo\"\npassword = \"demo\"\nnumbers = [\"4479\"]\n\n"
        "[[operators]]\nname = \"op\"\nhost = \"127.0.0.1\"\n"
        f"port = {operator_port}\nsystem_id = \"gw\"\npassword = \"gw\"\n"
        "reconnect_min_s = 0.1\nreconnect_max_s = 0.5\n"
    )
    return cfg


def _part(seq: int, text: bytes) -> DeliverSm:
    udh = bytes([5, 0, 3, 0x42, 2, seq])  # IEI 0x00, reference 0x42, 2 parts
    return DeliverSm(source_addr="447911123456", source_addr_ton=1, source_addr_npi=1,
                     destination_addr=TENANT_NUMBER, esm_class=0x40, short_message=udh + text)


def _accept_bind(listener: socket.socket) -> RawClient:
    """Take the gateway's connection and answer its bind_transceiver."""
    sock, _ = listener.accept()
    op = RawClient(0, sock=sock)
    bind = op.read_pdu()
    assert bind is not None and bind.command_id == CommandId.bind_transceiver, bind
    resp = bind.response(system_id="fakesmsc")
    op.send_raw(encode_pdu(resp))
    return op


def _deliver(op: RawClient, pdu: DeliverSm) -> int:
    """Send an MO part; the gateway's deliver_sm_resp status."""
    seq = op.send(pdu)
    for _ in range(100):  # bounded: enquire_links may come first
        got = op.read_pdu()
        assert got is not None, "gateway closed the operator connection"
        if got.is_response and got.sequence_number == seq:
            return got.command_status
        if not got.is_response:
            op.send_raw(encode_pdu(got.response()))
    raise AssertionError("no deliver_sm_resp among 100 PDUs")


def test_acknowledged_mo_part_survives_sigkill(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)
    config = _config(tmp_path, listener.getsockname()[1])
    gw = GatewayProcess(config, tmp_path / "gateway1.log", log_level="WARNING")
    try:
        op = _accept_bind(listener)
        try:
            assert _deliver(op, _part(1, b"first half, ")) == CommandStatus.ESME_ROK
        finally:
            op.close()
        gw.kill()  # the part was acknowledged: the operator will not send it again
    finally:
        gw.kill()
    assert gw.proc.returncode == -signal.SIGKILL

    gw2 = GatewayProcess(config, tmp_path / "gateway2.log", log_level="WARNING")
    tenant: RawClient | None = None
    try:
        op = _accept_bind(listener)
        try:
            assert _deliver(op, _part(2, b"second half")) == CommandStatus.ESME_ROK
            tenant = RawClient(gw2.port)
            assert tenant.bind(cls=BindReceiver).command_status == CommandStatus.ESME_ROK
            mo = tenant.delivered[0] if tenant.delivered else tenant.read_pdu()
            assert isinstance(mo, DeliverSm), mo
            assert mo.destination_addr == TENANT_NUMBER
            assert mo.short_message == b"first half, second half"
            assert mo.esm_class & 0x40 == 0  # joined: no UDH left
        finally:
            op.close()
    finally:
        if tenant is not None:
            tenant.close()
        gw2.kill()
        listener.close()
