"""The route table: longest prefix of the destination's digits, optional tenant filter.

Each route names operators in failover order. A route limited to some tenants wins over an
unlimited one with the same prefix; a longer prefix wins over a shorter one.
"""

from __future__ import annotations

from collections.abc import Iterable

from config import RouteConfig

__all__ = ["RouteTable"]


class RouteTable:
    def __init__(self, routes: Iterable[RouteConfig]) -> None:
        self._by_prefix: dict[str, list[tuple[frozenset[str], tuple[str, ...]]]] = {}
        for r in routes:
            self._by_prefix.setdefault(r.prefix, []).append((frozenset(r.tenants), r.operators))
        for entries in self._by_prefix.values():
            entries.sort(key=lambda e: not e[0])  # tenant-specific routes first
        self._lengths = sorted({len(p) for p in self._by_prefix}, reverse=True)
        self._cache: dict[tuple[str, str], tuple[str, ...] | None] = {}

    def lookup(self, destination: str, tenant: str) -> tuple[str, ...] | None:
        """Operators to try, in order, or None when no route matches."""
        key = (destination, tenant)
        cached = self._cache.get(key, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        found: tuple[str, ...] | None = None
        for length in self._lengths:
            if length > len(destination):
                continue
            for tenants, operators in self._by_prefix.get(destination[:length], ()):
                if not tenants or tenant in tenants:
                    found = operators
                    break
            if found is not None:
                break
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[key] = found
        return found
