"""What ``Gateway.start`` did, kept so that it can be undone in reverse order.

``start`` registers the undo of each step *before* doing the step (every undo is safe to run
when its step failed half-way or never ran), so a failure or a cancel at any point undoes
exactly what was started, and ``stop`` undoes everything with the same code.

Unwinding has two phases. First *intake* stops: the callbacks given as ``stop_accepting``
(admission refusing new submissions, each tenant door closing its listening socket) run in
the order they were registered, so no new work arrives while the rest stops. Then the undo
steps run last-in first-out. An undo that raises is logged and the next one still runs; the
exception that made ``start`` fail is the one its caller sees.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from .listeners import Listener, start_listener

__all__ = ["Teardown", "Undo"]

log = logging.getLogger("smsc")

Undo = Callable[[], Awaitable[None] | None]


class Teardown:
    def __init__(self) -> None:
        self.grace = 5.0  # seconds a closing door gives its connections (set by unwind)
        self._undo: list[tuple[str, Undo]] = []
        self._intake: list[Callable[[], None]] = []
        self._unwinding = False

    def push(self, what: str, undo: Undo) -> None:
        """Register the undo of the step about to run (``what`` names it in logs)."""
        if self._unwinding:
            raise RuntimeError(f"gateway is stopping: not starting {what}")
        self._undo.append((what, undo))

    def stop_intake_with(self, stop_accepting: Callable[[], None]) -> None:
        """``stop_accepting`` runs first when unwinding, before any undo step."""
        self._intake.append(stop_accepting)

    async def listen(self, section: str, host: str, port: int, listener: Listener, *,
                     stop_accepting: Callable[[], None] | None = None) -> int:
        """The step that starts one listener: returns its port or raises ``ListenError``
        naming ``section``'s key. Undone by ``listener.close(grace)``; a tenant door also
        passes ``stop_accepting``, which runs in the intake phase."""
        self.push(f"{section} listener", lambda: listener.close(self.grace))
        if stop_accepting is not None:
            self.stop_intake_with(stop_accepting)
        return await start_listener(section, host, port, listener)

    async def unwind(self, grace: float) -> None:
        """Stop intake, then undo every step, newest first; again is a no-op."""
        self._unwinding = True
        self.grace = grace
        intake, self._intake = self._intake, []
        for stop_accepting in intake:
            try:
                stop_accepting()
            except Exception:
                log.exception("stopping intake failed")
        while self._undo:
            what, undo = self._undo.pop()
            try:
                pending = undo()
                if pending is not None:
                    await pending
            except Exception:
                log.exception("stopping %s failed", what)
