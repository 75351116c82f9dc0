"""Bad input from one tenant hurts only that tenant's session, never the gateway.

Against an in-process gateway on 127.0.0.1 (port 0), a raw client (plain socket plus the
codec in ``encoding.pdu``) sends random bytes, truncated PDUs, absurd command_length values,
a valid header with a garbage body for every command_id, unknown command_ids and PDUs the
session state does not allow. Each time the offending session must get the right answer
(generic_nack ESME_RINVCMDLEN then a close for a broken frame; ESME_RINVCMDID for an unknown
command; the request's own response with the field's status for a malformed body;
ESME_RINVBNDSTS / ESME_RALYBND for a PDU out of state) or be closed, while a second tenant's
bound session submits successfully before and after, new binds are accepted, no connection
is leaked and nothing is logged at ERROR (a handler crash would be).
"""

from __future__ import annotations

import logging
import random
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from config import TenantConfig
from encoding.constants import RESPONSE_BIT, CommandId, CommandStatus
from encoding.errors import PduError
from encoding.pdu import (
    REGISTRY,
    BindTransmitter,
    DeliverSm,
    EnquireLink,
    GenericNack,
    Pdu,
    SubmitSm,
    decode_pdu,
    encode_pdu,
)
from tests.rawclient import RawClient

if TYPE_CHECKING:
    from tests.conftest import GatewayThread

S = CommandStatus
pytestmark = pytest.mark.timeout(60)
READ_TIMEOUT = 5.0


def _submit(text: str = "hello") -> SubmitSm:
    return SubmitSm(source_addr="4412345", destination_addr="447700900123",
                    short_message=text.encode())


def _header(length: int, command_id: int, seq: int, status: int = 0) -> bytes:
    return struct.pack(">IIII", length, command_id, status, seq)


class Harness:
    """The gateway, a bound witness tenant and the clients a test opens (closed at the end)."""

    def __init__(self, gw: GatewayThread) -> None:
        self.gw = gw
        self.clients: list[RawClient] = []
        self.witness = self.client()
        self.witness.bind("witness", "witness", expect_ok=True)
        self.witness_submits()

    def client(self, bind: bool = False) -> RawClient:
        c = RawClient(self.gw.port)
        self.clients.append(c)
        if bind:
            c.bind(expect_ok=True)
        return c

    def witness_submits(self) -> None:
        resp = self.witness.request(_submit("witness"))
        assert resp.command_status == S.ESME_ROK, resp
        assert resp.message_id  # type: ignore[attr-defined]

    def connections(self) -> int:
        return self.gw.run(lambda: len(self.gw.gateway.listener.connections))

    def assert_healthy(self) -> None:
        """The witness still submits, a fresh bind works, no connection is left behind."""
        self.witness_submits()
        fresh = RawClient(self.gw.port)
        try:
            fresh.bind(expect_ok=True)
            resp = fresh.request(_submit("fresh"))
            assert resp.command_status == S.ESME_ROK, resp
        finally:
            fresh.close()
        for c in self.clients[1:]:
            c.close()
        deadline = time.monotonic() + 5
        while self.connections() > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.connections() == 1, "connections leaked after their sockets closed"


@pytest.fixture
def h(gateway_factory: Callable[..., GatewayThread],
      caplog: pytest.LogCaptureFixture) -> Iterator[Harness]:
    caplog.set_level(logging.WARNING)
    gw = gateway_factory(tenants=(TenantConfig(system_id="demo", password="demo"),
                                  TenantConfig(system_id="witness", password="witness")))
    harness = Harness(gw)
    yield harness
    try:
        harness.assert_healthy()
    finally:
        for c in harness.clients:
            c.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, f"the gateway logged errors: {errors[:3]}"


# --- broken frames: generic_nack ESME_RINVCMDLEN, then close ------------------------------


@pytest.mark.parametrize("length", [0, 15, 70_001, 2**31, 2**32 - 1])
@pytest.mark.parametrize("bound", [True, False], ids=["bound", "open"])
def test_absurd_command_length_is_nacked_and_closed(h: Harness, length: int,
                                                    bound: bool) -> None:
    c = h.client(bind=bound)
    c.send_raw(_header(length, CommandId.submit_sm, 77) + b"\x00" * 16)
    nack = c.read_pdu()
    assert isinstance(nack, GenericNack), nack
    assert nack.command_status == S.ESME_RINVCMDLEN
    assert nack.sequence_number == 77
    c.assert_closed()


