"""The SQLite engine (one machine, the default): store, group commit, and the repository
interfaces on top of them. The only package that knows a column, a statement or a row."""

from .committer import CommitStats, GroupCommitter
from .consent import SqliteConsent
from .eventqueue import SqliteEventQueue
from .ops import Ops
from .record import SqliteRecord
from .store import Store, StoreError

__all__ = ["CommitStats", "GroupCommitter", "Ops", "SqliteConsent", "SqliteEventQueue",
           "SqliteRecord", "Store", "StoreError"]
