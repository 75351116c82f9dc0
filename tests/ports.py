"""Ports in known states on 127.0.0.1, for tests of listeners and of connecting out.

* ``taken_port()``: a socket listening on a free port, so binding that port fails with
  EADDRINUSE until the block ends.
* ``refusing_port()``: a socket bound but not listening: connecting is refused at once.
* ``blackhole_port()``: a socket listening with backlog 0 whose accept queue is already full
  (one connection is queued and never accepted), so the kernel drops further SYNs and a
  connect hangs until its own timeout, the way an unreachable operator behaves. The block
  first checks that a probe connect does hang (bounded, 0.3 s), so a test never relies on
  a blackhole that is not one.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

__all__ = ["blackhole_port", "refusing_port", "taken_port"]


@contextlib.contextmanager
def taken_port() -> Iterator[int]:
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


@contextlib.contextmanager
def blackhole_port() -> Iterator[int]:
    listener = socket.socket()
    held: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        for _ in range(8):  # fill the accept queue: the first connect that hangs proves it
            probe = socket.socket()
            probe.settimeout(0.3)
            try:
                probe.connect(("127.0.0.1", port))
            except TimeoutError:
                probe.close()
                break
            held.append(probe)
        else:
            raise AssertionError("could not make a blackhole: every connect was accepted")
        yield port
    finally:
        for sock in held:
            sock.close()
        listener.close()
