"""Reassembly of concatenated short messages (MO from operators, tenant MT forwarded whole).

Implements the receiving side of 3GPP TS 23.040 section 9.2.3.24.1/9.2.3.24.8 (concatenation
IEs 0x00 and 0x08) and of the SMPP 3.4 SAR TLVs (section 5.3.2.22-24), following section 9.5
of the gateway's SMPP reference:

* parts are grouped by (key, reference, total); ``key`` is the caller's (bind or operator id,
  source_addr, destination_addr, remaining UDH ...), since 8-bit references repeat;
* parts arrive in any order and may repeat: the first copy of each part number is kept;
* part number 0 or above the total is rejected (TextError ESME_RINVESMCLASS);
* parts are joined as octets *before* decoding, because senders cut surrogate pairs and
  GSM-7 escape pairs across parts;
* time is an argument: a group expires ``timeout_s`` after its first part (policy 600 s);
  :meth:`Reassembler.expire` hands timed-out groups back so the caller can deliver what
  arrived (flagged partial) or drop it.

No I/O and no clock here; ``now`` must not go backwards (use a monotonic clock).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from ..constants import CommandStatus
from ..errors import TextError
from .codec import decode_text
from .udh import Udh, parse_udh

__all__ = ["Reassembler", "reassemble"]

_GroupId = tuple[Hashable, int, int]


class _Group:
    __slots__ = ("deadline", "parts")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.parts: dict[int, bytes] = {}


class Reassembler:
    """Joins concatenated parts keyed by (key, reference, total).

    Parts are joined as bytes before decoding (clients cut surrogate pairs / GSM escapes
    across parts). The first copy of each seqnum is kept; seqnum 0 or > total is rejected.
    At most ``max_pending`` incomplete groups are held: a part that would open one more
    raises TextError(ESME_RMSGQFUL) so the sender retries later (nothing is evicted).
    """

    def __init__(self, timeout_s: float = 600.0, max_pending: int = 10_000) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self._timeout = timeout_s
        self._max_pending = max_pending
        # Insertion order is deadline order, because every group lives timeout_s from its
        # first part and ``now`` does not go backwards.
        self._groups: dict[_GroupId, _Group] = {}

    def add(
        self,
        key: Hashable,
        reference: int,
        total: int,
        seqnum: int,
        user_data: bytes,
        now: float,
    ) -> bytes | None:
        """Store one part; the joined user data once all ``total`` parts arrived, else None.

        Raises TextError: ESME_RINVESMCLASS when ``total`` is not 1..255 or ``seqnum`` is not
        1..total; ESME_RMSGQFUL when ``max_pending`` groups are already waiting.
        """
        if not 1 <= total <= 255 or not 1 <= seqnum <= total:
            raise TextError(
                f"concatenation part {seqnum} of {total} is invalid",
                CommandStatus.ESME_RINVESMCLASS,
            )
        if total == 1:
            return user_data
        gid = (key, reference, total)
        group = self._groups.get(gid)
        if group is None:
            if len(self._groups) >= self._max_pending:
                raise TextError(
                    f"{len(self._groups)} concatenated messages already pending",
                    CommandStatus.ESME_RMSGQFUL,
                )
            group = self._groups[gid] = _Group(now + self._timeout)
        parts = group.parts
        parts.setdefault(seqnum, user_data)
        if len(parts) < total:
            return None
        del self._groups[gid]
        return b"".join([parts[i] for i in range(1, total + 1)])

    def expire(self, now: float) -> list[tuple[Hashable, int, int, dict[int, bytes]]]:
        """Remove and return the groups whose deadline is at or before ``now``.

        Each item is (key, reference, total, parts by seqnum), oldest first; deliver what
        arrived (flagged partial) or drop it, per tenant policy.
        """
        expired: list[tuple[Hashable, int, int, dict[int, bytes]]] = []
        groups = self._groups
        while groups:
            gid = next(iter(groups))
            group = groups[gid]
            if group.deadline > now:
                break
            del groups[gid]
            expired.append((gid[0], gid[1], gid[2], group.parts))
        return expired

    def next_deadline(self) -> float | None:
        """When :meth:`expire` next has work, or None when nothing is pending."""
        if not self._groups:
            return None
        return self._groups[next(iter(self._groups))].deadline

    def __len__(self) -> int:
        return len(self._groups)


def reassemble(
    short_messages: Sequence[bytes],
    data_coding: int,
    *,
    dcs0: str = "gsm7",
    udhi: bool | None = None,
) -> str:
    """Text of a message from its short_messages, each with a UDH (or one bare message).

    Parts are ordered by seqnum (first copy kept), their user data joined as bytes and
    decoded; national shift IEs (0x24/0x25) of the first part that has them are honoured.
    ``udhi`` None means: a UDH when there are several messages, and for a single message only
    when it parses and carries a concatenation or shift element.
    Raises TextError (ESME_RINVESMCLASS) on a malformed or missing UDH or missing parts.
    """
    if not short_messages:
        return ""
    if udhi is None:
        udhi = len(short_messages) > 1 or _looks_like_udh(short_messages[0])
    if not udhi:
        return decode_text(b"".join(short_messages), data_coding, dcs0=dcs0)
    parts: dict[int, bytes] = {}
    single_shift = locking_shift = 0
    total = 1
    for short_message in short_messages:
        udh, user_data = parse_udh(short_message)
        if udh.concat is None:
            if len(short_messages) > 1:
                raise TextError("part without a concatenation element", _BAD)
            seqnum = 1
        else:
            _, total, seqnum = udh.concat
        parts.setdefault(seqnum, user_data)
        if not (single_shift or locking_shift):
            single_shift, locking_shift = udh.single_shift, udh.locking_shift
    missing = [i for i in range(1, total + 1) if i not in parts]
    if missing or len(parts) != total:
        raise TextError(f"parts {missing} of {total} missing or out of range", _BAD)
    joined = b"".join([parts[i] for i in range(1, total + 1)])
    return decode_text(
        joined,
        data_coding,
        dcs0=dcs0,
        single_shift=single_shift,
        locking_shift=locking_shift,
    )


_BAD = CommandStatus.ESME_RINVESMCLASS


def _looks_like_udh(short_message: bytes) -> bool:
    try:
        udh: Udh = parse_udh(short_message)[0]
    except TextError:
        return False
    return udh.concat is not None or bool(udh.single_shift or udh.locking_shift)
