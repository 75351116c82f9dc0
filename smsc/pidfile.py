"""The PID file ``smsc serve`` keeps while it runs, so ``smsc reload`` can find the process.

Written once the gateway listens, removed when it stops (only if it still holds our PID). A
file that cannot be written is a warning, not a failure: the gateway runs without it and
SIGHUP still works.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

__all__ = ["pid_file"]

log = logging.getLogger("smsc")


@contextlib.contextmanager
def pid_file(path: str) -> Iterator[None]:
    """Hold ``path`` (no-op for "") for the duration of the block."""
    if not path:
        yield
        return
    mine = str(os.getpid())
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = f"{path}.{mine}.tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(mine + "\n")
        os.replace(tmp, path)  # atomic: a reader sees the old PID or ours, never half
    except OSError as exc:
        log.warning("cannot write pid_file %s (%s): smsc reload will not find this process",
                    path, exc.strerror or exc)
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            with open(path, encoding="ascii") as f:
                held = f.read().strip()
            if held == mine:
                os.unlink(path)
