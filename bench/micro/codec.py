"""Codec micro-benchmark: our PDU codec against python-smpplib's, in the same run.

Measured operations (operations per second, higher is better):

* decode: ``decode_pdu(wire)`` against ``smpplib.smpp.parse_pdu(wire, client=...)``, which is
  what smpplib's ``Client.read_pdu`` does with a PDU it has read;
* encode: build the PDU object from its field values and serialise it, i.e. ``encode_pdu(
  SubmitSm(...))`` against ``smpplib.command.SubmitSM(...).generate()``;

for submit_sm, submit_sm_resp and a deliver_sm delivery receipt (receipt text plus the
receipted_message_id and message_state TLVs). Both codecs are checked to produce the same
octets before timing. If ``encoding.text.split_text`` is importable, the split of a
1000-character GSM-7 text and of a UCS-2 text with emoji is measured too.

Cases are timed in interleaved rounds (every case once per round) and the best round of
each is kept, which damps noise from the machine's other work.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from encoding.pdu import DeliverSm, SubmitSm, SubmitSmResp, TlvMap, decode_pdu, encode_pdu

__all__ = ["Case", "build_cases", "measure", "report", "run"]

RECEIPT_ID = "5f3e2a1b-7c4d-4e2f-9a1b-2c3d4e5f6a7b"
SUBMIT_FIELDS: dict[str, Any] = {
    "source_addr_ton": 5, "source_addr_npi": 0, "source_addr": "AcmeBank",
    "dest_addr_ton": 1, "dest_addr_npi": 1, "destination_addr": "447700900123",
    "registered_delivery": 1, "data_coding": 0,
    "short_message": b"Your verification code is 482913. It expires in 10 minutes.",
}
RESP_FIELDS: dict[str, Any] = {"message_id": RECEIPT_ID}
RECEIPT_FIELDS: dict[str, Any] = {
    "source_addr_ton": 1, "source_addr_npi": 1, "source_addr": "447700900123",
    "dest_addr_ton": 5, "dest_addr_npi": 0, "destination_addr": "AcmeBank",
    "esm_class": 0x04,
    "short_message": (f"id:{RECEIPT_ID} sub:001 dlvrd:001 submit date:2401011200 "
                      "done date:2401011201 stat:DELIVRD err:000 text:Your verificatio").encode(),
}
RECEIPT_TLVS: dict[str, Any] = {"message_state": 2, "receipted_message_id": RECEIPT_ID}
OUR_RECEIPT_TLVS: TlvMap = {"message_state": 2, "receipted_message_id": RECEIPT_ID}
GSM7_TEXT = ("The quick brown fox jumps over the lazy dog; {curly} [square] ~tilde~ "
             "and the euro sign \u20ac count twice. ") * 12
GSM7_TEXT = GSM7_TEXT[:1000]
UCS2_TEXT = ("Привет, мир! Emoji: \U0001F600\U0001F680\U0001F44D\U0001F3FD, "
             "中文字符 and a flag \U0001F1FA\U0001F1E6. ") * 8


@dataclass
class Case:
    key: str  # JSON key stem, e.g. "decode_submit_sm"
    op: Callable[[], object]
    best: float = 0.0  # operations per second, best round
    calls: int = 0  # calls per timed batch


def _smpplib_cases() -> tuple[list[Case], str]:
    """smpplib's side, or an empty list and a note when it is not installed."""
    try:
        import smpplib.client
        import smpplib.command
        import smpplib.smpp
    except ImportError as exc:  # pragma: no cover - smpplib is a test dependency
        return [], f"smpplib not importable ({exc}); comparison skipped"
    client = smpplib.client.Client("127.0.0.1", 1, allow_unknown_opt_params=True)
    submit_cls, resp_cls, deliver_cls = (smpplib.command.SubmitSM, smpplib.command.SubmitSMResp,
                                         smpplib.command.DeliverSM)
    parse = smpplib.smpp.parse_pdu

    def enc_submit() -> bytes:
        cmd = submit_cls("submit_sm", client=client, **SUBMIT_FIELDS)
        cmd.sequence = 1
        out: bytes = cmd.generate()
        return out

    def enc_resp() -> bytes:
        cmd = resp_cls("submit_sm_resp", client=client, **RESP_FIELDS)
        cmd.sequence = 1
        out: bytes = cmd.generate()
        return out

    def enc_receipt() -> bytes:
        cmd = deliver_cls("deliver_sm", client=client, **RECEIPT_FIELDS,
                          **RECEIPT_TLVS)
        cmd.sequence = 1
        out: bytes = cmd.generate()
        return out

    ours = _our_wires()
    theirs = {"submit_sm": enc_submit(), "submit_sm_resp": enc_resp(),
              "deliver_sm_receipt": enc_receipt()}
    for name, wire in theirs.items():
        if wire != ours[name]:  # the comparison is only fair on identical octets
            raise AssertionError(f"smpplib and our codec disagree on {name}")

    def dec(wire: bytes) -> Callable[[], object]:
        return lambda: parse(wire, client=client, allow_unknown_opt_params=True)

    return [
        Case("smpplib_decode_submit_sm", dec(ours["submit_sm"])),
        Case("smpplib_encode_submit_sm", enc_submit),
        Case("smpplib_decode_submit_sm_resp", dec(ours["submit_sm_resp"])),
        Case("smpplib_encode_submit_sm_resp", enc_resp),
        Case("smpplib_decode_deliver_sm_receipt", dec(ours["deliver_sm_receipt"])),
        Case("smpplib_encode_deliver_sm_receipt", enc_receipt),
    ], ""


