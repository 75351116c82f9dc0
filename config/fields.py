"""The field types and the common Struct options every config table shares
(``config.gateway``, ``config.tenant``): ranges and patterns as ``msgspec.Meta``, so decoding
validates them."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = ["BindType", "Digits", "FilePath", "Host", "Keyword", "Name", "NonNegative",
           "Password", "Port", "Positive", "ReplyText", "SystemId", "TlsVersion", "Strict"]

BindType = Literal["transmitter", "receiver", "transceiver"]

Port = Annotated[int, Meta(ge=0, le=65535)]
NonNegative = Annotated[float, Meta(ge=0)]
Positive = Annotated[float, Meta(gt=0)]
Host = Annotated[str, Meta(min_length=1, max_length=255)]
SystemId = Annotated[str, Meta(min_length=1, max_length=15)]
Password = Annotated[str, Meta(max_length=64)]
Digits = Annotated[str, Meta(pattern=r"^[0-9]+$")]
# Operator names become metric labels and log fields: keep them short and plain.
Name = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")]
# An inbound keyword (routing.keywords): letters and digits, matched case-insensitively.
Keyword = Annotated[str, Meta(pattern=r"^[A-Za-z0-9]{1,20}$")]
# A keyword's reply: one SMS part or a few ("" = the default, which names the tenant).
ReplyText = Annotated[str, Meta(max_length=459)]
# TLS 1.2 is the floor everywhere (RFC 8996 deprecates 1.0 and 1.1).
TlsVersion = Literal["1.2", "1.3"]
# A file path; a relative one is relative to the config file's directory (the loader makes
# it absolute and checks that it can be read). "" = not set.
FilePath = str


class Strict(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Common options; subclasses repeat ``frozen``/``kw_only`` (msgspec and mypy need it)."""

