"""``smsc-bench --http``: the HTTP door against the SMPP door, request latency, webhooks.

Every phase runs on a fresh stack (simulator + gateway, ``procs.Stack``) whose config adds
an API key to the bench tenant, ``[store] max_queue`` large enough for bulk and, for the
webhook phases, an HTTP-only tenant ``hooks`` whose ``webhook_url`` is a local receiver
(``webhook_receiver``). The HTTP client is its own process (``http_load``); the gateway's
CPU comes from a 10 ms ``/proc`` sampler (``sampler``), read over the windows the records
give, and so does the host's steal. ``--pairs N`` repeats, in this order:

1. **bulk**, SMPP and HTTP in turn (SMPP first in odd pairs, HTTP first in even ones): the
   same number of short GSM-7 messages, through the SMPP load generator (closed loop) or
   through ``POST /v1/messages`` with ``--http-recipients`` per request from
   ``--http-clients`` keep-alive connections. The HTTP client holds an SMPP receiver bind,
   so in both runs every receipt goes back to the tenant as deliver_sm and the gateway's
   work per message differs only at the door. ``accepted/s`` = accepted messages from the
   first send to the last answer; gateway CPU per message over that window (``accept``)
   and until the last receipt reached the tenant (``e2e``).
2. **latency**: 1-recipient requests open loop at ``--latency-rate`` for ``--latency-s``
   (after ``--warmup-s`` on the same schedule, not counted), latency from each request's
   scheduled time to its answer; durable accept as configured (default store settings).
3. **webhooks**, twice: ``burst`` (``--webhook-messages`` as bulk requests, as fast as they
   are accepted: the channel's throughput) and ``paced`` (``--webhook-rate`` messages/s in
   ``--webhook-recipients``-recipient requests for ``--webhook-s``: the latency at that
   rate). Each message makes two events (``message.sent``, ``message.delivered``).
   Latency ``receipt`` = arrival at the receiver − ``data.done_at``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import urllib.request
from array import array
from pathlib import Path
from typing import Any

import msgspec

from .client import WorkerSpec
from .http_load import HttpLoadSpec, SmppLogin, run_http_load
from .http_summary import summary
from .mix import parse_mix
from .procs import TENANT_ID, TENANT_PASSWORD, GatewayOptions, ManagedProcess, Stack
from .report import machine, write_json
from .runner import run_load
from .sampler import Sampler
from .stats import merge, percentiles

__all__ = ["add_http_arguments", "run_http_mode"]

PARTS = ("bulk", "latency", "webhook")


def add_http_arguments(p: argparse.ArgumentParser) -> None:
    add = p.add_argument
    add("--http", action="store_true",
        help="HTTP API mode: HTTP bulk vs SMPP in interleaved pairs, 1-recipient latency, "
             "webhook throughput and latency (see BENCHMARKS.md)")
    add("--pairs", type=int, default=3,
        help="--http: rounds of every part; --tls-compare: plain/TLS pairs (3)")
    add("--http-parts", default=",".join(PARTS), help=f"--http: parts to run ({','.join(PARTS)})")
    add("--http-messages", type=int, default=50_000,
        help="--http: messages per bulk run, each door (50000)")
    add("--http-recipients", type=int, default=1000, help="--http: recipients per bulk request")
    add("--http-clients", type=int, default=4, help="--http: concurrent bulk requests (4)")
    add("--latency-rate", type=float, default=500.0, help="--http: 1-recipient requests/s")
    add("--latency-s", type=float, default=10.0, help="--http: measured seconds (10)")
    add("--warmup-s", type=float, default=1.0, help="--http: open-loop warm-up seconds (1)")
    add("--webhook-messages", type=int, default=20_000, help="--http: burst messages (20000)")
    add("--webhook-rate", type=float, default=2500.0,
        help="--http: paced messages/s (2500 = 5000 webhook events/s)")
    add("--webhook-recipients", type=int, default=10, help="--http: paced recipients/request")
    add("--webhook-s", type=float, default=10.0, help="--http: paced measured seconds (10)")
    add("--webhook-concurrency", type=int, default=0,
        help="--http: gateway [http] webhook_concurrency (0: the gateway's default)")
    add("--webhook-timeout", type=float, default=120.0,
        help="--http: seconds to wait for every webhook after the last answer (120)")
    add("--max-queue", type=int, default=1_000_000, help="--http: gateway [store] max_queue")


def check_http_arguments(args: argparse.Namespace) -> str | None:
    parts = [x for x in args.http_parts.split(",") if x]
    if not parts or any(x not in PARTS for x in parts):
        return f"--http-parts: a comma-separated subset of {','.join(PARTS)}"
    if args.pairs < 1 or args.http_clients < 1 or args.http_recipients < 1:
        return "--pairs, --http-clients and --http-recipients must be at least 1"
    if args.http_messages < args.http_recipients or args.webhook_messages < 1:
        return "--http-messages must be at least --http-recipients"
    if min(args.latency_rate, args.latency_s, args.webhook_rate, args.webhook_s) <= 0:
        return "rates and durations must be positive"
    return None


def _log(args: argparse.Namespace, line: str) -> None:
    if not args.quiet:
        print(f"smsc-bench --http: {line}", file=sys.stderr, flush=True)


def _us(cpu: float | None, n: int) -> float | None:
    return round(cpu / n * 1e6, 1) if cpu is not None and n else None


def _lat(data: bytes) -> dict[str, Any]:
    a = array("d")
    a.frombytes(data)
    return percentiles(a)


class _Keys(msgspec.Struct):
    token: str
    hook_token: str
    secret: str


def _keys() -> _Keys:
    return _Keys(token="sk_bench_" + secrets.token_urlsafe(24),
                 hook_token="sk_hooks_" + secrets.token_urlsafe(24),
                 secret="whsec_" + base64.b64encode(os.urandom(32)).decode())


def _opts(base: GatewayOptions, keys: _Keys, args: argparse.Namespace, hook_url: str = ""
          ) -> GatewayOptions:
    from smsc.http import hash_token  # the gateway's own digest of a token

    extra: dict[str, Any] = {}
    if hook_url:
        extra = {"hook_url": hook_url, "hook_secret": keys.secret,
                 "hook_api_key": hash_token(keys.hook_token)}
    return msgspec.structs.replace(base, api_key=hash_token(keys.token),
                                   max_queue=args.max_queue,
                                   webhook_concurrency=args.webhook_concurrency, **extra)


def _stack(args: argparse.Namespace, opts: GatewayOptions) -> Stack:
    return Stack(gateway=True, opts=opts, sim_window=args.sim_window, keep_dir=args.keep_dir)


def _pids(stack: Stack) -> dict[str, int | None]:
    return {"gateway": stack.gateway.pid if stack.gateway else None,
            "simulator": stack.sim.pid if stack.sim else None}


def _common(s: Sampler, a: float, b: float, e: float, accepted: int) -> dict[str, Any]:
    """CPU per accepted message over the accept window [a, b] and until the end [a, e]."""
    gw_acc, gw_e2e = s.cpu("gateway", a, b), s.cpu("gateway", a, e)
    return {"gw_cpu_accept_s": round(gw_acc, 3) if gw_acc is not None else None,
            "gw_us_per_msg_accept": _us(gw_acc, accepted),
            "gw_cpu_e2e_s": round(gw_e2e, 3) if gw_e2e is not None else None,
            "gw_us_per_msg_e2e": _us(gw_e2e, accepted),
            "sim_us_per_msg_e2e": _us(s.cpu("simulator", a, e), accepted),
            **s.host(a, e)}


# --- 1. bulk: SMPP, HTTP --------------------------------------------------------------------

def _smpp_bulk(args: argparse.Namespace, opts: GatewayOptions, label: str) -> dict[str, Any]:
    with _stack(args, opts) as stack, Sampler(_pids(stack)) as s:
        spec = WorkerSpec(host="127.0.0.1", port=stack.gateway_port, system_id=TENANT_ID,
                          password=TENANT_PASSWORD, binds=args.binds, window=args.window,
                          messages=args.http_messages, mix=parse_mix("gsm7=1"),
                          receipts=True, receipt_timeout_s=args.receipt_timeout,
                          max_time_s=args.max_time, progress=not args.quiet, label=label)
        records = run_load(spec, 1)
    m = merge(records)
    accepted = len(m.sub_t) - sum(m.errors.values())
    t_acc = max(m.sub_t, default=m.t0)
    t_end = max(m.rc_t, default=t_acc)
    return {"door": "smpp", "messages": m.sent, "accepted": accepted,
            "rejected": sum(m.errors.values()), "failures": m.failures,
            "receipts": len(m.rc_t), "accept_s": round(t_acc - m.t0, 3),
            "accepted_per_s": round(accepted / (t_acc - m.t0), 1) if t_acc > m.t0 else None,
            "e2e_s": round(t_end - m.t0, 3), "binds": args.binds, "window": args.window,
            "submit_latency_ms": percentiles(m.sub_lat),
            **_common(s, m.t0, t_acc, t_end, accepted)}


def _http_bulk(args: argparse.Namespace, opts: GatewayOptions, keys: _Keys, label: str
               ) -> dict[str, Any]:
    with _stack(args, opts) as stack, Sampler(_pids(stack)) as s:
        spec = HttpLoadSpec(
            url=f"http://127.0.0.1:{stack.http_port}/v1/messages", token=keys.token,
            recipients=args.http_recipients, requests=args.http_messages // args.http_recipients,
            clients=args.http_clients,
            receiver=SmppLogin("127.0.0.1", stack.gateway_port, TENANT_ID, TENANT_PASSWORD),
            receipt_timeout_s=args.receipt_timeout, max_time_s=args.max_time,
            progress=not args.quiet, label=label)
        r = run_http_load(spec, lambda pid: s.watch("client", pid))
    t_end = max(r.t_last_receipt, r.t_last)
    return {"door": "http", "messages": r.requests * args.http_recipients,
            "accepted": r.accepted, "rejected": r.rejected, "requests": r.requests,
            "ok": r.ok, "errors": r.statuses, "receipts": r.receipts,
            "accept_s": round(r.t_last - r.t_first, 3),
            "accepted_per_s": round(r.accepted / (r.t_last - r.t_first), 1)
            if r.t_last > r.t_first else None,
            "e2e_s": round(t_end - r.t_first, 3), "recipients": args.http_recipients,
            "clients": args.http_clients, "client_cpu_s": r.client_cpu_s,
            "request_latency_ms": _lat(r.latency),
            **_common(s, r.t_first, r.t_last, t_end, r.accepted)}


# --- 2. latency -----------------------------------------------------------------------------

def _latency(args: argparse.Namespace, opts: GatewayOptions, keys: _Keys, label: str
             ) -> dict[str, Any]:
    rate = args.latency_rate
    with _stack(args, opts) as stack, Sampler(_pids(stack)) as s:
        spec = HttpLoadSpec(
            url=f"http://127.0.0.1:{stack.http_port}/v1/messages", token=keys.token,
            recipients=1, requests=round(rate * args.latency_s),
            warmup=round(rate * args.warmup_s), rate=rate,
            receiver=SmppLogin("127.0.0.1", stack.gateway_port, TENANT_ID, TENANT_PASSWORD),
            receipt_timeout_s=args.receipt_timeout, max_time_s=args.max_time,
            progress=not args.quiet, label=label)
        r = run_http_load(spec, lambda pid: s.watch("client", pid))
    gw = s.cpu("gateway", r.t_first, r.t_last)
    span = r.t_last - r.t_first
    return {"rate": rate, "duration_s": args.latency_s, "warmup_s": args.warmup_s,
            "requests": r.requests, "ok": r.ok, "accepted": r.accepted, "errors": r.statuses,
            "receipts": r.receipts, "answered_per_s": round(r.ok / span, 1) if span > 0 else None,
            "latency_ms": _lat(r.latency), "gw_us_per_req": _us(gw, r.ok),
            "gw_cpu_pct": round(gw / span * 100, 1) if gw is not None and span > 0 else None,
            "client_cpu_s": r.client_cpu_s, **s.host(r.t_first, r.t_last)}


# --- 3. webhooks ----------------------------------------------------------------------------

def _get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30.0) as resp:
        return json.loads(resp.read())


def _webhook(args: argparse.Namespace, base: GatewayOptions, keys: _Keys, label: str,
             paced: bool) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="smsc-bench-hooks-"))
    receiver = ManagedProcess(
        "webhook-receiver", [sys.executable, "-m", "bench.load.webhook_receiver",
                             "--secret", keys.secret], workdir / "receiver.log")
    try:
        receiver.start("webhook receiver listening on")
        port = receiver.port()
        opts = _opts(base, keys, args, hook_url=f"http://127.0.0.1:{port}/hook")
        with _stack(args, opts) as stack, Sampler({**_pids(stack),
                                                   "receiver": receiver.pid}) as s:
            url = f"http://127.0.0.1:{stack.http_port}/v1/messages"
            if paced:
                per_req = args.webhook_recipients
                rate = args.webhook_rate / per_req
                spec = HttpLoadSpec(url=url, token=keys.hook_token, recipients=per_req,
                                    requests=round(rate * args.webhook_s),
                                    warmup=round(rate * args.warmup_s), rate=rate,
                                    max_time_s=args.max_time, progress=not args.quiet,
                                    label=label, first_number=447_800_000_000)
            else:
                spec = HttpLoadSpec(url=url, token=keys.hook_token,
                                    recipients=args.http_recipients,
                                    requests=max(1, args.webhook_messages
                                                 // args.http_recipients),
                                    clients=args.http_clients, max_time_s=args.max_time,
                                    progress=not args.quiet, label=label,
                                    first_number=447_800_000_000)
            r = run_http_load(spec, lambda pid: s.watch("client", pid))
            expected = 2 * r.accepted_all
            end = time.monotonic() + args.webhook_timeout
            got = 0
            while time.monotonic() < end:
                got = _get(port, "/__count")["events"]
                if got >= expected:
                    break
                time.sleep(0.05)
            offset = time.monotonic() - time.time()
            split = r.t_last - offset  # the last answer, on the wall clock
            res = _get(port, f"/__results?since={r.wall_start if paced else 0}&split={split}")
        t_last = res["last"] + offset if res["last"] else r.t_last
        window_start = r.t_first if paced else (res["first"] + offset if res["first"] else 0)
        gw = s.cpu("gateway", window_start, t_last)
        rcv = s.cpu("receiver", window_start, t_last)
        span = t_last - window_start
        # After the last answer: the channel draining what is left, with no more accepts.
        after = res["after_split"]
        drain_s = after["last"] + offset - r.t_last if after["events"] > 1 else 0.0
        gw_drain = s.cpu("gateway", r.t_last, r.t_last + drain_s) if drain_s > 0 else None
        # Before it: the channel while messages are being accepted.
        during_s = max(0.0, r.t_last - window_start)
        during = res["before_split"]["events"]
    finally:
        receiver.stop()
        if not args.keep_dir:
            shutil.rmtree(workdir, ignore_errors=True)
    out = {"kind": "paced" if paced else "burst", "accepted": r.accepted_all,
           "requests_ok": r.ok, "errors": r.statuses, "events_expected": expected,
           "request_latency_ms": _lat(r.latency),
           **{k: res[k] for k in ("events", "counted", "by_type", "duplicates",
                                  "bad_signatures", "unreadable", "span_s", "per_s")},
           "latency_ms": res["latency_ms"],
           "webhook_concurrency": args.webhook_concurrency or "default",
           "gw_us_per_event": _us(gw, res["counted"]),
           "gw_cpu_pct": round(gw / span * 100, 1) if gw is not None and span > 0 else None,
           "receiver_cpu_pct": round(rcv / span * 100, 1)
           if rcv is not None and span > 0 else None,
           "per_second": res["per_second"],
           "during_load": {"events": during, "seconds": round(during_s, 3),
                           "per_s": round(during / during_s, 1) if during_s > 0 else None},
           "drain": {"events": after["events"], "seconds": round(drain_s, 3),
                     "per_s": round(after["events"] / drain_s, 1) if drain_s > 0 else None,
                     "gw_us_per_event": _us(gw_drain, after["events"]),
                     "gw_cpu_pct": round(gw_drain / drain_s * 100, 1)
                     if gw_drain is not None and drain_s > 0 else None},
           **s.host(window_start, t_last)}
    if paced:
        out.update({"rate_msgs": args.webhook_rate, "recipients": args.webhook_recipients,
                    "duration_s": args.webhook_s})
    return out


# --- the run --------------------------------------------------------------------------------


def _pair(args: argparse.Namespace, base: GatewayOptions, keys: _Keys, k: int,
          parts: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"pair": k}
    opts = _opts(base, keys, args)
    if "bulk" in parts:
        order = ["smpp", "http"] if k % 2 else ["http", "smpp"]
        out["order"] = order
        for door in order:
            _log(args, f"pair {k}: {door} bulk")
            out[door] = (_smpp_bulk(args, opts, f"smpp#{k}") if door == "smpp"
                         else _http_bulk(args, opts, keys, f"http#{k}"))
        sm, ht = out["smpp"], out["http"]
        if sm["accepted_per_s"] and ht["accepted_per_s"]:
            out["ratio_http_smpp"] = round(ht["accepted_per_s"] / sm["accepted_per_s"], 3)
        for w in ("accept", "e2e"):
            a, b = ht[f"gw_us_per_msg_{w}"], sm[f"gw_us_per_msg_{w}"]
            if a and b:
                out[f"cpu_ratio_{w}"] = round(a / b, 3)
    if "latency" in parts:
        _log(args, f"pair {k}: 1-recipient latency at {args.latency_rate:g}/s")
        out["latency"] = _latency(args, opts, keys, f"lat#{k}")
    if "webhook" in parts:
        for paced in (False, True):
            name = "webhook_paced" if paced else "webhook_burst"
            _log(args, f"pair {k}: {name}")
            out[name] = _webhook(args, base, keys, f"hook{'P' if paced else 'B'}#{k}", paced)
    return out


def run_http_mode(args: argparse.Namespace, base: GatewayOptions, command: list[str]) -> int:
    from .http_report import http_table  # the text table only

    parts = [x for x in args.http_parts.split(",") if x]
    keys = _keys()
    result: dict[str, Any] = {"machine": machine(), "command": command,
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "mode": "http", "parts": parts, "pairs": []}
    t0 = time.monotonic()
    for k in range(1, args.pairs + 1):
        result["pairs"].append(_pair(args, base, keys, k, parts))
        result["summary"] = summary(result["pairs"])
        result["wall_s"] = round(time.monotonic() - t0, 1)
        if args.out:  # after every pair: a stopped run keeps what it measured
            write_json(args.out, result)
    print(http_table(result))
    if args.out:
        print(f"result: {args.out}")
    return 0
