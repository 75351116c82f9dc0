"""What a live reload may change and what it reports (``smsc.reload``: pure functions).

``fixed_keys`` names the keys a running gateway cannot take (listening addresses, the store,
the metrics endpoint, a few ``[http]`` ones, ``[listen_tls]`` switched on or off,
``pid_file``); ``keep_fixed`` gives the config the gateway applies (the new file, those keys
as they run); ``changes`` is the log's one line per change: tenants, operators and routes
added, removed or changed, never a secret's value.
"""

from __future__ import annotations

import msgspec
import pytest

from config import (
    GatewayConfig,
    HttpConfig,
    ListenConfig,
    MetricsConfig,
    OperatorConfig,
    RouteConfig,
    StoreConfig,
    TenantConfig,
    TlsListenConfig,
)
from smsc.reload import changes, fixed_keys, keep_fixed

SECRET = "s3cret-Pa55"


def _operator(name: str, **fields: object) -> OperatorConfig:
    op = OperatorConfig(name=name, host="127.0.0.1", port=2776, system_id="gw",
                        password=SECRET)
    return msgspec.structs.replace(op, **fields)


OLD = GatewayConfig(
    listen=ListenConfig(host="127.0.0.1", port=2775),
    store=StoreConfig(path="/var/lib/smsc/smsc.db"),
    metrics=MetricsConfig(port=9100),
    http=HttpConfig(port=8080),
    tenants=(TenantConfig(system_id="acme", password=SECRET, tps=10.0),
             TenantConfig(system_id="beta", password="beta")),
    operators=(_operator("A"),),
    routes=(RouteConfig(prefix="", operators=("A",)),),
    pid_file="/run/smsc.pid",
)


def _with(cfg: GatewayConfig = OLD, /, **fields: object) -> GatewayConfig:
    return msgspec.structs.replace(cfg, **fields)


def _tenant(name: str, **fields: object) -> TenantConfig:
    t = next(t for t in OLD.tenants if t.system_id == name)
    return msgspec.structs.replace(t, **fields)


def test_the_same_config_changes_nothing() -> None:
    same = _with()
    assert fixed_keys(OLD, same) == []
    assert changes(OLD, same) == []
    assert keep_fixed(OLD, same) == OLD


def test_a_changed_tenant_is_one_line() -> None:
    new = _with(tenants=(_tenant("acme", tps=50.0), _tenant("beta")))
    assert changes(OLD, new) == ["tenant acme changed"]
    assert fixed_keys(OLD, new) == []
    assert keep_fixed(OLD, new).tenants == new.tenants


def test_added_and_removed_tenants() -> None:
    new = _with(tenants=(_tenant("acme"), TenantConfig(system_id="gamma", password="g")))
    assert changes(OLD, new) == ["tenant beta removed", "tenant gamma added"]


def test_an_added_operator_and_its_route() -> None:
    new = _with(operators=(_operator("A"), _operator("B", window=5)),
                routes=(RouteConfig(prefix="4479", operators=("B",)),
                        RouteConfig(prefix="", operators=("A",))))
    assert changes(OLD, new) == ["operator B added", "routes: 1 -> 2"]
    applied = keep_fixed(OLD, new)
    assert [op.name for op in applied.operators] == ["A", "B"]
    assert applied.routes == new.routes


def test_a_changed_and_a_removed_operator() -> None:
    two = _with(operators=(_operator("A"), _operator("B")),
                routes=(RouteConfig(prefix="", operators=("A", "B")),))
    new = _with(two, operators=(_operator("A", window=50),),
                routes=(RouteConfig(prefix="", operators=("A",)),))
    assert changes(two, new) == ["operator A changed", "operator B removed", "routes: 1 -> 1"]


def test_a_changed_route_is_reported_even_when_the_count_is_the_same() -> None:
    new = _with(routes=(RouteConfig(prefix="44", operators=("A",)),))
    assert changes(OLD, new) == ["routes: 1 -> 1"]


def test_a_changed_listen_port_is_kept_for_the_next_start() -> None:
    new = _with(listen=ListenConfig(host="127.0.0.1", port=2999),
                tenants=(_tenant("acme", tps=1.0), _tenant("beta")))
    assert fixed_keys(OLD, new) == ["[listen] port"]
    applied = keep_fixed(OLD, new)
    assert applied.listen == OLD.listen  # the running port stays
    assert applied.tenants == new.tenants  # the rest of the file applies
    # the change that cannot apply is not reported as applied
    assert changes(OLD, applied) == ["tenant acme changed"]


@pytest.mark.parametrize(("fields", "key"), [
    ({"store": StoreConfig(path="/elsewhere.db")}, "[store] path"),
    ({"metrics": MetricsConfig(port=9200)}, "[metrics] port"),
    ({"http": HttpConfig(port=8081)}, "[http] port"),
    ({"http": HttpConfig(port=8080, max_body_bytes=2048)}, "[http] max_body_bytes"),
    ({"http": HttpConfig(port=8080, enabled=False)}, "[http] enabled"),
    ({"pid_file": "/run/other.pid"}, "pid_file"),
])
def test_restart_only_keys_keep_their_running_values(fields: dict[str, object],
                                                     key: str) -> None:
    new = _with(**fields)
    assert fixed_keys(OLD, new) == [key]
    assert keep_fixed(OLD, new) == OLD
    assert changes(OLD, keep_fixed(OLD, new)) == []


def test_http_keys_a_reload_may_change_are_applied() -> None:
    new = _with(http=HttpConfig(port=8080, max_recipients=10, webhook_concurrency=2))
    assert fixed_keys(OLD, new) == []
    assert keep_fixed(OLD, new).http == new.http
    assert changes(OLD, new) == ["[http] changed"]


def test_a_tls_listener_switched_on_waits_for_the_next_start() -> None:
    tls = TlsListenConfig(port=3550, cert="/etc/smsc/cert.pem", key="/etc/smsc/key.pem")
    new = _with(listen_tls=tls)
    assert fixed_keys(OLD, new) == ["[listen_tls]"]
    assert keep_fixed(OLD, new).listen_tls is None
    # once it runs, its certificate can change, its port cannot
    on = _with(listen_tls=tls)
    moved = _with(listen_tls=msgspec.structs.replace(tls, port=3551, cert="/etc/smsc/new.pem"))
    assert fixed_keys(on, moved) == ["[listen_tls] port"]
    applied = keep_fixed(on, moved).listen_tls
    assert applied is not None
    assert (applied.port, applied.cert) == (3550, "/etc/smsc/new.pem")
    assert changes(on, keep_fixed(on, moved)) == ["[listen_tls] changed"]


def test_https_switched_on_waits_for_the_next_start() -> None:
    new = _with(http=HttpConfig(port=8080, cert="/etc/smsc/cert.pem", key="/etc/smsc/key.pem"))
    assert fixed_keys(OLD, new) == ["[http] cert (switching HTTPS on or off)"]
    assert keep_fixed(OLD, new).http == OLD.http


def test_a_password_change_is_reported_without_the_password() -> None:
    new_secret = "n3w-Secret!"
    new = _with(tenants=(_tenant("acme", password=new_secret), _tenant("beta")),
                operators=(_operator("A", password=new_secret),))
    notes = changes(OLD, new) + fixed_keys(OLD, new)
    assert notes == ["operator A changed", "tenant acme changed"]
    for note in notes:
        assert SECRET not in note and new_secret not in note, note
