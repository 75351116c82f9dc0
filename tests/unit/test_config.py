"""Gateway config: example files, includes, defaults, immutability, one-line errors."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import msgspec
import pytest

from config import (
    ConfigError,
    GatewayConfig,
    OperatorConfig,
    SimulatorConfig,
    StoreConfig,
    TenantConfig,
    default_config_path,
    load_gateway_config,
    load_simulator_config,
)

EXAMPLES = Path(default_config_path()).parent

OPERATOR = """
[[operators]]
name = "sim"
host = "127.0.0.1"
port = 2776
system_id = "gw"
password = "gw"
"""
TENANT = """
[[tenants]]
system_id = "demo"
password = "demo"
"""
ROUTE = """
[[routes]]
operators = ["sim"]
"""


def write(tmp_path: Path, text: str, name: str = "smsc.toml") -> str:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def error_of(path: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_gateway_config(path)
    text = str(info.value)
    assert "\n" not in text
    return text


# --- examples --------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(EXAMPLES.rglob("*.toml")), ids=lambda p: p.name)
def test_every_example_file_decodes(path: Path) -> None:
    if path.parent.name == "operators":
        import config.gateway as gw

        msgspec.toml.decode(path.read_bytes(), type=gw.IncludeFile)
    elif path.name == "simulator.toml":
        assert isinstance(load_simulator_config(path), SimulatorConfig)
    else:
        assert isinstance(load_gateway_config(path), GatewayConfig)


def test_demo_config() -> None:
    cfg = load_gateway_config(default_config_path())
    assert (cfg.listen.host, cfg.listen.port) == ("127.0.0.1", 2775)
    assert (cfg.metrics.host, cfg.metrics.port) == ("127.0.0.1", 9100)
    assert [(t.system_id, t.password) for t in cfg.tenants] == [("demo", "demo")]
    (op,) = cfg.operators
    assert (op.name, op.host, op.port, op.system_id, op.password) == (
        "sim",
        "127.0.0.1",
        2776,
        "gw",
        "gw",
    )
    assert [(r.prefix, r.operators) for r in cfg.routes] == [("", ("sim",))]
    assert cfg.config_dir == str(EXAMPLES)
    assert cfg.store.path == os.path.join(str(EXAMPLES), "var", "smsc.db")


DEMO_KEY = "sha256:" + hashlib.sha256(b"demo-token").hexdigest()


def test_demo_config_spells_out_the_defaults() -> None:
    cfg = load_gateway_config(default_config_path())
    assert cfg.listen == GatewayConfig().listen
    assert cfg.metrics == GatewayConfig().metrics
    assert cfg.http == GatewayConfig().http
    # The demo tenant's one non-default: the documented demo token's hash.
    assert cfg.tenants[0] == TenantConfig(system_id="demo", password="demo",
                                          api_keys=(DEMO_KEY,),
                                          webhook_secret=cfg.tenants[0].secrets[0])
    assert cfg.operators[0] == OperatorConfig(
        name="sim", host="127.0.0.1", port=2776, system_id="gw", password="gw"
    )


def test_multi_example_merges_includes() -> None:
    cfg = load_gateway_config(EXAMPLES / "smsc-multi.toml")
    assert cfg.include == ("operators/*.toml",)
    assert [op.name for op in cfg.operators] == ["sim", "sim2"]
    assert [(r.prefix, r.operators) for r in cfg.routes] == [
        ("", ("sim",)),
        ("44", ("sim2", "sim")),
    ]
    assert cfg.operator("sim2").split == "sar"
    assert cfg.tenant("acme").networks[1].prefixlen == 8


# --- defaults, immutability, loader behaviour -------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    cfg = load_gateway_config(write(tmp_path, ""))
    assert cfg.listen.max_command_length == 70000
    assert cfg.listen.enquire_link_s == 30.0
    assert cfg.store == StoreConfig(path=str(tmp_path / "var" / "smsc.db"))
    assert cfg.store.max_queue == 100000
    assert cfg.metrics.enabled
    assert (cfg.tenants, cfg.operators, cfg.routes) == ((), (), ())
    tenant = TenantConfig(system_id="t", password="")
    assert tenant.bind_types == ("transmitter", "receiver", "transceiver")
    assert (tenant.window, tenant.tps, tenant.id_format, tenant.dcs0) == (
        100,
        0.0,
        "decimal",
        "gsm7",
    )
    assert (tenant.multipart_receipt, tenant.mo_reassemble, tenant.deliver_window) == (
        "aggregate",
        True,
        10,
    )
    op = OperatorConfig(name="o", host="h", port=1, system_id="s", password="p")
    assert (op.bind, op.binds, op.window, op.split, op.id_format, op.long_part) == (
        "transceiver",
        1,
        10,
        "udh8",
        "auto",
        "resplit",
    )


def test_frozen() -> None:
    cfg = load_gateway_config(default_config_path())
    with pytest.raises(AttributeError):
        cfg.listen = cfg.listen  # type: ignore[misc]
    with pytest.raises(AttributeError):
        cfg.tenants[0].tps = 5.0  # type: ignore[misc]
    assert isinstance(cfg.tenants, tuple)
    assert isinstance(cfg.tenants[0].bind_types, tuple)


def test_int_accepted_for_float_and_absolute_store_path_kept(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere.db"
    cfg = load_gateway_config(
        write(tmp_path, f'[store]\npath = "{db}"\n[listen]\ninactivity_s = 0\n' + TENANT)
    )
    assert cfg.store.path == str(db)
    assert cfg.listen.inactivity_s == 0.0


def test_memory_store_kept(tmp_path: Path) -> None:
    cfg = load_gateway_config(write(tmp_path, '[store]\npath = ":memory:"\n'))
    assert cfg.store.path == ":memory:"


def test_includes_merge_in_order(tmp_path: Path) -> None:
    write(tmp_path, OPERATOR.replace('"sim"', '"b"'), "ops/b.toml")
    write(tmp_path, OPERATOR.replace('"sim"', '"a"') + ROUTE.replace('"sim"', '"a"'), "ops/a.toml")
    write(tmp_path, TENANT.replace('"demo"', '"t2"'), "more/tenants.toml")
    main = write(
        tmp_path,
        'include = ["ops/*.toml", "more/tenants.toml", "ops/a.toml"]\n' + OPERATOR + TENANT,
    )
    cfg = load_gateway_config(main)
    assert [op.name for op in cfg.operators] == ["sim", "a", "b"]
    assert [t.system_id for t in cfg.tenants] == ["demo", "t2"]
    assert [r.operators for r in cfg.routes] == [("a",)]


# --- errors: exactly one line naming file, key and reason --------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "smsc.toml")
    assert error_of(path) == (
        f"{path}: cannot read file: No such file or directory — pass an existing path with --config"
    )


def test_error_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "[[tenants]]\nsystem_id='x'\npassword='y'\ntps = -1\n")
    with pytest.raises(ConfigError) as info:
        load_gateway_config(path)
    assert (info.value.file, info.value.key) == (path, "tenants[0].tps")
    assert str(info.value) == f"{path}: tenants[0].tps: Expected `float` >= 0.0, got -1"


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[listen\nport = 1\n", "line 1, column 8", "TOML syntax"),
        ("port = = 1\n", "line 1, column 8", "TOML syntax"),
        ("[listen]\nprot = 1\n", "listen.prot", "unknown key (did you mean 'port'?"),
        ("colour = 1\n", "colour", "unknown key"),
        ("[listen]\nport = '2775'\n", "listen.port", "Expected `int`, got `str`"),
        ("[listen]\nport = 70000\n", "listen.port", "Expected `int` <= 65535, got 70000"),
        ("[store]\nmax_queue = 0\n", "store.max_queue", ">= 1, got 0"),
        ("[metrics]\nenabled = 'yes'\n", "metrics.enabled", "Expected `bool`"),
        ("listen = 3\n", "listen", "Expected `object`, got `int`"),
        (TENANT + "tps = -1\n", "tenants[0].tps", "Expected `float` >= 0.0, got -1"),
        (TENANT + "window = 0\n", "tenants[0].window", ">= 1"),
        (TENANT + "bind_types = []\n", "tenants[0].bind_types", "length >= 1"),
        (TENANT + "bind_types = ['tx']\n", "tenants[0].bind_types[0]", "'transceiver'"),
        (TENANT + "bind_types = ['receiver', 'receiver']\n", "tenants[0].bind_types", "repeat"),
        (TENANT + "allowed_ips = ['10.0.0.0/8', 'lan']\n", "tenants[0].allowed_ips[1]", "'lan'"),
        (TENANT + "numbers = ['+4477']\n", "tenants[0].numbers[0]", "regex"),
        (TENANT + "id_format = 'octal'\n", "tenants[0].id_format", "'decimal', 'hex'"),
        (
            "[[tenants]]\nsystem_id = 'a'\npassword = '" + "p" * 65 + "'\n",
            "tenants[0].password",
            "<= 64",
        ),
        ("[[tenants]]\npassword = 'x'\n", "tenants[0].system_id", "missing required key"),
        (
            "[[tenants]]\nsystem_id = '0123456789abcdef'\npassword = ''\n",
            "tenants[0].system_id",
            "length <= 15",
        ),
        (OPERATOR + "binds = 65\n", "operators[0].binds", "<= 64, got 65"),
        (OPERATOR + "window = 1001\n", "operators[0].window", "<= 1000"),
        (OPERATOR + "split = 'udh7'\n", "operators[0].split", "Invalid enum value 'udh7'"),
        (OPERATOR + "reconnect_min_s = 90\n", "operators[0].reconnect_max_s", ">= reconnect_min"),
        (OPERATOR + "name = 'again'\n", "line 8, column 15", "TOML syntax: Cannot overwrite"),
        (OPERATOR.replace('"sim"', '"has space"'), "operators[0].name", "regex"),
        (OPERATOR + ROUTE + "prefix = '44x'\n", "routes[0].prefix", "regex"),
        (OPERATOR + "[[routes]]\noperators = []\n", "routes[0].operators", "length >= 1"),
        ('config_dir = "/tmp"\n', "config_dir", "set by the loader"),
        (TENANT + TENANT, "tenants[1].system_id", "duplicate tenant system_id 'demo'"),
        (OPERATOR + OPERATOR, "operators[1].name", "duplicate operator name 'sim'"),
        (OPERATOR + ROUTE.replace('["sim"]', '["sim", "x"]'), "routes[0].operators[1]", "'x'"),
        (
            TENANT + OPERATOR + ROUTE + "tenants = ['demo', 'ghost']\n",
            "routes[0].tenants[1]",
            "unknown tenant 'ghost'",
        ),
        (OPERATOR + ROUTE + ROUTE, "routes[1].prefix", "already at"),
        (
            TENANT
            + "numbers = ['4477']\n"
            + TENANT.replace('"demo"', '"b"')
            + "numbers=['4477']\n",
            "tenants[1].numbers[0]",
            "already owned",
        ),
        ('include = ["nothing/*.toml"]\n', "include[0]", "matches no file"),
    ],
)
def test_errors(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = write(tmp_path, text)
    message = error_of(path)
    assert message.startswith(f"{path}: {key}: "), message
    assert reason in message


def test_error_in_included_file_names_that_file(tmp_path: Path) -> None:
    bad = write(tmp_path, OPERATOR.replace("port = 2776", "port = 0"), "operators/bad.toml")
    message = error_of(write(tmp_path, 'include = ["operators/*.toml"]\n'))
    assert message.startswith(f"{bad}: operators[0].port: Expected `int` >= 1, got 0")


def test_included_file_may_not_hold_other_tables(tmp_path: Path) -> None:
    inc = write(tmp_path, "[listen]\nport = 1\n", "inc.toml")
    message = error_of(write(tmp_path, 'include = ["inc.toml"]\n'))
    assert message.startswith(f"{inc}: listen: unknown key")


def test_duplicate_across_files_names_both(tmp_path: Path) -> None:
    inc = write(tmp_path, OPERATOR, "ops.toml")
    main = write(tmp_path, 'include = ["ops.toml"]\n' + OPERATOR)
    message = error_of(main)
    assert message.startswith(f"{inc}: operators[0].name: duplicate operator name 'sim'")
    assert f"first at {main}: operators[0]" in message


def test_route_to_operator_defined_in_include(tmp_path: Path) -> None:
    write(tmp_path, OPERATOR, "ops.toml")
    cfg = load_gateway_config(write(tmp_path, 'include = ["ops.toml"]\n' + ROUTE))
    assert cfg.routes[0].operators == ("sim",)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "smsc.toml"
    path.write_bytes(b"[listen]\nhost = '\xff'\n")
    assert error_of(str(path)) == f"{path}: encoding: not UTF-8 (byte 17)"


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    message = error_of(str(tmp_path))
    assert message.startswith(f"{tmp_path}: cannot read file: ")


def test_the_cluster_example_is_three_nodes_on_servers_that_sync_every_write() -> None:
    """make cluster's files (config/examples/cluster): distinct ports and node names, the
    same servers, operators with a bind for every node, NATS with sync_interval: always."""
    folder = EXAMPLES / "cluster"
    nodes = [load_gateway_config(folder / f"gw-{i}.toml") for i in (1, 2, 3)]
    clusters = [n.cluster for n in nodes if n.cluster is not None]
    assert len(clusters) == 3
    assert len({c.node for c in clusters}) == 3
    assert {c.servers for c in clusters} == {("nats://127.0.0.1:4222", "nats://127.0.0.1:4223",
                                              "nats://127.0.0.1:4224")}
    ports = [p for n in nodes for p in (n.listen.port, n.http.port, n.metrics.port)]
    assert len(set(ports)) == len(ports)
    assert len({n.store.path for n in nodes}) == 3
    assert all(op.binds >= 3 for n in nodes for op in n.operators)
    for i in (1, 2, 3):
        text = (folder / f"nats-{i}.conf").read_text()
        assert re.search(r"^\s*sync_interval:\s*always\s*$", text, re.M), f"nats-{i}.conf"
        assert f"port: 422{i + 1}" in text
