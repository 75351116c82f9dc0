"""Typed configuration of the bundled operator SMSC simulator (``smsc-sim``).

Frozen, strict msgspec Structs like the gateway's (``config.gateway``): unknown keys are errors,
ranges live on the fields as ``msgspec.Meta`` constraints, multi-field checks in
``__post_init__`` with reasons written ``"field: reason"``. ``load_simulator_config(path)`` is
the only function here that reads a file; every failure is a ``ConfigError`` whose text is one
line, ``"FILE: KEY: REASON"``. Every key has a default, so an empty file is a valid config.
Times are in milliseconds where the name ends in ``_ms`` and in seconds for ``_s``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

from .errors import ConfigError, from_validation_error
from .fields import Port, Strict

__all__ = [
    "DelayRange",
    "FaultName",
    "FaultRule",
    "FaultsConfig",
    "MoConfig",
    "SimAccount",
    "SimulatorConfig",
    "load_simulator_config",
]

Every = Annotated[int, Meta(ge=0)]  # 0 = off; N = every Nth submit
Millis = Annotated[float, Meta(ge=0)]
Digits = Annotated[str, Meta(pattern=r"^[0-9]*$")]
Address = Annotated[str, Meta(max_length=20)]
FaultName = Literal[
    "throttle", "queue_full", "submit_fail", "no_response", "reject", "undeliverable", "slow"
]
IdFormat = Literal["hex", "decimal"]
ReceiptIdFormat = Literal["same", "hex", "decimal"]

#: stat words the simulator may write as a final state (reference section 10.3).
STAT_WORDS: Final = frozenset(
    {"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD"}
)


class SimAccount(Strict, frozen=True, kw_only=True):
    """``[[accounts]]``: credentials the simulator accepts (none listed = accept any)."""

    system_id: Annotated[str, Meta(min_length=1, max_length=15)]
    password: Annotated[str, Meta(max_length=64)] = ""


class DelayRange(Strict, frozen=True, kw_only=True):
    """``receipt_delay_ms = {min = 0, max = 0}``: uniform delay before the final state."""

    min: Millis = 0.0
    max: Millis = 0.0

    def __post_init__(self) -> None:
        if self.max < self.min:
            raise ValueError(f"max: must be >= min ({self.min}), got {self.max}")


class FaultsConfig(Strict, frozen=True, kw_only=True):
    """``[faults]``: global fault injection; counters run over all submits (0 = off)."""

    throttle_tps: Annotated[float, Meta(ge=0)] = 0.0  # per system_id; above it ESME_RTHROTTLED
    queue_full_every: Every = 0  # ESME_RMSGQFUL
    submit_fail_every: Every = 0  # ESME_RSUBMITFAIL
    no_response_every: Every = 0  # never answered
    slow_response_ms: Millis = 0.0  # every response delayed by this
    drop_connection_every: Every = 0  # per connection: close after every Nth submit
    unknown_receipt_every: Every = 0  # extra receipt for an id never issued
    generic_nack_every: Every = 0  # answered with generic_nack ESME_RSYSERR
    garbage_every: Every = 0  # answered with random bytes (breaks the peer's framing)


class FaultRule(Strict, frozen=True, kw_only=True):
    """``[[rules]]``: a fault for destinations starting with ``prefix`` (longest wins)."""

    prefix: Digits
    fault: FaultName
    every: Annotated[int, Meta(ge=1)] = 1  # apply to every Nth matching submit
    status: Annotated[int, Meta(ge=0, le=0xFFFFFFFF)] = 0  # "reject": 0 = ESME_RINVDSTADR
    delay_ms: Millis = 1000.0  # "slow"
    err: Annotated[int, Meta(ge=0, le=999)] = 1  # "undeliverable": receipt err


class MoConfig(Strict, frozen=True, kw_only=True):
    """``[mo]``: generated mobile-originated messages (off while ``rate_per_s`` is 0)."""

    to: tuple[Address, ...] = ("447900000001",)  # the short codes/numbers MO is sent to
    source: Address = msgspec.field(name="from", default="447700900123")
    rate_per_s: Annotated[float, Meta(ge=0)] = 0.0
    count: Annotated[int, Meta(ge=0)] = 0  # total to generate; 0 = no limit
    long_every: Every = 0  # every Nth MO is a long (concatenated, UDH) message
    text: Annotated[str, Meta(min_length=1, max_length=1000)] = "MO {n} from smsc-sim"
    system_id: Annotated[str, Meta(max_length=15)] = ""  # "" = any receiver bind

    def __post_init__(self) -> None:
        for i, number in enumerate(self.to):
            if not number.isdigit():
                raise ValueError(f"to[{i}]: must be digits, got {number!r}")
        if self.rate_per_s and not self.to:
            raise ValueError("to: at least one number is needed when rate_per_s > 0")


class SimulatorConfig(Strict, frozen=True, kw_only=True):
    """The whole simulator config (top level of its TOML file)."""

    host: Annotated[str, Meta(min_length=1, max_length=255)] = "127.0.0.1"
    port: Port = 2776
    control_port: Port = 0  # 0 = no HTTP JSON endpoint
    accounts: tuple[SimAccount, ...] = ()
    id_format: IdFormat = "hex"  # ids returned in submit_sm_resp
    receipt_id_format: ReceiptIdFormat = "same"  # how receipts write that id
    receipt_delay_ms: DelayRange = DelayRange()
    final_states: dict[str, Annotated[float, Meta(ge=0)]] = msgspec.field(
        default_factory=lambda: {"DELIVRD": 1.0}
    )
    window: Annotated[int, Meta(ge=1, le=100_000)] = 100  # our outstanding deliver_sm per bind
    enquire_link_s: Annotated[float, Meta(ge=0)] = 30.0
    inactivity_s: Annotated[float, Meta(ge=0)] = 300.0
    response_timeout_s: Annotated[float, Meta(gt=0)] = 30.0  # for our deliver_sm
    history: Annotated[int, Meta(ge=0)] = 200_000  # messages kept for query_sm/cancel_sm
    seed: int | None = None  # random seed for delays and the state mix (None = random)
    faults: FaultsConfig = FaultsConfig()
    rules: tuple[FaultRule, ...] = ()
    mo: MoConfig = MoConfig()
    # TLS (SMPP over TLS, like an operator that requires it): with ``cert`` (PEM chain,
    # server certificate first) and ``key`` the port speaks only TLS; with ``client_ca`` a
    # client must present a certificate signed by it. Relative paths are relative to the
    # config file. "" = not set.
    cert: str = ""
    key: str = ""
    client_ca: str = ""

    @property
    def tls(self) -> bool:
        return bool(self.cert)

    def __post_init__(self) -> None:
        if bool(self.cert) != bool(self.key):
            raise ValueError(f"{'key' if self.cert else 'cert'}: required with "
                             f"{'cert' if self.cert else 'key'}")
        if self.client_ca and not self.cert:
            raise ValueError("client_ca: needs cert and key (a TLS port)")
        for stat, _weight in self.final_states.items():
            if stat not in STAT_WORDS:
                allowed = ", ".join(sorted(STAT_WORDS))
                raise ValueError(f"final_states: unknown stat {stat!r} (allowed: {allowed})")
        if not self.final_states or sum(self.final_states.values()) <= 0:
            raise ValueError("final_states: needs at least one positive weight")
        seen: set[str] = set()
        for i, account in enumerate(self.accounts):
            if account.system_id in seen:
                raise ValueError(f"accounts[{i}]: duplicate system_id {account.system_id!r}")
            seen.add(account.system_id)


_LOCATION_RE = re.compile(r"^(?P<reason>.*?) ?\(at (?P<where>line \d+, column \d+)\)$")


def load_simulator_config(path: str | os.PathLike[str]) -> SimulatorConfig:
    """Read and validate the simulator config at ``path``; raise ``ConfigError`` (one line)."""
    file = os.fspath(path)
    try:
        data = Path(file).read_bytes()
    except OSError as exc:
        raise ConfigError(file, "cannot read file", exc.strerror or str(exc)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(file, "encoding", f"not UTF-8 (byte {exc.start})") from None
    try:
        cfg = msgspec.toml.decode(text, type=SimulatorConfig)
    except msgspec.ValidationError as exc:
        raw = msgspec.toml.decode(text)
        raise from_validation_error(file, exc, SimulatorConfig, raw) from None
    except msgspec.DecodeError as exc:
        match = _LOCATION_RE.match(str(exc))
        if match:
            raise ConfigError(file, match["where"], f"TOML syntax: {match['reason']}") from None
        raise ConfigError(file, "TOML syntax", str(exc)) from None
    base = Path(file).resolve().parent
    files = {k: str(base / v) for k in ("cert", "key", "client_ca")
             if (v := getattr(cfg, k)) and not os.path.isabs(v)}
    return msgspec.structs.replace(cfg, **files) if files else cfg
