"""Who is bound: tenant connections by tenant, and each connection's binding details.

The registry answers "how many binds does this tenant have" (for max_binds: on a cluster,
with those on the other nodes, ``elsewhere``) and "which of its binds can take a deliver_sm"
(receiver and transceiver binds, SMPP 3.4 section 2.2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from config import TenantConfig
from esme import Connection

__all__ = ["Binding", "Registry"]


class Binding:
    """What a tenant connection is bound as; kept on ``Connection.context``."""

    __slots__ = ("bind_type", "interface_version", "receives", "tenant", "transmits")

    def __init__(self, tenant: TenantConfig, bind_type: str, interface_version: int) -> None:
        self.tenant = tenant
        self.bind_type = bind_type
        self.interface_version = interface_version
        self.receives = bind_type in ("receiver", "transceiver")
        self.transmits = bind_type in ("transmitter", "transceiver")


class Registry:
    """Bound tenant connections; one per gateway."""

    def __init__(self) -> None:
        self._by_tenant: dict[str, list[Connection]] = {}
        self._rr: dict[str, int] = {}
        # A cluster: the tenant's binds on the other nodes, and who hears of a change here.
        self.elsewhere: Callable[[str], int] = lambda tenant: 0
        self.on_change: Callable[[str], None] = lambda tenant: None

    def add(self, conn: Connection) -> None:
        binding: Binding = conn.context
        self._by_tenant.setdefault(binding.tenant.system_id, []).append(conn)
        self.on_change(binding.tenant.system_id)

    def remove(self, conn: Connection) -> None:
        binding = conn.context
        if not isinstance(binding, Binding):
            return
        conns = self._by_tenant.get(binding.tenant.system_id)
        if conns and conn in conns:
            conns.remove(conn)
            self.on_change(binding.tenant.system_id)

    def count(self, tenant: str) -> int:
        """The tenant's binds on this node."""
        return len(self._by_tenant.get(tenant, ()))

    def everywhere(self, tenant: str) -> int:
        """The tenant's binds on every node (this one alone without a cluster)."""
        return len(self._by_tenant.get(tenant, ())) + self.elsewhere(tenant)

    def counts(self) -> dict[str, int]:
        return {t: len(c) for t, c in self._by_tenant.items()}

    def receivers(self, tenant: str) -> list[Connection]:
        """The tenant's binds that may receive deliver_sm, rotated on every call."""
        conns = [c for c in self._by_tenant.get(tenant, ()) if c.context.receives
                 and c.session.bound]
        if len(conns) > 1:
            start = self._rr.get(tenant, 0) % len(conns)
            self._rr[tenant] = start + 1
            conns = conns[start:] + conns[:start]
        return conns

    def receiving(self) -> set[str]:
        """The tenants with at least one bound bind that may receive deliver_sm."""
        return {tenant for tenant, conns in self._by_tenant.items()
                if any(c.context.receives and c.session.bound for c in conns)}

    def all(self) -> Iterator[Connection]:
        for conns in self._by_tenant.values():
            yield from conns
