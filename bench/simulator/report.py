"""Counters of the simulator and its tiny HTTP JSON endpoint (GET /stats, GET /received).

The endpoint is plain asyncio streams on 127.0.0.1 (no dependency): one request per
connection, ``Connection: close``. ``/received`` lists the newest recorded submits (only when
the simulator records them) as JSON objects with the text decoded as Latin-1 and in hex.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from encoding.pdu import Pdu

__all__ = ["ControlServer", "new_stats", "pdu_summary"]

_COUNTERS = (
    "connections", "binds", "bind_refused", "closed", "submits", "submit_sm", "data_sm",
    "submit_multi", "no_response", "generic_nacks", "garbage", "dropped_connections",
    "query_sm", "cancel_sm", "receipts_scheduled", "receipts_sent", "receipts_acked",
    "receipts_nacked", "requeued", "unknown_receipts", "mo_sent", "mo_parts_sent",
    "mo_acked",
)


def new_stats() -> dict[str, Any]:
    """Fresh counters; ``submit_resps`` and ``receipt_stats`` count by status name / stat."""
    stats: dict[str, Any] = dict.fromkeys(_COUNTERS, 0)
    stats["submit_resps"] = {}
    stats["receipt_stats"] = {}
    stats["bound_peak"] = 0  # the most binds open at once
    return stats


def pdu_summary(pdu: Pdu) -> dict[str, Any]:
    """A JSON-friendly view of a PDU (bytes shown as Latin-1 text and hex)."""
    out: dict[str, Any] = {"command": pdu.command_name}
    for name, value in msgspec.structs.asdict(pdu).items():
        if isinstance(value, bytes):
            out[name] = value.decode("latin-1")
            out[name + "_hex"] = value.hex()
        elif name == "tlvs":
            out[name] = {str(k): (v.hex() if isinstance(v, bytes) else v)
                         for k, v in value.items()}
        elif isinstance(value, list):
            out[name] = [msgspec.structs.asdict(v) if isinstance(v, msgspec.Struct) else v
                         for v in value]
        else:
            out[name] = value
    return out


class ControlServer:
    """GET /stats and GET /received?limit=N as JSON."""

    def __init__(self, stats: Callable[[], dict[str, Any]],
                 received: Callable[[int], list[dict[str, Any]]]) -> None:
        self._stats = stats
        self._received = received
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            status, body = self._route(line)
            payload = msgspec.json.encode(body)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _route(self, line: list[str]) -> tuple[str, Any]:
        if len(line) < 2 or line[0] != "GET":
            return "405 Method Not Allowed", {"error": "GET /stats or GET /received"}
        url = urlsplit(line[1])
        if url.path == "/stats":
            return "200 OK", self._stats()
        if url.path == "/received":
            try:
                limit = int(parse_qs(url.query).get("limit", ["1000"])[0])
            except ValueError:
                return "400 Bad Request", {"error": "limit must be an integer"}
            return "200 OK", self._received(max(0, limit))
        return "404 Not Found", {"error": "GET /stats or GET /received"}
