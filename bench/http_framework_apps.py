"""The two candidates of ``bench.http_frameworks``: the same ``POST /v1/messages`` work on
Litestar (served by an in-process uvicorn) and on aiohttp.web, and the server process each
run starts (``python -m bench.http_frameworks serve FRAMEWORK``). Standalone: imports the
stdlib, msgspec, litestar, uvicorn, aiohttp and uvloop only.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import importlib.util
import itertools
import os
import re
import signal
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
import uvicorn
import uvloop
from aiohttp import web
from litestar import Litestar, post
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.params import HeaderParameter, JSONBody

__all__ = ["Globals", "MessageResult", "MessageSpec", "Recipient", "SendRequest",
           "SendResponse", "BadRequest", "TOKEN", "accept", "aiohttp_app", "authorized",
           "body_for", "litestar_app", "pin", "serve"]

TOKEN = "bench-token"
TOKENS = frozenset({hashlib.sha256(TOKEN.encode()).digest()})

# ---- models: the same Structs validate the request and document it --------------------


class Recipient(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    to: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    vars: dict[str, str] = {}


class Globals(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    report_url: str | None = None
    client_ref: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class MessageSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    originator: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    recipients: Annotated[list[str | Recipient], msgspec.Meta(min_length=1, max_length=10_000)]
    content: str
    msg_type: Literal["text"] = "text"
    data_coding: Literal["auto", "text", "unicode"] = "auto"
    client_ref: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    report_url: str | None = None
    validity_s: Annotated[int, msgspec.Meta(gt=0)] | None = None


class SendRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    messages: Annotated[list[MessageSpec], msgspec.Meta(min_length=1)]
    message_globals: Globals | None = None


class MessageResult(msgspec.Struct, omit_defaults=True):
    id: str | None
    recipient: str
    status: str
    parts: int | None = None
    encoding: str | None = None


class SendResponse(msgspec.Struct):
    request_id: str
    status: str
    created_at: datetime
    messages: list[MessageResult]


# ---- the work, shared by both frameworks ----------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM_EXT = "\f^{}\\[~]|€"
_GSM = _GSM_BASIC | frozenset(_GSM_EXT)
_IDS = itertools.count(1)


class BadRequest(ValueError):
    """The request is well-formed JSON but cannot be sent (a 400 naming what is wrong)."""


def authorized(header: str | None) -> bool:
    if not header or not header.startswith("Bearer "):
        return False
    return hashlib.sha256(header[7:].encode()).digest() in TOKENS


def _measure(text: str, coding: str, to: str) -> tuple[str, int]:
    if coding != "unicode" and _GSM.issuperset(text):
        septets = len(text) + sum(map(text.count, _GSM_EXT))
        return "gsm7", 1 if septets <= 160 else -(-septets // 153)
    if coding == "text":
        raise BadRequest(f"recipient {to}: a character does not fit GSM-7")
    units = len(text.encode("utf-16-le")) // 2
    return "ucs2", 1 if units <= 70 else -(-units // 67)


def accept(req: SendRequest, ids: Iterator[int] = _IDS) -> SendResponse:
    """One accepted result per recipient, in request order; BadRequest names the culprit."""
    results: list[MessageResult] = []
    for m in req.messages:
        pieces = _PLACEHOLDER.split(m.content)  # literal, name, literal, name, ..., literal
        fixed = m.content if len(pieces) == 1 else None
        for r in m.recipients:
            to, values = (r, {}) if isinstance(r, str) else (r.to, r.vars)
            if fixed is not None:
                text = fixed
            else:
                out = pieces.copy()
                try:
                    for i in range(1, len(out), 2):
                        out[i] = values[out[i]]
                except KeyError as e:
                    raise BadRequest(f"recipient {to}: no value for variable {e.args[0]}") from e
                text = "".join(out)
            encoding, parts = _measure(text, m.data_coding, to)
            results.append(MessageResult(f"m_{next(ids):012x}", to, "accepted", parts, encoding))
    return SendResponse(f"r_{next(ids):012x}", "accepted", datetime.now(UTC), results)


# ---- server A: Litestar (on uvicorn); server B: aiohttp.web ---------------------------


@post("/v1/messages", status_code=200)
async def _litestar_send(
    data: JSONBody[SendRequest],
    authorization: Annotated[str | None, HeaderParameter(name="Authorization")] = None,
) -> SendResponse:
    if not authorized(authorization):
        raise NotAuthorizedException("a valid bearer token is required")
    try:
        return accept(data)
    except BadRequest as e:
        raise HTTPException(status_code=400, detail=str(e)) from e


def litestar_app() -> Litestar:
    return Litestar(route_handlers=[_litestar_send])


_ENCODER = msgspec.json.Encoder()


def _problem(status: int, detail: str) -> web.Response:
    body = _ENCODER.encode({"status": status, "detail": detail})
    return web.Response(status=status, body=body, content_type="application/problem+json")


async def _aiohttp_send(request: web.Request) -> web.Response:
    if not authorized(request.headers.get("Authorization")):
        return _problem(401, "a valid bearer token is required")
    try:
        result = accept(msgspec.json.decode(await request.read(), type=SendRequest))
    except (msgspec.ValidationError, msgspec.DecodeError, BadRequest) as e:
        return _problem(400, str(e))
    return web.Response(body=_ENCODER.encode(result), content_type="application/json")


def aiohttp_app() -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/v1/messages", _aiohttp_send)
    return app


def _http_impl(choice: str) -> str:
    if choice == "auto":
        return "httptools" if importlib.util.find_spec("httptools") else "h11"
    return choice


def _freeze() -> None:
    """As ``smsc serve`` does after start-up: what lives now leaves the full collections."""
    gc.collect()
    gc.freeze()


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


async def _serve_litestar(sock: socket.socket, http: str) -> None:
    config = uvicorn.Config(litestar_app(), loop="none", http=http, log_level="warning",
                            access_log=False, lifespan="on")
    _freeze()
    print(f"PORT {sock.getsockname()[1]} http={http}", flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


async def _serve_aiohttp(sock: socket.socket) -> None:
    runner = web.AppRunner(aiohttp_app(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _freeze()
    print(f"PORT {sock.getsockname()[1]} http=aiohttp", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def pin(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})


def serve(framework: str, http: str, cpu: int | None = None) -> None:
    pin(cpu)
    sock = _listen()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        if framework == "litestar":
            runner.run(_serve_litestar(sock, _http_impl(http)))
        else:
            runner.run(_serve_aiohttp(sock))


# ---- the load client ------------------------------------------------------------------


def body_for(recipients: int) -> bytes:
    spec = {"originator": "SignOTP", "content": "Hi {{name}}, your verification code is {{code}}",
            "msg_type": "text", "data_coding": "auto",
            "recipients": [{"to": f"+1555{i:07d}", "vars": {"name": f"n{i}", "code": f"{i:04d}"}}
                           for i in range(recipients)]}
    return msgspec.json.encode({"messages": [spec], "message_globals": {"client_ref": "b-7"}})
