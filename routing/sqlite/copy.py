"""A consistent copy of a store file, taken while its gateway runs (SQLite's online backup):
how a cluster node whose replica is older than the replicated log starts again, or a new
node joins once the log no longer holds its first entries (``smsc copy-replica``).

A replica is the same on every node (every node applies the same log in the same order),
and its ``meta`` says the last log entry it applied; a node started on the copy goes on from
the entry after it. The copy is written to a new file only: an existing one is left alone.
"""

from __future__ import annotations

import os
import sqlite3

__all__ = ["copy_store", "CopyError"]


class CopyError(Exception):
    """The copy could not be made; the message says why."""


def copy_store(source: str, target: str) -> str | None:
    """Copy the store ``source`` to the new file ``target``; returns the copy's log position
    (``meta`` ``log_seq``: None for a store that never was a cluster's replica).
    ``CopyError`` when ``target`` exists, ``source`` does not, or is not a store."""
    if not os.path.exists(source):
        raise CopyError(f"no store at {source}")
    if os.path.exists(target):
        raise CopyError(f"{target} exists: give a new file (a node's store is never "
                        "overwritten)")
    try:
        return _copy(source, target)
    except (OSError, sqlite3.Error) as exc:
        raise CopyError(f"{source}: {exc}") from None


def _copy(source: str, target: str) -> str | None:
    src = sqlite3.connect(source)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            row = dst.execute("SELECT value FROM meta WHERE key = 'log_seq'").fetchone()
        finally:
            dst.close()
    except BaseException:
        if os.path.exists(target):
            os.remove(target)
        raise
    finally:
        src.close()
    return None if row is None else str(row[0])
