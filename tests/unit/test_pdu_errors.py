"""Malformed input and unencodable values: the codec fails only with statused SMPP errors.

House habit 5 (docs/architecture.md) and reference sections 1.1, 2, 3 and 4: ``decode_pdu``
raises nothing but ``PduError`` (a bad body: answer with the matching response and the same
sequence_number, keep the session) or its subclass ``FramingError`` (command_length cannot be
trusted: generic_nack ESME_RINVCMDLEN and close). Each error carries the command_status the
answer must carry. Decoding is lenient where peers are known to be (long passwords, trailing
NULs, error responses with or without a body); encoding is strict and raises ``SmppError``
with the field's status.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from encoding.constants import RESPONSE_BIT
from encoding.constants import CommandStatus as S
from encoding.errors import FramingError, PduError, SmppError
from encoding.pdu import (
    ALL_TYPES,
    REGISTRY,
    BindTransmitter,
    DeliverSm,
    DlDest,
    EnquireLink,
    FrameBuffer,
    Pdu,
    SmeDest,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
    UnsuccessSme,
    decode_pdu,
    encode_pdu,
)
from encoding.pdu.fields import CSTR, TIME, Field
from encoding.pdu.tlv import TlvEncodeError

# Derandomized: the same examples on every run (the brief asks for deterministic tests).
FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
PER_ID = settings(max_examples=80, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow])

RESPONSES = [c for c in ALL_TYPES if c.command_id & RESPONSE_BIT]
STRING_FIELDS = [(cls, f) for cls in ALL_TYPES for f in cls.FIELDS if f.kind in (CSTR, TIME)]


def frame(command_id: int, body: bytes = b"", status: int = 0, seq: int = 1) -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, status, seq) + body


def raises_pdu_error(data: bytes) -> PduError:
    with pytest.raises(PduError) as info:
        decode_pdu(data)
    return info.value


def with_tlv(pdu: Pdu, raw: bytes) -> bytes:
    """``pdu`` encoded, with ``raw`` appended and command_length fixed."""
    wire = encode_pdu(pdu) + raw
    return len(wire).to_bytes(4, "big") + wire[4:]


# --- nothing but PduError, whatever the input -------------------------------------------------


def _decode_or_pdu_error(data: bytes) -> Pdu | PduError:
    try:
        return decode_pdu(data)
    except PduError as exc:  # FramingError included
        assert isinstance(exc.command_status, int) and exc.command_status != 0
        return exc


@FUZZ
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_pdu_errors(data: bytes) -> None:
    _decode_or_pdu_error(data)


@FUZZ
@given(body=st.binary(max_size=300), command_id=st.integers(0, 0xFFFFFFFF),
       status=st.integers(0, 0xFFFFFFFF), seq=st.integers(0, 0xFFFFFFFF))
def test_any_header_with_right_length_is_never_a_framing_error(
        body: bytes, command_id: int, status: int, seq: int) -> None:
    out = _decode_or_pdu_error(frame(command_id, body, status, seq))
    if isinstance(out, PduError):
        assert not isinstance(out, FramingError) and not out.fatal
        assert (out.command_id, out.sequence_number) == (command_id, seq)


@pytest.mark.parametrize("command_id", sorted(REGISTRY), ids=lambda c: f"0x{c:08X}")
@PER_ID
@given(body=st.binary(max_size=200), status=st.sampled_from([0, 0, 0, 8, 0x58]),
       seq=st.integers(1, 0x7FFFFFFF))
def test_valid_header_random_body(command_id: int, body: bytes, status: int, seq: int) -> None:
    """Every command_id with a random body: a PDU of the right type, or a statused PduError
    that names the header. A lenient decode re-encodes canonically or fails with SmppError."""
    cls = REGISTRY[command_id]
    out = _decode_or_pdu_error(frame(command_id, body, status, seq))
    if isinstance(out, PduError):
        assert not out.fatal
        assert (out.command_id, out.sequence_number) == (command_id, seq)
        assert not (status and command_id & RESPONSE_BIT), "error response bodies are ignored"
        return
    assert type(out) is cls
    assert (out.sequence_number, out.command_status) == (seq, status)
    try:
        wire = encode_pdu(out)
    except SmppError:
        return  # lenient in (long password, 255-octet short_message, ...), strict out
    again = decode_pdu(wire)
    if status and command_id & RESPONSE_BIT:
        assert again == cls(sequence_number=seq, command_status=status)
    else:
        assert again == out
        assert encode_pdu(again) == wire


@FUZZ
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_framebuffer_raises_only_framing_errors(data: bytes, cuts: list[int]) -> None:
    fb = FrameBuffer(max_length=1000)
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        try:
            frames = fb.feed(data[start:cut])
        except FramingError as exc:
            assert exc.fatal and exc.command_status == S.ESME_RINVCMDLEN
            return
        for f in frames:
            assert 16 <= len(f) <= 1000 and int.from_bytes(f[:4], "big") == len(f)
            _decode_or_pdu_error(f)
        start = max(start, cut)


# --- header and framing -----------------------------------------------------------------------


@pytest.mark.parametrize("command_id", [
    0x0000000A,  # gap between outbind and bind ids
    0x00000111, 0x80000111,  # v5 broadcast_sm and its response
    0x00000104,  # reserved for SMPP extension
    0x00010200,  # reserved for SMSC vendors
    0x8000000B,  # outbind has no response
    0x80000102,  # alert_notification has no response
    0xFFFFFFFF,
])
def test_unknown_command_id(command_id: int) -> None:
    err = raises_pdu_error(frame(command_id, b"\x00\x01", seq=0x1234))
    assert err.command_status == S.ESME_RINVCMDID
    assert not err.fatal and not isinstance(err, FramingError)
    assert (err.command_id, err.sequence_number) == (command_id, 0x1234)


@pytest.mark.parametrize("length", [0, 4, 15])
def test_framebuffer_command_length_below_16(length: int) -> None:
    data = struct.pack(">IIII", length, 4, 0, 77)
    with pytest.raises(FramingError) as info:
        FrameBuffer().feed(data)
    assert info.value.command_status == S.ESME_RINVCMDLEN and info.value.fatal
    assert info.value.sequence_number == 77 and info.value.command_id == 4


def test_framebuffer_command_length_above_max() -> None:
    fb = FrameBuffer(max_length=100)
    assert fb.feed(b"\x00\x00\x00\x64") == []  # 100 is allowed: wait for the rest
    with pytest.raises(FramingError) as info:
        FrameBuffer(max_length=100).feed(struct.pack(">I", 101))
    assert info.value.command_status == S.ESME_RINVCMDLEN and info.value.fatal
    assert info.value.sequence_number == 0  # header not yet complete


def test_framebuffer_error_after_good_frames_keeps_raising() -> None:
    good = encode_pdu(EnquireLink(5))
    fb = FrameBuffer()
    with pytest.raises(FramingError):
        fb.feed(good + struct.pack(">IIII", 8, 0x15, 0, 6))
    with pytest.raises(FramingError):  # the broken frame stays at the head of the buffer
        fb.feed(good)


@pytest.mark.parametrize("data", [
    b"",
    b"\x00\x00\x00\x10",
    bytes(15),
    struct.pack(">IIII", 8, 0x15, 0, 1),  # command_length under 16
    struct.pack(">IIII", 17, 0x15, 0, 1),  # says 17, carries 16
    struct.pack(">IIII", 16, 0x15, 0, 1) + b"\x00",  # says 16, carries 17
    struct.pack(">IIII", 0xFFFFFFFF, 0x15, 0, 1),
])
def test_decode_command_length_mismatch_is_framing_error(data: bytes) -> None:
    err = raises_pdu_error(data)
    assert isinstance(err, FramingError) and err.fatal
    assert err.command_status == S.ESME_RINVCMDLEN
    if len(data) >= 16:
        assert err.sequence_number == 1 and err.command_id == 0x15


# --- C-Octet Strings without their NUL --------------------------------------------------------


def overlong_string(cls: type[Pdu], name: str, size: int, decode_size: int) -> bytes:
    """``cls`` encoded with ``name`` holding ``decode_size`` non-NUL octets (no NUL in reach)."""
    fields: dict[str, Any] = {name: "Q" * (size - 1)}
    legal = encode_pdu(cls(sequence_number=9, **fields))
    assert legal.count(b"Q" * (size - 1)) == 1
    wire = legal.replace(b"Q" * (size - 1) + b"\x00", b"Q" * decode_size + b"\x00")
    return len(wire).to_bytes(4, "big") + wire[4:]


@pytest.mark.parametrize(("cls", "field"), STRING_FIELDS,
                         ids=[f"{c.__name__}.{f.name}" for c, f in STRING_FIELDS])
def test_cstring_without_nul_has_the_field_status(cls: type[Pdu], field: Field) -> None:
    err = raises_pdu_error(overlong_string(cls, field.name, field.size, field.decode_size))
    assert err.command_status == field.status
    assert (err.command_id, err.sequence_number) == (cls.command_id, 9) and not err.fatal


@pytest.mark.parametrize(("cls", "name", "status"), [
    (SubmitSm, "source_addr", S.ESME_RINVSRCADR),
    (SubmitSm, "destination_addr", S.ESME_RINVDSTADR),
    (DeliverSm, "destination_addr", S.ESME_RINVDSTADR),
    (BindTransmitter, "system_id", S.ESME_RINVSYSID),
    (SubmitSm, "schedule_delivery_time", S.ESME_RINVSCHED),
    (SubmitSm, "validity_period", S.ESME_RINVEXPIRY),
    (SubmitSm, "service_type", S.ESME_RINVSERTYP),
    (BindTransmitter, "password", S.ESME_RINVPASWD),
])
def test_named_field_statuses(cls: type[Pdu], name: str, status: int) -> None:
    """The statuses the brief names, spelled out (reference sections 2.1 and 2.2)."""
    f = next(f for f in cls.FIELDS if f.name == name)
    assert f.status == status
    assert raises_pdu_error(overlong_string(cls, name, f.size, f.decode_size)).command_status \
        == status


def test_submit_multi_list_entries_without_nul() -> None:
    base = encode_pdu(SubmitMulti(9, dest_address=[SmeDest("Q" * 20), DlDest("R" * 20)]))
    sme = base.replace(b"Q" * 20 + b"\x00", b"Q" * 21 + b"\x00")
    dl = base.replace(b"R" * 20 + b"\x00", b"R" * 21 + b"\x00")
    for wire, status in ((sme, S.ESME_RINVDSTADR), (dl, S.ESME_RINVDLNAME)):
        fixed = len(wire).to_bytes(4, "big") + wire[4:]
        assert raises_pdu_error(fixed).command_status == status
    flag = base.replace(b"\x02" + b"R" * 20, b"\x03" + b"R" * 20)
    assert raises_pdu_error(flag).command_status == S.ESME_RINVDESTFLAG
    resp = encode_pdu(SubmitMultiResp(9, message_id="m", unsuccess_sme=[
        UnsuccessSme("Q" * 20, S.ESME_RINVDSTADR)]))
    resp = resp.replace(b"Q" * 20 + b"\x00", b"Q" * 21 + b"\x00")
    resp = len(resp).to_bytes(4, "big") + resp[4:]
    assert raises_pdu_error(resp).command_status == S.ESME_RINVDSTADR


# --- short_message and TLVs ---------------------------------------------------------------------


@pytest.mark.parametrize("extra", [1, 2, 200])
def test_sm_length_past_end(extra: int) -> None:
    wire = bytearray(encode_pdu(SubmitSm(9, destination_addr="1", short_message=b"abc")))
    assert wire[-4] == 3
    wire[-4] = min(255, 3 + extra)
    err = raises_pdu_error(bytes(wire))
    assert err.command_status == S.ESME_RINVMSGLEN and err.sequence_number == 9


SUBMIT = SubmitSm(9, destination_addr="1", short_message=b"abc")


@pytest.mark.parametrize("raw", [
    b"\x02",  # one octet of a TLV header
    b"\x02\x0c",
    b"\x02\x0c\x00",  # three octets: not all zero, so not padding
    b"\x00\x00\x01",
    bytes.fromhex("020c" "0002" "00"),  # value runs past command_length
    bytes.fromhex("1400" "0010" "0102"),  # unknown tag, value past the end
    bytes.fromhex("0424" "0005"),  # message_payload with no value at all
    bytes.fromhex("0427" "0001" "02") + b"\x04",  # a good TLV, then a broken header
])
def test_truncated_tlv_is_stream_error(raw: bytes) -> None:
    err = raises_pdu_error(with_tlv(SUBMIT, raw))
    assert err.command_status == S.ESME_RINVOPTPARSTREAM
    assert (err.command_id, err.sequence_number) == (SubmitSm.command_id, 9)


@pytest.mark.parametrize("raw", [
    bytes.fromhex("020c" "0001" "07"),  # sar_msg_ref_num is Integer 2
    bytes.fromhex("0427" "0002" "0002"),  # message_state is Integer 1
    bytes.fromhex("0017" "0002" "0001"),  # qos_time_to_live is Integer 4
    bytes.fromhex("001e" "0000"),  # receipted_message_id is 1..65
    bytes.fromhex("001e" "0042") + b"a" * 65 + b"\x00",  # 66 octets
    bytes.fromhex("0423" "0002" "0300"),  # network_error_code is 3 octets
    bytes.fromhex("130c" "0001" "01"),  # alert_on_message_delivery has no value
    bytes.fromhex("0381" "0003" "000101"),  # callback_num is 4..19
])
def test_known_tlv_wrong_length(raw: bytes) -> None:
    err = raises_pdu_error(with_tlv(SUBMIT, raw))
    assert err.command_status == S.ESME_RINVPARLEN and not err.fatal


def test_unknown_and_zero_length_tlvs_are_kept() -> None:
    raw = bytes.fromhex("1401" "0000" "130c" "0000" "3fff" "0002" "abcd")
    p = decode_pdu(with_tlv(SUBMIT, raw))
    assert p.tlvs == {0x1401: b"", "alert_on_message_delivery": b"", 0x3FFF: b"\xab\xcd"}


@pytest.mark.parametrize("pad", [1, 2, 3])
@pytest.mark.parametrize("pdu", [
    SUBMIT,
    EnquireLink(9),
    SubmitSmResp(9, message_id="abc"),
    DeliverSm(9, 0, {"receipted_message_id": "abc", "message_state": 2}, esm_class=4),
], ids=["submit_sm", "enquire_link", "submit_sm_resp", "deliver_sm_tlvs"])
def test_trailing_zero_octets_tolerated(pdu: Pdu, pad: int) -> None:
    assert decode_pdu(with_tlv(pdu, bytes(pad))) == pdu


# --- error responses ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", RESPONSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("body", [b"", b"\x00"], ids=["16_octets", "17_octets"])
def test_error_response_with_or_without_body(cls: type[Pdu], body: bytes) -> None:
    """Reference 2.6: SMSCs send both forms; both decode, to the PDU with empty fields, which
    we send with its (empty) body."""
    p = decode_pdu(frame(cls.command_id, body, S.ESME_RSYSERR, 33))
    assert p == cls(sequence_number=33, command_status=S.ESME_RSYSERR)
    assert decode_pdu(encode_pdu(p)) == p


@pytest.mark.parametrize("cls", RESPONSES, ids=lambda c: c.__name__)
def test_error_response_with_garbage_body_is_still_decoded(cls: type[Pdu]) -> None:
    p = decode_pdu(frame(cls.command_id, b"\xff" * 80 + b"\x02", S.ESME_RTHROTTLED, 34))
    assert (type(p), p.command_status, p.sequence_number) == (cls, S.ESME_RTHROTTLED, 34)


# --- lenient in, strict out ---------------------------------------------------------------------


def test_long_password_decodes_but_does_not_encode() -> None:
    """Providers use passwords longer than the spec's 8 characters (reference pitfall 6)."""
    body = b"tenant\x00" + b"p" * 20 + b"\x00" + b"\x00" + b"\x34\x01\x01" + b"\x00"
    p = decode_pdu(frame(BindTransmitter.command_id, body, seq=3))
    assert isinstance(p, BindTransmitter)
    assert (p.system_id, p.password, p.addr_ton) == ("tenant", "p" * 20, 1)
    with pytest.raises(SmppError) as info:
        encode_pdu(p)
    assert info.value.command_status == S.ESME_RINVPASWD


