"""build_parts: the submit_sm an operator gets (DCS-0 conversion, split methods, client UDH)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config import OperatorConfig
from encoding.constants import CommandStatus
from encoding.pdu import SubmitSm, decode_pdu, encode_pdu
from encoding.pdu.tlv import encode_tlvs
from encoding.text import (
    concat_udh,
    decode_text,
    encode_text,
    gsm7_encode,
    parse_udh,
    reassemble,
    unpack_septets,
)
from routing.model import Message
from routing.segments import build_parts

GSM_CHARS = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
             "ABCXYZÄÖÑÜ§¿abcxyzäöñüà^{}\\[~]|€")  # base table and the extension characters
SPLITS = ("udh8", "udh16", "sar", "payload")


def sized_text(alphabet: st.SearchStrategy[str], most: int) -> st.SearchStrategy[str]:
    """Texts spread over 0..most characters (plain st.text stays mostly short)."""
    return st.integers(0, most).flatmap(
        lambda n: st.text(alphabet=alphabet, min_size=n, max_size=n))


def op(**kw: Any) -> OperatorConfig:
    return OperatorConfig(name=kw.pop("name", "opA"), host="127.0.0.1", port=2775,
                          system_id="gw", password="pw", **kw)


def message(body: bytes, data_coding: int = 0, **kw: Any) -> Message:
    return Message(id="1", tenant="acme", source_addr="ACME", destination_addr="447700900123",
                   body=body, data_coding=data_coding, **kw)


def parts_of(m: Message, o: OperatorConfig, tenant_dcs0: str = "gsm7",
             reference: int = 7) -> list[SubmitSm]:
    built = build_parts(m, o, tenant_dcs0=tenant_dcs0, reference=reference)
    assert not isinstance(built, int), f"refused with {built:#x}"
    # What goes on the wire must survive the codec.
    return [_wire(p) for p in built]


def _wire(p: SubmitSm) -> SubmitSm:
    out = decode_pdu(encode_pdu(p))
    assert isinstance(out, SubmitSm)
    return out


def fits_air(p: SubmitSm, kind: str) -> bool:
    """One part fits the 140-octet TP-UD with its header (TS 23.040 9.2.3.24)."""
    sm = p.short_message
    udh_len = sm[0] + 1 if p.esm_class & 0x40 else 0
    if kind == "gsm7":
        return (udh_len * 8 + 6) // 7 + len(sm) - udh_len <= 160
    return len(sm) <= 140


def text_of(parts: list[SubmitSm], o: OperatorConfig) -> str:
    """What the handset shows after the operator's SMSC does its part."""
    dcs = {p.data_coding for p in parts}
    assert len(dcs) == 1
    dc = dcs.pop()
    if len(parts) == 1 and "message_payload" in parts[0].tlvs:
        assert parts[0].short_message == b""
        payload = parts[0].tlvs["message_payload"]
        assert isinstance(payload, bytes)
        return decode_text(payload, dc, dcs0=o.dcs0)
    if all(p.esm_class & 0x40 for p in parts):
        return reassemble([p.short_message for p in parts], dc, dcs0=o.dcs0, udhi=True)
    if len(parts) > 1:
        seqs = [p.tlvs["sar_segment_seqnum"] for p in parts]
        assert seqs == list(range(1, len(parts) + 1))
        assert {p.tlvs["sar_total_segments"] for p in parts} == {len(parts)}
        assert len({p.tlvs["sar_msg_ref_num"] for p in parts}) == 1
    return decode_text(b"".join(p.short_message for p in parts), dc, dcs0=o.dcs0)


# --- single messages --------------------------------------------------------------------


def test_short_text_is_one_part_with_fields_copied() -> None:
    m = message(gsm7_encode("Hello"), source_addr_ton=5, dest_addr_ton=1, dest_addr_npi=1,
                service_type="CMT", protocol_id=0, priority_flag=1,
                validity_period="000001000000000R")
    [p] = parts_of(m, op())
    assert p.short_message == gsm7_encode("Hello")
    assert p.esm_class == 0 and p.data_coding == 0
    assert (p.source_addr, p.source_addr_ton, p.destination_addr, p.dest_addr_ton,
            p.dest_addr_npi) == ("ACME", 5, "447700900123", 1, 1)
    assert (p.service_type, p.priority_flag, p.validity_period) == (
        "CMT", 1, "000001000000000R")
    assert not p.tlvs


@pytest.mark.parametrize(("asked", "sent"), [(0, 1), (1, 1), (2, 1), (0x12, 0x11),
                                             (0x10, 0x11)])
def test_receipt_always_requested_other_bits_kept(asked: int, sent: int) -> None:
    [p] = parts_of(message(b"hi", registered_delivery=asked), op())
    assert p.registered_delivery == sent


def test_receipt_requested_on_every_part() -> None:
    parts = parts_of(message(gsm7_encode("x" * 400), registered_delivery=0), op())
    assert len(parts) == 3
    assert all(p.registered_delivery & 3 == 1 for p in parts)


