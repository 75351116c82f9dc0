"""Golden vectors for the PDU codec: python-smpplib's encodings and hand-written hex.

House habit 6 (docs/architecture.md). Two sources of truth:

1. python-smpplib (an independent SMPP 3.4 client) builds each PDU; our decode must give the
   same field values and our encode of the same fields must be byte-identical. smpplib is
   also asked to parse our encoding. Where smpplib departs from the spec the test documents it
   and asserts the spec (see the ``test_smpplib_deviation_*`` tests).
2. Hex vectors written out by hand from SMPP 3.4 sections 3.2 (header), 4 (bodies) and 5.3
   (TLVs), with every field commented.

Each vector is decoded whole, fed through ``FrameBuffer`` one octet at a time, and followed
in the stream by trailing octets (the next PDU, whole or partial).
"""

from __future__ import annotations

from typing import Any

import pytest
import smpplib.client
import smpplib.command
import smpplib.smpp

from encoding.constants import CommandStatus as S
from encoding.errors import PduError
from encoding.pdu import (
    AlertNotification,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    FrameBuffer,
    GenericNack,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    decode_pdu,
    encode_pdu,
)

# Never connects: smpplib only needs it for sequence numbers.
CLIENT = smpplib.client.Client("127.0.0.1", 1, allow_unknown_opt_params=True)

# The PDU that follows a vector in the stream.
NEXT = bytes.fromhex("00000010" "00000015" "00000000" "7fffffff")  # enquire_link, max seq


def smpplib_encode(name: str, seq: int, status: int = 0, **fields: Any) -> bytes:
    """Encode with python-smpplib. Its ``sequence=`` keyword is ignored by ``_set_vars`` (the
    property already has the client's value), so the number is assigned afterwards."""
    cmd = smpplib.command.factory(name, client=CLIENT, **fields)
    cmd.sequence = seq
    if status:
        cmd.status = status
    wire: bytes = cmd.generate()
    return wire


def smpplib_parse(wire: bytes) -> Any:
    return smpplib.smpp.parse_pdu(wire, client=CLIENT, allow_unknown_opt_params=True)


def check_stream(wire: bytes) -> None:
    """Whole, one octet at a time, and followed by the next PDU (whole and partial)."""
    assert FrameBuffer().feed(wire) == [wire]
    fb = FrameBuffer()
    frames: list[bytes] = []
    for i in range(len(wire)):
        frames += fb.feed(wire[i:i + 1])
    assert frames == [wire] and len(fb) == 0
    assert FrameBuffer().feed(wire + NEXT) == [wire, NEXT]
    fb = FrameBuffer()
    frames = []
    for octet in wire + NEXT:
        frames += fb.feed(bytes((octet,)))
    assert frames == [wire, NEXT]
    fb = FrameBuffer()
    assert fb.feed(wire + NEXT[:7]) == [wire]
    assert len(fb) == 7
    assert fb.feed(NEXT[7:]) == [NEXT]
    assert decode_pdu(NEXT) == EnquireLink(sequence_number=0x7FFFFFFF)


# --- python-smpplib vectors -----------------------------------------------------------------

RECEIPT_TEXT = (b"id:5f3e2a1b-0001 sub:001 dlvrd:001 submit date:2401011200 "
                b"done date:2401011201 stat:DELIVRD err:000 text:Hello world")
UCS2_TEXT = "Привет, мир 😀".encode("utf-16-be")
UDH = bytes.fromhex("050003" "2a" "02" "01")  # concat 8-bit ref 0x2A, 2 parts, part 1
BIND: dict[str, Any] = {"system_id": "tenant1", "password": "secret", "system_type": "SMS",
        "addr_ton": 1, "addr_npi": 1}
BIND_OURS: dict[str, Any] = {**BIND, "address_range": "", "interface_version": 0x34}

