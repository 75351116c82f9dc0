"""Cancel and replace a queued message on whichever cluster node's queue holds it.

A message waiting for an operator is in one node's router (where it was accepted, the node
it was handed to, or the node that took its epoch over); cancel_sm, replace_sm and
``DELETE /v1/messages/{id}`` may arrive at any node. The node that cannot do it itself asks
the others over core NATS (request and reply on ``smsc.control``, every node subscribed):
the node whose router holds the message unsent cancels or replaces it there, waits until
that change is durable (in the log), and answers; the others say nothing. No answer within
``timeout_s`` (the message left, or is between two nodes) means it could not be done, as on
one node: the message is then sent, never both cancelled and sent. Before the asking node
answers its tenant, its replica applies what the log holds (``barrier``), so a status
query on it shows the change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from ..model import Message
from ..repository import Durable, MessageRecord
from ..router import Router

__all__ = ["RemoteControl", "CONTROL_SUBJECT"]

log = logging.getLogger(__name__)

CONTROL_SUBJECT = "smsc.control"
_DONE, _FAILED = b"1", b"0"


class _Request(msgspec.Struct, tag_field="op"):
    pass


class _Cancel(_Request, tag="cancel"):
    id: str


class _Replace(_Request, tag="replace"):
    message: Message


_decoder = msgspec.msgpack.Decoder(_Cancel | _Replace)
_encoder = msgspec.msgpack.Encoder()


class RemoteControl:
    """This node's side of ``smsc.control``, both ways; ``start`` on the loop."""

    def __init__(self, nc: Client, router: Router, record: MessageRecord,
                 wall: Callable[[], float], barrier: Callable[[], Awaitable[bool]], *,
                 timeout_s: float = 1.0) -> None:
        self.nc = nc
        self.router = router
        self.record = record
        self.wall = wall
        self.barrier = barrier  # the replica applies what the log holds
        self.timeout_s = timeout_s
        self.done_here = 0  # requests of other nodes done here (metrics, tests)
        self._sub: object = None
        self._answering: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(CONTROL_SUBJECT, cb=self._on_request)

    # --- asking -----------------------------------------------------------------------------

    async def cancel(self, message_id: str) -> bool:
        """Cancel ``message_id`` on the node whose queue holds it; True once durable."""
        return await self._ask(_Cancel(id=message_id))

    async def replace(self, message: Message) -> bool:
        """Give the queued ``message`` (the stored one with its new content) to the node whose
        queue holds it; True once durable."""
        return await self._ask(_Replace(message=message))

    async def _ask(self, request: _Cancel | _Replace) -> bool:
        try:
            reply = await self.nc.request(CONTROL_SUBJECT, _encoder.encode(request),
                                          timeout=self.timeout_s)
        except (NatsError, TimeoutError):
            return False  # no node holds it unsent (or the cluster is unreachable)
        if reply.data != _DONE:
            return False
        await self.barrier()
        return True

    # --- answering ----------------------------------------------------------------------------

    async def _on_request(self, msg: Msg) -> None:
        """Done at once on the loop (this node's router decides); the answer waits for the
        change to be durable in its own task, so that one request does not hold up the
        next."""
        try:
            request = _decoder.decode(msg.data)
        except msgspec.DecodeError:
            log.warning("unreadable request on %s skipped", CONTROL_SUBJECT)
            return
        durable = self._do(request)
        if durable is None:
            return  # not held here unsent: another node answers, or none
        task = asyncio.get_running_loop().create_task(self._answer(msg, request, durable))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _answer(self, msg: Msg, request: _Cancel | _Replace, durable: Durable) -> None:
        try:
            await asyncio.shield(durable)  # type: ignore[arg-type]
            answer = _DONE
        except Exception as e:  # the change did not become durable
            log.warning("%s of message %s not durable: %r", type(request).__name__.lstrip("_"),
                        _message_id(request), e)
            answer = _FAILED
        self.done_here += answer == _DONE
        try:
            await msg.respond(answer)
        except NatsError:
            log.debug("the answer to %s was not sent", CONTROL_SUBJECT, exc_info=True)

    def _do(self, request: _Cancel | _Replace) -> Durable | None:
        now = self.wall()
        if isinstance(request, _Cancel):
            return self.record.sync() if self.router.cancel(request.id, now) else None
        return self.router.replace(request.message, now)


def _message_id(request: _Cancel | _Replace) -> str:
    return request.id if isinstance(request, _Cancel) else request.message.id

