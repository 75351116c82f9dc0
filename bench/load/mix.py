"""The message mix: short GSM-7, UCS-2 and long texts (message_payload the gateway splits).

``parse_mix("gsm7=90,ucs2=5,long=5")`` gives weights; ``MessageFactory`` precomputes a pool of
encoded bodies and a fixed, shuffled sequence of kinds (seeded), so making a submit_sm on the
hot path is one Struct construction: no text encoding, no random calls.
"""

from __future__ import annotations

import random
from typing import Final

import msgspec

from encoding.pdu import SubmitSm

__all__ = ["DEFAULT_MIX", "MessageFactory", "Mix", "parse_mix"]

DEFAULT_MIX: Final = "gsm7=90,ucs2=5,long=5"
_KINDS: Final = ("gsm7", "ucs2", "long")
_POOL: Final = 64  # distinct bodies per kind
_PATTERN: Final = 1000  # length of the repeating kind sequence


class Mix(msgspec.Struct, frozen=True):
    gsm7: float = 90.0
    ucs2: float = 5.0
    long: float = 5.0
    long_chars: int = 300  # GSM-7 characters of a long text (300 = 2 parts of 153)


def parse_mix(text: str, long_chars: int = 300) -> Mix:
    """``"gsm7=90,ucs2=5,long=5"`` -> Mix; ValueError with the reason when malformed."""
    weights = {"gsm7": 0.0, "ucs2": 0.0, "long": 0.0}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in weights:
            raise ValueError(f"mix: expected KIND=WEIGHT with KIND in {_KINDS}, got {item!r}")
        try:
            weights[key] = float(value)
        except ValueError:
            raise ValueError(f"mix: weight of {key} is not a number: {value!r}") from None
        if weights[key] < 0:
            raise ValueError(f"mix: weight of {key} is negative")
    if sum(weights.values()) <= 0:
        raise ValueError("mix: at least one weight must be positive")
    if not 161 <= long_chars <= 10_000:
        raise ValueError("long_chars: must be 161..10000")
    return Mix(long_chars=long_chars, **weights)


class MessageFactory:
    """Builds submit_sm PDUs of the mix, registered_delivery=1, cycling through a pool."""

    __slots__ = ("_bodies", "_dests", "_kinds", "_n", "counts")

    def __init__(self, mix: Mix, seed: int = 1) -> None:
        rng = random.Random(seed)
        total = mix.gsm7 + mix.ucs2 + mix.long
        kinds: list[int] = []
        for i, weight in enumerate((mix.gsm7, mix.ucs2, mix.long)):
            kinds.extend([i] * round(weight / total * _PATTERN))
        while len(kinds) < _PATTERN:
            kinds.append(0 if mix.gsm7 else (1 if mix.ucs2 else 2))
        rng.shuffle(kinds)
        self._kinds = kinds[:_PATTERN]
        filler = "The quick brown fox jumps over the lazy dog 0123456789. "
        gsm = [f"Bench {i:03d}: your code is {rng.randrange(10**6):06d}".encode("ascii")
               for i in range(_POOL)]
        ucs = [f"Тест {i:03d} 你好 — ünïcödé".encode("utf-16-be") for i in range(_POOL)]
        longs = [((f"Long {i:03d} " + filler * 200)[:mix.long_chars]).encode("ascii")
                 for i in range(_POOL)]
        self._bodies = (gsm, ucs, longs)
        self._dests = [f"4479{rng.randrange(10**8):08d}" for _ in range(_POOL)]
        self._n = 0
        self.counts = [0, 0, 0]

    def make(self) -> SubmitSm:
        n = self._n
        self._n = n + 1
        kind = self._kinds[n % _PATTERN]
        self.counts[kind] += 1
        body = self._bodies[kind][n % _POOL]
        dest = self._dests[n % _POOL]
        if kind == 0:
            return SubmitSm(source_addr_ton=1, source_addr_npi=1, source_addr="447700900000",
                            dest_addr_ton=1, dest_addr_npi=1, destination_addr=dest,
                            registered_delivery=1, short_message=body)
        if kind == 1:
            return SubmitSm(source_addr_ton=1, source_addr_npi=1, source_addr="447700900000",
                            dest_addr_ton=1, dest_addr_npi=1, destination_addr=dest,
                            registered_delivery=1, data_coding=8, short_message=body)
        return SubmitSm(source_addr_ton=1, source_addr_npi=1, source_addr="447700900000",
                        dest_addr_ton=1, dest_addr_npi=1, destination_addr=dest,
                        registered_delivery=1, tlvs={"message_payload": body})

    def kind_counts(self) -> dict[str, int]:
        return dict(zip(_KINDS, self.counts, strict=True))
