"""SMPP time fields: absolute and relative formats (SMPP 3.4 section 7.1.1).

Absolute ``YYMMDDhhmmsstnnp``: tenths ``t``, ``nn`` quarter hours from UTC (00-48), ``p``
'+' or '-'. Relative ``YYMMDDhhmmss000R``: an interval added to ``now``. The empty string
(NULL) means "not given". ``now`` is an argument: this module reads no clock.
"""

from __future__ import annotations

import calendar
import time

__all__ = ["parse_smpp_time", "format_smpp_time"]


def parse_smpp_time(value: str, now: float) -> float | None:
    """Seconds since the epoch the field stands for, or None when empty.

    Raises ValueError for anything that is not a well-formed 16-character time.
    """
    if not value:
        return None
    if len(value) != 16 or not value[:15].isdigit():
        raise ValueError(f"time {value!r} is not 16 characters of the form YYMMDDhhmmsstnnp")
    yy, mo, dd, hh, mi, ss = (int(value[i:i + 2]) for i in range(0, 12, 2))
    tenths, quarters, sign = int(value[12]), int(value[13:15]), value[15]
    if sign == "R":
        if tenths or quarters:
            raise ValueError(f"relative time {value!r} must end in 000R")
        return now + ((((yy * 365 + mo * 30 + dd) * 24 + hh) * 60 + mi) * 60 + ss)
    if sign not in "+-" or quarters > 48:
        raise ValueError(f"time {value!r} has a bad UTC offset")
    if not (1 <= mo <= 12 and 1 <= dd <= 31 and hh < 24 and mi < 60 and ss < 60):
        raise ValueError(f"time {value!r} is not a valid date")
    try:
        base = calendar.timegm((2000 + yy, mo, dd, hh, mi, ss, 0, 0, 0))
    except (OverflowError, ValueError) as exc:
        raise ValueError(f"time {value!r}: {exc}") from None
    offset = quarters * 900
    return base - offset + tenths / 10 if sign == "+" else base + offset + tenths / 10


def format_smpp_time(epoch: float) -> str:
    """Absolute UTC form, ``YYMMDDhhmmss000+`` (what Kannel sends)."""
    return time.strftime("%y%m%d%H%M%S", time.gmtime(epoch)) + f"{int(epoch * 10) % 10}00+"
