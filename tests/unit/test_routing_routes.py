"""Route table: longest destination prefix wins, tenant-limited routes beat open ones."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from config import RouteConfig
from routing.routes import RouteTable


def table(*routes: tuple[str, tuple[str, ...], tuple[str, ...]]) -> RouteTable:
    return RouteTable(RouteConfig(prefix=p, operators=ops, tenants=t) for p, ops, t in routes)


def test_longest_prefix_wins() -> None:
    t = table(("44", ("uk",), ()), ("447", ("uk-mobile",), ()), ("", ("default",), ()))
    assert t.lookup("447700900123", "acme") == ("uk-mobile",)
    assert t.lookup("441632960000", "acme") == ("uk",)
    assert t.lookup("33612345678", "acme") == ("default",)


def test_no_route_without_default() -> None:
    t = table(("44", ("uk",), ()))
    assert t.lookup("33612345678", "acme") is None
    # A prefix longer than the destination cannot match it.
    assert t.lookup("4", "acme") is None


def test_tenant_limited_route_wins_over_open_route_with_same_prefix() -> None:
    # Order in the config must not matter: the open route is listed first here.
    t = table(("44", ("cheap",), ()), ("44", ("premium",), ("vip",)))
    assert t.lookup("447700900123", "vip") == ("premium",)
    assert t.lookup("447700900123", "other") == ("cheap",)


def test_tenant_filter_excludes_other_tenants_and_falls_back_to_shorter_prefix() -> None:
    t = table(("447", ("vip-only",), ("vip",)), ("44", ("uk",), ()))
    assert t.lookup("447700900123", "vip") == ("vip-only",)
    assert t.lookup("447700900123", "acme") == ("uk",)


def test_operators_keep_failover_order() -> None:
    t = table(("", ("a", "b", "c"), ()))
    assert t.lookup("1", "x") == ("a", "b", "c")


def test_cached_answers_are_per_tenant() -> None:
    t = table(("1", ("vip-op",), ("vip",)), ("", ("default",), ()))
    assert t.lookup("123", "other") == ("default",)
    assert t.lookup("123", "vip") == ("vip-op",)
    assert t.lookup("123", "other") == ("default",)
    assert t.lookup("999", "vip") == ("default",)


@given(st.lists(st.text("0123", max_size=4), min_size=1, max_size=8, unique=True),
       st.text("0123", min_size=0, max_size=8))
def test_lookup_is_the_longest_matching_prefix(prefixes: list[str], dest: str) -> None:
    t = RouteTable(RouteConfig(prefix=p, operators=(f"op{p}",)) for p in prefixes)
    matching = [p for p in prefixes if dest.startswith(p)]
    expected = (f"op{max(matching, key=len)}",) if matching else None
    assert t.lookup(dest, "any") == expected