# (id, smpplib command name, smpplib fields, our PDU with the same values)
SMPPLIB_CASES: list[tuple[str, str, dict[str, Any], Pdu]] = [
    ("bind_transmitter", "bind_transmitter", BIND, BindTransmitter(11, **BIND_OURS)),
    ("bind_receiver", "bind_receiver", BIND, BindReceiver(12, **BIND_OURS)),
    ("bind_transceiver", "bind_transceiver", {**BIND, "address_range": "^4477"},
     BindTransceiver(13, **{**BIND_OURS, "address_range": "^4477"})),
    ("bind_transmitter_resp", "bind_transmitter_resp",
     {"system_id": "SMSC", "sc_interface_version": 0x34},
     BindTransmitterResp(11, 0, {"sc_interface_version": 0x34}, system_id="SMSC")),
    ("bind_receiver_resp", "bind_receiver_resp", {"system_id": "SMSC"},
     BindReceiverResp(12, system_id="SMSC")),
    ("bind_transceiver_resp", "bind_transceiver_resp",
     {"system_id": "SMSC", "sc_interface_version": 0x34},
     BindTransceiverResp(13, 0, {"sc_interface_version": 0x34}, system_id="SMSC")),
    ("submit_sm_gsm", "submit_sm",
     {"source_addr_ton": 5, "source_addr": "Acme", "dest_addr_ton": 1, "dest_addr_npi": 1,
      "destination_addr": "4467811223344", "registered_delivery": 1,
      "short_message": b"Hello world"},
     SubmitSm(21, source_addr_ton=5, source_addr="Acme", dest_addr_ton=1, dest_addr_npi=1,
              destination_addr="4467811223344", registered_delivery=1,
              short_message=b"Hello world")),
    ("submit_sm_ucs2", "submit_sm",
     {"service_type": "CMT", "source_addr_ton": 1, "source_addr_npi": 1,
      "source_addr": "447700900123", "dest_addr_ton": 1, "dest_addr_npi": 1,
      "destination_addr": "4467811223344", "priority_flag": 1,
      "validity_period": "000001000000000R", "data_coding": 8, "short_message": UCS2_TEXT},
     SubmitSm(22, service_type="CMT", source_addr_ton=1, source_addr_npi=1,
              source_addr="447700900123", dest_addr_ton=1, dest_addr_npi=1,
              destination_addr="4467811223344", priority_flag=1,
              validity_period="000001000000000R", data_coding=8, short_message=UCS2_TEXT)),
    ("submit_sm_udh", "submit_sm",
     {"source_addr": "Acme", "dest_addr_ton": 1, "dest_addr_npi": 1,
      "destination_addr": "4467811223344", "esm_class": 0x40, "registered_delivery": 1,
      "short_message": UDH + b"part one of two"},
     SubmitSm(23, source_addr="Acme", dest_addr_ton=1, dest_addr_npi=1,
              destination_addr="4467811223344", esm_class=0x40, registered_delivery=1,
              short_message=UDH + b"part one of two")),
    ("submit_sm_payload_sar", "submit_sm",
     {"source_addr": "Acme", "destination_addr": "4467811223344",
      "schedule_delivery_time": "240101120000000+", "data_coding": 3,
      "sar_msg_ref_num": 0x1234, "sar_total_segments": 2, "sar_segment_seqnum": 1,
      "message_payload": b"x" * 200},
     SubmitSm(24, source_addr="Acme", destination_addr="4467811223344",
              schedule_delivery_time="240101120000000+", data_coding=3,
              tlvs={"sar_msg_ref_num": 0x1234, "sar_total_segments": 2,
                    "sar_segment_seqnum": 1, "message_payload": b"x" * 200})),
    ("submit_sm_resp", "submit_sm_resp", {"message_id": "5f3e2a1b-0001"},
     SubmitSmResp(21, message_id="5f3e2a1b-0001")),
    ("deliver_sm_receipt", "deliver_sm",
     {"source_addr_ton": 1, "source_addr_npi": 1, "source_addr": "4467811223344",
      "destination_addr": "Acme", "esm_class": 0x04, "short_message": RECEIPT_TEXT,
      "message_state": 2, "receipted_message_id": "5f3e2a1b-0001"},
     DeliverSm(31, 0, {"message_state": 2, "receipted_message_id": "5f3e2a1b-0001"},
               source_addr_ton=1, source_addr_npi=1, source_addr="4467811223344",
               destination_addr="Acme", esm_class=0x04, short_message=RECEIPT_TEXT)),
    ("deliver_sm_resp", "deliver_sm_resp", {}, DeliverSmResp(31)),
    ("data_sm", "data_sm",
     {"source_addr_ton": 1, "source_addr_npi": 1, "source_addr": "447700900123",
      "dest_addr_ton": 1, "dest_addr_npi": 1, "destination_addr": "4467811223344",
      "registered_delivery": 1, "data_coding": 4, "source_port": 0x0B84,
      "destination_port": 0x23F0, "message_payload": bytes(range(256))},
     DataSm(41, 0, {"source_port": 0x0B84, "destination_port": 0x23F0,
                    "message_payload": bytes(range(256))},
            source_addr_ton=1, source_addr_npi=1, source_addr="447700900123",
            dest_addr_ton=1, dest_addr_npi=1, destination_addr="4467811223344",
            registered_delivery=1, data_coding=4)),
    ("data_sm_resp", "data_sm_resp", {"message_id": "m-41"}, DataSmResp(41, message_id="m-41")),
    ("query_sm", "query_sm",
     {"message_id": "5f3e2a1b-0001", "source_addr_ton": 5, "source_addr": "Acme"},
     QuerySm(51, message_id="5f3e2a1b-0001", source_addr_ton=5, source_addr="Acme")),
    ("query_sm_resp", "query_sm_resp",
     {"message_id": "5f3e2a1b-0001", "final_date": "240101120100000+", "message_state": 2,
      "error_code": 0},
     QuerySmResp(51, message_id="5f3e2a1b-0001", final_date="240101120100000+",
                 message_state=2)),
    ("enquire_link", "enquire_link", {}, EnquireLink(61)),
    ("enquire_link_resp", "enquire_link_resp", {}, EnquireLinkResp(61)),
    ("unbind", "unbind", {}, Unbind(71)),
    ("unbind_resp", "unbind_resp", {}, UnbindResp(71)),
    ("generic_nack", "generic_nack", {"status": S.ESME_RINVCMDID},
     GenericNack(81, S.ESME_RINVCMDID)),
    ("alert_notification", "alert_notification",
     {"source_addr_ton": 1, "source_addr_npi": 1, "source_addr": "4467811223344",
      "esme_addr_ton": 5, "esme_addr": "Acme", "ms_availability_status": 0},
     AlertNotification(91, 0, {"ms_availability_status": 0}, source_addr_ton=1,
                       source_addr_npi=1, source_addr="4467811223344", esme_addr_ton=5,
                       esme_addr="Acme")),
]


