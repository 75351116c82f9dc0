"""Tenant SMPP passwords stored as scrypt hashes (``password_hash``), and checking them.

The stored form is ``scrypt$<log2 N>$<r>$<p>$<salt b64>$<hash b64>`` (RFC 7914 scrypt via
``hashlib.scrypt``; standard base64 with padding). ``hash_password`` makes one (``smsc
hash-password``), ``verify_password`` checks a given password against one in constant time
and answers False, never raises, for a malformed or absurd stored value.

Cost: N = 2**14, r = 8, p = 1 is the scrypt paper's "interactive login" setting (16 MiB of
memory per check); it measured ~30 ms per check on this machine (2**13: 15 ms, 2**15: 70 ms).
Guessing is held back mostly by the bans (``smsc.bans``); the hash is what protects the
passwords if the config file leaks.

A check costs tens of milliseconds, too long to run on the event loop for every bind.
``Verifier`` runs checks in threads (``hashlib.scrypt`` releases the GIL), at most
``workers`` at once, and remembers the checks that succeeded — keyed by an HMAC of the
stored hash and the given password under a per-process random key, never the password — so
a tenant that reconnects is answered at once. Failures are not remembered (each costs a full
check; the ban table bounds how many one address gets).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections import OrderedDict

__all__ = ["LOG2_N", "P", "R", "Verifier", "hash_password", "is_valid_hash", "verify_password"]

LOG2_N = 14
R = 8
P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32
_FORMAT = re.compile(r"^scrypt\$([0-9]{1,2})\$([0-9]{1,2})\$([0-9]{1,2})\$"
                     r"([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$")
# Refused as stored values (False, no work): a typo such as log2 N = 40 must not make one
# bind allocate terabytes or spin for hours. 128 * r * N bytes is scrypt's memory.
_MAX_MEMORY = 256 * 1024 * 1024


def _scrypt(password: bytes, salt: bytes, log2_n: int, r: int, p: int, size: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=1 << log2_n, r=r, p=p, dklen=size,
                          maxmem=_MAX_MEMORY + 1024 * 1024)


def hash_password(password: str, *, log2_n: int = LOG2_N, r: int = R, p: int = P) -> str:
    """The ``password_hash`` value for ``password`` (a fresh random salt each time)."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password.encode("latin-1"), salt, log2_n, r, p, _HASH_BYTES)
    b64 = base64.b64encode
    return f"scrypt${log2_n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    m = _FORMAT.match(stored)
    if m is None:
        return None
    log2_n, r, p = int(m[1]), int(m[2]), int(m[3])
    if not (1 <= log2_n <= 24 and r >= 1 and p >= 1) or 128 * r * p * (1 << log2_n) \
            > _MAX_MEMORY:
        return None
    try:
        salt = base64.b64decode(m[4], validate=True)
        digest = base64.b64decode(m[5], validate=True)
    except (binascii.Error, ValueError):
        return None
    if not salt or not 16 <= len(digest) <= 64:
        return None
    return log2_n, r, p, salt, digest


def is_valid_hash(stored: str) -> bool:
    """Whether ``stored`` is a hash ``verify_password`` can check (format and sane cost)."""
    return _parse(stored) is not None


def verify_password(stored: str, given: str) -> bool:
    """Whether ``given`` is the password ``stored`` was made from (constant-time compare).

    SMPP passwords are C-Octet Strings (SMPP 3.4 section 3.1): bytes, read as Latin-1, so
    every given value encodes. A malformed ``stored`` is False, never an exception."""
    parsed = _parse(stored)
    if parsed is None:
        return False
    log2_n, r, p, salt, digest = parsed
    try:
        got = _scrypt(given.encode("latin-1", "replace"), salt, log2_n, r, p, len(digest))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got, digest)


class Verifier:
    """Password checks off the event loop, with the successful ones remembered.

    ``cached`` answers at once for a (hash, password) pair that succeeded before;
    ``verify`` runs the check in a worker thread (at most ``workers`` at once, later ones
    wait their turn) and remembers a success. ``waiting`` says how many checks are queued
    or running (the caller refuses binds beyond its limit)."""

    def __init__(self, *, workers: int = 2, max_entries: int = 4096) -> None:
        self._key = secrets.token_bytes(32)  # per process: digests are useless elsewhere
        self._good: OrderedDict[bytes, None] = OrderedDict()
        self._max_entries = max_entries
        self._workers = workers
        self._slots: asyncio.Semaphore | None = None  # made on the loop that uses it
        self.waiting = 0

    def _digest(self, stored: str, given: str) -> bytes:
        text = stored.encode() + b"\x00" + given.encode("latin-1", "replace")
        return hmac.new(self._key, text, hashlib.sha256).digest()

    def cached(self, stored: str, given: str) -> bool:
        """True when this password was checked good against ``stored`` before."""
        key = self._digest(stored, given)
        if key in self._good:
            self._good.move_to_end(key)
            return True
        return False

    async def verify(self, stored: str, given: str) -> bool:
        """``verify_password`` in a worker thread; a success is remembered."""
        if self.cached(stored, given):
            return True
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._workers)
        self.waiting += 1
        try:
            async with self._slots:
                ok = await asyncio.get_running_loop().run_in_executor(
                    None, verify_password, stored, given)
        finally:
            self.waiting -= 1
        if ok:
            self._good[self._digest(stored, given)] = None
            while len(self._good) > self._max_entries:
                self._good.popitem(last=False)
        return ok