def _our_wires() -> dict[str, bytes]:
    return {
        "submit_sm": encode_pdu(SubmitSm(1, **SUBMIT_FIELDS)),
        "submit_sm_resp": encode_pdu(SubmitSmResp(1, **RESP_FIELDS)),
        "deliver_sm_receipt": encode_pdu(DeliverSm(1, 0, dict(OUR_RECEIPT_TLVS), **RECEIPT_FIELDS)),
    }


def _our_cases() -> list[Case]:
    wires = _our_wires()
    for wire in wires.values():
        assert encode_pdu(decode_pdu(wire)) == wire

    def enc_submit() -> bytes:
        return encode_pdu(SubmitSm(1, **SUBMIT_FIELDS))

    def enc_resp() -> bytes:
        return encode_pdu(SubmitSmResp(1, **RESP_FIELDS))

    def enc_receipt() -> bytes:
        return encode_pdu(DeliverSm(1, 0, dict(OUR_RECEIPT_TLVS), **RECEIPT_FIELDS))

    def dec(wire: bytes) -> Callable[[], object]:
        return lambda: decode_pdu(wire)

    return [
        Case("decode_submit_sm", dec(wires["submit_sm"])),
        Case("encode_submit_sm", enc_submit),
        Case("decode_submit_sm_resp", dec(wires["submit_sm_resp"])),
        Case("encode_submit_sm_resp", enc_resp),
        Case("decode_deliver_sm_receipt", dec(wires["deliver_sm_receipt"])),
        Case("encode_deliver_sm_receipt", enc_receipt),
    ]


def _split_cases() -> tuple[list[Case], dict[str, int], str]:
    try:
        from encoding.text import split_text
    except ImportError as exc:
        return [], {}, f"encoding.text.split_text not importable ({exc}); split skipped"
    parts: dict[str, int] = {}
    cases: list[Case] = []
    for key, text in (("split_gsm7_1000", GSM7_TEXT), ("split_ucs2_emoji", UCS2_TEXT)):
        try:
            result: Any = split_text(text, method="udh8", reference=7)
        except Exception as exc:  # the text layer is young: report, do not fail the bench
            return [], {}, f"split_text failed ({type(exc).__name__}: {exc}); split skipped"
        segments = getattr(result, "segments", result)
        parts[key] = len(segments)
        cases.append(Case(key, _split_op(split_text, text)))
    return cases, parts, ""