@pytest.mark.parametrize(("cls", "field"), STRING_FIELDS,
                         ids=[f"{c.__name__}.{f.name}" for c, f in STRING_FIELDS])
def test_encode_too_long_string_field(cls: type[Pdu], field: Field) -> None:
    name, size, status = field.name, field.size, field.status
    longest: dict[str, Any] = {name: "a" * (size - 1)}
    encode_pdu(cls(**longest))  # the longest legal value
    for bad in ("a" * size, "a\x00b"):
        fields: dict[str, Any] = {name: bad}
        with pytest.raises(SmppError) as info:
            encode_pdu(cls(**fields))
        assert info.value.command_status == status


def test_encode_too_long_short_message_and_lists() -> None:
    with pytest.raises(SmppError) as info:
        encode_pdu(SubmitSm(short_message=b"x" * 255))
    assert info.value.command_status == S.ESME_RINVMSGLEN
    assert len(encode_pdu(SubmitSm(short_message=b"x" * 254))) == 16 + 17 + 254
    with pytest.raises(SmppError) as info:
        encode_pdu(SubmitMulti(dest_address=[SmeDest("1")] * 255))
    assert info.value.command_status == S.ESME_RINVNUMDESTS
    for dest, status in ((SmeDest("1" * 21), S.ESME_RINVDSTADR),
                         (DlDest("d" * 21), S.ESME_RINVDLNAME)):
        with pytest.raises(SmppError) as info:
            encode_pdu(SubmitMulti(dest_address=[dest]))
        assert info.value.command_status == status
    with pytest.raises(SmppError) as info:
        encode_pdu(SubmitMultiResp(unsuccess_sme=[UnsuccessSme("1" * 21, 0)]))
    assert info.value.command_status == S.ESME_RINVDSTADR


