"""routing.quiet: quiet hours on the recipient's wall clock, with a fake clock (``due``).

Daylight-saving changes both ways in Europe/London (2026-03-29 01:00 UTC forward, 2026-10-25
01:00 UTC back) and America/New_York (2026-03-08 07:00 UTC forward, 2026-11-01 06:00 UTC
back), windows across midnight, numbers whose region spans several zones (checked against a
minute-by-minute oracle), a window never open in all zones, unknown zones.
"""

from __future__ import annotations

from datetime import UTC, datetime

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers.tzdata import TIMEZONE_DATA

import routing.quiet as quiet
from routing.quiet import Window, is_quiet, parse_window, release_at, zones_for

NIGHT = parse_window("21:00", "08:00")
LONDON = "447700900100"  # Ofcom drama range: invalid to phonenumbers, +44 by prefix
NEW_YORK = "12015550123"  # New Jersey, America/New_York
SYDNEY = "61291234567"  # fixed line: Australia/Sydney only
AU_MOBILE = "61412345678"  # eight zones, Cocos (+06:30) to Lord Howe (+10:30/+11)
RU_MOBILE = "79161234567"  # sixteen zones, Bucharest (+02) to Anadyr (+12)
US_TOLL_FREE = "18005550100"  # 42 zones, Pago Pago (-11) to Guam (+10)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def oracle(number: str, due: float, window: Window) -> float:
    """The earliest of ``due`` and the minute boundaries after it within two days at which
    the window is open in the most zones (all of them, when that happens)."""
    zones = zones_for(number)
    t0 = (int(due) // 60 + 1) * 60
    best, best_n = due, sum(not is_quiet(z, due, window) for z in zones)
    for t in [due] + [float(t0 + 60 * i) for i in range(2 * 24 * 60)]:
        n = sum(not is_quiet(z, t, window) for z in zones)
        if n == len(zones):
            return t
        if n > best_n:
            best, best_n = t, n
    return best


def test_the_phonenumbers_time_zone_data_is_installed() -> None:
    assert len(TIMEZONE_DATA) > 1000
    assert [str(z) for z in zones_for(NEW_YORK)] == ["America/New_York"]
    assert [str(z) for z in zones_for(SYDNEY)] == ["Australia/Sydney"]
    assert "Europe/London" in {str(z) for z in zones_for(LONDON)}
    assert len(zones_for(AU_MOBILE)) == 8 and len(zones_for(RU_MOBILE)) == 16


def test_windows_parse_and_refuse_what_is_not_a_time_of_day() -> None:
    assert parse_window("21:00", "08:00") == Window(21 * 60, 8 * 60)
    assert str(parse_window("07:05", "23:59")) == "07:05-23:59"
    for bad in ("24:00", "7:00", "07:60", "0700", "07:0x", "٠٧:٠٠"):
        with pytest.raises(ValueError, match=r"HH:MM|time of day"):
            parse_window(bad, "08:00")


def test_a_window_across_midnight_is_quiet_on_both_sides_of_it() -> None:
    w = NIGHT
    assert w.quiet_at(21 * 3600) and w.quiet_at(23 * 3600 + 3599) and w.quiet_at(0)
    assert w.quiet_at(8 * 3600 - 1) and not w.quiet_at(8 * 3600)
    assert not w.quiet_at(12 * 3600) and not w.quiet_at(21 * 3600 - 1)
    day = parse_window("12:00", "13:00")
    assert day.quiet_at(12 * 3600) and not day.quiet_at(13 * 3600) and not day.quiet_at(0)
    assert not parse_window("10:00", "10:00").quiet_at(10 * 3600)  # empty: never quiet


def test_open_now_leaves_now_and_quiet_leaves_at_the_local_end() -> None:
    noon = utc(2026, 6, 15, 11)  # 12:00 BST
    assert release_at(LONDON, noon + 0.25, NIGHT) == noon + 0.25
    assert iso(release_at(LONDON, utc(2026, 6, 15, 21), NIGHT)) == "2026-06-16 07:00"  # 08 BST
    assert iso(release_at(LONDON, utc(2026, 6, 16, 3), NIGHT)) == "2026-06-16 07:00"
    assert iso(release_at(LONDON, utc(2026, 1, 15, 21), NIGHT)) == "2026-01-16 08:00"  # GMT
    assert iso(release_at(NEW_YORK, utc(2026, 6, 16, 2), NIGHT)) == "2026-06-16 12:00"  # EDT
    # before the window starts in the evening, on the same day
    early = parse_window("00:00", "06:30")
    assert iso(release_at(NEW_YORK, utc(2026, 6, 16, 4), early)) == "2026-06-16 10:30"


def test_london_spring_forward() -> None:
    # 2026-03-29 01:00 UTC: 01:00 GMT becomes 02:00 BST
    assert iso(release_at(LONDON, utc(2026, 3, 28, 22), NIGHT)) == "2026-03-29 07:00"
    # a window ending inside the missing hour opens at the change (02:00 BST)
    gap = parse_window("00:30", "01:30")
    assert release_at(LONDON, utc(2026, 3, 29, 0, 45), gap) == utc(2026, 3, 29, 1)
    # a window starting inside the missing hour: quiet from 02:00 BST to its end
    late = parse_window("01:30", "03:00")
    assert release_at(LONDON, utc(2026, 3, 29, 0, 59), late) == utc(2026, 3, 29, 0, 59)
    assert iso(release_at(LONDON, utc(2026, 3, 29, 1), late)) == "2026-03-29 02:00"


def test_london_fall_back() -> None:
    # 2026-10-25 01:00 UTC: 02:00 BST becomes 01:00 GMT (01:00-02:00 happens twice)
    assert iso(release_at(LONDON, utc(2026, 10, 24, 21), NIGHT)) == "2026-10-25 08:00"
    twice = parse_window("00:00", "01:30")
    # 00:10 BST: released at the first 01:30 (BST) ...
    assert iso(release_at(LONDON, utc(2026, 10, 24, 23, 10), twice)) == "2026-10-25 00:30"
    # ... 01:45 BST is open, and 01:10 GMT (the hour again) is quiet until 01:30 GMT
    assert release_at(LONDON, utc(2026, 10, 25, 0, 45), twice) == utc(2026, 10, 25, 0, 45)
    assert iso(release_at(LONDON, utc(2026, 10, 25, 1, 10), twice)) == "2026-10-25 01:30"
    # the clock stepping back out of a window opens it: 01:50 BST -> 01:00 GMT
    stepped = parse_window("01:30", "02:30")
    assert iso(release_at(LONDON, utc(2026, 10, 25, 0, 50), stepped)) == "2026-10-25 01:00"


def test_new_york_spring_forward_and_fall_back() -> None:
    # 2026-03-08 07:00 UTC: 02:00 EST becomes 03:00 EDT
    assert iso(release_at(NEW_YORK, utc(2026, 3, 8, 3), NIGHT)) == "2026-03-08 12:00"  # 08 EDT
    assert iso(release_at(NEW_YORK, utc(2026, 3, 7, 3), NIGHT)) == "2026-03-07 13:00"  # 08 EST
    gap = parse_window("22:00", "02:30")
    assert iso(release_at(NEW_YORK, utc(2026, 3, 8, 6), gap)) == "2026-03-08 07:00"  # 03 EDT
    # 2026-11-01 06:00 UTC: 02:00 EDT becomes 01:00 EST
    assert iso(release_at(NEW_YORK, utc(2026, 11, 1, 3), NIGHT)) == "2026-11-01 13:00"  # 08 EST
    assert iso(release_at(NEW_YORK, utc(2026, 10, 31, 3), NIGHT)) == "2026-10-31 12:00"


def test_a_multi_zone_number_waits_until_every_zone_is_open() -> None:
    # June: Sydney +10, Lord Howe +10:30, Cocos +06:30; open everywhere 01:30-10:30 UTC
    assert iso(release_at(SYDNEY, utc(2026, 6, 15, 21), NIGHT)) == "2026-06-15 22:00"
    assert iso(release_at(AU_MOBILE, utc(2026, 6, 15, 21), NIGHT)) == "2026-06-16 01:30"
    assert iso(release_at(AU_MOBILE, utc(2026, 6, 16, 11), NIGHT)) == "2026-06-17 01:30"
    assert release_at(AU_MOBILE, utc(2026, 6, 16, 5), NIGHT) == utc(2026, 6, 16, 5)


@pytest.mark.parametrize("number", [AU_MOBILE, RU_MOBILE, NEW_YORK, LONDON])
@pytest.mark.parametrize("due", [
    utc(2026, 3, 28, 19, 17), utc(2026, 3, 29, 0, 40), utc(2026, 3, 8, 5), utc(2026, 4, 4, 14),
    utc(2026, 10, 3, 13, 59), utc(2026, 10, 24, 22, 30), utc(2026, 10, 31, 23), utc(2026, 7, 1),
])
@pytest.mark.parametrize("window", [NIGHT, parse_window("22:30", "07:15"),
                                    parse_window("01:30", "02:30")])
def test_release_matches_a_minute_by_minute_oracle(number: str, due: float,
                                                   window: Window) -> None:
    assert release_at(number, due, window) == oracle(number, due, window)


@settings(max_examples=30, deadline=None)
@given(number=st.sampled_from([AU_MOBILE, RU_MOBILE, NEW_YORK, LONDON, SYDNEY,
                               "5511912345678", "525512345678"]),  # Brazil, Mexico
       due=st.floats(utc(2026, 1, 1), utc(2027, 1, 1)),
       start=st.integers(0, 24 * 60 - 1), end=st.integers(0, 24 * 60 - 1))
def test_release_matches_the_oracle_for_any_time_and_window(number: str, due: float,
                                                            start: int, end: int) -> None:
    window = Window(start, end)
    assert release_at(number, due, window) == oracle(number, due, window)


def test_a_window_never_open_in_all_zones_releases_where_most_are_open() -> None:
    # Bucharest (+03 in summer) to Anadyr (+12): 10:00-18:00 is never open in all at once
    wide = parse_window("18:00", "10:00")
    for number in (RU_MOBILE, US_TOLL_FREE):
        zones = zones_for(number)
        due = utc(2026, 6, 15, 3)
        got = release_at(number, due, wide)
        assert due <= got < due + 86_400
        assert got == oracle(number, due, wide)
        assert 0 < sum(not is_quiet(z, got, wide) for z in zones) < len(zones)
    # 08:00-21:00 is open in all 42 zones of a US toll-free number: 11:00-21:00 Pago Pago
    assert iso(release_at(US_TOLL_FREE, utc(2026, 6, 15, 3), NIGHT)) == "2026-06-15 22:00"


def test_unknown_zones_and_empty_windows_have_no_quiet_hours() -> None:
    night = utc(2026, 6, 15, 1)
    assert zones_for("999123456") == ()  # no country code of that kind
    assert release_at("999123456", night, NIGHT) == night
    assert release_at(LONDON, night, parse_window("00:00", "00:00")) == night


def test_numbers_are_parsed_once_per_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = phonenumbers.parse

    def counting(text: str, *a: object) -> phonenumbers.PhoneNumber:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(quiet, "_by_key", {})
    monkeypatch.setattr(phonenumbers, "parse", counting)
    for last in range(100):
        zones_for(f"120155501{last:02d}")
    assert len(calls) == 1
    zones_for("12125550100")
    assert len(calls) == 2


def test_a_night_of_messages_to_one_region_computes_once() -> None:
    first = release_at(RU_MOBILE, utc(2026, 6, 15, 20), NIGHT)
    assert all(release_at(RU_MOBILE, utc(2026, 6, 15, 20) + s, NIGHT) == first
               for s in range(0, 3600, 7))
    assert first == oracle(RU_MOBILE, utc(2026, 6, 15, 20, 59), NIGHT)
