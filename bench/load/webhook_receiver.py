"""A tenant's webhook endpoint for ``smsc-bench --http``: answers 200 at once, keeps arrivals.

``python -m bench.load.webhook_receiver --secret whsec_... [--port 0]`` prints
``webhook receiver listening on 127.0.0.1:PORT``. Every POST (any path but ``/__*``) is kept
as (``time.time()`` when its body has been read, its headers, its body) and answered 200
with an empty body; nothing is parsed or checked while the run goes on. Afterwards:

- ``GET /__count`` → ``{"events": N}`` (cheap: for waiting until every event came);
- ``GET /__results?since=WALL`` → the summary: events by type, duplicate ``webhook-id``\\ s,
  signatures that do not verify (Standard Webhooks, HMAC-SHA256 with the secret), the
  arrival span and rate, events per second of arrival, and two latencies from the body:
  ``receipt``: arrival − ``data.done_at`` of ``message.delivered``/``message.failed`` (when
  the gateway handled the operator's receipt and decided the final status), and ``sent``:
  arrival − ``data.sent_at`` of ``message.sent``. Only events whose own time is at or after
  ``since`` count for the latencies and the rate (a warm-up is left out that way);
  ``split=WALL`` also counts those that came at or after that time (``after_split``) and
  every arrival, whatever its event's time, from ``since`` to ``split`` (``before_split``).

Both clocks are the same machine's wall clock, so the latency is exact up to the clock's
resolution; it covers the event's group commit, the webhook sender's claim, render, signing
and POST, the loopback and this receiver's reading of the request.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import math
import signal
import time
from datetime import datetime
from typing import Any

import msgspec

__all__ = ["main", "summarize_arrivals"]

_BANNER = "webhook receiver listening on"


class _Data(msgspec.Struct):
    done_at: datetime | None = None
    sent_at: datetime | None = None


class _Envelope(msgspec.Struct):
    type: str
    data: _Data


_decode = msgspec.json.Decoder(_Envelope).decode

Arrival = tuple[float, str, str, str, bytes]  # (time, webhook-id, timestamp, signature, body)


def _pct(values: list[float]) -> dict[str, float | int | None]:
    data = sorted(values)
    n = len(data)
    out: dict[str, float | int | None] = {"count": n}
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)):
        out[name] = round(data[max(0, math.ceil(q * n) - 1)] * 1e3, 3) if n else None
    out["max"] = round(data[-1] * 1e3, 3) if n else None
    return out


def summarize_arrivals(arrivals: list[Arrival], key: bytes, since: float = 0.0,
                       split: float = 0.0) -> dict[str, Any]:
    by_type: dict[str, int] = {}
    receipt: list[float] = []
    sent: list[float] = []
    times: list[float] = []
    ids: set[str] = set()
    duplicates = bad = unreadable = 0
    for t, wid, ts, sig, body in arrivals:
        if wid in ids:
            duplicates += 1
        ids.add(wid)
        mac = base64.b64encode(hmac.new(key, f"{wid}.{ts}.".encode() + body,
                                        hashlib.sha256).digest()).decode()
        if not any(hmac.compare_digest(s.removeprefix("v1,"), mac) for s in sig.split()):
            bad += 1
        try:
            env = _decode(body)
        except msgspec.DecodeError:
            unreadable += 1
            continue
        by_type[env.type] = by_type.get(env.type, 0) + 1
        at = env.data.done_at or env.data.sent_at
        made = at.timestamp() if at is not None else t
        if made < since:
            continue
        times.append(t)
        if env.data.done_at is not None:
            receipt.append(t - made)
        elif env.data.sent_at is not None:
            sent.append(t - made)
    times.sort()
    first, last = (times[0], times[-1]) if times else (0.0, 0.0)
    start = since or first
    per_s: list[int] = []
    for t in times:
        k = int(t - start)
        while len(per_s) <= k:
            per_s.append(0)
        per_s[k] += 1
    span = last - start
    after = [t for t in times if split and t >= split]
    # Every arrival between ``since`` and ``split``, whatever the event's own time (the
    # channel's rate while messages are still being accepted).
    before = sum(1 for a in arrivals if (since or first) <= a[0] < split) if split else 0
    return {
        "events": len(arrivals), "counted": len(times), "by_type": by_type,
        "duplicates": duplicates, "bad_signatures": bad, "unreadable": unreadable,
        "first": first, "last": last, "span_s": round(span, 3),
        "per_s": round(len(times) / span, 1) if span > 0 else None,
        "per_second": per_s,
        "after_split": {"events": len(after), "last": after[-1] if after else 0.0},
        "before_split": {"events": before},
        "latency_ms": {"receipt": _pct(receipt), "sent": _pct(sent)},
    }


async def _serve(host: str, port: int, secret: str) -> None:
    from aiohttp import web

    arrivals: list[Arrival] = []
    key = base64.b64decode(secret.removeprefix("whsec_"))

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        h = request.headers
        arrivals.append((time.time(), h.get("webhook-id", ""), h.get("webhook-timestamp", ""),
                         h.get("webhook-signature", ""), body))
        return web.Response(status=200)

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"events": len(arrivals)})

    async def results(request: web.Request) -> web.Response:
        since = float(request.query.get("since", "0") or 0)
        split = float(request.query.get("split", "0") or 0)
        summary = summarize_arrivals(arrivals, key, since, split)
        return web.Response(body=msgspec.json.encode(summary),
                            content_type="application/json")

    app = web.Application(client_max_size=10_000_000)
    app.router.add_get("/__count", count)
    app.router.add_get("/__results", results)
    app.router.add_post("/{tail:.*}", hook)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    server: Any = site._server  # the bound port of port 0
    bound = server.sockets[0].getsockname()[1] if server is not None else port
    print(f"{_BANNER} {host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    p = argparse.ArgumentParser(description="webhook endpoint for smsc-bench --http")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--secret", required=True, help="whsec_... (to check signatures)")
    args = p.parse_args()
    try:
        import uvloop
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency
        runner = asyncio.Runner()
    with runner:
        runner.run(_serve(args.host, args.port, args.secret))


if __name__ == "__main__":
    main()
