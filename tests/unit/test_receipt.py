"""Delivery receipt text: generator layout, parser variations (reference section 10.5)."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from encoding.constants import MessageState
from encoding.receipt import (
    STAT_TO_STATE,
    STATE_TO_STAT,
    Receipt,
    format_receipt,
    parse_receipt,
)

SUBMIT = datetime(2024, 1, 31, 23, 59)
DONE = datetime(2024, 2, 1, 0, 5)


# --- tables ----------------------------------------------------------------------------


def test_tables_follow_reference_10_3() -> None:
    assert STAT_TO_STATE["DELIVRD"] == 2
    assert STAT_TO_STATE["EXPIRED"] == 3
    assert STAT_TO_STATE["DELETED"] == 4
    assert STAT_TO_STATE["UNDELIV"] == 5
    assert STAT_TO_STATE["ACCEPTD"] == 6
    assert STAT_TO_STATE["UNKNOWN"] == 7
    assert STAT_TO_STATE["REJECTD"] == 8
    assert STAT_TO_STATE["ENROUTE"] == 1
    assert STAT_TO_STATE["SCHEDLD"] == 0
    assert STAT_TO_STATE["SKIPPED"] == 9
    for interim in ("ACKED", "BUFFRED", "BUFFERD"):
        assert STAT_TO_STATE[interim] == MessageState.ENROUTE
    assert set(STATE_TO_STAT) == set(range(10))
    for state, stat in STATE_TO_STAT.items():
        assert STAT_TO_STATE[stat] == state


@pytest.mark.parametrize(
    ("stat", "final"),
    [
        ("DELIVRD", True),
        ("UNDELIV", True),
        ("REJECTD", True),
        ("EXPIRED", True),
        ("ENROUTE", False),
        ("BUFFRED", False),
        ("SCHEDLD", False),
    ],
)
def test_final(stat: str, final: bool) -> None:
    receipt = parse_receipt(f"id:1 stat:{stat}".encode())
    assert receipt is not None
    assert receipt.final is final


def test_unknown_stat_word_kept_and_not_final() -> None:
    receipt = parse_receipt(b"id:7 stat:DELIVERED TO CARRIER err:0")
    assert receipt is not None
    assert receipt.stat == "DELIVERED"
    assert receipt.message_state is None
    assert not receipt.final


# --- generator -------------------------------------------------------------------------


def test_format_layout() -> None:
    body = format_receipt("12345", "delivrd", submit_date=SUBMIT, done_date=DONE, text="Hello")
    assert body == (
        b"id:12345 sub:001 dlvrd:001 submit date:2401312359 done date:2402010005"
        b" stat:DELIVRD err:000 text:Hello"
    )


def test_format_undelivered_counts_and_err_padding() -> None:
    body = format_receipt("a-1", "UNDELIV", err="5", submit_date=SUBMIT, done_date=DONE)
    assert b" sub:001 dlvrd:000 " in body
    assert b" err:005 text:" in body
    assert body.endswith(b"text:")


def test_format_text_is_20_gsm_safe_ascii_chars() -> None:
    body = format_receipt(
        "1", "DELIVRD", submit_date=SUBMIT, done_date=DONE, text="Grüße {x} ~ab\n@cdefghijklmnop"
    )
    assert body.endswith(b"text:Gr??e ?x? ?ab??cdefg")
    body.decode("ascii")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"message_id": ""},
        {"message_id": "has space"},
        {"message_id": "x" * 65},
        {"stat": "DELIVERED"},
        {"stat": "DLV-1"},
        {"err": "0x1"},
        {"err": "1234"},
        {"submitted": 1000},
        {"delivered": -1},
    ],
)
def test_format_rejects_bad_arguments(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"message_id": "1", "stat": "DELIVRD"} | kwargs
    with pytest.raises(ValueError):
        format_receipt(submit_date=SUBMIT, done_date=DONE, **args)  # type: ignore[arg-type]


# --- parser: the variations table of reference section 10.5 ------------------------------

FULL = (
    b"id:0123456789 sub:001 dlvrd:001 submit date:2401312359 done date:2402010005"
    b" stat:DELIVRD err:000 text:Hello world"
)


def test_parse_full_appendix_b() -> None:
    assert parse_receipt(FULL) == Receipt(
        id="0123456789",
        stat="DELIVRD",
        err="000",
        sub="001",
        dlvrd="001",
        submit_date="2401312359",
        done_date="2402010005",
        text="Hello world",
        message_state=2,
    )


def test_missing_sub_dlvrd_text_jasmin() -> None:
    receipt = parse_receipt(
        b"id:4b2f4b38-1c2d-4c3b-9a0e-3f1e2d3c4b5a submit date:2401312359"
        b" done date:2402010005 stat:UNDELIV err:001"
    )
    assert receipt is not None
    assert receipt.id == "4b2f4b38-1c2d-4c3b-9a0e-3f1e2d3c4b5a"
    assert (receipt.sub, receipt.dlvrd, receipt.text) == (None, None, None)
    assert (receipt.stat, receipt.err, receipt.message_state) == ("UNDELIV", "001", 5)
    assert receipt.done_date == "2402010005"


def test_capital_text_key_from_template() -> None:
    receipt = parse_receipt(
        b"id:42 sub:001 dlvrd:000 submit date:2401312359 done date:2402010005"
        b" stat:EXPIRED err:000 Text:Your code is"
    )
    assert receipt is not None
    assert receipt.text == "Your code is"
    assert receipt.message_state == MessageState.EXPIRED


def test_upper_case_keys_and_any_order() -> None:
    receipt = parse_receipt(
        b"STAT:delivrd ERR:000 ID:ABC123 SUBMIT DATE:2401312359 DONE DATE:2402010005"
        b" SUB:001 DLVRD:001 TEXT:x"
    )
    assert receipt is not None
    assert (receipt.id, receipt.stat, receipt.sub, receipt.dlvrd) == (
        "ABC123",
        "DELIVRD",
        "001",
        "001",
    )
    assert receipt.submit_date == "2401312359"
    assert receipt.text == "x"


@pytest.mark.parametrize("date", ["240131235901", "20240131235901"])
def test_12_and_14_digit_dates(date: str) -> None:
    receipt = parse_receipt(f"id:1 submit date:{date} done date:{date} stat:DELIVRD".encode())
    assert receipt is not None
    assert receipt.submit_date == receipt.done_date == date


def test_bad_date_lengths_are_dropped() -> None:
    receipt = parse_receipt(b"id:1 submit date:24013123 done date:x stat:DELIVRD")
    assert receipt is not None
    assert receipt.submit_date is None
    assert receipt.done_date is None


@pytest.mark.parametrize("ident", ["33E95179", "0x1f", "870928761", "1101C1-00AB", "a_b-c"])
def test_hex_and_dashed_ids(ident: str) -> None:
    receipt = parse_receipt(f"id:{ident} sub:001 dlvrd:001 stat:DELIVRD err:000".encode())
    assert receipt is not None
    assert receipt.id == ident


@pytest.mark.parametrize("err", ["0", "A1", "x0f", "12345", "E-7"])
def test_err_with_letters_or_other_lengths_kept_as_written(err: str) -> None:
    receipt = parse_receipt(f"id:1 stat:UNDELIV err:{err} text:".encode())
    assert receipt is not None
    assert receipt.err == err


def test_text_padded_and_none_and_trailing_nul() -> None:
    receipt = parse_receipt(b"id:1 stat:DELIVRD err:000 text:        abcd\x00")
    assert receipt is not None
    assert receipt.text == "        abcd"
    receipt = parse_receipt(b"id:1 stat:DELIVRD err:000 text:none")
    assert receipt is not None
    assert receipt.text == "none"


def test_text_takes_the_rest_even_when_it_looks_like_keys() -> None:
    receipt = parse_receipt(b"id:1 stat:DELIVRD err:000 text:stat:UNDELIV id:9")
    assert receipt is not None
    assert (receipt.id, receipt.stat, receipt.text) == ("1", "DELIVRD", "stat:UNDELIV id:9")


def test_utf16_body() -> None:
    receipt = parse_receipt(FULL.decode().encode("utf-16-be"))
    assert receipt == parse_receipt(FULL)


def test_latin1_body_is_not_utf8_decoded() -> None:
    receipt = parse_receipt(b"id:1 stat:DELIVRD err:000 text:Gr\xfc\xdfe")
    assert receipt is not None
    assert receipt.text == "Grüße"


def test_tlv_only_receipt() -> None:
    receipt = parse_receipt(b"", receipted_message_id="ABC-1\x00", message_state=5)
    assert receipt == Receipt(id="ABC-1", stat="UNDELIV", message_state=5)
    assert receipt.final


def test_tlv_state_outside_table() -> None:
    receipt = parse_receipt(b"", receipted_message_id="1", message_state=42)
    assert receipt is not None
    assert (receipt.stat, receipt.message_state, receipt.final) == ("UNKNOWN", 42, False)


def test_tlvs_override_text() -> None:
    receipt = parse_receipt(FULL, receipted_message_id="99", message_state=8)
    assert receipt is not None
    assert receipt.id == "99"
    assert receipt.stat == "DELIVRD"  # as written
    assert receipt.message_state == 8
    blank = parse_receipt(FULL, receipted_message_id="  ")
    assert blank is not None
    assert blank.id == "0123456789"


def test_extra_unknown_fields_are_ignored() -> None:
    receipt = parse_receipt(
        b"id:77 sub:001 dlvrd:001 submit date:2401312359 done date:2402010005 stat:DELIVRD"
        b" err:000 mcc:234 mnc:15 price:0.01 text:hi"
    )
    assert receipt is not None
    assert (receipt.id, receipt.err, receipt.text) == ("77", "000", "hi")


def test_underscore_dates_and_spaces_around_colon() -> None:
    receipt = parse_receipt(b"id : 5 submit_date:2401312359 donedate:2402010005 stat: ACCEPTD")
    assert receipt is not None
    assert (receipt.id, receipt.stat, receipt.message_state) == ("5", "ACCEPTD", 6)
    assert (receipt.submit_date, receipt.done_date) == ("2401312359", "2402010005")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"Hello, this is an MO",
        b"id:123 sub:001 dlvrd:001",  # no state
        b"stat:DELIVRD err:000",  # no id
        b"id: submit date:2401312359 stat:DELIVRD",  # empty id
        b"valid:1 status:DELIVRD",  # keys only inside other words
    ],
)
def test_not_a_receipt(body: bytes) -> None:
    assert parse_receipt(body) is None


# --- properties ------------------------------------------------------------------------

IDS = st.from_regex(r"[0-9A-Za-z-]{1,64}", fullmatch=True)
STATS = st.sampled_from(sorted(STAT_TO_STATE))
DATES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31))


@given(
    ident=IDS,
    stat=STATS,
    submit=DATES,
    done=DATES,
    err=st.from_regex(r"[0-9]{1,3}", fullmatch=True),
    text=st.text(max_size=40),
)
def test_format_parse_round_trip(
    ident: str, stat: str, submit: datetime, done: datetime, err: str, text: str
) -> None:
    body = format_receipt(ident, stat, err=err, submit_date=submit, done_date=done, text=text)
    receipt = parse_receipt(body)
    assert receipt is not None
    assert receipt.id == ident
    assert receipt.stat == stat
    assert receipt.err == err.zfill(3)
    assert receipt.submit_date == submit.strftime("%y%m%d%H%M")
    assert receipt.done_date == done.strftime("%y%m%d%H%M")
    assert receipt.sub == "001"
    assert receipt.dlvrd == ("001" if stat == "DELIVRD" else "000")
    assert receipt.message_state == STAT_TO_STATE[stat]
    assert receipt.text is not None
    assert len(receipt.text) == min(len(text), 20)


@given(
    body=st.binary(max_size=300),
    tlv_id=st.none() | st.text(max_size=70),
    state=st.none() | st.integers(min_value=-1, max_value=300),
)
def test_parse_arbitrary_bytes_never_raises(
    body: bytes, tlv_id: str | None, state: int | None
) -> None:
    result = parse_receipt(body, receipted_message_id=tlv_id, message_state=state)
    assert result is None or isinstance(result, Receipt)


@given(st.text(alphabet=st.sampled_from("idsubtaerxnmoc :0123456789 DLVRT\x00é"), max_size=120))
def test_parse_keyish_text_never_raises(text: str) -> None:
    for body in (text.encode("latin-1", "replace"), ("id" + text).encode("utf-16-be")):
        result = parse_receipt(body)
        assert result is None or isinstance(result, Receipt)


@given(
    ident=st.from_regex(r"[0-9A-Za-z_-]{1,64}", fullmatch=True),
    stat=st.sampled_from(["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "ACCEPTD", "deliVrd"]),
    err=st.from_regex(r"[0-9A-Za-z]{1,3}", fullmatch=True),
    text=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=25),
    tlv_state=st.none() | st.integers(0, 9),
)
def test_standard_fast_path_agrees_with_the_general_parser(
    ident: str, stat: str, err: str, text: str, tlv_state: int | None
) -> None:
    """The one-regex path for the common layout gives exactly what the key scanner gives."""
    from encoding import receipt as mod

    body = (f"id:{ident} sub:001 dlvrd:001 submit date:2611231434 done date:261123143500 "
            f"stat:{stat} err:{err} text:{text}").encode("latin-1")
    fast = mod._parse_standard(body, None, tlv_state)
    assert fast is not None
    fields = mod._fields(mod._decode_body(body))
    slow_stat = (mod._token(fields.get("stat")) or "").upper()
    assert fast.id == mod._text_id(fields.get("id"))
    assert fast.stat == slow_stat
    assert fast.err == mod._token(fields.get("err"))
    assert fast.submit_date == "2611231434" and fast.done_date == "261123143500"
    assert fast.text == (fields.get("text") or "").rstrip("\r\n\x00")
    expected_state = tlv_state if tlv_state is not None else mod.STAT_TO_STATE.get(slow_stat)
    assert fast.message_state == expected_state
