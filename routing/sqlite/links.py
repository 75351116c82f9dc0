"""``LinkBook`` on SQLite: tracked links and their clicks (tables ``links`` and ``clicks``).

Links ride the group commit of the messages they belong to (``remember`` appends to the
pending batch; the accept's commit carries both). A click is one row per fetch, bots and
HEAD requests flagged (``bot = 1``), so the analytics can count people and bots apart from
the same table; no address of the clicker is stored (http-api.md, "Short links").
"""

from __future__ import annotations

from collections.abc import Sequence

from ..links import Link, LinkClicks, StoredLink
from ..repository import Durable
from .committer import GroupCommitter
from .store import Store

__all__ = ["SqliteLinks"]


class SqliteLinks:
    """Writes go to the pending group commit; reads to the store's reader connection."""

    def __init__(self, store: Store, committer: GroupCommitter) -> None:
        self._store = store
        self._committer = committer

    def remember(self, tenant: str, message_id: str, links: Sequence[Link], now: float
                 ) -> None:
        pending = self._committer.pending
        for link in links:
            pending.put_link(link.code, tenant, message_id, link.url, now)

    def resolve(self, code: str) -> StoredLink | None:
        row = self._store.reader.execute(
            "SELECT code, tenant, message_id, url, created_at FROM links WHERE code = ?",
            (code,)).fetchone()
        return StoredLink(*row) if row else None

    def record_click(self, link: StoredLink, at: float, *, bot: bool) -> Durable:
        self._committer.pending.put_click(link.code, link.tenant, link.message_id, at, bot)
        return self._committer.future()

    def clicks_of(self, message_id: str) -> list[LinkClicks]:
        reader = self._store.reader
        counted = {code: (n, first) for code, n, first in reader.execute(
            "SELECT code, count(*), min(at) FROM clicks WHERE message_id = ? AND bot = 0 "
            "GROUP BY code", (message_id,))}
        out = []
        for code, url in reader.execute(
                "SELECT code, url FROM links WHERE message_id = ? ORDER BY url, code",
                (message_id,)):
            n, first = counted.get(code, (0, None))
            out.append(LinkClicks(url=url, clicks=n, first_clicked_at=first))
        return out