def _smpplib_wire(name: str, fields: dict[str, Any], ours: Pdu) -> bytes:
    fields = dict(fields)
    status = fields.pop("status", 0)
    return smpplib_encode(name, ours.sequence_number, status, **fields)


@pytest.mark.parametrize(("name", "fields", "ours"), [c[1:] for c in SMPPLIB_CASES],
                         ids=[c[0] for c in SMPPLIB_CASES])
def test_smpplib_vector(name: str, fields: dict[str, Any], ours: Pdu) -> None:
    wire = _smpplib_wire(name, fields, ours)
    assert decode_pdu(wire) == ours
    assert encode_pdu(ours) == wire
    check_stream(wire)


@pytest.mark.parametrize(("name", "fields", "ours"), [c[1:] for c in SMPPLIB_CASES],
                         ids=[c[0] for c in SMPPLIB_CASES])
def test_smpplib_parses_our_encoding(name: str, fields: dict[str, Any], ours: Pdu) -> None:
    parsed = smpplib_parse(encode_pdu(ours))
    assert parsed.command == name
    assert parsed.sequence == ours.sequence_number
    assert parsed.status == ours.command_status
    values = {f.name: getattr(ours, f.name) for f in type(ours).FIELDS}
    values.update({k: v for k, v in ours.tlvs.items() if isinstance(k, str)})
    for key, value in values.items():
        got = getattr(parsed, key)
        if isinstance(value, str) and isinstance(got, bytes):  # smpplib keeps C strings raw
            got = got.decode("latin-1")
        assert got == value, key