def _split_op(split_text: Callable[..., object], text: str) -> Callable[[], object]:
    return lambda: split_text(text, method="udh8", reference=7)


def build_cases() -> tuple[list[Case], dict[str, Any]]:
    """All cases, plus facts about them (split part counts, notes for skipped parts)."""
    notes: list[str] = []
    mine = _our_cases()
    theirs, note = _smpplib_cases()
    if note:
        notes.append(note)
    split, parts, note = _split_cases()
    if note:
        notes.append(note)
    return mine + theirs + split, {"split_parts": parts, "notes": notes}


def _time_batch(op: Callable[[], object], calls: int) -> float:
    loop = range(calls)
    start = time.perf_counter()
    for _ in loop:
        op()
    return time.perf_counter() - start


def _calibrate(op: Callable[[], object], batch_seconds: float) -> int:
    calls = 1
    while True:
        elapsed = _time_batch(op, calls)
        if elapsed >= batch_seconds / 10 or calls >= 1 << 24:
            return max(1, int(calls * batch_seconds / max(elapsed, 1e-9)))
        calls *= 4


def measure(cases: list[Case], rounds: int, batch_seconds: float) -> None:
    """Interleaved rounds: each round times every case once; keep each case's best."""
    for case in cases:
        case.op()  # warm up
        case.calls = _calibrate(case.op, batch_seconds)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for case in cases:
                elapsed = _time_batch(case.op, case.calls)
                case.best = max(case.best, case.calls / max(elapsed, 1e-9))
                gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def report(cases: list[Case], facts: dict[str, Any], rounds: int, quick: bool) -> dict[str, Any]:
    """Print the table and return the result (the JSON object)."""
    best = {c.key: c.best for c in cases}
    result: dict[str, Any] = {f"{k}_per_s": round(v) for k, v in best.items()}
    lines = [f"codec micro-benchmark ({rounds} interleaved rounds, best of each"
             f"{', quick' if quick else ''})", "",
             f"{'operation':<28}{'ours ops/s':>14}{'smpplib ops/s':>16}{'ours/smpplib':>14}"]
    for pdu in ("submit_sm", "submit_sm_resp", "deliver_sm_receipt"):
        for op in ("decode", "encode"):
            ours = best.get(f"{op}_{pdu}")
            theirs = best.get(f"smpplib_{op}_{pdu}")
            ratio = _ratio(ours, theirs)
            if pdu != "submit_sm":
                result[f"{op}_{pdu}_vs_smpplib"] = ratio
            lines.append(f"{op + ' ' + pdu:<28}{ours or 0:>14,.0f}"
                         f"{theirs or 0:>16,.0f}{(ratio or 0):>13.1f}x")
    result["decode_vs_smpplib"] = _ratio(best.get("decode_submit_sm"),
                                         best.get("smpplib_decode_submit_sm"))
    result["encode_vs_smpplib"] = _ratio(best.get("encode_submit_sm"),
                                         best.get("smpplib_encode_submit_sm"))
    for key, count in facts["split_parts"].items():
        result[f"{key}_parts"] = count
        lines.append(f"{key.replace('_', ' '):<28}{best[key]:>14,.0f}"
                     f"{'':>16}{'':>14}  ({count} parts)")
    if not facts["split_parts"]:
        result["split_gsm7_1000_per_s"] = None
        result["split_ucs2_emoji_per_s"] = None
    lines += [f"note: {n}" for n in facts["notes"]]
    lines.append("encode = build the PDU object from its fields and serialise it; "
                 "decode = parse a whole frame")
    result["rounds"] = rounds
    result["quick"] = quick
    print("\n".join(lines))
    return result


def run(quick: bool = False, rounds: int | None = None) -> dict[str, Any]:
    """Measure, print the table and, as the last line, one JSON object; return that object."""
    rounds = rounds or (2 if quick else 5)
    batch_seconds = 0.02 if quick else 0.25
    cases, facts = build_cases()
    measure(cases, rounds, batch_seconds)
    result = report(cases, facts, rounds, quick)
    print(json.dumps(result, sort_keys=False))
    return result
