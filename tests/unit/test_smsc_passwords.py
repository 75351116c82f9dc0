"""smsc.passwords: scrypt password hashes, their checks, and the remembering verifier."""

from __future__ import annotations

import asyncio
import re

import msgspec
import pytest

from config import TenantConfig
from smsc.auth import check_bind, password_matches
from smsc.passwords import Verifier, hash_password, is_valid_hash, verify_password

# Fast parameters for most tests (the default costs ~30 ms a check).
FAST = {"log2_n": 4, "r": 1, "p": 1}


def test_round_trip_with_the_default_cost() -> None:
    stored = hash_password("s3cret")
    assert re.fullmatch(r"scrypt\$14\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+", stored)
    assert verify_password(stored, "s3cret")
    assert not verify_password(stored, "s3cret ")


def test_the_format_is_what_the_config_accepts() -> None:
    stored = hash_password("pw", **FAST)
    tenant = msgspec.convert({"system_id": "a", "password_hash": stored}, TenantConfig)
    assert tenant.password_hash == stored


def test_each_hash_has_its_own_salt() -> None:
    a, b = hash_password("same", **FAST), hash_password("same", **FAST)
    assert a != b
    assert verify_password(a, "same") and verify_password(b, "same")


# (No "pw\x00": HMAC pads short keys with zeros, so scrypt cannot tell it from "pw"; a
# bind's password is a C string and cannot hold a NUL.)
@pytest.mark.parametrize("given", ["", "wrong", "p", "PW", "pwpw"])
def test_wrong_passwords(given: str) -> None:
    assert not verify_password(hash_password("pw", **FAST), given)


def test_latin1_passwords() -> None:
    stored = hash_password("pässwörd", **FAST)
    assert verify_password(stored, "pässwörd")
    assert not verify_password(stored, "passwort")


@pytest.mark.parametrize("stored", [
    "", "pw", "scrypt$", "scrypt$4$1$1$c2FsdA==", "bcrypt$4$1$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",
    "scrypt$4$1$1$!!!$aGFzaGhhc2hoYXNoaGFzaA==",  # not base64
    "scrypt$4$1$1$c2FsdA=$aGFzaGhhc2hoYXNoaGFzaA==",  # bad padding
    "scrypt$4$1$1$c2FsdA==$aGFzaA==",  # a digest too short to mean anything
    "scrypt$0$1$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",  # N = 1
    "scrypt$4$0$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",  # r = 0
    "scrypt$40$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",  # 2**40: terabytes; refused at once
    "scrypt$20$99$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",  # memory beyond the cap
])
def test_malformed_stored_values_are_false_not_errors(stored: str) -> None:
    assert not verify_password(stored, "pw")
    assert not is_valid_hash(stored)


def test_check_bind_takes_a_hash() -> None:
    tenants = {"a": TenantConfig(system_id="a", password_hash=hash_password("pw", **FAST))}
    ok = check_bind(tenants, 0x00000009, "a", "pw", "127.0.0.1", 0)
    bad = check_bind(tenants, 0x00000009, "a", "nope", "127.0.0.1", 0)
    assert (ok, bad) == (0x00, 0x0E)  # ESME_ROK, ESME_RINVPASWD
    # an outcome checked elsewhere (in a thread) is taken as given
    assert check_bind(tenants, 0x00000009, "a", "nope", "127.0.0.1", 0, password_ok=True) == 0
    assert password_matches(tenants["a"], "pw")
    assert password_matches(TenantConfig(system_id="b", password="x"), "x")


def test_verifier_remembers_successes_only() -> None:
    stored = hash_password("pw", **FAST)
    verifier = Verifier()

    async def run() -> list[bool]:
        out = [verifier.cached(stored, "pw")]
        out.append(await verifier.verify(stored, "pw"))
        out.append(verifier.cached(stored, "pw"))
        out.append(await verifier.verify(stored, "bad"))
        out.append(verifier.cached(stored, "bad"))
        return out

    assert asyncio.run(run()) == [False, True, True, False, False]
    # a changed hash (a new password after a reload) is not covered by the old success
    assert not verifier.cached(hash_password("pw", **FAST), "pw")


def test_verifier_forgets_the_oldest_beyond_its_size() -> None:
    verifier = Verifier(max_entries=2)
    hashes = [hash_password(f"pw{i}", **FAST) for i in range(3)]

    async def run() -> None:
        for i, stored in enumerate(hashes):
            assert await verifier.verify(stored, f"pw{i}")

    asyncio.run(run())
    assert [verifier.cached(h, f"pw{i}") for i, h in enumerate(hashes)] == [False, True, True]


def test_verifier_does_not_keep_the_password() -> None:
    verifier = Verifier()
    stored = hash_password("hunter2-secret", **FAST)
    asyncio.run(verifier.verify(stored, "hunter2-secret"))
    kept = b"".join(verifier._good)  # the remembered keys: HMAC digests only
    assert b"hunter2" not in kept and len(kept) == 32


def test_checks_run_off_the_loop() -> None:
    """While a default-cost check runs, the loop goes on with other work."""
    stored = hash_password("pw")
    verifier = Verifier()

    async def run() -> int:
        ticks = 0
        check = asyncio.ensure_future(verifier.verify(stored, "pw"))
        while not check.done():
            ticks += 1
            await asyncio.sleep(0.001)
        assert check.result()
        return ticks

    assert asyncio.run(run()) >= 5
