"""Message lifecycle: model, store with group commit, route table, retry policy, router."""

from .committer import GroupCommitter
from .model import FINAL, Message, OutboxItem, OutboxKind, Status, can_move, smpp_state
from .ops import Ops
from .store import Store, StoreError

__all__ = ["GroupCommitter", "Message", "OutboxItem", "OutboxKind", "Status", "FINAL",
           "can_move", "smpp_state", "Ops", "Store", "StoreError"]
