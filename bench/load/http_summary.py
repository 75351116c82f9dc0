"""The medians over pairs of ``smsc-bench --http`` and whether each target of issue 11 is met
(bulk HTTP at least as fast as SMPP; 1-recipient p99 at most 10 ms; webhooks at least 5,000
events/s with a receipt-to-webhook p99 of at most 50 ms)."""

from __future__ import annotations

import statistics
from typing import Any

__all__ = ["median", "summary"]


def median(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return round(statistics.median(got), 3) if got else None


def summary(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    def col(part: str, key: str, sub: str | None = None) -> list[Any]:
        out = []
        for p in pairs:
            v = p.get(part)
            if v is not None:
                v = v.get(key)
                if sub is not None and isinstance(v, dict):
                    v = v.get(sub)
                out.append(v)
        return out

    s: dict[str, Any] = {}
    if any("ratio_http_smpp" in p for p in pairs):
        ratios = [p.get("ratio_http_smpp") for p in pairs]
        s["bulk"] = {
            "ratio_http_smpp": ratios, "median_ratio": median(ratios),
            "median_smpp_per_s": median(col("smpp", "accepted_per_s")),
            "median_http_per_s": median(col("http", "accepted_per_s")),
            "median_cpu_ratio_accept": median([p.get("cpu_ratio_accept") for p in pairs]),
            "median_cpu_ratio_e2e": median([p.get("cpu_ratio_e2e") for p in pairs]),
            "median_smpp_us_accept": median(col("smpp", "gw_us_per_msg_accept")),
            "median_http_us_accept": median(col("http", "gw_us_per_msg_accept")),
            "median_smpp_us_e2e": median(col("smpp", "gw_us_per_msg_e2e")),
            "median_http_us_e2e": median(col("http", "gw_us_per_msg_e2e")),
        }
        s["bulk"]["target_met"] = (s["bulk"]["median_ratio"] or 0) >= 1.0
    if any("latency" in p for p in pairs):
        p99 = [v for v in col("latency", "latency_ms", "p99")]
        s["latency"] = {"p50": col("latency", "latency_ms", "p50"), "p99": p99,
                        "median_p50": median(col("latency", "latency_ms", "p50")),
                        "median_p99": median(p99)}
        s["latency"]["target_met"] = (s["latency"]["median_p99"] or 1e9) <= 10.0
    if any("webhook_burst" in p for p in pairs):
        rates = col("webhook_burst", "per_s")
        paced_p99 = [(p["webhook_paced"]["latency_ms"]["receipt"]["p99"]
                      if "webhook_paced" in p else None) for p in pairs]
        s["webhook"] = {"burst_per_s": rates, "median_burst_per_s": median(rates),
                        "paced_per_s": col("webhook_paced", "per_s"),
                        "median_paced_per_s": median(col("webhook_paced", "per_s")),
                        "paced_receipt_p99_ms": paced_p99,
                        "median_paced_receipt_p99_ms": median(paced_p99)}
        w = s["webhook"]
        w["target_met"] = ((w["median_burst_per_s"] or 0) >= 5000
                           and (w["median_paced_per_s"] or 0) >= 5000 * 0.98
                           and (w["median_paced_receipt_p99_ms"] or 1e9) <= 50.0)
    return s
