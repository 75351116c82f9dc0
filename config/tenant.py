"""``[[tenants]]``: one client account of the gateway (SMPP, HTTP or both), and its quiet
hours. Same conventions as ``config.gateway``: frozen, strict, ``"field: reason"`` errors
from ``__post_init__``."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from msgspec import Meta

from .fields import (
    BindType,
    Digits,
    Keyword,
    NonNegative,
    Password,
    Positive,
    ReplyText,
    Strict,
    SystemId,
)

__all__ = ["BindType", "QuietHoursConfig", "TenantConfig"]

ApiKey = Annotated[str, Meta(pattern=r"^sha256:[0-9a-f]{64}$")]
# ``smsc hash-password``: scrypt$<log2 N>$<r>$<p>$<salt b64>$<hash b64>
PasswordHash = Annotated[str, Meta(
    pattern=r"^scrypt\$[0-9]{1,2}\$[0-9]{1,2}\$[0-9]{1,2}\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$")]
WebhookSecret = Annotated[str, Meta(pattern=r"^whsec_[A-Za-z0-9+/]{32,}={0,2}$")]
Sender = Annotated[str, Meta(min_length=1, max_length=21)]


# A wall-clock time of day, 00:00 to 23:59.
ClockTime = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class QuietHoursConfig(Strict, frozen=True, kw_only=True):
    """A tenant's ``quiet_hours = {start = "21:00", end = "08:00"}``: in the recipient's
    local time (routing.quiet), a message due inside ``[start, end)`` is held until ``end``;
    ``start`` later than ``end`` crosses midnight. An HTTP message's own ``quiet_hours``
    replaces it (http-api.md "Sending"); SMPP submissions get this one."""

    start: ClockTime
    end: ClockTime

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("end: must differ from start (the window would be empty)")


class TenantConfig(Strict, frozen=True, kw_only=True):
    """``[[tenants]]``: one client account of the gateway, over SMPP, HTTP or both."""

    system_id: SystemId
    # SMPP 3.4 says 8 characters at most; real clients send more. Absent: no SMPP bind (an
    # HTTP-only tenant); "" binds with an empty password.
    password: Password | None = None
    # The same, hashed (``smsc hash-password``); use it instead of ``password``.
    password_hash: PasswordHash | None = None
    tls_only: bool = False  # binds only over [listen_tls]; a plain bind gets ESME_RBINDFAIL
    # HTTP: SHA-256 of each accepted bearer token (``smsc api-key new`` makes one).
    api_keys: tuple[ApiKey, ...] = ()
    # Events (receipts, inbound messages) as signed POSTs (Standard Webhooks); "" = none.
    webhook_url: str = ""
    # The secret, or two while rotating (each event is signed with both).
    webhook_secret: WebhookSecret | tuple[WebhookSecret, ...] = ()
    # Originators the tenant may send from (HTTP and SMPP); empty = any.
    senders: tuple[Sender, ...] = ()
    bind_types: Annotated[tuple[BindType, ...], Meta(min_length=1)] = (
        "transmitter",
        "receiver",
        "transceiver",
    )
    max_binds: Annotated[int, Meta(ge=1)] = 10
    window: Annotated[int, Meta(ge=1)] = 100  # outstanding submits per bind (ESME_RTHROTTLED)
    tps: NonNegative = 0.0  # 0 = unlimited
    allowed_ips: tuple[str, ...] = ()  # CIDR networks or addresses; empty = any
    numbers: tuple[Digits, ...] = ()  # MO numbers (or prefixes) this tenant owns
    id_format: Literal["decimal", "hex"] = "decimal"
    dcs0: Literal["gsm7", "latin1", "ascii"] = "gsm7"
    multipart_receipt: Literal["aggregate", "first", "last"] = "aggregate"
    mo_reassemble: bool = True
    deliver_window: Annotated[int, Meta(ge=1)] = 10  # deliver_sm outstanding per bind
    deliver_timeout_s: Positive = 30.0
    # Quiet hours in the recipient's time zone (routing.quiet); absent = none.
    quiet_hours: QuietHoursConfig | None = None
    # Consent (http-api.md "Two-way, consent and opt-out"): an inbound message whose whole
    # text is one of these opts its sender out of / back into this tenant's messages, or
    # asks for help; each gets the reply text back through the operator it came from.
    stop_keywords: tuple[Keyword, ...] = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END",
                                          "QUIT", "OPTOUT", "REVOKE")
    start_keywords: tuple[Keyword, ...] = ("START", "UNSTOP", "YES", "OPTIN")
    help_keywords: tuple[Keyword, ...] = ("HELP", "INFO")
    stop_reply: ReplyText = ""
    start_reply: ReplyText = ""
    help_reply: ReplyText = ""

    def __post_init__(self) -> None:
        for i, text in enumerate(self.allowed_ips):
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError as exc:
                raise ValueError(f"allowed_ips[{i}]: not an IP network ({exc})") from None
        if self.password is not None and self.password_hash is not None:
            raise ValueError("password_hash: give password or password_hash, not both")
        if len(set(self.bind_types)) != len(self.bind_types):
            raise ValueError("bind_types: values repeat")
        if self.webhook_url and not self.webhook_url.startswith(("http://", "https://")):
            raise ValueError("webhook_url: must start with http:// or https://")
        if self.webhook_url and not self.secrets:
            raise ValueError("webhook_secret: required with webhook_url (whsec_...)")
        if len(self.secrets) > 2:
            raise ValueError("webhook_secret: at most two (the old and the new while rotating)")

    @property
    def binds(self) -> bool:
        """Whether this tenant can bind over SMPP at all (it has a password or a hash)."""
        return self.password is not None or self.password_hash is not None

    @property
    def secrets(self) -> tuple[str, ...]:
        """``webhook_secret`` as a tuple (one, or two while rotating)."""
        s = self.webhook_secret
        return (s,) if isinstance(s, str) else s

    @property
    def networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """``allowed_ips`` parsed (host bits allowed, e.g. ``10.0.0.1/8``)."""
        return tuple(ipaddress.ip_network(text, strict=False) for text in self.allowed_ips)

    def allows(self, peer_ip: str) -> bool:
        """Whether a connection from ``peer_ip`` may use this account (``allowed_ips``)."""
        if not self.allowed_ips:
            return True
        try:
            addr = ipaddress.ip_address(peer_ip)
        except ValueError:
            return False
        return any(addr in net for net in self.networks)
