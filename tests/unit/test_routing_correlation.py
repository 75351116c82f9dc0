"""Operator message id matching (reference 10.4): normalisation and hex/decimal variants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.correlation import id_variants, normalise


@pytest.mark.parametrize(("raw", "expected"), [
    ("  abc123 ", "ABC123"),
    ("000123", "123"),
    ("0", "0"),
    ("0000", "0"),
    ("", ""),
    ("   ", ""),
    ("1101c1-ab", "1101C1-AB"),
])
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_opaque_only_tries_the_exact_normalised_form() -> None:
    assert id_variants("0870928761", "opaque") == ["870928761"]


def test_jsmpp_simulator_case_hex_resp_decimal_receipt() -> None:
    # opentelecoms-org/jsmpp#56: resp 33E95179, receipt 870928761.
    assert "33E95179" in id_variants("870928761", "hex")
    assert "33E95179" in id_variants("0870928761", "auto")
    assert "870928761" in id_variants("33e95179", "decimal")


def test_exact_form_is_tried_first() -> None:
    assert id_variants("123", "auto")[0] == "123"
    assert id_variants("ABC", "auto")[0] == "ABC"


def test_hex_format_does_not_try_decimal_of_hex() -> None:
    # "hex": the operator answers in hex; only a decimal receipt id needs converting.
    assert id_variants("FF", "hex") == ["FF"]
    assert id_variants("255", "decimal") == ["255", "597"]


def test_no_duplicates() -> None:
    v = id_variants("1", "auto")
    assert v == ["1"]


@given(st.integers(min_value=0, max_value=2**80))
def test_decimal_receipt_finds_hex_resp_and_back(n: int) -> None:
    hex_resp, dec_resp = normalise(f"{n:X}"), normalise(str(n))
    assert hex_resp in id_variants(str(n), "hex")
    assert hex_resp in id_variants(str(n).zfill(12), "auto")
    assert dec_resp in id_variants(f"{n:x}", "decimal")
    assert dec_resp in id_variants(f"{n:X}", "auto")


@given(st.text(max_size=20))
def test_id_variants_never_raises(raw: str) -> None:
    # A receipted_message_id TLV is decoded as Latin-1: any character can arrive.
    for fmt in ("opaque", "hex", "decimal", "auto"):
        variants = id_variants(raw, fmt)
        assert variants[0] == normalise(raw)


def test_latin1_superscript_digit_is_not_a_decimal_id() -> None:
    # "²" is str.isdigit() but int() refuses it; this used to raise ValueError.
    assert id_variants("12\u00b2", "auto") == ["12\u00b2"]
