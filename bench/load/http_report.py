"""The text tables of ``smsc-bench --http`` (the JSON result has every figure)."""

from __future__ import annotations

from typing import Any

__all__ = ["http_table"]


def _f(v: Any, nd: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _grid(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(head)]
    line = "  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, sep, *body])


def _bulk(pairs: list[dict[str, Any]], s: dict[str, Any]) -> str:
    rows = []
    for p in pairs:
        if "smpp" not in p:
            continue
        sm, ht = p["smpp"], p["http"]
        rows.append([str(p["pair"]), ">".join(p["order"]), _f(sm["accepted_per_s"], 0),
                     _f(ht["accepted_per_s"], 0), _f(p.get("ratio_http_smpp"), 3),
                     _f(sm["gw_us_per_msg_accept"]), _f(ht["gw_us_per_msg_accept"]),
                     _f(sm["gw_us_per_msg_e2e"]), _f(ht["gw_us_per_msg_e2e"]),
                     f"{sm['accepted']:,}/{ht['accepted']:,}",
                     f"{_f(sm['steal_pct'], 2)}/{_f(ht['steal_pct'], 2)}",
                     f"{_f(sm['other_cores'], 2)}/{_f(ht['other_cores'], 2)}"])
    b = s["bulk"]
    rows.append(["med", "", _f(b["median_smpp_per_s"], 0), _f(b["median_http_per_s"], 0),
                 _f(b["median_ratio"], 3), _f(b["median_smpp_us_accept"]),
                 _f(b["median_http_us_accept"]), _f(b["median_smpp_us_e2e"]),
                 _f(b["median_http_us_e2e"]), "", "", ""])
    head = ["pair", "order", "SMPP msg/s", "HTTP msg/s", "HTTP/SMPP", "SMPP µs acc",
            "HTTP µs acc", "SMPP µs e2e", "HTTP µs e2e", "accepted S/H", "steal % S/H",
            "other cores S/H"]
    return (f"bulk: accepted messages/s and gateway CPU µs per accepted message\n"
            f"{_grid(head, rows)}\n"
            f"target (a) HTTP bulk >= SMPP (median of HTTP/SMPP >= 1): {_f(b['target_met'])}")


def _latency(pairs: list[dict[str, Any]], s: dict[str, Any]) -> str:
    rows = []
    for p in pairs:
        r = p.get("latency")
        if r is None:
            continue
        lat = r["latency_ms"]
        rows.append([str(p["pair"]), _f(r["rate"], 0), _f(r["requests"]), _f(r["ok"]),
                     _f(sum(r["errors"].values())), _f(r["answered_per_s"], 0),
                     _f(lat["p50"], 2), _f(lat["p90"], 2), _f(lat["p99"], 2),
                     _f(lat["p99.9"], 2), _f(lat["max"], 2), _f(r["gw_us_per_req"]),
                     _f(r["gw_cpu_pct"]), _f(r["steal_pct"], 2), _f(r["other_cores"], 2)])
    head = ["pair", "req/s", "requests", "200", "errors", "answered/s", "p50 ms", "p90",
            "p99", "p99.9", "max", "gw µs/req", "gw cpu %", "steal %", "other cores"]
    la = s["latency"]
    return (f"1-recipient requests, open loop (latency from the scheduled time)\n"
            f"{_grid(head, rows)}\n"
            f"median p50 {_f(la['median_p50'], 2)} ms, p99 {_f(la['median_p99'], 2)} ms; "
            f"target (b) p99 <= 10 ms: {_f(la['target_met'])}")


def _webhooks(pairs: list[dict[str, Any]], s: dict[str, Any]) -> str:
    rows = []
    for p in pairs:
        for name in ("webhook_burst", "webhook_paced"):
            r = p.get(name)
            if r is None:
                continue
            rc, st = r["latency_ms"]["receipt"], r["latency_ms"]["sent"]
            dl, dr = r.get("during_load", {}), r.get("drain", {})
            rows.append([str(p["pair"]), r["kind"], _f(r["accepted"]),
                         f"{r['events']:,}/{r['events_expected']:,}", _f(r["per_s"], 0),
                         _f(dl.get("per_s"), 0), _f(dr.get("per_s"), 0),
                         _f(dr.get("gw_us_per_event")),
                         _f(rc["p50"], 2), _f(rc["p99"], 2), _f(rc["max"], 2),
                         _f(st["p99"], 2), _f(r["duplicates"]), _f(r["bad_signatures"]),
                         _f(r["gw_us_per_event"]), _f(r["gw_cpu_pct"]),
                         _f(r["receiver_cpu_pct"]), _f(r["steal_pct"], 2),
                         _f(r["other_cores"], 2)])
    head = ["pair", "kind", "messages", "events got/expected", "events/s", "during load/s",
            "drain/s", "drain µs/event", "rcpt p50 ms",
            "rcpt p99", "rcpt max", "sent p99", "dupes", "bad sig", "gw µs/event", "gw cpu %",
            "recv cpu %", "steal %", "other cores"]
    w = s["webhook"]
    return (f"webhooks (rcpt = arrival at the receiver - data.done_at; sent = arrival - "
            f"data.sent_at)\n{_grid(head, rows)}\n"
            f"median burst {_f(w['median_burst_per_s'], 0)} events/s, paced "
            f"{_f(w['median_paced_per_s'], 0)} events/s with receipt p99 "
            f"{_f(w['median_paced_receipt_p99_ms'], 2)} ms; target (c) >= 5000/s and "
            f"p99 <= 50 ms: {_f(w['target_met'])}")


def http_table(result: dict[str, Any]) -> str:
    pairs = result["pairs"]
    s = result.get("summary", {})
    out = []
    if "bulk" in s:
        out.append(_bulk(pairs, s))
    if "latency" in s:
        out.append(_latency(pairs, s))
    if "webhook" in s:
        out.append(_webhooks(pairs, s))
    out.append(f"wall time {result.get('wall_s')} s")
    return "\n\n".join(out)
