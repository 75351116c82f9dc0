"""Stream framing: whole PDUs out of any split of the byte stream (SMPP 3.4 section 3.2).

Read 4 octets of command_length, then the rest. A length under 16 or above the configured
maximum is a framing error: framing can no longer be trusted, so the session answers
generic_nack ESME_RINVCMDLEN and closes (reference section 1.1).
"""

from __future__ import annotations

from ..constants import CommandStatus
from ..errors import FramingError

__all__ = ["FrameBuffer", "DEFAULT_MAX_COMMAND_LENGTH"]

DEFAULT_MAX_COMMAND_LENGTH = 70_000


class FrameBuffer:
    """Accumulates bytes; ``feed`` returns every complete frame, in order.

    A broken length raises ``FramingError``; the frames that preceded it in the same call are
    on the error's ``frames`` attribute so that nothing received intact is lost.
    """

    __slots__ = ("_buf", "max_length")

    def __init__(self, max_length: int = DEFAULT_MAX_COMMAND_LENGTH) -> None:
        self._buf = bytearray()
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            length = int.from_bytes(buf[pos:pos + 4], "big")
            if length < 16 or length > self.max_length:
                seq = (int.from_bytes(buf[pos + 12:pos + 16], "big")
                       if end - pos >= 16 else 0)
                cid = int.from_bytes(buf[pos + 4:pos + 8], "big") if end - pos >= 8 else 0
                del buf[:pos]
                error = FramingError(f"command_length {length} outside 16..{self.max_length}",
                                     CommandStatus.ESME_RINVCMDLEN, cid, seq)
                error.frames = frames  # the whole PDUs that came before the broken one
                raise error
            if end - pos < length:
                break
            frames.append(bytes(buf[pos:pos + length]))
            pos += length
        if pos:
            del buf[:pos]
        return frames
