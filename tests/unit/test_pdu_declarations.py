"""Each PDU body field is declared once: the codec table is the Struct's attributes.

``Pdu`` derives every type's ``FIELDS`` (what ``encoding.pdu.compile`` turns into the decoder
and encoder) from the annotated attributes, and the generated decoder builds the Struct
positionally from that table. These tests hold the rule: for every type in ``ALL_TYPES`` the
codec field names are the Struct's body attribute names in the same order, and a body
attribute without a wire spec, a spec that does not fit its Python type, or a hand-written
``FIELDS`` table is refused when the class is defined.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import pytest

from encoding.constants import CommandStatus as S
from encoding.pdu import ALL_TYPES, Pdu, SubmitSm
from encoding.pdu.compile import compile_decoder, compile_encoder
from encoding.pdu.fields import PYTHON_TYPE, Field, cstr, u8

HEADER = ("sequence_number", "command_status", "tlvs")


@pytest.mark.parametrize("cls", ALL_TYPES, ids=lambda c: c.__name__)
def test_codec_fields_are_the_struct_body_in_order(cls: type[Pdu]) -> None:
    assert cls.__struct_fields__[:3] == HEADER  # the decoder passes these three first
    body = tuple(name for name in cls.__struct_fields__ if name not in HEADER)
    assert tuple(f.name for f in cls.FIELDS) == body


@pytest.mark.parametrize("cls", ALL_TYPES, ids=lambda c: c.__name__)
def test_defaults_have_the_type_of_their_kind(cls: type[Pdu]) -> None:
    empty = cls()
    for f in cls.FIELDS:
        assert isinstance(getattr(empty, f.name), PYTHON_TYPE[f.kind]), f.name


def test_an_added_attribute_is_on_the_wire_in_order() -> None:
    class Extended(SubmitSm):
        command_id: ClassVar[int] = SubmitSm.command_id
        vendor_flag: Annotated[int, u8()] = 0
        vendor_ref: Annotated[str, cstr(9, S.ESME_RSUBMITFAIL)] = ""

    assert Extended.FIELDS[:-2] == SubmitSm.FIELDS
    assert Extended.FIELDS[-2:] == (Field("vendor_flag", "u8", 1, 0, 0),
                                    Field("vendor_ref", "cstr", 9, S.ESME_RSUBMITFAIL, 9))
    p = Extended(7, short_message=b"hi", vendor_flag=5, vendor_ref="ab")
    wire = compile_encoder(Extended)(p)
    assert wire.endswith(b"\x02hi\x05ab\x00")
    assert compile_decoder(Extended)(wire, 7, 0) == p


def test_a_body_attribute_without_a_wire_spec_is_refused() -> None:
    with pytest.raises(TypeError, match=r"Untyped\.plain: a body field needs its wire spec"):
        class Untyped(Pdu):
            plain: int = 0


def test_a_spec_must_fit_the_attribute_type() -> None:
    with pytest.raises(TypeError, match=r"Mismatched\.flag: u8 holds int"):
        class Mismatched(Pdu):
            flag: Annotated[str, u8()] = ""


def test_a_hand_written_table_is_refused() -> None:
    with pytest.raises(TypeError, match="FIELDS is derived"):
        class Handmade(Pdu):
            FIELDS: ClassVar[tuple[Field, ...]] = ()