def test_smpplib_receipt_fields_decode() -> None:
    """The receipt a tenant's smpplib would see: esm_class 0x04 and the two TLVs."""
    wire = _smpplib_wire(*SMPPLIB_CASES[11][1:])
    p = decode_pdu(wire)
    assert isinstance(p, DeliverSm)
    assert p.esm_class & 0x3C == 0x04
    assert p.tlvs["receipted_message_id"] == "5f3e2a1b-0001"
    assert p.tlvs["message_state"] == 2
    # receipted_message_id is a C-Octet String TLV: its length counts the NUL.
    assert bytes.fromhex("001e" "000e") + b"5f3e2a1b-0001\x00" in wire


# --- where smpplib departs from the spec ------------------------------------------------------


@pytest.mark.parametrize(("name", "status"), [
    ("bind_transmitter_resp", S.ESME_RINVPASWD),
    ("bind_receiver_resp", S.ESME_RBINDFAIL),
    ("bind_transceiver_resp", S.ESME_RINVSYSID),
    ("submit_sm_resp", S.ESME_RTHROTTLED),
])
def test_error_response_with_body_matches_smpplib(name: str, status: int) -> None:
    """smpplib sends an error response with a body (a lone NUL: 17 octets). SMPP 3.4 sections
    4.1.4 and 4.4.2 say the body is not returned when command_status is not 0 (reference 2.6),
    but aiosmpplib cannot read the header-only form, so we send the body too: byte-identical."""
    wire = smpplib_encode(name, 5, status)
    assert len(wire) == 17 and wire[16:] == b"\x00"
    p = decode_pdu(wire)
    assert (p.command_status, p.sequence_number) == (status, 5)
    ours = encode_pdu(p)
    assert ours == wire
    assert decode_pdu((16).to_bytes(4, "big") + wire[4:16]) == p  # header-only form too
    check_stream(wire)


def test_smpplib_deviation_alert_notification_addresses_truncated() -> None:
    """smpplib declares alert_notification source_addr/esme_addr max 21 and silently truncates;
    SMPP 3.4 section 4.12.1 allows 65 octets. We keep the full address."""
    addr = "a" * 40
    wire = smpplib_encode("alert_notification", 9, esme_addr=addr)
    assert decode_pdu(wire).esme_addr == addr[:20]  # type: ignore[attr-defined]
    ours = encode_pdu(AlertNotification(9, esme_addr=addr))
    assert decode_pdu(ours).esme_addr == addr  # type: ignore[attr-defined]
    assert smpplib_parse(ours).esme_addr == addr.encode()  # its parser reads up to the NUL


def test_smpplib_deviation_data_sm_addresses_truncated() -> None:
    """smpplib declares data_sm addresses max 21; SMPP 3.4 section 4.7.1 allows 65."""
    addr = "1" * 30
    wire = smpplib_encode("data_sm", 9, destination_addr=addr)
    assert decode_pdu(wire).destination_addr == addr[:20]  # type: ignore[attr-defined]
    ours = encode_pdu(DataSm(9, destination_addr=addr))
    assert decode_pdu(ours).destination_addr == addr  # type: ignore[attr-defined]


