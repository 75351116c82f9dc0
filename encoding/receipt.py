"""Delivery receipts: the Appendix B text, its stat words and the message_state TLV.

SMPP 3.4 Appendix B gives the de facto receipt text carried in the short_message of a
deliver_sm with esm_class type 0x04::

    id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD
    err:E Text: . . .

and section 5.2.28 the ``message_state`` values that the stat words stand for.
``format_receipt`` writes the gateway's own receipts (one fixed, conservative layout);
``parse_receipt`` reads what operators send, which varies a lot (key case and order, missing
fields, 12/14-digit dates, letters in err, UTF-16 bodies, receipts carried only in the
``receipted_message_id``/``message_state`` TLVs). Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Final

import msgspec

from .constants import MessageState

__all__ = [
    "FINAL_STATES",
    "STATE_TO_STAT",
    "STAT_TO_STATE",
    "Receipt",
    "format_receipt",
    "parse_receipt",
]

#: stat word -> message_state (SMPP 3.4 section 5.2.28; SCHEDLD/SKIPPED from v5). The
#: non-standard interim words ACKED, BUFFRED and BUFFERD count as ENROUTE (as Kannel does).
STAT_TO_STATE: Final[dict[str, int]] = {
    "SCHEDLD": int(MessageState.SCHEDULED),
    "ENROUTE": int(MessageState.ENROUTE),
    "DELIVRD": int(MessageState.DELIVERED),
    "EXPIRED": int(MessageState.EXPIRED),
    "DELETED": int(MessageState.DELETED),
    "UNDELIV": int(MessageState.UNDELIVERABLE),
    "ACCEPTD": int(MessageState.ACCEPTED),
    "UNKNOWN": int(MessageState.UNKNOWN),
    "REJECTD": int(MessageState.REJECTED),
    "SKIPPED": int(MessageState.SKIPPED),
    "ACKED": int(MessageState.ENROUTE),
    "BUFFRED": int(MessageState.ENROUTE),
    "BUFFERD": int(MessageState.ENROUTE),
}

#: message_state -> the canonical stat word written for it.
STATE_TO_STAT: Final[dict[int, str]] = {
    int(MessageState.SCHEDULED): "SCHEDLD",
    int(MessageState.ENROUTE): "ENROUTE",
    int(MessageState.DELIVERED): "DELIVRD",
    int(MessageState.EXPIRED): "EXPIRED",
    int(MessageState.DELETED): "DELETED",
    int(MessageState.UNDELIVERABLE): "UNDELIV",
    int(MessageState.ACCEPTED): "ACCEPTD",
    int(MessageState.UNKNOWN): "UNKNOWN",
    int(MessageState.REJECTED): "REJECTD",
    int(MessageState.SKIPPED): "SKIPPED",
}

#: States after which no further receipt is expected. UNKNOWN (ambiguous in the spec) is
#: counted as final so that a message is never left open forever; ACCEPTD follows 3.4.
FINAL_STATES: Final[frozenset[int]] = frozenset(
    {
        int(MessageState.DELIVERED),
        int(MessageState.EXPIRED),
        int(MessageState.DELETED),
        int(MessageState.UNDELIVERABLE),
        int(MessageState.ACCEPTED),
        int(MessageState.UNKNOWN),
        int(MessageState.REJECTED),
        int(MessageState.SKIPPED),
    }
)


class Receipt(msgspec.Struct, frozen=True):
    """A parsed delivery receipt. Text fields are kept as written (dates as raw digits)."""

    id: str
    stat: str
    err: str = "000"
    sub: str | None = None
    dlvrd: str | None = None
    submit_date: str | None = None
    done_date: str | None = None
    text: str | None = None
    message_state: int | None = None

    @property
    def final(self) -> bool:
        """True when the state ends the message's life (see ``FINAL_STATES``)."""
        return self.message_state is not None and self.message_state in FINAL_STATES


# --- generator ------------------------------------------------------------------------

