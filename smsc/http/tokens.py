"""Bearer tokens of the HTTP API: which tenant a token stands for, and minting new ones.

Config holds only ``sha256:<hex>`` of each token (``api_keys``); a request's token is hashed
and looked up, then compared with ``hmac.compare_digest`` (the lookup is by a digest the
caller cannot steer, so its timing says nothing about a key). A missing or unknown token is
401 with ``WWW-Authenticate: Bearer``; a good token from an address outside the tenant's
``allowed_ips`` is 403 (http-api.md, "Authentication and errors").
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from config import TenantConfig

from .problems import ApiError

__all__ = ["Tokens", "new_api_key", "hash_token"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="smsc"'}


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def new_api_key() -> tuple[str, str]:
    """A fresh token (256 bits of entropy) and the ``api_keys`` entry for it."""
    token = "sk_" + secrets.token_urlsafe(32)
    return token, hash_token(token)


class Tokens:
    def __init__(self, tenants: Iterable[TenantConfig]) -> None:
        self.reconfigure(tenants)

    def reconfigure(self, tenants: Iterable[TenantConfig]) -> None:
        """The tenants whose tokens are accepted (at start, and on a config reload)."""
        self._by_digest: dict[bytes, TenantConfig] = {
            bytes.fromhex(key.removeprefix("sha256:")): t for t in tenants for key in t.api_keys}

    def tenant(self, authorization: str | None, peer_ip: str) -> TenantConfig:
        """The tenant an ``Authorization`` header stands for, or an ApiError (401, 403)."""
        if not authorization:
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>",
                           headers=_CHALLENGE)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "unauthorized", "use the Bearer scheme", headers=_CHALLENGE)
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        tenant = self._by_digest.get(digest)
        if tenant is None or not any(hmac.compare_digest(digest, bytes.fromhex(
                k.removeprefix("sha256:"))) for k in tenant.api_keys):
            raise ApiError(401, "unauthorized", "unknown token", headers=_CHALLENGE)
        if not tenant.allows(peer_ip):
            raise ApiError(403, "address_not_allowed",
                           "this token may not be used from this address")
        return tenant

