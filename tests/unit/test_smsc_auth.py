"""Bind authentication (SMPP 3.4 sections 4.1, 5.1.3): which status each bind attempt gets."""

from __future__ import annotations

import pytest

from config import TenantConfig
from encoding.constants import CommandId
from encoding.constants import CommandStatus as S
from smsc.auth import check_bind

TENANTS = {
    "acme": TenantConfig(system_id="acme", password="secret", max_binds=2),
    "tx": TenantConfig(system_id="tx", password="pw", bind_types=("transmitter",)),
    "lan": TenantConfig(system_id="lan", password="pw",
                        allowed_ips=("10.0.0.0/8", "2001:db8::/32", "192.0.2.7")),
    "open": TenantConfig(system_id="open", password=""),
}
TRX, TX, RX = CommandId.bind_transceiver, CommandId.bind_transmitter, CommandId.bind_receiver


def bind(system_id: str, password: str, *, command: int = TRX, ip: str = "127.0.0.1",
         binds: int = 0) -> int:
    return check_bind(TENANTS, command, system_id, password, ip, binds)


def test_good_bind() -> None:
    assert bind("acme", "secret") == S.ESME_ROK
    assert bind("acme", "secret", command=TX) == S.ESME_ROK
    assert bind("acme", "secret", command=RX) == S.ESME_ROK


def test_unknown_system_id() -> None:
    assert bind("nobody", "secret") == S.ESME_RINVSYSID
    assert bind("ACME", "secret") == S.ESME_RINVSYSID  # system_id is case-sensitive


@pytest.mark.parametrize("password", ["wrong", "", "secret ", "SECRET", "secre"])
def test_wrong_password(password: str) -> None:
    assert bind("acme", password) == S.ESME_RINVPASWD


def test_wrong_password_is_reported_before_bind_type_or_ip() -> None:
    # A stranger learns nothing about the account's limits.
    assert bind("tx", "bad", command=RX) == S.ESME_RINVPASWD
    assert bind("lan", "bad", ip="8.8.8.8") == S.ESME_RINVPASWD


def test_empty_password_account() -> None:
    assert bind("open", "") == S.ESME_ROK
    assert bind("open", "x") == S.ESME_RINVPASWD


def test_bind_type_not_allowed() -> None:
    assert bind("tx", "pw", command=TX) == S.ESME_ROK
    assert bind("tx", "pw", command=RX) == S.ESME_RBINDFAIL
    assert bind("tx", "pw", command=TRX) == S.ESME_RBINDFAIL
    assert bind("acme", "secret", command=CommandId.submit_sm) == S.ESME_RBINDFAIL


@pytest.mark.parametrize(("ip", "status"), [
    ("10.1.2.3", S.ESME_ROK),
    ("192.0.2.7", S.ESME_ROK),
    ("192.0.2.8", S.ESME_RBINDFAIL),
    ("11.0.0.1", S.ESME_RBINDFAIL),
    ("2001:db8::1", S.ESME_ROK),
    ("2001:db9::1", S.ESME_RBINDFAIL),
    ("not-an-ip", S.ESME_RBINDFAIL),
    ("", S.ESME_RBINDFAIL),
])
def test_ip_allowlist(ip: str, status: int) -> None:
    assert bind("lan", "pw", ip=ip) == status


def test_any_ip_when_no_allowlist() -> None:
    assert bind("acme", "secret", ip="203.0.113.9") == S.ESME_ROK


def test_max_binds() -> None:
    assert bind("acme", "secret", binds=1) == S.ESME_ROK
    assert bind("acme", "secret", binds=2) == S.ESME_RBINDFAIL
