"""Stored templates on SQLite: the writes a group commit carries and the load at start.

``routing.templates.TemplateBook`` keeps every template in memory (they are few); this module
is its storage: ``SqliteTemplates`` appends puts and deletes to the pending group commit
(``Ops.templates``, written by ``template_rows``) and reads the whole table once, on the
reader connection.
"""

from __future__ import annotations

from ..repository import Durable
from ..templates import StoredTemplate
from .committer import GroupCommitter
from .store import Store

__all__ = ["SqliteTemplates"]


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
