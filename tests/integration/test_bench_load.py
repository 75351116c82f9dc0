"""``smsc-bench`` smoke runs: a small load through a real gateway and simulator (subprocesses).

Only the shape and the sanity of the JSON result are checked (every message answered and
receipted, percentiles ordered, CPU and memory figures present); never timings, which
depend on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(180)


def _bench(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, "-m", "bench.load", "-q", "--out", str(out), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=150,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(out.read_text()), proc.stdout


def _check_run(run: dict[str, Any], messages: int) -> None:
    assert run["sent"] == run["answered"] == run["accepted"] == messages
    assert run["receipts"] == messages
    assert run["rejected"] == run["missing_receipts"] == run["unknown_receipts"] == 0
    assert run["errors"] == {} and run["failures"] == {} and run["bind_errors"] == {}
    for key in ("submit_per_s", "receipt_per_s", "end_to_end_per_s"):
        assert run["throughput"][key] > 0
    for kind in ("submit_resp", "receipt"):
        lat = run["latency_ms"][kind]
        assert lat["count"] == messages
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
    assert run["timeline"] and sum(row["submit_per_s"] * row["step_s"]
                                   for row in run["timeline"]) == pytest.approx(messages)
    sim = run["simulator"]
    assert sim["cpu_s"] >= 0 and sim["peak_rss_mb"] > 5


def test_baseline_and_gateway_closed_loop(tmp_path: Path) -> None:
    plot = tmp_path / "result.png"
    result, stdout = _bench(tmp_path, "--baseline", "-m", "300", "-n", "2", "-w", "20",
                            "--plot", str(plot))
    assert set(result) >= {"machine", "command", "runs", "ratios", "wall_s"}
    assert result["machine"]["nproc"] >= 1 and result["machine"]["python"]
    assert list(result["runs"]) == ["baseline", "gateway"]
    for run in result["runs"].values():
        _check_run(run, 300)
    gateway = result["runs"]["gateway"]
    assert "gateway" not in result["runs"]["baseline"]
    assert gateway["gateway"]["cpu_s"] >= 0 and gateway["gateway"]["peak_rss_mb"] > 5
    assert gateway["gateway"]["cpu_s_per_1000"] is not None
    assert result["ratios"]["gateway.end_to_end_per_s/baseline"] > 0
    assert "baseline" in stdout and "ratio gateway.end_to_end_per_s/baseline" in stdout
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "plot skipped" in stdout
    else:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_open_loop_two_procs_tx_rx_and_idle_binds(tmp_path: Path) -> None:
    result, _ = _bench(tmp_path, "-m", "400", "--rate", "400", "-n", "2", "--tx-rx",
                       "--procs", "2", "--idle-binds", "20", "--mix", "gsm7=1,ucs2=1,long=1")
    run = result["runs"]["gateway@400/s"]
    _check_run(run, 400)
    assert run["loadgen"]["procs"] == 2 and run["binds"] == 4 and run["rate"] == 400
    idle = result["idle_binds"]
    assert idle["bound"] == 20 and idle["gateway_rss_after_mb"] > 0


def test_bad_arguments_are_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "bench.load", "--target", "127.0.0.1:1"],
                          cwd=REPO, capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2
    assert proc.stderr.strip() == "smsc-bench: --target needs --system-id and --password"


def test_tls_run_completes_with_receipts(tmp_path: Path) -> None:
    # The simulator speaks only TLS and the load generator verifies the gateway against the
    # run's CA: a receipt can only come back if both legs really are TLS.
    result, _ = _bench(tmp_path, "--tls", "-m", "200", "-n", "2", "-w", "20")
    run = result["runs"]["gateway"]
    _check_run(run, 200)
    assert sum(run["tls_versions"].values()) == 2  # both tenant binds, over TLS 1.2 or 1.3
    assert set(run["tls_versions"]) <= {"TLSv1.2", "TLSv1.3"}
    assert run["simulator_tls"] is True


def test_tls_compare_reports_a_ratio_per_pair(tmp_path: Path) -> None:
    # 1,000 messages: enough CPU time for 10 ms clock ticks to count in every phase.
    result, stdout = _bench(tmp_path, "--tls-compare", "--pairs", "1", "-m", "1000", "-n", "2",
                            "-w", "20")
    assert result["mode"] == "tls-compare" and list(result["loads"]) == ["closed"]
    closed = result["loads"]["closed"]
    assert len(closed["pairs"]) == 1
    pair = closed["pairs"][0]
    for mode in ("plain", "tls"):
        phase = pair[mode]
        assert phase["tls"] is (mode == "tls") and phase["simulator_tls"] is (mode == "tls")
        assert bool(phase["tls_versions"]) is (mode == "tls")
        assert phase["accepted"] == phase["receipts"] == 1000 and phase["missing_receipts"] == 0
        assert phase["gw_us_per_msg"] > 0 and phase["sim_us_per_msg"] > 0
    assert pair["ratio_gw"] > 0
    assert closed["summary"]["ratio_gw"]["median"] == pair["ratio_gw"]
    assert "median TLS/plain gateway CPU per message" in stdout


def test_tls_with_target_is_refused_in_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "bench.load", "--tls", "--target",
                           "127.0.0.1:1", "--system-id", "a", "--password", "b"],
                          cwd=REPO, capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2
    assert proc.stderr.startswith("smsc-bench: --tls and --tls-compare start their own stacks")


def test_standard_has_the_default_window_phases_and_syscall_counts(tmp_path: Path) -> None:
    # A shrunk --standard (issue 15): the bench-window phases, then the production-like ones
    # (operator window 10 with 2 binds, deliver_window 10), each after its baseline; and one
    # traced twin per gateway phase when a counting tool is there.
    tool = next((t for t in ("perf", "strace") if shutil.which(t)), "")
    args = ["--standard", "-m", "300", "--open-messages", "200", "--open-rate", "400",
            "--idle-binds", "0", "-n", "2", "-w", "20"]
    if tool:
        args += ["--syscalls", "--syscall-tools", tool, "--syscall-messages", "200"]
    result, stdout = _bench(tmp_path, *args)
    gateways = ["gateway", "gateway@400/s", "gateway-dw", "gateway-dw@400/s"]
    assert list(result["runs"]) == ["baseline", "gateway", "baseline@400/s", "gateway@400/s",
                                    "baseline-dw", "gateway-dw", "baseline-dw@400/s",
                                    "gateway-dw@400/s"]
    for run in result["runs"].values():
        _check_run(run, 300 if run["rate"] == 0 else 200)
    for label in gateways:
        run = result["runs"][label]
        wide = not label.startswith("gateway-dw")
        assert run["windows"] == {"op_binds": 2, "op_window": 100 if wide else 10,
                                  "deliver_window": 100 if wide else 10,
                                  "tenant_window": 65_535}
        assert run["baseline"] == label.replace("gateway", "baseline")
        ratio = result["cpu_ratios"][label]
        assert ratio["gw_us_per_msg"] > 0 and ratio["baseline"] == run["baseline"]
        assert ("gw_open_per_closed" in ratio) is (run["rate"] > 0)
    assert "gateway CPU µs/msg ÷ simulator µs/msg" in stdout
    assert result["host"]["steal_pct"] is not None
    if tool:
        assert list(result["syscalls"]) == [f"{tool} {g}" for g in gateways]
        for traced in result["syscalls"].values():
            counts = traced["syscalls"]
            assert counts["tool"] == tool and counts["messages"] == traced["accepted"] == 200
            assert counts["per_msg"]["total"] > 0 and counts["counts"]["write/sendmsg"] > 0
        assert "traced phase" in stdout
