"""The templates table's writes inside ``Store.apply``'s transaction (``Ops.templates``).

Apart from ``templates`` (which holds ``SqliteTemplates`` and imports the store) so the
store can import this without an import circle.
"""

from __future__ import annotations

import sqlite3

__all__ = ["apply_templates"]

# The whole row: the book says created_at (kept on a replace, new after a delete).
_UPSERT = "INSERT OR REPLACE INTO templates VALUES (?, ?, ?, ?, ?)"


def apply_templates(conn: sqlite3.Connection,
                    writes: dict[tuple[str, str], tuple[object, ...] | None]) -> None:
    """The batch's template puts and deletes (the last write of a name in it wins)."""
    drops = [key for key, row in writes.items() if row is None]
    puts = [row for row in writes.values() if row is not None]
    if drops:
        conn.executemany("DELETE FROM templates WHERE tenant = ? AND name = ?", drops)
    if puts:
        conn.executemany(_UPSERT, puts)