_ID_RE: Final = re.compile(r"[0-9A-Za-z_-]{1,64}")
_STAT_RE: Final = re.compile(r"[A-Z]{1,7}")
_DATE_FORMAT: Final = "%y%m%d%H%M"
_TEXT_LEN: Final = 20
# Printable ASCII that is in the GSM 03.38 base table, minus "@" (septet 0x00, which
# unpacked-GSM C clients take for a NUL). Everything else becomes "?".
_GSM_SAFE: Final = frozenset(chr(c) for c in range(0x20, 0x7F) if chr(c) not in "@[\\]^`{|}~")


_GSM_UNSAFE_RE: Final = re.compile(
    "[^" + "".join(re.escape(c) for c in sorted(_GSM_SAFE)) + "]")


def _gsm_safe(text: str) -> str:
    return _GSM_UNSAFE_RE.sub("?", text[:_TEXT_LEN])


@functools.lru_cache(maxsize=16)
def _date_text(d: datetime) -> str:
    """YYMMDDhhmm; cached, as receipts sent in the same minute share their dates."""
    return d.strftime(_DATE_FORMAT)


def format_receipt(
    message_id: str,
    stat: str,
    *,
    err: str = "000",
    submit_date: datetime,
    done_date: datetime,
    text: str = "",
    submitted: int = 1,
    delivered: int | None = None,
) -> bytes:
    """The Appendix B receipt text the gateway sends to tenants, as ASCII bytes.

    Layout (reference section 10.2 policy)::

        id:<id> sub:001 dlvrd:<001|000> submit date:YYMMDDhhmm done date:YYMMDDhhmm
        stat:<stat> err:<3 digits> text:<first 20 chars, GSM-safe ASCII>

    ``delivered`` defaults to ``submitted`` when stat is DELIVRD, else 0. Dates are written
    as given (pass the zone you promise tenants). Raises ``ValueError`` for an id outside
    ``[0-9A-Za-z_-]{1,64}``, a stat that is not 1-7 letters, an err that is not 1-3 digits
    (shorter values are zero-padded) or counts outside 0..999.
    """
    if _ID_RE.fullmatch(message_id) is None:
        raise ValueError(f"receipt id must match [0-9A-Za-z_-]{{1,64}}: {message_id!r}")
    stat_word = stat.upper()
    if _STAT_RE.fullmatch(stat_word) is None:
        raise ValueError(f"receipt stat must be 1-7 letters: {stat!r}")
    if not (err.isascii() and err.isdigit() and 1 <= len(err) <= 3):
        raise ValueError(f"receipt err must be 1-3 digits: {err!r}")
    if delivered is None:
        delivered = submitted if stat_word == "DELIVRD" else 0
    for name, count in (("submitted", submitted), ("delivered", delivered)):
        if not 0 <= count <= 999:
            raise ValueError(f"receipt {name} must be 0..999: {count}")
    line = (
        f"id:{message_id} sub:{submitted:03d} dlvrd:{delivered:03d}"
        f" submit date:{_date_text(submit_date)}"
        f" done date:{_date_text(done_date)}"
        f" stat:{stat_word} err:{err.zfill(3)} text:{_gsm_safe(text)}"
    )
    return line.encode("ascii")


# --- parser ---------------------------------------------------------------------------

# A key starts at the beginning or after a non-word character; "submit date" may also be
# written "submit_date" or "submitdate". Matching is case-insensitive.
_KEY_RE: Final = re.compile(
    r"(?<![0-9A-Za-z_])(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text)[ \t]*:",
    re.IGNORECASE,
)
_TOKEN_RE: Final = re.compile(r"\S+")
_DIGITS_RE: Final = re.compile(r"[0-9]+")
_ID_PREFIX_RE: Final = re.compile(r"[0-9A-Za-z_-]+")
_UTF16_MARKERS: Final = (b"\x00i\x00d", b"\x00I\x00D", b"\x00I\x00d")
_STRIP: Final = " \t\r\n\x00"


# The layout of SMPP 3.4 Appendix B as nearly every SMSC writes it: matched in one step on the
# raw bytes; anything else goes through the general key scanner below.
_STANDARD_RE: Final = re.compile(
    rb"id:([0-9A-Za-z_-]+) sub:([0-9]+) dlvrd:([0-9]+)"
    rb" submit date:([0-9]{14}|[0-9]{12}|[0-9]{10}) done date:([0-9]{14}|[0-9]{12}|[0-9]{10})"
    rb" stat:([A-Za-z]+) err:(\S+) [Tt]ext:(.*)\Z",
    re.DOTALL,
)


