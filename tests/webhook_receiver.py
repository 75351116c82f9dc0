"""``WebhookReceiver``: a local HTTP endpoint for webhook tests, on 127.0.0.1 port 0.

An aiohttp.web server on its own event-loop thread (``tests.loopthread.LoopThread``) records
every request (method, path, headers with lower-case names, body, arrival time, and what it
was answered) and answers as the test programs it:

* ``always(status)`` (default 200), ``fail_first(n, status=500)`` (then 200), or any
  ``plan(fn)`` where ``fn(n, request)`` gets the 0-based request number and returns a status,
  ``HANG`` (hold the request open until ``release()`` or ``close()``: a slow endpoint; the
  sender's own timeout gives up first) or ``CLOSE`` (drop the connection without answering);
* ``pause()`` stops listening (connections are refused), ``resume()`` listens again on the
  same port.

Waiting is bounded: ``wait(predicate, timeout)``, ``wait_count(k)`` (requests),
``wait_ids(k)`` (distinct ``webhook-id`` values answered 2xx, or answered at all).
``close()`` releases hanging requests, stops the server and ends the thread; it is
idempotent and ``with`` calls it. ``WebhookReceiver(ssl_context=ctx)`` serves https with that
server context instead (``url`` then starts with ``https://``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, Literal

import msgspec
from aiohttp import web

from tests.loopthread import LoopThread

__all__ = ["CLOSE", "HANG", "Action", "Received", "WebhookReceiver"]

HANG: Final = "hang"
CLOSE: Final = "close"
Action = int | Literal["hang", "close"]


class Received(msgspec.Struct, kw_only=True):
    """One request as it arrived, and what it was answered (status, "hang" or "close")."""

    n: int  # 0-based arrival number
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic() at arrival
    answer: Action

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def ok(self) -> bool:
        return isinstance(self.answer, int) and 200 <= self.answer < 300

    def json(self) -> dict[str, Any]:
        value = msgspec.json.decode(self.body)
        assert isinstance(value, dict), value
        return value


class WebhookReceiver:
    def __init__(self, path: str = "/hook", *, ssl_context: ssl.SSLContext | None = None
                 ) -> None:
        self.path = path
        self.ssl_context = ssl_context
        self._lock = threading.Condition()
        self._received: list[Received] = []
        self._plan: Callable[[int, Received], Action] = lambda n, r: 200
        self._thread = LoopThread("webhook-receiver")
        self._released: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._transports: set[asyncio.Transport] = set()  # connections seen (for pause)
        self.port = 0
        self._closed = False
        try:
            self.port = self._thread.call(self._start())
        except BaseException:
            self._thread.end_loop()
            raise

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}{self.path}"

    # --- programming the answers ------------------------------------------------------------

    def plan(self, fn: Callable[[int, Received], Action]) -> None:
        """Answer request ``n`` (0-based, counted since the receiver started) with
        ``fn(n, request)``."""
        self._plan = fn

    def always(self, answer: Action = 200) -> None:
        self.plan(lambda n, r: answer)

    def fail_first(self, count: int, status: int = 500) -> None:
        """The next ``count`` requests get ``status``, the later ones 200."""
        start = len(self.requests())
        self.plan(lambda n, r: status if n < start + count else 200)

    def release(self) -> None:
        """Let the requests ``HANG`` holds now go (they are answered 503); later ones are
        held again while the plan says ``HANG``."""
        self._thread.run(self._release)

    def _release(self) -> None:
        held, self._released = self._released, asyncio.Event()
        if held is not None:
            held.set()

    def pause(self) -> None:
        """Stop listening: connections to the port are refused until ``resume()``."""
        self._thread.call(self._stop_site())

    def resume(self) -> None:
        self._thread.call(self._start_site(self.port))

    # --- reading what came ------------------------------------------------------------------

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def delivered(self) -> list[Received]:
        """Requests answered 2xx."""
        return [r for r in self.requests() if r.ok]

    def delivered_ids(self) -> set[str]:
        return {r.webhook_id for r in self.delivered()}

    def wait(self, predicate: Callable[[list[Received]], bool], timeout: float = 10.0,
             what: str = "requests") -> list[Received]:
        """Block until ``predicate(requests)`` holds; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(list(self._received)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"webhook receiver: {what} not within {timeout} s "
                        f"({len(self._received)} requests: "
                        f"{[(r.webhook_id, r.answer) for r in self._received[-10:]]})")
                self._lock.wait(min(remaining, 0.5))
            return list(self._received)

    def wait_count(self, k: int, timeout: float = 10.0) -> list[Received]:
        return self.wait(lambda rs: len(rs) >= k, timeout, f"{k} requests")

    def wait_ids(self, k: int, timeout: float = 10.0, *, ok_only: bool = True
                 ) -> list[Received]:
        """Until ``k`` distinct webhook-ids arrived (answered 2xx, unless ``ok_only`` is
        False); returns every request."""
        return self.wait(
            lambda rs: len({r.webhook_id for r in rs if r.ok or not ok_only}) >= k, timeout,
            f"{k} distinct webhook-ids" + (" answered 2xx" if ok_only else ""))

    # --- the server -------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.transport is not None:
            self._transports = {t for t in self._transports if not t.is_closing()}
            self._transports.add(request.transport)
        with self._lock:
            n = len(self._received)
            rec = Received(n=n, method=request.method, path=request.path,
                           headers={k.lower(): v for k, v in request.headers.items()},
                           body=body, at=time.monotonic(), answer=200)
            try:
                rec.answer = self._plan(n, rec)
            finally:
                self._received.append(rec)
                self._lock.notify_all()
        answer = rec.answer
        if answer == HANG:
            held = self._released
            assert held is not None
            await held.wait()
            return web.Response(status=503)
        if answer == CLOSE:
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()  # never reaches the peer: the socket is gone
        assert isinstance(answer, int)
        return web.Response(status=answer, text="ok" if answer < 400 else "no")

    async def _start(self) -> int:
        self._released = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        return await self._start_site(0)

    async def _start_site(self, port: int) -> int:
        assert self._runner is not None and self._site is None
        site = web.TCPSite(self._runner, "127.0.0.1", port, reuse_address=True,
                           ssl_context=self.ssl_context)
        await site.start()
        self._site = site
        return int(self._runner.addresses[0][1])

    async def _stop_site(self) -> None:
        site, self._site = self._site, None
        if site is not None:
            await site.stop()  # no new connections; the open (keep-alive) ones next
        for transport in self._transports:
            transport.abort()
        self._transports.clear()

    async def _stop(self) -> None:
        if self._released is not None:
            self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None
        for transport in self._transports:  # a TLS close waits for the peer: do not wait
            transport.abort()
        self._transports.clear()
        await asyncio.sleep(0)  # let the aborted transports close their sockets

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            with contextlib.suppress(TimeoutError):
                self._thread.call(self._stop(), timeout=10.0)
        finally:
            self._thread.end_loop()

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
