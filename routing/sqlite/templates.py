"""Stored templates on SQLite: the writes a group commit carries and the load at start.

``routing.templates.TemplateBook`` keeps every template in memory (they are few); this module
is its storage: ``SqliteTemplates`` appends puts and deletes to the pending group commit
(``Ops.templates``) and reads the whole table once, on the reader connection.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from ..repository import Durable
from ..templates import StoredTemplate

if TYPE_CHECKING:  # store.py imports apply_templates from here
    from .committer import GroupCommitter
    from .store import Store

__all__ = ["SqliteTemplates", "apply_templates"]

# The whole row: the book says created_at (kept on a replace, new after a delete).
_UPSERT = "INSERT OR REPLACE INTO templates VALUES (?, ?, ?, ?, ?)"


def apply_templates(conn: sqlite3.Connection,
                    writes: dict[tuple[str, str], tuple[object, ...] | None]) -> None:
    """Inside ``Store.apply``'s transaction: the batch's template puts and deletes."""
    drops = [key for key, row in writes.items() if row is None]
    puts = [row for row in writes.values() if row is not None]
    if drops:
        conn.executemany("DELETE FROM templates WHERE tenant = ? AND name = ?", drops)
    if puts:
        conn.executemany(_UPSERT, puts)


class SqliteTemplates:
    """``routing.templates.TemplateStore`` on the store and its group committer."""

    def __init__(self, store: Store, committer: GroupCommitter) -> None:
        self._store = store
        self._committer = committer

    def load(self) -> list[StoredTemplate]:
        rows = self._store.reader.execute(
            "SELECT tenant, name, content, created_at, updated_at FROM templates "
            "ORDER BY tenant, name").fetchall()
        return [StoredTemplate(str(r[0]), str(r[1]), str(r[2]), float(r[3]), float(r[4]))
                for r in rows]

    def put(self, t: StoredTemplate) -> Durable:
        self._committer.pending.put_template(t.tenant, t.name, t.content, t.created_at,
                                             t.updated_at)
        return self._committer.future()

    def drop(self, tenant: str, name: str) -> Durable:
        self._committer.pending.drop_template(tenant, name)
        return self._committer.future()
