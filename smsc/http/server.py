"""The HTTP listener: the API's ASGI app served by uvicorn on the gateway's own event loop.

The socket is bound here, before uvicorn starts, so a port in use fails ``start()`` at once
with the OSError (the gateway names the ``[http]`` key). uvicorn's own signal handling is
off: the gateway's CLI owns SIGTERM and SIGINT and stops this server with everything else.

HTTPS: given an ``ssl.SSLContext`` (``smsc.tls.ServerTls.context``), uvicorn serves only TLS
with that very object (through its ``ssl_context_factory``, so no certificate file is read
here), and a certificate reloaded into the context is used by the next handshake.
``public_url`` is the base of URLs shown to users: ``[http] public_url``, else
``http(s)://host:port``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable, Generator
from typing import Any

import uvicorn

from config import HttpConfig

__all__ = ["HttpServer", "public_url"]

log = logging.getLogger("smsc.http")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the gateway handles signals


def public_url(cfg: HttpConfig, port: int | None = None) -> str:
    """``[http] public_url``, else ``https://host:port`` with a certificate, else http://
    (``port`` is the bound one when the config says 0)."""
    if cfg.public_url:
        return cfg.public_url.rstrip("/")
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    return f"{'https' if cfg.cert else 'http'}://{host}:{cfg.port if port is None else port}"


def _given(context: ssl.SSLContext) -> Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]],
                                                  ssl.SSLContext]:
    def factory(config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return context
    return factory


class HttpServer:
    def __init__(self, app: Any, host: str, port: int,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.port = port
        self.tls = ssl_context is not None
        self._config = uvicorn.Config(
            app, host=host, port=port, lifespan="off", log_level="warning",
            access_log=False, loop="none", http="httptools", ws="none",
            server_header=False, date_header=True, timeout_keep_alive=30,
            ssl_context_factory=_given(ssl_context) if ssl_context is not None else None)
        self._server = _Server(self._config)
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Bind and start serving; returns the bound port. Raises OSError."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP, so asyncio sets TCP_NODELAY on accepted connections (with proto 0 it
        # does not, and every answer after the first on a keep-alive connection waits
        # ~40 ms for the peer's delayed ACK).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(1024)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._task = asyncio.get_running_loop().create_task(
            self._server.serve(sockets=[sock]), name="http-server")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0
        while not self._server.started:  # startup is a few loop iterations
            if self._task.done() or loop.time() > deadline:
                self._server.should_exit = True
                if self._task.done():
                    self._task.result()  # raises what failed
                raise OSError("the HTTP server did not start")
            await asyncio.sleep(0.005)
        port = int(sock.getsockname()[1])
        return port

    async def close(self, timeout: float = 5.0) -> None:
        """Finish requests in flight (up to ``timeout``), then close; safe when ``start``
        failed or never ran (``smsc.listeners.Listener``)."""
        if self._task is None:
            if self._sock is not None:
                self._sock.close()
            return
        self._server.should_exit = True
        done, _ = await asyncio.wait([self._task], timeout=timeout)
        if not done:  # requests still running: close their connections
            self._server.force_exit = True
            done, _ = await asyncio.wait([self._task], timeout=1.0)
            if not done:
                self._task.cancel()
                await asyncio.wait([self._task], timeout=1.0)
        if self._task.done() and not self._task.cancelled() and self._task.exception():
            log.error("HTTP server ended with %r", self._task.exception())
        self._task = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
