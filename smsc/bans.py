"""Bans against credential guessing: failed authentications counted per source address.

One table serves both doors (an address guessing HTTP tokens is refused SMPP binds too):
an SMPP bind with an unknown system_id or a wrong password, and an HTTP request with an
unknown bearer token, are failures. ``max_auth_failures`` failures within the sliding
``auth_failure_window_s`` ban the address for ``auth_ban_s`` (``[auth]``): the doors ask
``banned_for`` before any password or token check and refuse (bind_resp ESME_RBINDFAIL,
HTTP 429 with Retry-After). One warning line per ban.

A success does not erase an address's failures: otherwise an attacker holding one good
account (their own tenant) could bind with it between guesses and never be banned. Only
the failures inside the window count, so an honest client's old typos fade on their own.

Decisions are plain functions of ``now`` (no clock read here). Memory is bounded under a
flood of addresses: at most ``max_tracked`` addresses with recent failures (the one
touched longest ago is forgotten first) and, apart, at most ``max_banned`` bans (the one
that ends first goes first), so a flood of new addresses cannot push out the bans.
The table outlives a config reload (``reconfigure`` takes the new ``[auth]``; bans already
given keep their end).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Literal, NamedTuple

from config import AuthConfig

__all__ = ["DOORS", "Ban", "Bans", "Door"]

log = logging.getLogger("smsc.bans")
Door = Literal["smpp", "http"]
DOORS: tuple[Door, ...] = ("smpp", "http")


class Ban(NamedTuple):
    """A ban just given: who, through which door the last failure came, how many."""

    address: str
    door: Door
    failures: int
    until: float


class Bans:
    """The ban table; one per gateway, shared by the SMPP and HTTP doors."""

    def __init__(self, config: AuthConfig, *, max_tracked: int = 50_000,
                 max_banned: int = 50_000) -> None:
        self.config = config
        self.max_tracked = max_tracked
        self.max_banned = max_banned
        self._failures: OrderedDict[str, list[float]] = OrderedDict()  # oldest touch first
        self._bans: OrderedDict[str, tuple[float, Door]] = OrderedDict()  # address -> end
        # counters by door, for the metrics (floats: what a scrape exports)
        self.failures: dict[str, float] = dict.fromkeys(DOORS, 0.0)
        self.bans_given: dict[str, float] = dict.fromkeys(DOORS, 0.0)

    def reconfigure(self, config: AuthConfig) -> None:
        """A reloaded ``[auth]``: it applies to the next failures; bans keep their end."""
        self.config = config

    def banned_for(self, address: str, now: float) -> float:
        """Seconds until ``address`` may try again; 0.0 when it is not banned."""
        entry = self._bans.get(address)
        if entry is None:
            return 0.0
        left = entry[0] - now
        if left <= 0:
            del self._bans[address]
            return 0.0
        return left

    def failure(self, address: str, door: Door, now: float) -> Ban | None:
        """Count a failed authentication; the Ban when this one crosses the threshold."""
        self.failures[door] += 1
        cfg = self.config
        if cfg.max_auth_failures == 0:  # bans switched off
            return None
        times = self._failures.pop(address, None) or []
        cutoff = now - cfg.auth_failure_window_s
        times = [t for t in times if t > cutoff]
        times.append(now)
        if len(times) < cfg.max_auth_failures:
            self._failures[address] = times  # re-inserted last: the most recently touched
            while len(self._failures) > self.max_tracked:
                self._failures.popitem(last=False)
            return None
        ban = Ban(address, door, len(times), now + cfg.auth_ban_s)
        self._bans.pop(address, None)
        self._bans[address] = (ban.until, door)
        self._expire(now)
        while len(self._bans) > self.max_banned:
            self._bans.popitem(last=False)
        self.bans_given[door] += 1
        log.warning("auth: %s banned for %g s after %d failed authentications within %g s "
                    "(last over %s)", address, cfg.auth_ban_s, ban.failures,
                    cfg.auth_failure_window_s, door)
        return ban

    def current(self, now: float) -> dict[str, float]:
        """Addresses banned now, by the door of the failure that banned them (a gauge)."""
        self._expire(now)
        out: dict[str, float] = dict.fromkeys(DOORS, 0.0)
        for until, door in self._bans.values():
            if until > now:
                out[door] += 1
        return out

    def _expire(self, now: float) -> None:
        """Drop ended bans from the front (in order of their end while ``auth_ban_s`` stays
        the same; after a reload a few may wait until ``banned_for`` meets them)."""
        bans = self._bans
        while bans:
            address, (until, _) = next(iter(bans.items()))
            if until > now:
                break
            del bans[address]
