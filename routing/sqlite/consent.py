"""``ConsentStore`` on SQLite: the ``consent`` table (schema 6), written by group commit.

A record is a row added to the pending ``Ops`` (``Ops.add_consent``), so it is durable in
the same commit as whatever rides with it (the confirmation message, the
``contact.opted_*`` event). Reads run on the store's reader connection: the latest row of a
number (highest rowid) is its state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from ..consent import ConsentRecord, Source, State
from ..repository import Durable
from .committer import GroupCommitter
from .store import Store

__all__ = ["SqliteConsent"]

_COLUMNS = "tenant, number, state, source, detail, inbound_id, at"


def _record(row: tuple[object, ...]) -> ConsentRecord:
    return ConsentRecord(tenant=str(row[0]), number=str(row[1]), state=cast(State, row[2]),
                         source=cast(Source, row[3]), detail=str(row[4]),
                         inbound_id=str(row[5]), at=float(cast(float, row[6])))


class SqliteConsent:
    def __init__(self, store: Store, committer: GroupCommitter) -> None:
        self._store = store
        self._committer = committer

    def add(self, record: ConsentRecord) -> Durable:
        self._committer.pending.add_consent(
            (record.tenant, record.number, record.state, record.source, record.detail,
             record.inbound_id, record.at))
        return self._committer.future()

    def opted_out_now(self) -> Iterable[tuple[str, str]]:
        # SQLite: with max(), the bare columns come from the row holding the maximum.
        rows = self._store.reader.execute(
            "SELECT tenant, number, state, max(rowid) FROM consent GROUP BY tenant, number")
        return [(r[0], r[1]) for r in rows if r[2] == "opted_out"]

    def history(self, tenant: str, number: str) -> list[ConsentRecord]:
        rows = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM consent WHERE tenant = ? AND number = ? "
            "ORDER BY at, rowid", (tenant, number)).fetchall()
        return [_record(r) for r in rows]

    def page(self, tenant: str, after: str, limit: int) -> list[ConsentRecord]:
        rows = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM consent AS c WHERE tenant = ?1 AND number > ?2 "
            "AND rowid = (SELECT max(rowid) FROM consent "
            "WHERE tenant = ?1 AND number = c.number) AND state = 'opted_out' "
            "ORDER BY number LIMIT ?3", (tenant, after, limit)).fetchall()
        return [_record(r) for r in rows]
