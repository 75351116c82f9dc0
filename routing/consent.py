"""Consent: who opted out of which tenant's messages, with its history, and the hot-path index.

A consent record says that ``number`` opted out of (or back into) ``tenant``'s messages, how
(``source``: ``keyword`` for an inbound STOP/START, ``api`` for ``PUT``/``DELETE
/v1/opt-outs/{number}``), with what (``detail``: the keyword, or the API caller), because of
which inbound message (``inbound_id``) and when. Records are only ever added: the latest one
of a number is its state, the rest its history (http-api.md, "Two-way, consent and
opt-out").

``Consent.opted_out(tenant, number)`` is asked for every submission by admission (both
doors) and costs a dict and a set lookup, no query: the opted-out numbers are loaded from
the store at start and kept in memory. A change is written in the pending group commit
(``ConsentStore.add``); an opt-out enters the index at once (a message decided meanwhile is
refused: the safe side), an opt-in leaves it once its record is durable (a crash before
cannot have sent a message the store still says was refused).

Numbers are normalised once, as messages hold ``destination_addr``: digits, no ``+``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, Literal, Protocol

import msgspec

from encoding.constants import CommandStatus

from .repository import Durable

__all__ = ["Consent", "ConsentRecord", "ConsentStore", "State", "Source", "normalise",
           "OPTED_OUT", "OPTED_IN", "OPTED_OUT_STATUS"]

State = Literal["opted_out", "opted_in"]
Source = Literal["keyword", "api"]
OPTED_OUT: Final = "opted_out"
OPTED_IN: Final = "opted_in"
_EMPTY: Final[frozenset[str]] = frozenset()
# A message to a number that opted out of the tenant's messages: SMPP 3.4 section 5.1.3's
# ESME_RX_R_APPN, "ESME receiver reject message error": the recipient refuses it, do not
# retry. Over HTTP the recipient's error code is ``opted_out``.
OPTED_OUT_STATUS: Final[int] = CommandStatus.ESME_RX_R_APPN


class ConsentRecord(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One change of a number's consent (the ``consent`` table's row)."""

    tenant: str
    number: str  # digits, no '+'
    state: State
    source: Source
    detail: str = ""  # the keyword as received (upper case), or the API caller
    inbound_id: str = ""  # the inbound message of a keyword change
    at: float = 0.0


class ConsentStore(Protocol):
    """Where consent records live (``routing.sqlite.consent.SqliteConsent``)."""

    def add(self, record: ConsentRecord) -> Durable:
        """Queue ``record`` in the pending group commit; durable when the result is."""
        ...

    def opted_out_now(self) -> Iterable[tuple[str, str]]:
        """(tenant, number) of every number whose latest record is an opt-out."""
        ...

    def history(self, tenant: str, number: str) -> list[ConsentRecord]:
        """A number's records, oldest first."""
        ...

    def page(self, tenant: str, after: str, limit: int) -> list[ConsentRecord]:
        """The latest record of numbers now opted out, by number, after ``after``."""
        ...


def normalise(number: str) -> str:
    """The form consent and messages hold a number in: digits, no '+' (one call per
    number, where it enters: a keyword's sender, an API path)."""
    return number.strip().removeprefix("+")


class Consent:
    """The consent records of every tenant and the in-memory index of opt-outs."""

    def __init__(self, store: ConsentStore) -> None:
        self.store = store
        self._out: dict[str, set[str]] = {}
        self._leaving: set[tuple[str, str]] = set()  # opt-ins written, not yet durable
        self.changes = 0  # records written since start (metrics)
        for tenant, number in store.opted_out_now():
            self._out.setdefault(tenant, set()).add(number)

    def opted_out(self, tenant: str, number: str) -> bool:
        """Whether ``number`` (normalised: digits, no '+') opted out of ``tenant``."""
        return number in self._out.get(tenant, _EMPTY)

    def count(self) -> dict[str, int]:
        """Opted-out numbers per tenant (bounded by the configured tenants)."""
        return {t: len(numbers) for t, numbers in self._out.items()}

    def change(self, tenant: str, number: str, state: State, source: Source, now: float,
               *, detail: str = "", inbound_id: str = "",
               on_durable: Callable[[bool], None] | None = None
               ) -> tuple[ConsentRecord | None, Durable | None]:
        """Record that ``number`` is now ``state`` for ``tenant``: the new record and its
        Durable, or (None, None) when the number already is in that state (nothing is
        written: history holds changes, not repeats)."""
        out = number in self._out.get(tenant, _EMPTY) and (tenant, number) not in self._leaving
        if out == (state == OPTED_OUT):
            return None, None
        record = ConsentRecord(tenant=tenant, number=number, state=state, source=source,
                               detail=detail, inbound_id=inbound_id, at=now)
        durable = self.store.add(record)
        self.changes += 1
        if state == OPTED_OUT:
            self._leaving.discard((tenant, number))
            self._out.setdefault(tenant, set()).add(number)
        else:
            self._leaving.add((tenant, number))

        def done(fut: Any) -> None:
            ok = fut.exception() is None
            if state == OPTED_OUT and not ok:
                self._out.get(tenant, set()).discard(number)  # it was never stored
            elif state == OPTED_IN and (tenant, number) in self._leaving:
                self._leaving.discard((tenant, number))
                if ok:  # and no opt-out came meanwhile (that one cleared _leaving)
                    self._out.get(tenant, set()).discard(number)
            if on_durable is not None:
                on_durable(ok)

        durable.add_done_callback(done)
        return record, durable

    def learned(self, tenant: str, number: str, state: str) -> None:
        """A record another node wrote (a cluster, routing.nats): the index follows it."""
        if state == OPTED_OUT:
            self._out.setdefault(tenant, set()).add(number)
        else:
            self._out.get(tenant, set()).discard(number)

    def current(self, tenant: str, number: str) -> tuple[State, Sequence[ConsentRecord]]:
        """A number's state and its history (a number never seen is opted in)."""
        history = self.store.history(tenant, number)
        state: State = OPTED_OUT if self.opted_out(tenant, number) else OPTED_IN
        return state, history

    def page(self, tenant: str, after: str, limit: int) -> list[ConsentRecord]:
        return self.store.page(tenant, after, limit)