def test_frames_before_a_broken_one_are_still_handled(h: Harness) -> None:
    c = h.client(bind=True)
    ping = EnquireLink(sequence_number=4)
    good = _submit("before the break")
    good.sequence_number = 5
    c.send_raw(encode_pdu(ping) + encode_pdu(good) + _header(3, CommandId.submit_sm, 6))
    got: dict[int, Pdu] = {}
    for _ in range(10):
        pdu = c.read_pdu()
        if pdu is None:
            break
        got[pdu.sequence_number] = pdu
    else:
        raise AssertionError("the gateway did not close after a broken frame")
    assert got[4].command_id == CommandId.enquire_link_resp
    assert isinstance(got[6], GenericNack) and got[6].command_status == S.ESME_RINVCMDLEN
    # The submit in the same read is answered before the close (after its durable commit),
    # and the id it got is the stored message's.
    assert 5 in got, "the submit before the broken frame never got its submit_sm_resp"
    resp = got[5]
    assert resp.command_id == CommandId.submit_sm_resp and resp.command_status == 0
    mid = resp.message_id  # type: ignore[attr-defined]
    assert h.gw.run(lambda: h.gw.gateway.store.get_message(mid)) is not None


def test_truncated_pdu_then_eof_closes_only_that_session(h: Harness) -> None:
    c = h.client(bind=True)
    frame = encode_pdu(_submit("cut short"))
    c.send_raw(frame[: len(frame) // 2])
    h.witness_submits()  # a half-read frame on one session stalls nobody else
    c.sock.shutdown(socket.SHUT_WR)
    c.assert_closed()


def test_truncated_body_gets_the_field_status_and_the_session_survives(h: Harness) -> None:
    c = h.client(bind=True)
    frame = encode_pdu(_submit())
    # service_type (1) + source ton/npi (2) + "4412345\0" (8) + dest ton/npi (2) = 13 octets;
    # cut the body inside destination_addr, so its C string has no NUL.
    body = frame[16:16 + 13 + 5]
    c.send_raw(_header(16 + len(body), CommandId.submit_sm, 41) + body)
    resp = c.expect(41)
    assert resp.command_id == CommandId.submit_sm_resp
    assert resp.command_status == S.ESME_RINVDSTADR
    # cut inside the integers after the addresses: the body is shorter than its fields
    body = frame[16:16 + 13 + 13 + 2]
    c.send_raw(_header(16 + len(body), CommandId.submit_sm, 42) + body)
    resp = c.expect(42)
    assert resp.command_id == CommandId.submit_sm_resp
    assert resp.command_status == S.ESME_RINVCMDLEN
    c.assert_alive()
    ok = c.request(_submit("after"))
    assert ok.command_status == S.ESME_ROK


# --- garbage bodies and unknown commands --------------------------------------------------

_GARBAGE = b"\xff" * 40
_REQUESTS = sorted(cid for cid in REGISTRY if not cid & RESPONSE_BIT)
_RESPONSES = sorted(cid for cid in REGISTRY if cid & RESPONSE_BIT)


def _expected_status(command_id: int) -> int:
    frame = _header(16 + len(_GARBAGE), command_id, 1) + _GARBAGE
    with pytest.raises(PduError) as info:
        decode_pdu(frame)
    assert info.value.command_status != 0
    return info.value.command_status


@pytest.mark.parametrize("command_id", _REQUESTS, ids=lambda c: CommandId(c).name)
def test_garbage_body_gets_the_requests_response_with_the_fields_status(
        h: Harness, command_id: int) -> None:
    c = h.client(bind=True)
    c.send_raw(_header(16 + len(_GARBAGE), command_id, 900) + _GARBAGE)
    resp = c.expect(900)
    cls = REGISTRY[command_id]
    expected_cid = cls.response_class.command_id if cls.response_class else CommandId.generic_nack
    assert resp.command_id == expected_cid, resp
    assert resp.command_status == _expected_status(command_id)
    c.assert_alive()
    assert c.request(_submit()).command_status == S.ESME_ROK


@pytest.mark.parametrize("command_id", _RESPONSES, ids=lambda c: CommandId(c).name)
def test_unsolicited_or_garbage_response_is_dropped(h: Harness, command_id: int) -> None:
    c = h.client(bind=True)
    c.send_raw(_header(16 + len(_GARBAGE), command_id, 901) + _GARBAGE)
    c.send_raw(_header(16, command_id, 902))  # well-formed but answers nothing we sent
    # Never answer a response: the next thing we hear is the enquire_link_resp.
    c.assert_alive()
    assert c.request(_submit()).command_status == S.ESME_ROK


@pytest.mark.parametrize("command_id", [0x00000999, 0x7FFFFFFF, 0x00010004])
def test_unknown_command_id_gets_generic_nack_invcmdid(h: Harness, command_id: int) -> None:
    c = h.client(bind=True)
    c.send_raw(_header(16 + 4, command_id, 321) + b"\x00\x01\x02\x03")
    nack = c.expect(321)
    assert isinstance(nack, GenericNack)
    assert nack.command_status == S.ESME_RINVCMDID
    c.assert_alive()
    assert c.request(_submit()).command_status == S.ESME_ROK


# --- PDUs the session state does not allow ------------------------------------------------


def test_submit_before_bind_is_invbndsts_and_bind_still_works(h: Harness) -> None:
    c = h.client()
    resp = c.request(_submit())
    assert resp.command_id == CommandId.submit_sm_resp
    assert resp.command_status == S.ESME_RINVBNDSTS
    c.bind(expect_ok=True)
    assert c.request(_submit()).command_status == S.ESME_ROK
    # the witness submit and this one
    assert h.gw.run(lambda: h.gw.gateway.store.count("messages")) == 2


def test_second_bind_is_alybnd_and_the_first_stays(h: Harness) -> None:
    c = h.client(bind=True)
    resp = c.request(BindTransmitter(system_id="demo", password="demo"))
    assert resp.command_id == CommandId.bind_transmitter_resp
    assert resp.command_status == S.ESME_RALYBND
    assert c.request(_submit()).command_status == S.ESME_ROK
    binds = h.gw.run(lambda: h.gw.gateway.registry.count("demo"))
    assert binds == 1


def test_deliver_sm_from_a_tenant_is_invbndsts(h: Harness) -> None:
    c = h.client(bind=True)
    resp = c.request(DeliverSm(source_addr="447700900123", destination_addr="4412345",
                               short_message=b"MO from a tenant?"))
    assert resp.command_id == CommandId.deliver_sm_resp
    assert resp.command_status == S.ESME_RINVBNDSTS
    assert c.request(_submit()).command_status == S.ESME_ROK


# --- random input -------------------------------------------------------------------------


def _send_quietly(c: RawClient, data: bytes) -> bool:
    """Send; False when the gateway already closed this session (allowed for noise)."""
    try:
        c.send_raw(data)
    except OSError:
        return False
    return True


def test_random_bytes_never_break_the_gateway(h: Harness) -> None:
    rng = random.Random(20240601)
    for i in range(40):
        c = h.client(bind=i % 2 == 0)
        kind = i % 4
        if kind == 0:  # pure noise
            data = rng.randbytes(rng.randint(1, 400))
        elif kind == 1:  # a plausible header (small length) then noise
            n = rng.randint(16, 200)
            cid = rng.choice(_REQUESTS + _RESPONSES + [rng.getrandbits(32)])
            data = _header(n, cid, rng.getrandbits(31)) + rng.randbytes(n - 16 + rng.randint(0, 40))
        elif kind == 2:  # a valid PDU with random bytes spliced in
            frame = bytearray(encode_pdu(_submit("spliced " * rng.randint(1, 20))))
            pos = rng.randrange(len(frame))
            frame[pos:pos] = rng.randbytes(rng.randint(1, 8))
            data = bytes(frame)
        else:  # many tiny writes of noise
            data = b""
            for _ in range(rng.randint(1, 30)):
                chunk = rng.randbytes(rng.randint(1, 5))
                if not _send_quietly(c, chunk):
                    break
                data += chunk
        if kind != 3:
            _send_quietly(c, data)
        try:
            c.sock.shutdown(socket.SHUT_WR)
        except OSError:  # already closed by the gateway
            pass
        for _ in range(200):  # whatever the gateway answers must be responses, then EOF
            pdu = c.read_pdu()
            if pdu is None:
                break
            assert pdu.is_response, f"case {i}: gateway sent a request {pdu}"
        else:
            raise AssertionError(f"case {i}: the gateway never closed the session")
        c.close()
        if i % 10 == 9:
            h.witness_submits()


def test_mutated_submit_bodies_are_each_answered(h: Harness) -> None:
    """Flipped body bytes (header intact): every PDU gets its submit_sm_resp, same seq."""
    rng = random.Random(77)
    c = h.client(bind=True)
    template = encode_pdu(SubmitSm(source_addr="4412345", destination_addr="447700900123",
                                   esm_class=0x40, short_message=b"\x05\x00\x03\x01\x02\x01hi",
                                   tlvs={"user_message_reference": 7}))
    statuses: set[int] = set()
    for seq in range(1, 301):
        frame = bytearray(template)
        for _ in range(rng.randint(1, 4)):
            frame[rng.randrange(16, len(frame))] = rng.getrandbits(8)
        frame[12:16] = seq.to_bytes(4, "big")
        c.send_raw(bytes(frame))
        resp = c.expect(seq)
        assert resp.command_id in (CommandId.submit_sm_resp, CommandId.generic_nack), resp
        statuses.add(resp.command_status)
    assert S.ESME_ROK in statuses and len(statuses) > 3  # the mutations did exercise errors
    c.assert_alive()
