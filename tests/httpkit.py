"""Helpers of the HTTP API tests: tenants with tokens, clients, waits, a webhook receiver.

Tokens are plain strings the tests choose; the config holds only their ``sha256:`` digest
(``smsc.http.hash_token``), as the contract says. Clients are ``httpx.Client`` on
127.0.0.1 with the gateway's HTTP port (port 0 in the config, the bound one read back).
``HookReceiver`` is a tiny HTTP server on 127.0.0.1 (port 0) that records every POST and
answers 200, standing in for a tenant's webhook or ``report_url`` endpoint. Every wait is
bounded in time (``tests.waiting.wait_until``).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import msgspec

from config import TenantConfig
from smsc.http import hash_token
from tests.waiting import wait_until

__all__ = [
    "SEED_REQUEST",
    "HookReceiver",
    "SECRET",
    "api_client",
    "api_tenant",
    "hook_receiver",
    "message_body",
    "post_json",
    "wait_message_status",
]

#: A Standard Webhooks secret (24 random-looking bytes, base64) for tenants with webhooks.
SECRET = "whsec_" + base64.b64encode(bytes(range(1, 25))).decode()
PROBLEM = "application/problem+json"

#: The example body of http-api.md, "Sending", character for character (tests that send it
#: replace the placeholder report_url "https://..." with a receiver on 127.0.0.1).
SEED_REQUEST = """\
{
  "messages": [
    {
      "originator": "SignOTP",
      "recipients": ["+1234567890"],
      "content": "Your verification code is 4821",
      "msg_type": "text",
      "data_coding": "text"
    }
  ],
  "message_globals": {"report_url": "https://...", "client_ref": "batch-7"}
}
"""


def api_tenant(system_id: str, token: str, **fields: Any) -> TenantConfig:
    """A tenant whose bearer token is ``token`` (HTTP-only unless ``password`` is given)."""
    return TenantConfig(system_id=system_id, api_keys=(hash_token(token),), **fields)


def api_client(port: int, token: str | None, timeout: float = 20.0) -> httpx.Client:
    """A client of the gateway's HTTP API on 127.0.0.1, authenticated with ``token``."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers,
                        timeout=timeout, trust_env=False)


def message_body(recipients: list[Any], content: str = "hello", **fields: Any
                 ) -> dict[str, Any]:
    """A send request with one message."""
    spec: dict[str, Any] = {"recipients": recipients, "content": content}
    spec.update(fields)
    return {"messages": [spec]}


def post_json(client: httpx.Client, body: object, path: str = "/v1/messages",
              headers: dict[str, str] | None = None) -> httpx.Response:
    """POST ``body`` as JSON bytes (the exact bytes matter for Idempotency-Key)."""
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return client.post(path, content=json.dumps(body).encode(), headers=h)


def wait_message_status(client: httpx.Client, message_id: str, status: str,
                        timeout: float = 15.0) -> dict[str, Any]:
    """GET /v1/messages/{id} until its status is ``status``; returns that status object."""
    seen: dict[str, Any] = {}

    def probe() -> bool:
        r = client.get(f"/v1/messages/{message_id}")
        assert r.status_code == 200, r.text
        seen.clear()
        seen.update(r.json())
        return bool(seen["status"] == status)

    wait_until(probe, timeout, f"message {message_id} {status}", interval=0.05)
    return dict(seen)


class Hook(msgspec.Struct, frozen=True):
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HookReceiver:
    """An HTTP server on 127.0.0.1 (port 0) on its own thread, recording every POST."""

    def __init__(self) -> None:
        self.hooks: list[Hook] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver._lock:
                    receiver.hooks.append(Hook(self.path, {k.lower(): v for k, v in
                                                           self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True,
                                       name="hook-receiver")
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, path: str | None = None) -> list[Hook]:
        with self._lock:
            return [h for h in self.hooks if path is None or h.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@contextmanager
def hook_receiver() -> Iterator[HookReceiver]:
    receiver = HookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()
