"""Quiet hours in the recipient's own time zone: when a message due at ``due`` may leave.

Owns the rule of issue 12 ("Quiet hours") and http-api.md's ``quiet_hours`` field: a window
``{start, end}`` of wall-clock times in the *recipient's* local time, taken from the number
(the time-zone data of the ``phonenumbers`` package, by prefix); a message due inside it is
held until it ends. Pure: no clock reads (``due`` is an argument) and no I/O but the IANA
zone files ``zoneinfo`` loads once per zone.

- The window is half-open, ``[start, end)`` on the local wall clock; ``start > end`` crosses
  midnight (21:00-08:00); ``start == end`` is an empty window (never quiet; the config and
  the HTTP door refuse it, so only a direct caller meets it).
- A number whose region spans several zones (a US toll-free, a Russian or Australian
  mobile) is sendable only when the window is open in ALL of them. If no instant is open in
  all of them (a window too wide for the region's spread, e.g. 21:00-08:00 over Guam to
  Samoa) the message leaves at the earliest instant at which it is open in the MOST of them:
  a defined, bounded hold rather than never.
- A number with no known zone (phonenumbers answers ``Etc/Unknown`` and no prefix of the
  number is in its data, or a zone the IANA database lacks) has no quiet hours: ``due``.
- The window of a message is its own (HTTP ``quiet_hours``) or its tenant's
  (``[[tenants]] quiet_hours``), for SMPP and HTTP alike; ``quiet_until`` is the rule
  admission applies after the asked-for send time (routing.schedule holds the message).
- Daylight-saving changes come from ``zoneinfo``: a window end that falls in a
  spring-forward gap releases at the change; one that happens twice in a fall-back hour
  releases at its first occurrence, and a second quiet stretch in the repeated hour is
  quiet again (wall-clock rule, both folds are candidates).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers.timezone import UNKNOWN_TIMEZONE, time_zones_for_number
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from config import QuietHoursConfig, TenantConfig

from .model import Message

__all__ = ["Window", "parse_window", "zones_for", "is_quiet", "release_at", "window_for",
           "quiet_until", "deferred_until"]

_DAY: Final = 86_400
_HORIZON: Final = 2 * _DAY  # the pattern repeats daily; two days see every DST shift
_STEP: Final = 6 * 3600  # offset samples when looking for DST changes (none are closer)
_CACHE_LIMIT: Final = 4096


class Window(NamedTuple):
    """Quiet hours as minutes after local midnight: ``[start, end)``, crossing midnight
    when ``start > end``."""

    start: int
    end: int

    def quiet_at(self, seconds: float) -> bool:
        """Whether ``seconds`` after local midnight (wall clock) is inside the window."""
        s, e = self.start * 60, self.end * 60
        if s < e:
            return s <= seconds < e
        if s > e:
            return seconds >= s or seconds < e
        return False

    def __str__(self) -> str:
        (a, b), (c, d) = divmod(self.start, 60), divmod(self.end, 60)
        return f"{a:02d}:{b:02d}-{c:02d}:{d:02d}"


def _minutes(text: str) -> int:
    hh, sep, mm = text.partition(":")
    if not (sep and len(hh) == 2 and len(mm) == 2 and (hh + mm).isdigit() and (hh + mm).isascii()):
        raise ValueError(f"{text!r} is not HH:MM")
    h, m = int(hh), int(mm)
    if h > 23 or m > 59:
        raise ValueError(f"{text!r} is not a time of day (00:00 to 23:59)")
    return h * 60 + m


def parse_window(start: str, end: str) -> Window:
    """``Window`` from ``"HH:MM"`` texts; ValueError (one line) when one is not a time of day."""
    return Window(_minutes(start), _minutes(end))


@lru_cache(maxsize=256)
def _cached_window(start: str, end: str) -> Window:
    return parse_window(start, end)


def window_for(default: QuietHoursConfig | None, override: str = "") -> Window | None:
    """A message's window: its own (``override``, ``"HH:MM-HH:MM"``, as the HTTP door puts
    it in ``Submission.quiet_hours``) or else its tenant's ``quiet_hours``; None = none."""
    if override:
        start, _, end = override.partition("-")
        return _cached_window(start, end)
    return _cached_window(default.start, default.end) if default is not None else None


# -- the number's zones --------------------------------------------------------------------


def _prefix(digits: str) -> str | None:
    """The longest prefix of ``digits`` in phonenumbers' time-zone data (a dict look-up per
    length, no parsing)."""
    for n in range(min(TIMEZONE_LONGEST_PREFIX, len(digits)), 0, -1):
        if digits[:n] in TIMEZONE_DATA:
            return digits[:n]
    return None


@lru_cache(maxsize=1024)
def _load(names: tuple[str, ...]) -> tuple[ZoneInfo, ...]:
    out = []
    for name in names:
        if name == UNKNOWN_TIMEZONE:
            continue
        try:
            out.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue  # not in this machine's IANA database: that zone is unknown
    return tuple(out)


def _lookup(digits: str) -> tuple[ZoneInfo, ...]:
    try:
        names = tuple(time_zones_for_number(phonenumbers.parse("+" + digits)))
    except phonenumbers.NumberParseException:
        names = (UNKNOWN_TIMEZONE,)
    if names == (UNKNOWN_TIMEZONE,):
        # Not a valid number by the metadata (a test range, a new range): its prefix still
        # says where it is, as time_zones_for_geographical_number reads it.
        prefix = _prefix(digits)
        names = TIMEZONE_DATA[prefix] if prefix is not None else names
    return _load(names)


