"""The config loader: the only place in the gateway that reads config files.

``load_gateway_config(path)`` reads TOML with ``msgspec.toml.decode(type=...)``, follows
``include`` globs, merges the included tables, checks what one Struct cannot see (duplicate
tenant system_ids, duplicate operator names, routes naming unknown operators or tenants,
MO numbers owned twice, the same route written twice, ``tls_only`` without ``[listen_tls]``)
and makes relative paths (``store.path``, ``pid_file``, certificates, keys and CA bundles)
absolute against the config file's directory; a certificate, key or CA file that cannot be
read is an error here, at the key that names it. Every failure is a ``ConfigError`` whose
text is one line, ``"FILE: KEY: REASON"``, e.g.
``smsc.toml: tenants[0].tps: Expected `float` >= 0.0, got -1``.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from .errors import ConfigError, from_validation_error
from .gateway import GatewayConfig, IncludeFile, OperatorConfig, RouteConfig
from .tenant import TenantConfig

__all__ = ["default_config_path", "load_gateway_config"]

_T = TypeVar("_T", GatewayConfig, IncludeFile)
_LOCATION_RE = re.compile(r"^(?P<reason>.*?) ?\(at (?P<where>line \d+, column \d+)\)$")
_HINT = "pass an existing path with --config"


def default_config_path() -> str:
    """Path of the bundled demo config (``config/examples/smsc.toml`` in the package)."""
    return str(Path(__file__).resolve().parent / "examples" / "smsc.toml")


def _read(file: str, *, hint: str | None = None) -> str:
    try:
        data = Path(file).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        text = f"{reason} — {hint}" if hint else reason
        raise ConfigError(file, "cannot read file", text) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(file, "encoding", f"not UTF-8 (byte {exc.start})") from None


def _decode(file: str, text: str, kind: type[_T]) -> _T:
    try:
        return msgspec.toml.decode(text, type=kind)
    except msgspec.ValidationError as exc:
        raw = msgspec.toml.decode(text)  # syntax is fine here; used to show the bad value
        raise from_validation_error(file, exc, kind, raw) from None
    except msgspec.DecodeError as exc:
        match = _LOCATION_RE.match(str(exc))
        if match:
            raise ConfigError(file, match["where"], f"TOML syntax: {match['reason']}") from None
        raise ConfigError(file, "TOML syntax", str(exc)) from None


class _Origin(msgspec.Struct, frozen=True):
    """Where an entry of a merged table was written."""

    file: str
    table: str
    index: int

    def key(self, tail: str = "") -> str:
        return f"{self.table}[{self.index}]{tail}"


def _entries(
    docs: list[tuple[str, GatewayConfig | IncludeFile]], table: str
) -> Iterator[tuple[_Origin, Any]]:
    for file, doc in docs:
        for index, entry in enumerate(getattr(doc, table)):
            yield _Origin(file, table, index), entry


def _includes(file: str, cfg: GatewayConfig, base: str) -> list[str]:
    files: list[str] = []
    for index, pattern in enumerate(cfg.include):
        matches = sorted(glob.glob(os.path.join(base, pattern)))
        matches = [m for m in matches if os.path.isfile(m)]
        if not matches:
            raise ConfigError(file, f"include[{index}]", f"pattern {pattern!r} matches no file")
        for match in matches:
            if os.path.abspath(match) == os.path.abspath(file):
                raise ConfigError(file, f"include[{index}]", "a file cannot include itself")
            if match not in files:
                files.append(match)
    return files


def _check_unique(
    docs: list[tuple[str, GatewayConfig | IncludeFile]],
    table: str,
    field: str,
    what: str,
) -> dict[str, _Origin]:
    seen: dict[str, _Origin] = {}
    for origin, entry in _entries(docs, table):
        value = getattr(entry, field)
        if value in seen:
            first = seen[value]
            raise ConfigError(
                origin.file,
                origin.key(f".{field}"),
                f"duplicate {what} {value!r} (first at {first.file}: {first.key()})",
            )
        seen[value] = origin
    return seen


def _check_cross(docs: list[tuple[str, GatewayConfig | IncludeFile]]) -> None:
    tenants = _check_unique(docs, "tenants", "system_id", "tenant system_id")
    operators = _check_unique(docs, "operators", "name", "operator name")
    owners: dict[str, _Origin] = {}
    for origin, tenant in _entries(docs, "tenants"):
        for i, number in enumerate(tenant.numbers):
            first = owners.setdefault(number, origin)
            if first is not origin:
                raise ConfigError(
                    origin.file,
                    origin.key(f".numbers[{i}]"),
                    f"number {number!r} is already owned by {first.file}: {first.key()}",
                )
    routes: dict[tuple[str, frozenset[str]], _Origin] = {}
    for origin, route in _entries(docs, "routes"):
        for i, name in enumerate(route.operators):
            if name not in operators:
                known = ", ".join(sorted(operators)) or "none defined"
                raise ConfigError(
                    origin.file,
                    origin.key(f".operators[{i}]"),
                    f"unknown operator {name!r} (known: {known})",
                )
        for i, name in enumerate(route.tenants):
            if name not in tenants:
                known = ", ".join(sorted(tenants)) or "none defined"
                raise ConfigError(
                    origin.file,
                    origin.key(f".tenants[{i}]"),
                    f"unknown tenant {name!r} (known: {known})",
                )
        signature = (route.prefix, frozenset(route.tenants))
        if signature in routes:
            first = routes[signature]
            raise ConfigError(
                origin.file,
                origin.key(".prefix"),
                f"route for prefix {route.prefix!r} and the same tenants is already at"
                f" {first.file}: {first.key()}",
            )
        routes[signature] = origin


def _path(config_dir: str, value: str) -> str:
    if not value or value == ":memory:" or os.path.isabs(value):
        return value
    return os.path.normpath(os.path.join(config_dir, value))


def _readable(file: str, key: str, path: str) -> str:
    """``path`` (absolute) when it names a readable file, else a ConfigError at ``key``."""
    if path and not os.path.isfile(path):
        raise ConfigError(file, key, f"no such file: {path}")
    if path and not os.access(path, os.R_OK):
        raise ConfigError(file, key, f"cannot read {path} (permissions)")
    return path


def _resolve_files(file: str, cfg: GatewayConfig, config_dir: str,
                   operators: tuple[OperatorConfig, ...]) -> dict[str, Any]:
    """The tables whose file keys are made absolute (and checked), as replace() arguments."""
    def fix(struct: Any, key: str, fields: tuple[str, ...]) -> Any:
        changes = {f: _readable(file, f"{key}.{f}", _path(config_dir, getattr(struct, f)))
                   for f in fields}
        return msgspec.structs.replace(struct, **changes)

    out: dict[str, Any] = {
        "http": fix(cfg.http, "http", ("cert", "key", "webhook_ca")),
        "operators": tuple(fix(op, f"operators[{i}]", ("ca", "cert", "key"))
                           for i, op in enumerate(operators)),
        "pid_file": _path(config_dir, cfg.pid_file),
    }
    if cfg.listen_tls is not None:
        out["listen_tls"] = fix(cfg.listen_tls, "listen_tls", ("cert", "key", "client_ca"))
    if cfg.cluster is not None:
        out["cluster"] = fix(cfg.cluster, "cluster", ("ca", "cert", "key"))
    return out


def load_gateway_config(path: str | os.PathLike[str]) -> GatewayConfig:
    """Read, validate and merge the gateway config at ``path``; raise ``ConfigError``.

    The returned config has the included tables merged in, ``config_dir`` set to the
    absolute directory of ``path`` and a relative ``store.path`` made absolute against it.
    """
    file = os.fspath(path)
    cfg = _decode(file, _read(file, hint=_HINT), GatewayConfig)
    if cfg.config_dir:
        raise ConfigError(file, "config_dir", "set by the loader from the file's location")
    base = os.path.dirname(file)
    docs: list[tuple[str, GatewayConfig | IncludeFile]] = [(file, cfg)]
    for included in _includes(file, cfg, base):
        docs.append((included, _decode(included, _read(included), IncludeFile)))
    _check_cross(docs)

    def merged(table: str) -> tuple[Any, ...]:
        return tuple(entry for _, entry in _entries(docs, table))

    config_dir = os.path.abspath(base or os.curdir)
    store = cfg.store
    if store.path != ":memory:" and not os.path.isabs(store.path):
        store_path = os.path.normpath(os.path.join(config_dir, store.path))
        store = msgspec.structs.replace(store, path=store_path)
    tenants: tuple[TenantConfig, ...] = merged("tenants")
    operators: tuple[OperatorConfig, ...] = merged("operators")
    routes: tuple[RouteConfig, ...] = merged("routes")
    if not cfg.tls_listening:
        for origin, tenant in _entries(docs, "tenants"):
            if tenant.tls_only:
                raise ConfigError(origin.file, origin.key(".tls_only"),
                                  "needs an enabled [listen_tls] listener")
    return msgspec.structs.replace(
        cfg,
        store=store,
        tenants=tenants,
        routes=routes,
        config_dir=config_dir,
        **_resolve_files(file, cfg, config_dir, operators),
    )
