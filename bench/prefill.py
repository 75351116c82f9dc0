"""Stores prepared before a bench run, as a gateway restarting on them would find them.

``prefill_scheduled`` writes messages scheduled for later; ``prefill_opted_out`` writes
opt-out records (issue 12's speed target: the cost per message beside 100,000 opted-out
numbers and 1,000,000 scheduled messages). Both write straight through ``Store.apply`` in
large batches with ``synchronous = OFF``: preparing a million rows takes seconds, not the
load's time.
"""

from __future__ import annotations

from pathlib import Path

from routing import Message, Status
from routing.sqlite import Ops, Store

__all__ = ["prefill_opted_out", "prefill_scheduled"]

_BATCH = 20_000


def prefill_scheduled(path: Path, due: float, count: int, later: int = 0) -> None:
    """Write ``count`` messages scheduled at ``due`` and ``later`` more a day after it into
    the store at ``path`` (made if missing), as a restart would find them."""
    store = Store(path, synchronous="OFF")
    store.open()
    try:
        for n, at in ((count, due), (later, due + 86_400)):
            for start in range(0, n, _BATCH):
                ops = Ops()
                for i in range(start, min(n, start + _BATCH)):
                    ops.insert_message(Message(
                        id=str(store.new_message_number()), tenant="bench",
                        source_addr="BENCH", source_addr_ton=5,
                        destination_addr=f"4477{i % 10_000_000:08d}", dest_addr_ton=1,
                        body=b"scheduled", status=Status.SCHEDULED, send_at=at,
                        created_at=due - 60), due - 60)
                store.apply(ops)
    finally:
        store.close()


def prefill_opted_out(path: Path, tenant: str, count: int, at: float) -> None:
    """Write ``count`` opt-outs of ``tenant`` into the store at ``path`` (made if missing):
    numbers 4478xxxxxxxx, never one the load generator sends to (4479...), so every lookup
    of the load is a miss against a full index, as in production."""
    store = Store(path, synchronous="OFF")
    store.open()
    try:
        for start in range(0, count, _BATCH):
            ops = Ops()
            for i in range(start, min(count, start + _BATCH)):
                ops.add_consent((tenant, f"4478{i:08d}", "opted_out", "api", "bench", "", at))
            store.apply(ops)
    finally:
        store.close()
