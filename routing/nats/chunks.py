"""Log entries larger than a NATS message may be (the servers' ``max_payload``, 1 MB by
default), as several stream messages: an HTTP request for 10,000 recipients is one batch,
one entry, several megabytes.

The writer splits the entry's bytes into chunks of at most ``limit`` (``split``) and
publishes every chunk but the last with the id ``<entry>#<k>`` and the header ``Smsc-Chunk:
k/n``. Only once those are all acknowledged does it publish the last chunk, with the entry's
own id: the last chunk commits the entry. If a chunk is never stored, the last is never
published, and the entry is applied nowhere (its writer's future fails, as for any entry not
published). So an entry is applied whole or not at all, at the position of its last chunk,
on every replica alike.

A reader keeps the chunks of entries not complete yet (``Reassembly``). Chunks whose commit
does not come are dropped once the log is ``DROP_AFTER_S`` past their first chunk (stream
timestamps: every replica drops alike; a writer gives up far sooner, after its publish
timeouts). A replica that restarts must read such entries from their first chunk again:
``resume_from`` is the first stream sequence it still needs, kept with the last one it
applied (``position`` / ``parse_position``).
"""

from __future__ import annotations

__all__ = ["CHUNK_HEADER", "DROP_AFTER_S", "split", "Reassembly", "position",
           "parse_position"]

CHUNK_HEADER = "Smsc-Chunk"
DROP_AFTER_S = 300.0


def split(payload: bytes, limit: int) -> list[bytes]:
    """``payload`` in pieces of at most ``limit`` bytes (one piece when it fits)."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    return [payload[i:i + limit] for i in range(0, len(payload), limit)] or [b""]


def position(applied: int, resume_from: int) -> str:
    """The replica's meta value: the last entry applied, and (when chunks of an entry not
    complete are kept) the first stream sequence to read again after a restart."""
    return str(applied) if resume_from > applied else f"{applied}:{resume_from}"


def parse_position(value: str | None) -> tuple[int, int]:
    """(applied, resume_from) from ``position``'s value (None: nothing applied yet)."""
    if not value:
        return 0, 1
    applied, _, resume = value.partition(":")
    return int(applied), int(resume) if resume else int(applied) + 1


class Reassembly:
    """Chunks of entries whose last chunk has not come yet, by entry id."""

    def __init__(self) -> None:
        # entry id -> (first chunk's sequence, its stream time, the chunks by number)
        self._partial: dict[str, tuple[int, float, dict[int, bytes]]] = {}

    def __len__(self) -> int:
        return len(self._partial)

    def add(self, entry_id: str, chunk: str, seq: int, data: bytes, at: float
            ) -> bytes | None:
        """Keep one chunk (``chunk``: the header, ``k/n``); the whole entry once its last
        chunk completes it, else None. A last chunk whose earlier chunks are missing (dropped,
        or read from after them) gives None too: the entry is not applied here."""
        k_text, _, n_text = chunk.partition("/")
        k, n = int(k_text), int(n_text)
        parts = self._partial.setdefault(entry_id, (seq, at, {}))[2]
        parts[k] = data
        if k != n - 1:
            return None
        del self._partial[entry_id]
        if len(parts) != n:
            return None
        return b"".join(parts[i] for i in range(n))

    def forget(self, entry_id: str) -> None:
        """An entry applied already (its last chunk is before the replica's position)."""
        self._partial.pop(entry_id, None)

    def expire(self, now: float) -> int:
        """Drop what has waited DROP_AFTER_S (stream time); returns how many entries."""
        old = [e for e, (_, began, _) in self._partial.items() if now - began > DROP_AFTER_S]
        for entry_id in old:
            del self._partial[entry_id]
        return len(old)

    def resume_from(self, applied: int) -> int:
        """The first sequence a restarted replica must read: the first chunk kept, if any."""
        return min((first for first, _, _ in self._partial.values()), default=applied + 1)