@pytest.mark.parametrize(("tlvs", "status"), [
    ({"receipted_message_id": "a" * 65}, S.ESME_RINVPARLEN),  # 65 + NUL > 65
    ({"network_error_code": b"\x03\x00"}, S.ESME_RINVPARLEN),
    ({"callback_num": b"\x00"}, S.ESME_RINVPARLEN),
    ({"alert_on_message_delivery": b"\x01"}, S.ESME_RINVPARLEN),
    ({"sar_msg_ref_num": 0x10000}, S.ESME_RINVOPTPARAMVAL),
    ({"message_state": 256}, S.ESME_RINVOPTPARAMVAL),
    ({"message_state": -1}, S.ESME_RINVOPTPARAMVAL),
    ({"message_state": "2"}, S.ESME_RINVOPTPARAMVAL),
    ({"message_payload": "text"}, S.ESME_RINVOPTPARAMVAL),
    ({"no_such_tlv": 1}, S.ESME_RINVOPTPARAMVAL),
    ({0x1400: "not bytes"}, S.ESME_RINVOPTPARAMVAL),
    ({0x10000: b""}, S.ESME_RINVOPTPARAMVAL),
])
def test_encode_bad_tlv_raises_smpp_error(tlvs: dict[str | int, object], status: int) -> None:
    with pytest.raises(SmppError) as info:
        encode_pdu(SubmitSm(tlvs=tlvs))  # type: ignore[arg-type]
    assert info.value.command_status == status
    assert isinstance(info.value, TlvEncodeError) and isinstance(info.value, ValueError)


