"""A tenant's session may end any way it likes: the receipts in flight to it are not lost.

A raw tenant binds as transceiver to a real gateway (the bundled simulator as its operator,
receipts at once) and submits a few messages; it reads their receipts (deliver_sm) but does
not answer them, so they sit in flight in its bind's window. Then it ends the session:

* ``submit_unbind``: one more submit and its unbind in one write (the unbind waits for the
  submit's answer, so the gateway closes the session inside ``send`` of that answer);
* ``submit_broken``: one more submit and a broken header in one write (the same, after a
  framing error);
* ``abrupt_close``: the socket closed (FIN) without an unbind;
* ``unbind``: a plain unbind, nothing pending;
* ``slow_then_reset``: it answers half of the receipts late, then submits once more and
  resets the connection (RST, SO_LINGER 0) without waiting for the answer.

A new bind of the same tenant must then receive every receipt it is still owed, within a
bounded wait. Every read has a deadline; every loop is bounded; the gateway's own deliver_sm
timeout (30 s) is far beyond the wait, so only the close can bring the receipts back.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

import pytest

from config import TenantConfig
from encoding.constants import CommandId
from encoding.pdu import DeliverSm, EnquireLink, Pdu, SubmitSm, Unbind, encode_pdu
from tests.integration.e2e_support import DEST, SOURCE, Stack, operator, read_receipt
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(90)

N = 4  # receipts left in flight (the tenant's deliver_window is 10)
READ_S = 10.0  # one phase of reading
RECEIPT_WAIT_S = 15.0  # the new bind gets what it is owed within this
BROKEN = struct.pack(">IIII", 8, CommandId.submit_sm, 0, 999)  # command_length 8 < 16
ENDINGS = ["submit_unbind", "submit_broken", "abrupt_close", "unbind", "slow_then_reset"]


class Tenant:
    """A raw transceiver of tenant "demo" that answers deliver_sm only when told to."""

    def __init__(self, port: int) -> None:
        self.client = RawClient(port, READ_S)
        self.ids: dict[int, str] = {}  # submit sequence number -> message id ("" until known)
        self.responses: set[int] = set()  # sequence numbers of every response read
        self.delivered: list[DeliverSm] = []  # every deliver_sm read
        self.unanswered: list[DeliverSm] = []  # those not answered
        self.eof = False

    def bind(self) -> None:
        self.client.bind(expect_ok=True)  # nothing is delivered before the bind_resp

    def submit(self, i: int) -> bytes:
        pdu = SubmitSm(source_addr_ton=1, source_addr_npi=1, source_addr=SOURCE,
                       dest_addr_ton=1, dest_addr_npi=1, destination_addr=DEST,
                       registered_delivery=1, short_message=f"ending {i}".encode())
        pdu.sequence_number = self.client.next_seq()
        self.ids[pdu.sequence_number] = ""
        return encode_pdu(pdu)

    def read_until(self, done: Callable[[], bool], what: str, *, answer: bool = False,
                   timeout: float = READ_S) -> None:
        """Read PDUs until ``done()`` or EOF; deliver_sm are answered only if ``answer``."""
        deadline = time.monotonic() + timeout
        for _ in range(10_000):
            if done() or self.eof:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                pdu = self.client.read_pdu(remaining)
            except TimeoutError:
                break
            if pdu is None:
                self.eof = True
                return
            self._handle(pdu, answer)
        pytest.fail(f"{what}: not within {timeout} s ({len(self.unanswered)} deliver_sm, "
                    f"ids {self.ids})")

    def _handle(self, pdu: Pdu, answer: bool) -> None:
        if pdu.is_response:
            self.responses.add(pdu.sequence_number)
        if pdu.command_id == CommandId.submit_sm_resp:
            assert pdu.command_status == 0, pdu
            self.ids[pdu.sequence_number] = pdu.message_id  # type: ignore[attr-defined]
        elif isinstance(pdu, DeliverSm):
            self.delivered.append(pdu)
            self.unanswered.append(pdu)
            if answer:
                self.answer(pdu)
        elif pdu.command_id == CommandId.enquire_link:
            self.client.send_raw(encode_pdu(pdu.response()))

    def answer(self, pdu: DeliverSm) -> None:
        self.unanswered.remove(pdu)
        self.client.send_raw(encode_pdu(pdu.response()))

    def receipt_ids(self, pdus: list[DeliverSm]) -> set[str]:
        out = set()
        for pdu in pdus:
            rid, state = pdu.tlvs.get("receipted_message_id"), pdu.tlvs.get("message_state")
            assert isinstance(rid, str | bytes) and isinstance(state, int), pdu
            r = read_receipt(pdu.short_message, rid, state)
            assert r.text_id == r.receipted_message_id, r
            out.add(r.receipted_message_id)
        return out

    def known_ids(self) -> set[str]:
        return {i for i in self.ids.values() if i}

    def reset(self) -> None:
        """Close with RST instead of FIN."""
        self.client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
        self.client.close()


def end_session(tenant: Tenant, how: str) -> set[str]:
    """End the first session ``how``; returns the message ids whose receipts are still owed
    to the tenant (those it never answered, and any submit answered on the way out)."""
    client = tenant.client
    if how == "submit_unbind":
        submit = tenant.submit(N)
        unbind = Unbind(client.next_seq())
        client.send_raw(submit + encode_pdu(unbind))
        tenant.read_until(lambda: False, "the gateway closing after unbind_resp")
    elif how == "submit_broken":
        client.send_raw(tenant.submit(N) + BROKEN)
        tenant.read_until(lambda: False, "the gateway closing after the framing error")
    elif how == "abrupt_close":
        client.close()
    elif how == "unbind":
        client.send(Unbind())
        tenant.read_until(lambda: False, "the gateway closing after unbind_resp")
    elif how == "slow_then_reset":
        for pdu in list(tenant.unanswered[: N // 2]):  # late answers to half of them
            tenant.answer(pdu)
        # an enquire_link answered means the gateway has read the answers before it
        seq = client.send(EnquireLink())
        tenant.read_until(lambda: seq in tenant.responses, "enquire_link_resp")
        client.send_raw(tenant.submit(N))
        tenant.reset()
    else:
        raise AssertionError(how)
    if how in ("submit_unbind", "submit_broken"):
        assert tenant.eof, "the gateway did not close the session"
        assert all(tenant.ids.values()), f"a submit went unanswered: {tenant.ids}"
    client.close()
    answered = [p for p in tenant.delivered if p not in tenant.unanswered]
    return tenant.known_ids() - tenant.receipt_ids(answered)


@pytest.mark.parametrize("how", ENDINGS)
def test_a_new_bind_gets_every_receipt_in_flight_when_the_session(stack: Stack,
                                                                  how: str) -> None:
    sim = stack.sim()
    tenants = (TenantConfig(system_id="demo", password="demo", deliver_window=10,
                            deliver_timeout_s=30.0),)
    gw = stack.gateway([operator("A", sim.port)], tenants=tenants)

    first = Tenant(gw.port)
    try:
        first.bind()
        first.client.send_raw(b"".join(first.submit(i) for i in range(N)))
        first.read_until(lambda: len(first.known_ids()) == N
                         and first.receipt_ids(first.unanswered) == first.known_ids(),
                         f"{N} submit_sm_resp and their receipts, unanswered")
        owed = end_session(first, how)
    finally:
        first.client.close()
    assert owed, "nothing in flight: the test would prove nothing"
    known = first.known_ids()

    second = Tenant(gw.port)
    try:
        second.bind()
        second.read_until(lambda: owed <= second.receipt_ids(second.delivered),
                          f"receipts owed to the new bind ({how}): {sorted(owed)}",
                          answer=True, timeout=RECEIPT_WAIT_S)
        received = second.receipt_ids(second.delivered)
        unknown = received - known
        # the last submit of slow_then_reset was never answered: its id is unknown to us
        assert len(unknown) <= (1 if how == "slow_then_reset" else 0), unknown
    finally:
        second.client.close()
