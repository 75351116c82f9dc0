"""``smsc-bench --http`` smoke run: every part in a tiny configuration (subprocesses).

Only the shape and the sanity of the JSON result are checked (every message accepted and
receipted, every webhook received once and correctly signed, percentiles ordered, CPU
figures present); never timings, which depend on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(240)


def _lat_ok(lat: dict[str, Any], count: int | None) -> None:
    assert lat["count"] == count if count is not None else lat["count"] > 0
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]


def test_http_mode_tiny(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    out = tmp_path / "http.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.load", "--http", "-q", "--out", str(out),
         "--pairs", "1", "--http-messages", "600", "--http-recipients", "100",
         "--http-clients", "2", "-n", "2", "-w", "20", "--latency-rate", "40",
         "--latency-s", "1", "--warmup-s", "0.25", "--webhook-messages", "300",
         "--webhook-rate", "100", "--webhook-recipients", "5", "--webhook-s", "1",
         "--webhook-timeout", "60"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=220, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    result = json.loads(out.read_text())
    assert result["mode"] == "http" and result["machine"]["nproc"] >= 1
    (pair,) = result["pairs"]

    smpp, http = pair["smpp"], pair["http"]
    assert pair["order"] == ["smpp", "http"]
    for run in (smpp, http):
        assert run["accepted"] == run["receipts"] == 600 and run["rejected"] == 0
        assert run["accepted_per_s"] > 0 and run["e2e_s"] >= run["accept_s"] > 0
        assert run["gw_us_per_msg_accept"] > 0 and run["gw_us_per_msg_e2e"] > 0
        assert run["steal_pct"] >= 0 and run["other_cores"] is not None
    assert http["requests"] == http["ok"] == 6 and http["errors"] == {}
    _lat_ok(http["request_latency_ms"], 6)
    assert pair["ratio_http_smpp"] > 0 and pair["cpu_ratio_e2e"] > 0

    lat = pair["latency"]
    assert lat["requests"] == lat["ok"] == lat["accepted"] == 40 and lat["errors"] == {}
    assert lat["receipts"] == 50  # with the warm-up's
    _lat_ok(lat["latency_ms"], 40)
    assert lat["gw_us_per_req"] > 0

    for name, messages in (("webhook_burst", 300), ("webhook_paced", 125)):
        hook = pair[name]
        assert hook["accepted"] == messages
        assert hook["events"] == hook["events_expected"] == 2 * messages
        assert hook["by_type"] == {"message.sent": messages, "message.delivered": messages}
        assert hook["duplicates"] == hook["bad_signatures"] == hook["unreadable"] == 0
        assert hook["per_s"] > 0 and hook["gw_us_per_event"] > 0
        assert hook["during_load"]["events"] + hook["drain"]["events"] <= hook["events"]
        _lat_ok(hook["request_latency_ms"], None)
        _lat_ok(hook["latency_ms"]["receipt"], messages if name == "webhook_burst" else None)
    assert pair["webhook_paced"]["counted"] >= 200  # the warm-up's events are left out

    summary = result["summary"]
    assert set(summary) == {"bulk", "latency", "webhook"}
    for part in summary.values():
        assert isinstance(part["target_met"], bool)
    for text in ("HTTP/SMPP", "target (a)", "target (b)", "target (c)", "events/s"):
        assert text in proc.stdout
