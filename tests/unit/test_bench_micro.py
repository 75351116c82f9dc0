"""Smoke test of ``python -m bench.micro --quick``: it runs in-process and its last line is a
JSON object with every expected key and positive rates. No timing assertions: speed depends
on the machine."""

from __future__ import annotations

import json

import pytest

from bench.micro.__main__ import main

PDUS = ("submit_sm", "submit_sm_resp", "deliver_sm_receipt")
RATE_KEYS = [f"{side}{op}_{pdu}_per_s" for side in ("", "smpplib_") for op in ("decode", "encode")
             for pdu in PDUS]
RATIO_KEYS = ["decode_vs_smpplib", "encode_vs_smpplib",
              *(f"{op}_{pdu}_vs_smpplib" for op in ("decode", "encode") for pdu in PDUS[1:])]


def test_quick_run_prints_json_last(capsys: pytest.CaptureFixture[str]) -> None:
    returned = main(["--quick", "--rounds", "1"])
    out = capsys.readouterr().out.rstrip("\n").splitlines()
    assert len(out) > 5 and "submit_sm" in out[3]  # a readable table first
    result = json.loads(out[-1])
    assert result == returned
    for key in RATE_KEYS + RATIO_KEYS:
        assert isinstance(result[key], int | float) and result[key] > 0, key
    assert result["quick"] is True and result["rounds"] == 1
    for key in ("split_gsm7_1000_per_s", "split_ucs2_emoji_per_s"):
        assert key in result  # None when encoding.text.split_text is not available yet
        if result[key] is not None:
            assert result[key] > 0
            assert result[key.replace("_per_s", "_parts")] > 1
