"""How a config stores tenant credentials: the warnings ``smsc check-config`` prints, and
reading a new password for ``smsc hash-password``.

A plain ``password`` still works (the demo uses one) but is a warning: anyone who can read
the file can bind as that tenant. A ``password_hash`` that matches the config pattern but
cannot be checked (bad base64, a cost beyond what a bind may spend) is a warning too: that
tenant can never bind. Warnings name the key, never the value.
"""

from __future__ import annotations

import getpass
import sys
from typing import TextIO

from config import GatewayConfig

from .passwords import is_valid_hash

__all__ = ["MAX_PASSWORD", "credential_warnings", "read_new_password"]

MAX_PASSWORD = 64  # what a bind PDU's password field carries here (and ``password``'s limit)


def credential_warnings(cfg: GatewayConfig) -> list[str]:
    """One line per tenant whose SMPP password is stored in a way worth a warning
    (indices count the tenants after ``include`` files are merged)."""
    out: list[str] = []
    for i, tenant in enumerate(cfg.tenants):
        if tenant.password is not None:
            out.append(f"tenants[{i}].password: stored in plain text; use password_hash "
                       "(smsc hash-password)")
        elif tenant.password_hash is not None and not is_valid_hash(tenant.password_hash):
            out.append(f"tenants[{i}].password_hash: not a hash this gateway can check (bad "
                       "base64 or too costly); make a new one with smsc hash-password")
    return out


def read_new_password(stdin: bool, stream: TextIO | None = None) -> str:
    """The password to hash: one line of ``stream`` (stdin) with ``stdin``, else typed twice
    at a prompt that does not echo. ValueError (one line, for the user) when unusable."""
    if stdin:
        line = (stream or sys.stdin).readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password.removesuffix("\r")
    else:
        password = getpass.getpass("SMPP password: ")
        if getpass.getpass("again: ") != password:
            raise ValueError("the two passwords differ")
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"longer than {MAX_PASSWORD} characters (what a bind can carry)")
    try:
        password.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("binds carry Latin-1 text: use characters of ISO 8859-1") from None
    return password