def _parse_standard(short_message: bytes, receipted_message_id: str | None,
                    message_state: int | None) -> Receipt | None:
    m = _STANDARD_RE.match(short_message)
    if m is None:
        return None
    ident, sub, dlvrd, submit, done, stat_raw, err, text = (
        g.decode("latin-1") for g in m.groups())
    if receipted_message_id is not None:
        ident = receipted_message_id.strip(_STRIP) or ident
    stat = stat_raw.upper()
    state = message_state if message_state is not None else STAT_TO_STATE.get(stat)
    return Receipt(id=ident, stat=stat, err=err, sub=sub, dlvrd=dlvrd, submit_date=submit,
                   done_date=done, text=text.rstrip("\r\n\x00"), message_state=state)


def _decode_body(short_message: bytes) -> str:
    """UTF-16BE when the body starts with "id" in UTF-16BE, else Latin-1 (never fails)."""
    if short_message[:4] in _UTF16_MARKERS:
        return short_message.decode("utf-16-be", errors="replace")
    return short_message.decode("latin-1")


def _fields(body: str) -> dict[str, str]:
    """Raw values by canonical key; the first occurrence wins, ``text`` takes the rest."""
    found: dict[str, str] = {}
    matches = list(_KEY_RE.finditer(body))
    for i, match in enumerate(matches):
        key = match.group(1).lower().replace("_", " ")
        if key in ("submitdate", "donedate"):
            key = key[:-4] + " date"
        if key == "text":
            found.setdefault(key, body[match.end() :])
            break
        end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
        found.setdefault(key, body[match.end() : end])
    return found


def _token(value: str | None) -> str | None:
    if value is None:
        return None
    token = _TOKEN_RE.search(value)
    return token.group(0) if token else None


def _digits(value: str | None, lengths: tuple[int, ...] | None = None) -> str | None:
    if value is None:
        return None
    digits = _DIGITS_RE.match(value.strip(_STRIP))
    if digits is None:
        return None
    if lengths is not None and len(digits.group(0)) not in lengths:
        return None
    return digits.group(0)


def _text_id(value: str | None) -> str | None:
    token = _token(value)
    if token is None:
        return None
    ident = _ID_PREFIX_RE.match(token)
    return ident.group(0) if ident else None


def parse_receipt(
    short_message: bytes,
    *,
    receipted_message_id: str | None = None,
    message_state: int | None = None,
) -> Receipt | None:
    """Read a receipt from its text and/or TLVs; ``None`` when it is not one. Never raises.

    Keys are matched case-insensitively in any order and each value runs to the next known
    key; ``text`` takes the rest of the body. The TLVs (``receipted_message_id``,
    ``message_state``) override the text. ``None`` is returned unless both an id (text or
    TLV) and a state (stat word or TLV) are found. A TLV-only receipt gets the canonical stat
    word of its state ("UNKNOWN" for a state outside 0..9).
    """
    fast = _parse_standard(short_message, receipted_message_id, message_state)
    if fast is not None:
        return fast
    fields = _fields(_decode_body(short_message))
    ident = _text_id(fields.get("id"))
    if receipted_message_id is not None:
        tlv_id = receipted_message_id.strip(_STRIP)
        if tlv_id:
            ident = tlv_id
    stat_token = _token(fields.get("stat"))
    stat = stat_token.upper() if stat_token else None
    state = message_state
    if state is None and stat is not None:
        state = STAT_TO_STATE.get(stat)
    if stat is None and state is not None:
        stat = STATE_TO_STAT.get(state, "UNKNOWN")
    if ident is None or stat is None:
        return None
    text = fields.get("text")
    return Receipt(
        id=ident,
        stat=stat,
        err=_token(fields.get("err")) or "000",
        sub=_digits(fields.get("sub")),
        dlvrd=_digits(fields.get("dlvrd")),
        submit_date=_digits(fields.get("submit date"), (10, 12, 14)),
        done_date=_digits(fields.get("done date"), (10, 12, 14)),
        text=None if text is None else text.rstrip("\r\n\x00"),
        message_state=state,
    )
