"""The SQLite store: the only module that touches sqlite. WAL, batched writes, narrow API.

Writes arrive as ``Ops`` (everything one group commit carries) and are applied in one
transaction by ``Store.apply``, which runs on the group-commit thread with its own
connection. Reads use a second connection owned by the event-loop thread. Ids are handed out
in memory (``ids``): the epoch in them is bumped durably at every open, so they are unique
across restarts; a cluster node takes its epoch from the cluster instead (``join_cluster``).

A status change is written with its precondition (``WHERE status = <the status it was read
in>``): a row moves only from the status its writer saw, so of two writers only one wins;
a change that finds the row moved on is counted in ``conflicts`` and logged.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import sqlite_utils

from ..events import Claim
from ..model import Message, Status
from ..repository import HistoryEntry, MoGroup, MoPart, Segment
from .ids import Ids
from .ops import Ops
from .owners import HAND_OVER, messages_of_owner, owner_epochs
from .rollups import write_rollups
from .rows import (
    EVENT_COLUMNS,
    INSERT_MESSAGE,
    MESSAGE_COLUMNS,
    REPLACE_MESSAGE,
    claim_of,
    message_of,
    segment_of,
)
from .schema import MIGRATIONS, SCHEMA_VERSION
from .template_rows import apply_templates

__all__ = ["Store", "Ops", "StoreError"]

log = logging.getLogger(__name__)

INSERT_HISTORY = "INSERT INTO history VALUES (?, ?, ?, ?, ?)"  # message_id, seq, status, at, detail
_WAL_SAFETY_NET_PAGES = 100_000
_WAL_KEEP_BYTES = 64 << 20



class StoreError(Exception):
    """The store cannot be opened or written (path, permissions, newer schema)."""


class Store:
    """SQLite behind a narrow interface. ``open`` before use; ``close`` at the end."""

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL") -> None:
        """``synchronous``: SQLite's NORMAL (WAL: durable against a killed process) or FULL
        (also against power loss, one fsync per commit)."""
        if synchronous not in ("NORMAL", "FULL", "OFF"):  # OFF: throwaway stores in tests
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = str(path)
        self.synchronous = synchronous
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None
        self.purged_rows: list[tuple[int, str]] = []  # (id, tenant) dropped by retention
        self.conflicts = 0  # status changes refused because the row had moved on
        self.ids = Ids()

    # --- lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from None
        db = sqlite_utils.Database(conn)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} has schema {version}, newer than this "
                f"gateway's {SCHEMA_VERSION}: upgrade the gateway"
            )
        for number in range(version, SCHEMA_VERSION):
            with conn:
                conn.executescript(
                    "BEGIN;" + MIGRATIONS[number] + f";PRAGMA user_version = {number + 1};COMMIT;"
                )
        assert "messages" in db.table_names()
        with conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
            epoch = (int(row[0]) if row else 0) + 1
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('epoch', ?)", (str(epoch),))
        # Event ids are never reused, even once the table is empty (webhook receivers
        # deduplicate by them): each open starts above everything of the last epoch.
        self.ids.start(epoch, self._last_event(conn))
        self._reader = conn

    @staticmethod
    def _last_event(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT max(id) FROM events").fetchone()[0] or 0)

    def join_cluster(self, epoch: int) -> None:
        """Hand out ids under ``epoch``, unique in the cluster (routing.sqlite.ids)."""
        self.ids.join_cluster(epoch, self._last_event(self.reader))

    def meta(self, key: str) -> str | None:
        row = self.reader.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA busy_timeout = 5000")
        # Checkpoints run from ``checkpoint()`` on a background thread, off the commit path.
        # The automatic one (run by whichever commit crosses the threshold) is only a safety
        # net for when nobody calls it: about 400 MB of WAL.
        conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_SAFETY_NET_PAGES}")
        # After a burst, give the disk back when the WAL restarts (bytes kept: 64 MB).
        conn.execute(f"PRAGMA journal_size_limit = {_WAL_KEEP_BYTES}")
        return conn

    def checkpoint(self) -> int:
        """Copy committed WAL frames into the database without blocking writers (PASSIVE);
        returns how many frames the WAL holds (0 once it has restarted).

        Runs on its own connection, from a background thread (``GroupCommitter``). The WAL
        restarts from its beginning (and is cut back to ``journal_size_limit``) only when a
        write begins after every frame was copied, so under steady writes the caller must
        also hold writes back for one checkpoint now and then."""
        conn = self._checkpoint_conn
        if conn is None:
            conn = self._checkpoint_conn = self._connect()
        row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[1]) if row and row[1] > 0 else 0

    def close(self) -> None:
        for conn in (self._writer, self._reader, self._checkpoint_conn):
            if conn is not None:
                conn.close()
        self._writer = self._reader = self._checkpoint_conn = None

    # --- ids --------------------------------------------------------------------------------

    def new_message_number(self) -> int:
        """A number never handed out before, even across restarts."""
        return self.ids.message_number()

    def new_event_id(self) -> int:
        return self.ids.event_id()

    # --- writes (group-commit thread) -------------------------------------------------------

    def apply(self, ops: Ops, meta: tuple[str, str] | None = None) -> None:
        """Apply everything in ``ops`` in one transaction (durable when this returns), with
        ``meta`` (key, value) written in it (a replica's position in its log)."""
        conn = self._writer
        if conn is None:
            conn = self._writer = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if ops.messages:
                conn.executemany(INSERT_MESSAGE, ops.messages)
            lost: set[object] = set()
            if ops.replaced:
                replaced = conn.executemany(REPLACE_MESSAGE, ops.replaced).rowcount
                if 0 <= replaced < len(ops.replaced):  # rare: find which ones moved on
                    lost.update(self._not_in(conn, [(r[-2], r[-1]) for r in ops.replaced]))
            if ops.segments:
                conn.executemany(
                    "INSERT OR REPLACE INTO segments VALUES (?, ?, ?, ?, ?, ?, ?)",
                    ops.segments.values(),
                )
            if ops.message_status:
                changed = conn.executemany(
                    "UPDATE messages SET status = ?1, error = ?2, "
                    "operator = CASE WHEN ?3 = '' THEN operator ELSE ?3 END, "
                    "updated_at = ?4 WHERE id = ?5 AND status = ?6",
                    ops.message_status.values(),
                ).rowcount
                if 0 <= changed < len(ops.message_status):  # rare: find which ones lost
                    lost.update(self._not_in(conn, [(row[4], row[0]) for row in
                                                    ops.message_status.values()]))
            if ops.handoffs:
                conn.executemany(HAND_OVER, [(row[0], row[1]) for row in ops.handoffs])
            if lost or ops.refused:
                self.conflicts += len(lost) + ops.refused
                log.warning("%d status changes found their message moved on by another "
                            "writer; not applied", len(lost) + ops.refused)
            if ops.history:
                seq = self.ids.history_seq
                conn.executemany(INSERT_HISTORY, [(h[0], next(seq), *h[1:]) for h in ops.history])
            if ops.links:
                conn.executemany("INSERT INTO links VALUES (?, ?, ?, ?, ?)", ops.links)
            if ops.clicks:
                conn.executemany("INSERT INTO clicks VALUES (?, ?, ?, ?, ?)", ops.clicks)
            if ops.consent:
                conn.executemany("INSERT INTO consent VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 ops.consent)
            if ops.change_history:
                seq = self.ids.history_seq
                conn.executemany(INSERT_HISTORY, [(h[0], next(seq), *h[1:])
                                                  for h in ops.change_history
                                                  if not lost or h[0] not in lost])
            if ops.event_adds:
                conn.executemany(
                    f"INSERT OR REPLACE INTO events ({EVENT_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    ops.event_adds,
                )
            if ops.event_acks:
                conn.executemany("DELETE FROM events WHERE id = ?", ops.event_acks)
            if ops.purge_before:
                self.purged_rows.extend(conn.execute(
                    "DELETE FROM events WHERE created_at < ? RETURNING id, tenant",
                    (ops.purge_before,)).fetchall())
            if ops.event_fails:
                conn.executemany("UPDATE events SET failed = 1, attempts = ? WHERE id = ?",
                                 ops.event_fails)
            if ops.event_revives:
                conn.executemany("UPDATE events SET failed = 0, attempts = 0, "
                                 "next_attempt_at = 0 WHERE id = ?", ops.event_revives)
            if ops.answers_before:
                conn.execute("DELETE FROM idempotency WHERE created_at < ?",
                             (ops.answers_before,))
            if ops.answers:
                conn.executemany("INSERT OR IGNORE INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
                                 ops.answers)
            if ops.event_retries:
                conn.executemany(
                    "UPDATE events SET attempts = ?, next_attempt_at = ? WHERE id = ?",
                    ops.event_retries,
                )
            if ops.mo_groups_done:  # before the inserts (see Ops.drop_mo_group)
                conn.executemany(
                    "DELETE FROM mo_parts WHERE operator = ? AND source_addr = ? "
                    "AND destination_addr = ? AND data_coding = ? AND reference = ? "
                    "AND total = ?",
                    ops.mo_groups_done,
                )
            if ops.mo_parts:
                conn.executemany(
                    "INSERT OR IGNORE INTO mo_parts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    ops.mo_parts,
                )
            if ops.rollups:
                write_rollups(conn, ops.rollups)
            if ops.templates:
                apply_templates(conn, ops.templates)
            if meta is not None:
                conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _not_in(conn: sqlite3.Connection, wanted: list[tuple[object, object]]) -> set[object]:
        """Ids (of ``(id, status)`` pairs) whose row is not in that status after the writes:
        the changes that lost to another writer."""
        lost: set[object] = set()
        for mid, status in wanted:
            row = conn.execute("SELECT status FROM messages WHERE id = ?", (mid,)).fetchone()
            if row is None or row[0] != status:
                lost.add(mid)
        return lost

    def purge_events(self, older_than: float) -> int:
        """Drop events created before ``older_than`` now; returns the count.

        Only for callers that own the writes (tools, tests): a running gateway sets
        ``Ops.purge_before`` so the purge rides a group commit on the writer's connection."""
        before = len(self.purged_rows)
        ops = Ops()
        ops.purge_before = older_than
        self.apply(ops)
        return len(self.purged_rows) - before

    # --- reads (event-loop thread) ----------------------------------------------------------

    @property
    def reader(self) -> sqlite3.Connection:
        if self._reader is None:
            raise StoreError("store is not open")
        return self._reader

    def get_message(self, message_id: str) -> Message | None:
        row = self.reader.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        return message_of(row) if row else None

    def messages_with_status(
        self, status: Status, after_id: str = "", limit: int = 1000, epoch: int | None = None
    ) -> list[Message]:
        """Messages in ``status`` in id order (restart recovery reads ACCEPTED ones), owned
        by one ``epoch`` only when given (a cluster node taking over a dead one's)."""
        return messages_of_owner(self.reader, status, after_id, limit, epoch)

    def epochs_with_status(self, status: Status) -> set[int]:
        """The epochs (routing.sqlite.owners) that own the messages now in ``status``."""
        return owner_epochs(self.reader, status)

    def query(self, *, tenant: str | None = None, status: Status | None = None,
              after_id: str = "", limit: int = 100) -> list[Message]:
        where = ["id > ?"]
        params: list[object] = [after_id]
        if tenant is not None:
            where.append("tenant = ?")
            params.append(tenant)
        if status is not None:
            where.append("status = ?")
            params.append(status.value)
        rows = self.reader.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {' AND '.join(where)} "
            "ORDER BY id LIMIT ?", (*params, limit)).fetchall()
        return [message_of(r) for r in rows]

    def find_segment(self, operator: str, operator_id: str) -> Segment | None:
        """The part that an operator's id stands for."""
        row = self.reader.execute(
            "SELECT message_id, part, parts, operator, operator_id, status, error FROM segments "
            "WHERE operator = ? AND operator_id = ?",
            (operator, operator_id),
        ).fetchone()
        return segment_of(row) if row else None

    def segments_of(self, message_id: str) -> list[Segment]:
        rows = self.reader.execute(
            "SELECT message_id, part, parts, operator, operator_id, status, error FROM segments "
            "WHERE message_id = ? ORDER BY part",
            (message_id,),
        ).fetchall()
        return [segment_of(r) for r in rows]

    def submitted_before(self, operator: str, before: float, limit: int = 1000
                         ) -> list[Message]:
        """Messages ``operator`` took (SUBMITTED) whose last change is older than ``before``,
        oldest first (the receipt timeout)."""
        rows = self.reader.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE status = 'submitted' "
            "AND operator = ? AND updated_at < ? ORDER BY updated_at LIMIT ?",
            (operator, before, limit),
        ).fetchall()
        return [message_of(r) for r in rows]

    def mo_parts(self) -> list[MoPart]:
        """Stored parts of incomplete concatenated MO messages, oldest first."""
        rows = self.reader.execute(
            "SELECT operator, source_addr, destination_addr, data_coding, reference, total, "
            "seqnum, user_data, received_at FROM mo_parts ORDER BY received_at"
        ).fetchall()
        return [MoPart(MoGroup(r[0], r[1], r[2], r[3], r[4], r[5]), r[6], bytes(r[7]), r[8])
                for r in rows]

    def history_of(self, message_id: str) -> list[HistoryEntry]:
        rows = self.reader.execute(
            "SELECT status, at, detail FROM history WHERE message_id = ? ORDER BY seq",
            (message_id,),
        ).fetchall()
        return [HistoryEntry(Status(r[0]), r[1], r[2]) for r in rows]

    def events_for(self, tenant: str, after_id: int = 0, limit: int = 500) -> list[Claim]:
        """A tenant's waiting events, oldest first (unreadable rows are dropped, logged)."""
        rows = self.reader.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE tenant = ? AND id > ? AND failed = 0 "
            "ORDER BY id "
            "LIMIT ?",
            (tenant, after_id, limit),
        ).fetchall()
        out: list[Claim] = []
        for r in rows:
            claim = claim_of(r)
            if claim is None:
                log.error("event %d of %s is unreadable; skipped", r[0], tenant)
            else:
                out.append(claim)
        return out

    def event_depths(self) -> dict[str, int]:
        """Events per tenant (a full scan: read once at start, then counted in memory)."""
        return dict(self.reader.execute("SELECT tenant, count(*) FROM events WHERE failed = 0 "
                                        "GROUP BY tenant"))

    def count(self, table: str, where: str = "", params: Iterable[object] = ()) -> int:
        if table not in ("messages", "segments", "events", "history", "mo_parts"):
            raise ValueError(table)
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(self.reader.execute(sql, tuple(params)).fetchone()[0])
