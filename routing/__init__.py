"""The message lifecycle for every door: submissions, admission, the lifecycle table and its
one transition function, routes, retries, receipts and inbound messages as events, and the
storage interfaces (``repository``) with their SQLite implementation (``sqlite``)."""

from .events import Claim, MoEvent, ReceiptEvent, StoredPdu, TenantEvent
from .model import FINAL, Message, Status, can_move, smpp_state
from .sqlite import GroupCommitter, Ops, Store, StoreError
from .submission import Door, Submission

__all__ = ["Claim", "Door", "FINAL", "GroupCommitter", "Message", "MoEvent", "Ops",
           "ReceiptEvent", "Status", "Store", "StoreError", "StoredPdu", "Submission",
           "TenantEvent", "can_move", "smpp_state"]
