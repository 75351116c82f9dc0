"""The text table of ``smsc-bench --tls-compare`` (the JSON result holds every figure)."""

from __future__ import annotations

from typing import Any

__all__ = ["tls_table"]


def _f(x: Any, fmt: str = ".1f") -> str:
    return "-" if x is None else format(x, fmt)


def _pair_row(p: dict[str, Any]) -> str:
    pl, tl = p["plain"], p["tls"]
    return (f"{p['pair']:>4}  {'P,T' if p['order'][0] == 'plain' else 'T,P':5}"
            f"  {_f(pl['gw_us_per_msg']):>9} {_f(tl['gw_us_per_msg']):>9}"
            f"  {_f(p['ratio_gw'], '.3f'):>6}"
            f"  {_f(pl['sim_us_per_msg']):>8} {_f(tl['sim_us_per_msg']):>8}"
            f"  {_f(p['ratio_sim'], '.3f'):>6}"
            f"  {_f(pl['throughput']['end_to_end_per_s'], '.0f'):>7}"
            f" {_f(tl['throughput']['end_to_end_per_s'], '.0f'):>7}"
            f"  {_f(pl['steal_pct'], '.2f'):>5} {_f(tl['steal_pct'], '.2f'):>5}"
            f"  {_f(pl['other_cores'], '.2f'):>5} {_f(tl['other_cores'], '.2f'):>5}")


def _checks(checks: dict[str, Any]) -> list[str]:
    first = checks.get("writes_plain") or {}
    load = f"open loop {first['rate']:g}/s" if first.get("rate") else "closed loop"
    lines = ["", f"socket I/O of the gateway (strace, {load}; slowed down, counts only):",
             "phase   side       writes/msg  bytes/write  reads/msg"]
    for mode in ("plain", "tls"):
        phase = checks.get(f"writes_{mode}")
        if not phase or "syscalls" not in phase:
            continue
        for side in ("tenant", "operator", "other"):
            c = phase["syscalls"][side]
            lines.append(f"{mode:7} {side:9} {_f(c['writes_per_msg'], '.3f'):>11}"
                         f"  {_f(c['bytes_per_write'], '.0f'):>11}"
                         f"  {_f(c['reads_per_msg'], '.3f'):>9}")
    res = checks.get("resumption")
    if res:
        ev = res.get("operator_events", {})
        lines += ["", f"operator reconnects (simulator drops a bind every {res['drop_every']} "
                  f"submits): binds up {res.get('operator_binds_up')}, tls_resumed "
                  f"{ev.get('tls_resumed', 0):.0f}, tls_failed {ev.get('tls_failed', 0):.0f};"
                  f" receipts {res['receipts']}/{res['accepted']}"]
    return lines


def _load(name: str, entry: dict[str, Any]) -> list[str]:
    lines = [f"{name}, {entry['messages']} messages per phase:",
             "pair  order  gw µs/msg plain/TLS  ratio  sim µs/msg P/T  ratio"
             "    e2e/s P/T       steal % P/T  other cores P/T"]
    lines += [_pair_row(p) for p in entry["pairs"]]
    s = entry.get("summary", {})
    gw = s.get("ratio_gw", {})
    if gw.get("median") is not None:
        verdict = "met" if s.get("met") else "NOT met"
        lines.append(f"median TLS/plain gateway CPU per message {gw['median']:.3f} "
                     f"(pairs {gw['min']:.3f}-{gw['max']:.3f}); target <= "
                     f"{s['target_ratio']:.2f}: {verdict}")
        extra = [(p.get("extra_gw_user_us_per_msg"), p.get("extra_gw_sys_us_per_msg"))
                 for p in entry["pairs"]]
        if all(u is not None and k is not None for u, k in extra):
            lines.append("TLS - plain gateway µs/msg, user / kernel, per pair: "
                         + ", ".join(f"{u:+.1f} / {k:+.1f}" for u, k in extra))
        sim = s.get("ratio_sim", {})
        if sim.get("median") is not None:
            lines.append(f"median TLS/plain simulator CPU per message {sim['median']:.3f}")
    return lines


def tls_table(result: dict[str, Any]) -> str:
    lines: list[str] = []
    for name, entry in result["loads"].items():
        lines += [*([""] if lines else []), *_load(name, entry)]
    if result.get("checks"):
        lines += _checks(result["checks"])
    lines.append(f"wall time {result.get('wall_s', 0)} s")
    return "\n".join(lines)
