"""A blocking SMPP client on a plain socket, for tests that need the bytes under control.

It encodes with our codec and reads whole frames; requests the gateway sends meanwhile
(deliver_sm, enquire_link) are answered and kept in ``delivered``. Shared by the fault,
feature and CLI tests so that every one of them drives the gateway the same way.
"""

from __future__ import annotations

import socket
import time

from encoding.constants import CommandId, CommandStatus
from encoding.pdu import BindTransceiver, EnquireLink, Pdu, decode_pdu, encode_pdu

__all__ = ["RawClient"]


class RawClient:
    def __init__(self, port: int, timeout: float = 10.0, *,
                 sock: socket.socket | None = None) -> None:
        """Connect to ``port`` on 127.0.0.1, or speak over ``sock`` (an accepted connection,
        for a test playing the operator's SMSC)."""
        self.timeout = timeout
        self.sock = sock or socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = bytearray()
        self.seq = 0
        self.delivered: list[Pdu] = []

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def send(self, pdu: Pdu) -> int:
        pdu.sequence_number = self.next_seq()
        self.sock.sendall(encode_pdu(pdu))
        return pdu.sequence_number

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_pdu(self, timeout: float | None = None) -> Pdu | None:
        """The next PDU, or None at EOF / reset; raises TimeoutError after ``timeout``."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if len(self.buf) >= 4:
                length = int.from_bytes(self.buf[:4], "big")
                if len(self.buf) >= length:
                    frame = bytes(self.buf[:length])
                    del self.buf[:length]
                    return decode_pdu(frame)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no PDU from the gateway")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not data:
                return None
            self.buf += data

    def expect(self, seq: int) -> Pdu:
        """The gateway's answer carrying ``seq``: it must be the very next PDU."""
        pdu = self.read_pdu()
        assert pdu is not None, f"connection closed while waiting for the answer to {seq}"
        assert pdu.sequence_number == seq, f"expected an answer to {seq}, got {pdu}"
        assert pdu.is_response, pdu
        return pdu

    def request(self, pdu: Pdu) -> Pdu:
        """Send and wait for the answer; requests from the gateway meanwhile are answered."""
        seq = self.send(pdu)
        for _ in range(1000):
            resp = self.read_pdu()
            assert resp is not None, "gateway closed the connection"
            if not resp.is_response:  # deliver_sm (a receipt, an MO) or enquire_link
                self.delivered.append(resp)
                self.sock.sendall(encode_pdu(resp.response()))
                continue
            assert resp.sequence_number == seq, resp
            return resp
        raise AssertionError("no answer among 1000 PDUs")

    def bind(self, system_id: str = "demo", password: str = "demo",
             cls: type[Pdu] = BindTransceiver, *, expect_ok: bool = False) -> Pdu:
        resp = self.request(cls(system_id=system_id, password=password))  # type: ignore[call-arg]
        if expect_ok:
            assert resp.command_status == CommandStatus.ESME_ROK, resp
        return resp

    def assert_closed(self) -> None:
        """The gateway closes the connection (after anything still in flight)."""
        for _ in range(100):
            if self.read_pdu() is None:
                return
        raise AssertionError("gateway kept sending instead of closing")

    def assert_alive(self) -> None:
        resp = self.request(EnquireLink())
        assert resp.command_id == CommandId.enquire_link_resp and resp.command_status == 0

    def close(self) -> None:
        self.sock.close()