MUTATION_BASES = [
    encode_pdu(p) for p in (
        SubmitSm(7, 0, {"sar_msg_ref_num": 1, "sar_total_segments": 2, "sar_segment_seqnum": 1,
                        0x1400: b"vendor"}, source_addr="Acme", destination_addr="4467811",
                 validity_period="000001000000000R", short_message=b"hello"),
        DeliverSm(7, 0, {"receipted_message_id": "abc", "message_state": 2}, esm_class=4,
                  short_message=b"id:abc stat:DELIVRD"),
        BindTransmitter(7, system_id="tenant", password="secret", system_type="SMS"),
        SubmitMulti(7, dest_address=[SmeDest("4467811", 1, 1), DlDest("friends")],
                    short_message=b"hi"),
        SubmitMultiResp(7, message_id="m", unsuccess_sme=[UnsuccessSme("123", 0x0B, 1, 1)]),
    )
]


@FUZZ
@given(base=st.sampled_from(MUTATION_BASES), data=st.data())
def test_mutated_valid_pdus_raise_only_body_errors(base: bytes, data: st.DataObject) -> None:
    """Valid encodings with body octets overwritten and the body cut or extended."""
    body = bytearray(base[16:])
    for _ in range(data.draw(st.integers(1, 4))):
        if body:
            body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(body) + 8))
    body = body[:cut] + bytes(data.draw(st.binary(max_size=max(0, cut - len(body)))))
    out = _decode_or_pdu_error(frame(int.from_bytes(base[4:8], "big"), bytes(body), 0, 7))
    if isinstance(out, PduError):
        assert not out.fatal and out.sequence_number == 7
    else:
        assert out.sequence_number == 7
