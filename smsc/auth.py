"""Bind authentication: a pure decision from config, the bind PDU, the peer and bind counts.

SMPP 3.4 section 4.1 (bind) and 5.1.3: unknown system_id → ESME_RINVSYSID, wrong password →
ESME_RINVPASWD; a bind type the tenant may not use, an address outside its allowlist or one
bind too many, or a plain bind of a ``tls_only`` tenant → ESME_RBINDFAIL.

A tenant's password is ``password`` (compared in constant time) or ``password_hash``
(scrypt, ``smsc.passwords``). The gateway checks a hash off the event loop and passes the
outcome as ``password_ok``; without it the hash is checked here, synchronously.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from config import TenantConfig
from encoding.constants import CommandId, CommandStatus

from .passwords import verify_password

__all__ = ["BIND_TYPE_NAMES", "check_bind", "password_matches"]

BIND_TYPE_NAMES: dict[int, str] = {
    CommandId.bind_transmitter: "transmitter",
    CommandId.bind_receiver: "receiver",
    CommandId.bind_transceiver: "transceiver",
}


def check_bind(tenants: Mapping[str, TenantConfig], command_id: int, system_id: str,
               password: str, peer_ip: str, binds_now: int, *, tls: bool = False,
               password_ok: bool | None = None) -> int:
    """The command_status for this bind attempt (ESME_ROK when it may go ahead).

    ``password_ok``: the outcome of a ``password_hash`` check made elsewhere (None: check
    the password here)."""
    tenant = tenants.get(system_id)
    if tenant is None:
        return CommandStatus.ESME_RINVSYSID
    if not tenant.binds:  # an HTTP-only tenant: no password can bind
        return CommandStatus.ESME_RINVPASWD
    if password_ok is None:
        password_ok = password_matches(tenant, password)
    if not password_ok:
        return CommandStatus.ESME_RINVPASWD
    if BIND_TYPE_NAMES.get(command_id) not in tenant.bind_types:
        return CommandStatus.ESME_RBINDFAIL
    if tenant.tls_only and not tls:
        return CommandStatus.ESME_RBINDFAIL
    if not tenant.allows(peer_ip):
        return CommandStatus.ESME_RBINDFAIL
    if binds_now >= tenant.max_binds:
        return CommandStatus.ESME_RBINDFAIL
    return CommandStatus.ESME_ROK


def password_matches(tenant: TenantConfig, password: str) -> bool:
    """Whether ``password`` (as sent in the bind, Latin-1) is the tenant's."""
    if tenant.password_hash is not None:
        return verify_password(tenant.password_hash, password)
    if tenant.password is None:
        return False
    return hmac.compare_digest(tenant.password.encode(), password.encode("latin-1"))

