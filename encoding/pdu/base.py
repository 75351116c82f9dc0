"""The PDU base class: header fields, TLVs and the request/response pairing.

SMPP 3.4 section 3.2 (PDU format): every PDU is a 16-octet header (command_length,
command_id, command_status, sequence_number), a mandatory body and optional TLVs.
``command_length`` is derived at encode time and never stored; ``command_id`` is a class
attribute. Concrete PDU types live in ``encoding.pdu.types``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from ..constants import RESPONSE_BIT
from .fields import Field
from .tlv import TlvMap

__all__ = ["Pdu"]


class Pdu(msgspec.Struct, gc=False, repr_omit_defaults=True):
    """Base of every PDU. Subclasses declare ``command_id`` and their body ``FIELDS``."""

    command_id: ClassVar[int] = 0
    FIELDS: ClassVar[tuple[Field, ...]] = ()
    response_class: ClassVar[type[Pdu] | None] = None

    sequence_number: int = 0
    command_status: int = 0
    tlvs: TlvMap = msgspec.field(default_factory=dict)

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