def test_exactly_160_septets_is_one_part_161_is_two() -> None:
    assert len(parts_of(message(gsm7_encode("a" * 160)), op())) == 1
    parts = parts_of(message(gsm7_encode("a" * 161)), op())
    assert [len(p.short_message) for p in parts] == [6 + 153, 6 + 8]


# --- split methods ----------------------------------------------------------------------


def test_udh8_parts() -> None:
    parts = parts_of(message(gsm7_encode("a" * 400)), op(split="udh8"), reference=300)
    assert [p.short_message[:6] for p in parts] == [
        bytes([5, 0, 3, 300 & 0xFF, 3, i]) for i in (1, 2, 3)]
    assert all(p.esm_class == 0x40 for p in parts)


def test_udh16_parts() -> None:
    parts = parts_of(message(gsm7_encode("a" * 400)), op(split="udh16"), reference=300)
    assert [p.short_message[:7] for p in parts] == [
        bytes([6, 8, 4, 1, 44, 3, i]) for i in (1, 2, 3)]


def test_sar_parts_have_no_udh() -> None:
    parts = parts_of(message(gsm7_encode("a" * 400)), op(split="sar"), reference=300)
    assert [(p.tlvs["sar_msg_ref_num"], p.tlvs["sar_total_segments"],
             p.tlvs["sar_segment_seqnum"]) for p in parts] == [(300, 3, 1), (300, 3, 2),
                                                                (300, 3, 3)]
    assert all(p.esm_class & 0x40 == 0 for p in parts)
    assert b"".join(p.short_message for p in parts) == gsm7_encode("a" * 400)


def test_payload_is_one_submit_with_message_payload() -> None:
    body = encode_text("Ж" * 300, 8)
    [p] = parts_of(message(body, 8), op(split="payload"))
    assert p.short_message == b"" and p.tlvs["message_payload"] == body
    assert p.data_coding == 8


def test_too_many_parts_is_refused_with_invalid_length() -> None:
    m = message(gsm7_encode("a" * 400))
    assert build_parts(m, op(max_parts=2), tenant_dcs0="gsm7", reference=1) == \
        CommandStatus.ESME_RINVMSGLEN


def test_binary_data_is_split_but_never_converted() -> None:
    data = bytes(range(256)) * 2
    parts = parts_of(message(data, 0x04), op(dcs0="latin1"), tenant_dcs0="gsm7")
    assert all(p.data_coding == 0x04 for p in parts)
    assert all(len(p.short_message) <= 140 for p in parts)
    assert b"".join(parse_udh(p.short_message)[1] for p in parts) == data


def test_tenant_tlvs_are_forwarded_on_every_part() -> None:
    tlvs = encode_tlvs({"user_message_reference": 77})
    parts = parts_of(message(gsm7_encode("a" * 400), tlvs=tlvs), op())
    assert [p.tlvs.get("user_message_reference") for p in parts] == [77, 77, 77]


def test_tenant_sar_part_keeps_its_sar_tlvs() -> None:
    # A tenant that split a long message with SAR TLVs (reference 9.4, "accept all three"):
    # each part is short enough, so its SAR TLVs are the only thing that joins it.
    tlvs = encode_tlvs({"sar_msg_ref_num": 513, "sar_total_segments": 2,
                        "sar_segment_seqnum": 2})
    [p] = parts_of(message(gsm7_encode("second half"), tlvs=tlvs), op())
    assert (p.tlvs.get("sar_msg_ref_num"), p.tlvs.get("sar_total_segments"),
            p.tlvs.get("sar_segment_seqnum")) == (513, 2, 2)


def test_tenant_sar_tlvs_replaced_when_gateway_splits() -> None:
    tlvs = encode_tlvs({"sar_msg_ref_num": 513, "sar_total_segments": 2,
                        "sar_segment_seqnum": 2})
    parts = parts_of(message(gsm7_encode("a" * 400), tlvs=tlvs), op(split="udh8"))
    assert all("sar_msg_ref_num" not in p.tlvs for p in parts)


# --- DCS 0 conversion (reference 7.1) ---------------------------------------------------


@pytest.mark.parametrize(("text", "tenant", "operator", "dc", "body"), [
    ("Grüße", "latin1", "gsm7", 0, gsm7_encode("Grüße")),
    ("ÿ", "latin1", "gsm7", 8, "ÿ".encode("utf-16-be")),
    ("€5", "gsm7", "latin1", 8, "€5".encode("utf-16-be")),
    ("£5 é", "gsm7", "latin1", 0, "£5 é".encode("latin-1")),
    ("Hi {x}", "gsm7", "ascii", 0, b"Hi {x}"),
    ("é", "gsm7", "ascii", 8, "é".encode("utf-16-be")),
])
def test_dcs0_is_re_encoded_for_the_operator(text: str, tenant: str, operator: str, dc: int,
                                             body: bytes) -> None:
    m = message(encode_text(text, 0, dcs0=tenant))
    [p] = parts_of(m, op(dcs0=operator), tenant_dcs0=tenant)
    assert (p.data_coding, p.short_message) == (dc, body)


