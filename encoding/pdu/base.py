"""The PDU base class: header fields, TLVs and the request/response pairing.

SMPP 3.4 section 3.2 (PDU format): every PDU is a 16-octet header (command_length,
command_id, command_status, sequence_number), a mandatory body and optional TLVs.
``command_length`` is derived at encode time and never stored; ``command_id`` is a class
attribute. Concrete PDU types live in ``encoding.pdu.types``.

A body field is declared once, as an attribute whose annotation carries its wire spec
(``esm_class: Annotated[int, u8()] = 0``); defining a subclass derives its ``FIELDS`` table
from those annotations, in attribute order, which is the order on the wire.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, get_args, get_origin, get_type_hints

import msgspec

from ..constants import RESPONSE_BIT
from .fields import PYTHON_TYPE, Field, FieldSpec
from .tlv import TlvMap

__all__ = ["Pdu"]


class Pdu(msgspec.Struct, gc=False, repr_omit_defaults=True):
    """Base of every PDU. Subclasses declare ``command_id`` and their body as annotated
    attributes; ``FIELDS`` (the codec's table) is derived from them."""

    command_id: ClassVar[int] = 0
    FIELDS: ClassVar[tuple[Field, ...]] = ()
    response_class: ClassVar[type[Pdu] | None] = None

    sequence_number: int = 0
    command_status: int = 0
    tlvs: TlvMap = msgspec.field(default_factory=dict)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "FIELDS" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: declare body fields as annotated attributes; "
                            "FIELDS is derived from them")
        cls.FIELDS = _body_fields(cls)

    @property
    def command_name(self) -> str:
        return type(self).__name__

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)

    def response(self, command_status: int = 0, **fields: Any) -> Pdu:
        """The matching response with the same sequence_number (SMPP 3.4 section 3.2)."""
        cls = self.response_class
        if cls is None:
            raise TypeError(f"{self.command_name} has no response PDU")
        return cls(sequence_number=self.sequence_number, command_status=command_status, **fields)


_HEADER_FIELDS = frozenset(("sequence_number", "command_status", "tlvs"))


def _body_fields(cls: type[Pdu]) -> tuple[Field, ...]:
    """The body table of ``cls``: every instance attribute but the header's, in order.

    Annotations are read base class first, in declaration order: the order msgspec gives
    the Struct's fields and so the positional order the generated decoder relies on.
    """
    rows: list[Field] = []
    for name, hint in get_type_hints(cls, include_extras=True).items():
        if name in _HEADER_FIELDS or get_origin(hint) is ClassVar:
            continue
        specs = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, FieldSpec)]
        if get_origin(hint) is not Annotated or len(specs) != 1:
            raise TypeError(f"{cls.__name__}.{name}: a body field needs its wire spec, "
                            "e.g. Annotated[int, u8()]")
        spec = specs[0]
        python = get_args(hint)[0]
        if (get_origin(python) or python) is not PYTHON_TYPE[spec.kind]:
            raise TypeError(f"{cls.__name__}.{name}: {spec.kind} holds "
                            f"{PYTHON_TYPE[spec.kind].__name__}, not {python}")
        rows.append(spec.named(name))
    return tuple(rows)
