"""Bearer tokens of the HTTP API (``smsc.http.tokens``): which tenant a token stands for, 401
for a missing or unknown one (with ``WWW-Authenticate: Bearer``), 403 from an address outside
the tenant's allowlist, and fresh keys whose hash config accepts."""

from __future__ import annotations

import hashlib
import re

import msgspec
import pytest

from config import TenantConfig
from smsc.http.problems import ApiError
from smsc.http.tokens import Tokens, hash_token, new_api_key

ACME_TOKEN, ACME_OLD = "sk_acme_current", "sk_acme_previous"
BETA_TOKEN = "sk_beta"
ACME = TenantConfig(system_id="acme", api_keys=(hash_token(ACME_TOKEN), hash_token(ACME_OLD)),
                    allowed_ips=("10.0.0.0/8", "2001:db8::/32"))
BETA = TenantConfig(system_id="beta", password="pw", api_keys=(hash_token(BETA_TOKEN),))
SMPP_ONLY = TenantConfig(system_id="smpp", password="pw")
TOKENS = Tokens([ACME, BETA, SMPP_ONLY])


def refused(authorization: str | None, peer_ip: str = "10.1.2.3") -> ApiError:
    with pytest.raises(ApiError) as info:
        TOKENS.tenant(authorization, peer_ip)
    return info.value


def test_hash_token_is_sha256_hex_with_its_prefix() -> None:
    assert hash_token("abc") == (
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    assert hash_token("sk_x") == "sha256:" + hashlib.sha256(b"sk_x").hexdigest()


def test_new_api_key_is_random_and_its_hash_is_a_valid_config_entry() -> None:
    token, entry = new_api_key()
    assert token.startswith("sk_")
    assert len(token) - 3 >= 43  # token_urlsafe(32): 256 bits in 43 base64url characters
    assert re.fullmatch(r"sk_[A-Za-z0-9_-]+", token)
    assert entry == hash_token(token)
    tenant = msgspec.convert({"system_id": "new", "api_keys": [entry]}, TenantConfig)
    assert Tokens([tenant]).tenant(f"Bearer {token}", "127.0.0.1") is tenant
    assert len({new_api_key()[0] for _ in range(50)}) == 50


@pytest.mark.parametrize("authorization", [
    f"Bearer {ACME_TOKEN}",
    f"bearer {ACME_TOKEN}",  # the scheme is case-insensitive (RFC 9110)
    f"BEARER {ACME_TOKEN} ",
    f"Bearer   {ACME_TOKEN}",
    f"Bearer {ACME_OLD}",  # every key of the tenant works (rotation)
])
def test_a_known_token_stands_for_its_tenant(authorization: str) -> None:
    assert TOKENS.tenant(authorization, "10.1.2.3") is ACME


def test_tokens_of_different_tenants_stay_apart() -> None:
    assert TOKENS.tenant(f"Bearer {BETA_TOKEN}", "192.0.2.1") is BETA  # no allowlist: any


@pytest.mark.parametrize("authorization", [
    None,
    "",
    "Bearer",
    "Bearer ",
    "Bearer    ",
    f"Basic {ACME_TOKEN}",
    f"Token {ACME_TOKEN}",
    ACME_TOKEN,  # no scheme
    "Bearer sk_unknown",
    f"Bearer {ACME_TOKEN}x",
    f"Bearer {ACME_TOKEN[:-1]}",
    f"Bearer {hash_token(ACME_TOKEN)}",  # the config entry is not the token
    f"Bearer {hashlib.sha256(ACME_TOKEN.encode()).hexdigest()}",
    "Bearer sk_caf\udce9",  # not UTF-8 (an undecodable header byte): unknown, no crash
    "Bearer ключ",
])
def test_a_missing_or_unknown_token_is_401_with_a_bearer_challenge(
        authorization: str | None) -> None:
    exc = refused(authorization)
    assert (exc.status, exc.code) == (401, "unauthorized")
    assert exc.headers["WWW-Authenticate"].startswith("Bearer")
    assert ACME_TOKEN not in exc.detail


@pytest.mark.parametrize("peer_ip", ["192.0.2.1", "11.0.0.1", "2001:db9::1", "not-an-ip", ""])
def test_a_good_token_from_outside_the_allowlist_is_403(peer_ip: str) -> None:
    exc = refused(f"Bearer {ACME_TOKEN}", peer_ip)
    assert (exc.status, exc.code) == (403, "address_not_allowed")
    assert "WWW-Authenticate" not in exc.headers  # authenticated, just not from there


@pytest.mark.parametrize("peer_ip", ["10.0.0.1", "10.255.255.255", "2001:db8::42"])
def test_a_good_token_from_inside_the_allowlist_goes(peer_ip: str) -> None:
    assert TOKENS.tenant(f"Bearer {ACME_TOKEN}", peer_ip) is ACME


def test_an_unknown_token_is_401_before_the_address_is_looked_at() -> None:
    assert refused("Bearer sk_unknown", "192.0.2.1").status == 401


def test_a_tenant_without_api_keys_cannot_use_http() -> None:
    tokens = Tokens([SMPP_ONLY])
    for header in ("Bearer pw", "Bearer ", "Bearer smpp"):
        with pytest.raises(ApiError) as info:
            tokens.tenant(header, "127.0.0.1")
        assert info.value.status == 401