def test_same_dcs0_and_explicit_codings_pass_untouched() -> None:
    m = message("café".encode("latin-1"), 0x03)
    [p] = parts_of(m, op(dcs0="gsm7"), tenant_dcs0="latin1")
    assert (p.data_coding, p.short_message) == (3, "café".encode("latin-1"))
    m = message(gsm7_encode("€"), 0)
    [p] = parts_of(m, op(dcs0="gsm7"), tenant_dcs0="gsm7")
    assert p.short_message == gsm7_encode("€")


def test_conversion_to_ucs2_can_make_a_short_message_long() -> None:
    text = "ÿ" * 100  # one Latin-1 message, two UCS-2 parts
    parts = parts_of(message(text.encode("latin-1")), op(dcs0="gsm7"), tenant_dcs0="latin1")
    assert len(parts) == 2
    assert text_of(parts, op()) == text


def test_packed_gsm7() -> None:
    o = op(packed=True)
    [p] = parts_of(message(gsm7_encode("hello")), o)
    assert len(p.short_message) == 5  # 5 septets = 35 bits
    assert unpack_septets(p.short_message, 5) == gsm7_encode("hello")
    parts = parts_of(message(gsm7_encode("b" * 200)), o)
    first = parts[0].short_message
    assert first[:6] == bytes([5, 0, 3, 7, 2, 1])
    # One fill bit after the 6-octet UDH puts the first character on a septet boundary.
    assert unpack_septets(first[6:], 153, fill_bits=1) == gsm7_encode("b" * 153)
    assert len(first) == 140


# --- client UDH (tenant split it itself) ------------------------------------------------


def test_client_udh_part_passes_through_untouched() -> None:
    body = concat_udh(9, 2, 1) + gsm7_encode("a" * 153)
    m = message(body, esm_class=0x40, tlvs=encode_tlvs({"user_message_reference": 3}))
    [p] = parts_of(m, op(split="sar"))
    assert p.short_message == body and p.esm_class == 0x40
    assert p.tlvs.get("user_message_reference") == 3


def test_client_udh_part_in_ucs2_at_the_limit() -> None:
    body = concat_udh(9, 2, 1) + "Ж".encode("utf-16-be") * 67
    [p] = parts_of(message(body, 8, esm_class=0x40), op())
    assert p.short_message == body


@pytest.mark.parametrize("kind", ["gsm7", "ucs2"])
def test_too_long_client_part_is_refused_when_configured(kind: str) -> None:
    user = gsm7_encode("a" * 160) if kind == "gsm7" else "Ж".encode("utf-16-be") * 68
    m = message(concat_udh(9, 2, 1) + user, 0 if kind == "gsm7" else 8, esm_class=0x40)
    assert build_parts(m, op(long_part="refuse"), tenant_dcs0="gsm7", reference=1) == \
        CommandStatus.ESME_RINVMSGLEN


def test_too_long_client_part_is_re_split_never_truncated() -> None:
    text = "a" * 250
    m = message(concat_udh(9, 2, 1) + gsm7_encode(text), esm_class=0x40)
    parts = parts_of(m, op(long_part="resplit"))
    assert len(parts) == 2
    assert all(fits_air(p, "gsm7") for p in parts)
    assert text_of(parts, op()) == text


def test_malformed_client_udh_is_refused() -> None:
    m = message(b"\x09\x00\x03", esm_class=0x40)
    assert build_parts(m, op(), tenant_dcs0="gsm7", reference=1) == \
        CommandStatus.ESME_RINVESMCLASS


# --- properties: nothing lost, nothing too long ----------------------------------------


@settings(deadline=None, max_examples=60)
@given(sized_text(st.sampled_from(GSM_CHARS), 1000), st.sampled_from(SPLITS))
def test_gsm_text_survives_every_split_method(text: str, split: str) -> None:
    o = op(split=split)
    parts = parts_of(message(gsm7_encode(text)), o, reference=len(text))
    assert text_of(parts, o) == text
    if split != "payload":
        assert all(fits_air(p, "gsm7") for p in parts)
    # Never a lone ESC at the end of a part.
    for p in parts:
        body = parse_udh(p.short_message)[1] if p.esm_class & 0x40 else p.short_message
        trailing = len(body) - len(body.rstrip(b"\x1b"))
        assert trailing % 2 == 0


@settings(deadline=None, max_examples=60)
@given(sized_text(st.characters(blacklist_categories=["Cs"]), 500), st.sampled_from(SPLITS))
def test_any_unicode_text_survives_every_split_method(text: str, split: str) -> None:
    o = op(split=split)
    parts = parts_of(message(text.encode("utf-16-be"), 8), o)
    assert text_of(parts, o) == text
    if split != "payload":
        assert all(fits_air(p, "ucs2") for p in parts)


@settings(deadline=None, max_examples=60)
@given(sized_text(st.characters(max_codepoint=255), 400),
       st.sampled_from(["gsm7", "latin1", "ascii"]), st.sampled_from(SPLITS))
def test_latin1_tenant_text_survives_any_operator_dcs0(text: str, operator_dcs0: str,
                                                        split: str) -> None:
    o = op(dcs0=operator_dcs0, split=split)
    parts = parts_of(message(text.encode("latin-1")), o, tenant_dcs0="latin1")
    assert text_of(parts, o) == text