def test_smpplib_deviation_source_addr_subunit_two_octets() -> None:
    """smpplib's submit_sm encodes source_addr_subunit (0x000D) in 2 octets; SMPP 3.4 section
    5.3.2.2 says Integer 1. A known TLV with the wrong length is ESME_RINVPARLEN (0xC2)."""
    wire = smpplib_encode("submit_sm", 9, destination_addr="1", source_addr_subunit=1)
    assert wire.endswith(bytes.fromhex("000d" "0002" "0001"))
    with pytest.raises(PduError) as info:
        decode_pdu(wire)
    assert info.value.command_status == S.ESME_RINVPARLEN
    assert info.value.sequence_number == 9 and not info.value.fatal
    assert encode_pdu(SubmitSm(9, 0, {"source_addr_subunit": 1}, destination_addr="1")).endswith(
        bytes.fromhex("000d" "0001" "01"))


def test_smpplib_deviation_delivery_failure_reason_as_string() -> None:
    """smpplib's data_sm_resp types delivery_failure_reason (0x0425) as a C string; SMPP 3.4
    section 5.3.2.33 says Integer 1. On a successful response that is ESME_RINVPARLEN; on an
    error response the body is ignored (reference 2.6)."""
    wire = smpplib_encode("data_sm_resp", 9, message_id="m", delivery_failure_reason="1")
    assert wire.endswith(bytes.fromhex("0425" "0002" "3100"))
    with pytest.raises(PduError) as info:
        decode_pdu(wire)
    assert info.value.command_status == S.ESME_RINVPARLEN
    failed = smpplib_encode("data_sm_resp", 9, S.ESME_RDELIVERYFAILURE, message_id="m",
                            delivery_failure_reason="1")
    assert decode_pdu(failed) == DataSmResp(9, S.ESME_RDELIVERYFAILURE)


# --- hand-written hex vectors (SMPP 3.4 sections 3.2, 4 and 5.3) ------------------------------

