"""Listening sockets that fail loudly: a port that cannot be bound names its config key.

Every port the gateway listens on (the SMPP door ``[listen]``, the metrics endpoint
``[metrics]``, the HTTP door ``[http]``) is started through ``start_listener``, which turns
the ``OSError`` of binding into a ``ListenError`` carrying the config key to change, the
address and the reason. The CLI prints it as one line and exits 2; nothing else knows about
ports. A listener is anything with ``start() -> port`` (bind and serve; ``OSError`` when it
cannot) and ``close(timeout)``.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Protocol

__all__ = ["ListenError", "Listener", "start_listener"]

# The errors that say the address, not the port, is wrong.
_HOST_ERRNOS = frozenset({errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT})


class ListenError(Exception):
    """A listener could not bind ``host:port``; ``key`` is the config key to change
    (``"[listen] port"``, ``"[metrics] host"``...), ``reason`` the system's words."""

    def __init__(self, key: str, host: str, port: int, reason: str, *,
                 in_use: bool = False) -> None:
        super().__init__(key, host, port, reason)
        self.key = key
        self.host = host
        self.port = port
        self.reason = reason
        self.in_use = in_use

    def __str__(self) -> str:
        address = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        advice = f"change {self.key} in the config"
        if self.in_use:
            advice += " or stop the process using it"
        return f"cannot listen on {address} ({self.key}): {self.reason} — {advice}"


class Listener(Protocol):
    """A server the gateway starts and stops: one step of ``Gateway.start``."""

    async def start(self) -> int:
        """Bind and serve; returns the bound port (useful with port 0). Raises ``OSError``
        when it cannot bind (never ``SystemExit``)."""
        ...

    async def close(self, timeout: float) -> None:
        """Stop serving and end its connections within about ``timeout`` seconds; safe to
        call when ``start`` failed or never ran."""
        ...


def _error(section: str, host: str, port: int, exc: OSError) -> ListenError:
    if isinstance(exc, socket.gaierror):  # the host name does not resolve
        return ListenError(f"{section} host", host, port, exc.strerror or str(exc))
    code = exc.errno
    reason = os.strerror(code) if code and code > 0 else (exc.strerror or str(exc))
    key = f"{section} host" if code in _HOST_ERRNOS else f"{section} port"
    return ListenError(key, host, port, reason, in_use=code == errno.EADDRINUSE)


async def start_listener(section: str, host: str, port: int, listener: Listener) -> int:
    """Start ``listener`` (configured from ``section``, e.g. ``"[listen]"``, to listen on
    ``host:port``); returns its bound port, or raises ``ListenError``."""
    try:
        return await listener.start()
    except OSError as exc:
        raise _error(section, host, port, exc) from exc
