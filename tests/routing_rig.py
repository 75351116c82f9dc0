"""The routing layer wired as the gateway wires it, on a real SQLite store, without a loop.

The group commit is a ``FakeCommitter`` whose futures are already done; ``commit`` applies
what was recorded to the store, so assertions read what a restart would find. An illegal
status change raises (production logs and counts it).
"""

from __future__ import annotations

import time
from pathlib import Path

from config import GatewayConfig
from encoding.pdu import DeliverSm
from routing.events import Claim
from routing.inbound import Inbound
from routing.lifecycle import IllegalTransition, Lifecycle
from routing.router import Router
from routing.sqlite import Ops, SqliteEventQueue, SqliteRecord, Store
from routing.workqueue import MemoryWorkQueue
from smsc.render import render_deliver
from tests.fakecommitter import FakeCommitter, FakeLoop

__all__ = ["RoutingRig", "raise_illegal"]


def raise_illegal(exc: IllegalTransition) -> None:
    raise exc


class RoutingRig:
    def __init__(self, path: Path, config: GatewayConfig) -> None:
        self.config = config
        self.path = path
        self.store = Store(path, synchronous="OFF")
        self.store.open()
        self.committer = FakeCommitter(self.store)
        self.loop = FakeLoop()
        self.record = SqliteRecord(self.store, self.committer)  # type: ignore[arg-type]
        self.events = SqliteEventQueue(self.store, self.committer,  # type: ignore[arg-type]
                                       self.loop)
        self.work = MemoryWorkQueue(op.name for op in config.operators)
        self.lifecycle = Lifecycle(self.record, raise_illegal)
        self.router = Router(config, self.record, self.work, self.events, self.lifecycle,
                             wall=time.time)
        self.woken: list[str] = []  # operators whose queue got work, in order
        self.work.subscribe(self.woken.append)
        self.delivered: list[Claim] = []  # events that became claimable, claimed at once
        self.events.subscribe(self._claim_all)
        for op in config.operators:
            self.router.operator_up(op.name)
        self.woken.clear()

    def _claim_all(self, tenant: str) -> None:
        self.delivered.extend(self.events.claim(tenant, 10_000))

    def make_inbound(self, reassembly_timeout_s: float = 600.0) -> Inbound:
        return Inbound(self.record, self.router, self.config.tenants,
                       reassembly_timeout_s=reassembly_timeout_s)

    def commit(self) -> None:
        ops, self.committer.pending = self.committer.pending, Ops()
        self.store.apply(ops)

    def outbox(self, tenant: str) -> list[DeliverSm]:
        """The tenant's stored events, as the SMPP channel renders them (3.4 bind)."""
        self.commit()
        config = next(t for t in self.config.tenants if t.system_id == tenant)
        out = []
        for claim in self.store.events_for(tenant):
            pdu = render_deliver(claim.event, config, 0x34)
            assert not isinstance(pdu, str), pdu
            out.append(pdu)
        return out