HEX_CASES: list[tuple[str, str, Pdu]] = [
    ("enquire_link",
     "00000010"  # command_length 16: header only
     "00000015"  # command_id enquire_link
     "00000000"  # command_status 0 (requests always 0)
     "00000001",  # sequence_number 1
     EnquireLink(1)),
    ("generic_nack",
     "00000010" "80000000"  # generic_nack
     "00000003"  # ESME_RINVCMDID
     "0000002a",  # the sequence_number of the PDU it answers
     GenericNack(42, S.ESME_RINVCMDID)),
    ("unbind_resp",
     "00000010" "80000006" "00000000" "7fffffff",  # the largest sequence_number
     UnbindResp(0x7FFFFFFF)),
    ("bind_transceiver",
     "0000002a"  # 16 + 12 + 9 + 1 + 3 + 1 = 42
     "00000009" "00000000" "00000001"
     "736d7070636c69656e743100"  # system_id "smppclient1" + NUL (12)
     "70617373776f726400"  # password "password" + NUL (9, the spec maximum)
     "00"  # system_type NULL
     "34"  # interface_version 0x34
     "01" "01"  # addr_ton international, addr_npi ISDN
     "00",  # address_range NULL
     BindTransceiver(1, system_id="smppclient1", password="password", addr_ton=1,
                     addr_npi=1)),
    ("bind_transceiver_resp",
     "0000001a"  # 16 + 5 + 5 = 26
     "80000009" "00000000" "00000001"
     "534d534300"  # system_id "SMSC" + NUL
     "0210" "0001" "34",  # TLV sc_interface_version, length 1, 0x34
     BindTransceiverResp(1, 0, {"sc_interface_version": 0x34}, system_id="SMSC")),
    ("bind_transmitter_resp_error_17",
     "00000011"  # 17: error response with a lone NUL body, as some SMSCs send it
     "80000002" "0000000e"  # ESME_RINVPASWD
     "00000002"
     "00",
     BindTransmitterResp(2, S.ESME_RINVPASWD)),
    ("submit_sm",
     "00000030"  # 16 + 32 = 48
     "00000004" "00000000" "00000002"
     "00"  # service_type NULL
     "01" "01" "313233343500"  # source ton 1, npi 1, source_addr "12345"
     "01" "01" "363738393000"  # dest ton 1, npi 1, destination_addr "67890"
     "00" "00" "00"  # esm_class, protocol_id, priority_flag
     "00" "00"  # schedule_delivery_time NULL, validity_period NULL
     "01"  # registered_delivery: receipt always
     "00" "00" "00"  # replace_if_present_flag, data_coding, sm_default_msg_id
     "05" "68656c6c6f",  # sm_length 5, short_message "hello"
     SubmitSm(2, source_addr_ton=1, source_addr_npi=1, source_addr="12345", dest_addr_ton=1,
              dest_addr_npi=1, destination_addr="67890", registered_delivery=1,
              short_message=b"hello")),
    ("submit_sm_resp",
     "00000014" "80000004" "00000000" "00000002"
     "61626300",  # message_id "abc" + NUL
     SubmitSmResp(2, message_id="abc")),
    ("deliver_sm_receipt",
     "00000043"  # 16 + 26 + 12 + 8 + 5 = 67
     "00000005" "00000000" "00000003"
     "00"  # service_type NULL
     "01" "01" "363738393000"  # source: the handset, ton 1, npi 1, "67890"
     "01" "01" "313233343500"  # destination: the ESME, ton 1, npi 1, "12345"
     "04" "00" "00"  # esm_class 0x04 (SMSC delivery receipt), protocol_id, priority_flag
     "00" "00"  # schedule_delivery_time and validity_period NULL (section 4.6.1)
     "00" "00" "00" "00"  # registered_delivery, replace_if_present, data_coding, default id
     "0b" "69643a61626320737461"  # sm_length 11, short_message "id:abc sta" ...
     "74"  # ... "t"
     "001e" "0004" "61626300"  # TLV receipted_message_id, length 4 (NUL counted), "abc"
     "0427" "0001" "02",  # TLV message_state, length 1, DELIVERED
     DeliverSm(3, 0, {"receipted_message_id": "abc", "message_state": 2}, source_addr_ton=1,
               source_addr_npi=1, source_addr="67890", dest_addr_ton=1, dest_addr_npi=1,
               destination_addr="12345", esm_class=4, short_message=b"id:abc stat")),
    ("deliver_sm_resp",
     "00000011" "80000005" "00000000" "00000003"
     "00",  # message_id: unused, always NULL (section 4.6.2)
     DeliverSmResp(3)),
]


@pytest.mark.parametrize(("hexstr", "ours"), [c[1:] for c in HEX_CASES],
                         ids=[c[0] for c in HEX_CASES])
def test_hex_vector(hexstr: str, ours: Pdu) -> None:
    wire = bytes.fromhex(hexstr)
    assert int.from_bytes(wire[:4], "big") == len(wire)
    assert decode_pdu(wire) == ours
    check_stream(wire)
    assert encode_pdu(ours) == wire


def test_hex_vector_with_trailing_nul_after_short_message() -> None:
    """Some peers append a NUL after short_message (reference section 11): tolerated."""
    wire = bytes.fromhex(HEX_CASES[6][1])
    padded = (len(wire) + 1).to_bytes(4, "big") + wire[4:] + b"\x00"
    assert decode_pdu(padded) == HEX_CASES[6][2]
    check_stream(padded)


def test_all_vectors_in_one_stream() -> None:
    """Every vector back to back, fed in chunks of 7 octets."""
    wires = [bytes.fromhex(c[1]) for c in HEX_CASES]
    wires += [_smpplib_wire(*c[1:]) for c in SMPPLIB_CASES]
    stream = b"".join(wires)
    fb = FrameBuffer()
    frames: list[bytes] = []
    for i in range(0, len(stream), 7):
        frames += fb.feed(stream[i:i + 7])
    assert frames == wires
    expected = [c[2] for c in HEX_CASES] + [c[3] for c in SMPPLIB_CASES]
    assert [decode_pdu(f) for f in frames] == expected