# The zones of a number depend on its time-zone prefix (at most 9 digits) and, through
# phonenumbers' validity and type patterns, on its length and leading digits: numbers that
# differ only in their last two digits share one entry (parsed once for all of them).
_by_key: dict[str, tuple[ZoneInfo, ...]] = {}
_KEY_LIMIT: Final = 65_536


def zones_for(digits: str) -> tuple[ZoneInfo, ...]:
    """The time zones of an E.164 number (digits, no '+'); () when none is known.

    Cached per prefix (the number without its last two digits): the hot path pays a dict
    look-up per number, not phonenumbers' parse (~20 µs)."""
    key = digits[: max(len(digits) - 2, 1)]
    zones = _by_key.get(key)
    if zones is None:
        if len(_by_key) >= _KEY_LIMIT:
            _by_key.clear()
        zones = _by_key[key] = _lookup(digits)
    return zones


# -- the instant ---------------------------------------------------------------------------


def _local_seconds(zone: ZoneInfo, t: float) -> float:
    local = datetime.fromtimestamp(t, zone)
    return local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6


def is_quiet(zone: ZoneInfo, t: float, window: Window) -> bool:
    """Whether instant ``t`` (Unix seconds) is inside ``window`` on ``zone``'s wall clock."""
    return window.quiet_at(_local_seconds(zone, t))


def _transitions(zone: ZoneInfo, lo: float, hi: float) -> list[float]:
    """Instants in (lo, hi] at which ``zone``'s UTC offset changes (to the second)."""
    out: list[float] = []
    a = lo
    off_a = datetime.fromtimestamp(a, zone).utcoffset()
    while a < hi:
        b = min(a + _STEP, hi)
        off_b = datetime.fromtimestamp(b, zone).utcoffset()
        if off_b != off_a:
            x, y = a, b  # offset(x) == off_a, offset(y) != off_a
            while y - x > 1:
                mid = float(int((x + y) / 2))
                if datetime.fromtimestamp(mid, zone).utcoffset() == off_a:
                    x = mid
                else:
                    y = mid
            out.append(y)
        a, off_a = b, off_b
    return out


def _openings(zone: ZoneInfo, due: float, window: Window) -> list[float]:
    """Instants in (due, due + horizon] at which ``zone`` may go from quiet to open: each
    local ``end`` (both folds of a repeated hour) and each UTC offset change (a window end
    inside a spring-forward gap opens at the change; a fall-back can step out of a window)."""
    hi = due + _HORIZON
    h, m = divmod(window.end, 60)
    day = datetime.fromtimestamp(due, zone).date()
    out = _transitions(zone, due, hi)
    for d in range(-1, 3):
        date = day + timedelta(days=d)
        for fold in (0, 1):
            wall = datetime(date.year, date.month, date.day, h, m, tzinfo=zone, fold=fold)
            t = wall.timestamp()
            back = datetime.fromtimestamp(t, zone)
            if (back.date(), back.hour, back.minute) == (date, h, m) and due < t <= hi:
                out.append(t)  # a wall time in a gap does not exist: the change covers it
    return out


def _release(zones: tuple[ZoneInfo, ...], due: float, window: Window) -> float:
    candidates = sorted({t for z in zones for t in _openings(z, due, window)})
    best, best_open = due, sum(not is_quiet(z, due, window) for z in zones)
    for t in candidates:
        n = sum(not is_quiet(z, t, window) for z in zones)
        if n == len(zones):
            return t
        if n > best_open:
            best, best_open = t, n
    return best


# (zones, window) -> (from, release): every due in [from, release) releases at ``release``
# too (no instant in between is open), so a night's batch to one region computes once.
_held: dict[tuple[tuple[ZoneInfo, ...], Window], tuple[float, float]] = {}


def release_at(number: str, due: float, window: Window) -> float:
    """The earliest instant ≥ ``due`` at which ``window`` is open in every zone of
    ``number`` (E.164 digits); ``due`` itself when it is open (or no zone is known)."""
    zones = zones_for(number)
    if not zones or window.start == window.end:
        return due
    key = (zones, window)
    seen = _held.get(key)
    if seen is not None and seen[0] <= due < seen[1]:
        return seen[1]
    if not any(is_quiet(z, due, window) for z in zones):
        return due
    release = _release(zones, due, window)
    if release > due:
        if len(_held) >= _CACHE_LIMIT:
            _held.clear()
        _held[key] = (due, release)
    return release


def quiet_until(message: Message, tenant: TenantConfig, override: str, due: float) -> float:
    """Admission's hold rule (``Admission.hold_until`` gives ``due``: the asked-for time, 0
    for now): when ``message`` may leave given the quiet hours of ``override`` (the HTTP
    message's own) or of ``tenant``. ``due`` unless quiet hours move it later."""
    window = window_for(tenant.quiet_hours, override)
    if window is None:
        return due
    start = max(due, message.created_at)
    release = release_at(message.destination_addr, start, window)
    return release if release > start else due


def deferred_until(tenant: TenantConfig, digits: str, window: tuple[str, str] | None,
                   at: float) -> float | None:
    """For ``POST /v1/messages/preview`` (smsc.http.preview's ``DeferredUntil``): when quiet
    hours (the request's ``(start, end)``, else the tenant's) would release a message to
    ``digits`` due at ``at``; None when they would not hold it."""
    w = window_for(tenant.quiet_hours, f"{window[0]}-{window[1]}" if window else "")
    if w is None:
        return None
    release = release_at(digits, at, w)
    return release if release > at else None
