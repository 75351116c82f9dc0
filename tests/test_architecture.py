"""The import rules of docs/architecture.md, checked by reading every module with ``ast``.

Imports point one way: ``bench → smsc → esme → routing → {encoding, config}``.

* ``encoding`` and ``config`` import no other package of ours, and nothing outside the
  standard library but msgspec.
* ``encoding`` does no I/O: no asyncio, socket, sqlite3, sqlite_utils, prometheus_client,
  threading (nor the other I/O modules listed below), and it never reads the clock. Importing
  ``time`` to *format* an epoch it was given is fine; calling ``time.time()``,
  ``time.monotonic()``, ``datetime.now()`` and friends, or ``time.gmtime()`` with no argument,
  is not. (The brief named ``time`` as a forbidden import; ``encoding/smpptime.py`` uses
  ``time.gmtime(epoch)`` to format a time passed in, which the house rule allows.)
* ``routing`` imports only ``encoding`` and ``config`` of ours, and msgspec and sqlite_utils.
* Only ``routing/store.py`` (and ``routing/schema.py``) import sqlite3 or sqlite_utils.
* ``esme`` imports only ``encoding``, ``config`` and ``routing`` of ours.
* ``smsc`` imports anything but ``bench``; nothing but ``bench`` imports ``bench``.
* Every module has a docstring.

Every import counts, including those inside functions and under ``TYPE_CHECKING``: a
type-only import still ties the packages together. Failures name the file, the line and
the import.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("encoding", "config", "routing", "esme", "smsc", "bench")

# our packages each package may import (itself included)
ALLOWED_OURS: dict[str, frozenset[str]] = {
    "encoding": frozenset({"encoding"}),
    "config": frozenset({"config"}),
    "routing": frozenset({"routing", "encoding", "config"}),
    "esme": frozenset({"esme", "encoding", "config", "routing"}),
    "smsc": frozenset({"smsc", "esme", "routing", "encoding", "config"}),
    "bench": frozenset(PACKAGES),
}
# third-party (not stdlib, not ours) packages allowed; a package missing here may use any
ALLOWED_THIRD_PARTY: dict[str, frozenset[str]] = {
    "encoding": frozenset({"msgspec"}),
    "config": frozenset({"msgspec"}),
    "routing": frozenset({"msgspec", "sqlite_utils"}),
}
IO_MODULES = frozenset({
    "asyncio", "socket", "sqlite3", "sqlite_utils", "prometheus_client", "threading",
    "selectors", "ssl", "subprocess", "multiprocessing", "concurrent", "uvloop", "http",
    "urllib", "aiosqlite", "apsw",
})
SQLITE_MODULES = frozenset({"sqlite3", "sqlite_utils", "aiosqlite", "apsw"})
SQLITE_OWNERS = frozenset({"routing/store.py", "routing/schema.py"})
# functions that read the clock, by module
CLOCK_READS = {
    "time": frozenset({"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter",
                       "perf_counter_ns", "process_time", "process_time_ns", "thread_time",
                       "thread_time_ns", "clock_gettime", "clock_gettime_ns"}),
}
# time functions that read the clock when called without their time argument
CLOCK_DEFAULTS = {"gmtime": 0, "localtime": 0, "ctime": 0, "asctime": 0, "strftime": 1}
DATETIME_NOW = frozenset({"now", "utcnow", "today"})


@dataclass(frozen=True)
class Import:
    path: str  # relative to the repository, with forward slashes
    line: int
    module: str  # absolute dotted name ("" when a relative import climbs out of the tree)
    names: tuple[str, ...] = ()  # for ``from module import names``

    @property
    def top(self) -> str:
        return self.module.split(".", 1)[0]

    def __str__(self) -> str:
        what = f"from {self.module} import {', '.join(self.names)}" if self.names else (
            f"import {self.module}")
        return f"{self.path}:{self.line}: {what}"


def python_files(root: Path, package: str) -> list[Path]:
    return sorted(p for p in (root / package).rglob("*.py") if "__pycache__" not in p.parts)


def _package_of(root: Path, path: Path) -> list[str]:
    """The dotted package a module lives in (the module itself for ``__init__.py``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts[:-1]


def imports_of(root: Path, path: Path) -> Iterator[Import]:
    rel = path.relative_to(root).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    package = _package_of(root, path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(rel, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            names = tuple(a.name for a in node.names)
            if node.level == 0:
                yield Import(rel, node.lineno, node.module or "", names)
                continue
            up = node.level - 1
            if up >= len(package):
                yield Import(rel, node.lineno, "", names)  # climbs out of our packages
                continue
            base = package[:len(package) - up]
            module = ".".join([*base, node.module] if node.module else base)
            yield Import(rel, node.lineno, module, names)


def all_imports(root: Path = ROOT) -> Iterator[tuple[str, Import]]:
    for package in PACKAGES:
        for path in python_files(root, package):
            for imp in imports_of(root, path):
                yield package, imp


def direction_violations(root: Path, package: str) -> list[str]:
    out: list[str] = []
    third_party = ALLOWED_THIRD_PARTY.get(package)
    for path in python_files(root, package):
        for imp in imports_of(root, path):
            top = imp.top
            if not top:
                out.append(f"{imp}: relative import leaves the package tree")
            elif top in PACKAGES:
                if top not in ALLOWED_OURS[package]:
                    allowed = ", ".join(sorted(ALLOWED_OURS[package] - {package})) or "none"
                    out.append(f"{imp}: {package} may not import {top} "
                               f"(of ours it may import: {allowed})")
            elif (third_party is not None and top not in sys.stdlib_module_names
                  and top not in third_party):
                out.append(f"{imp}: {package} may import only the standard library and "
                           f"{', '.join(sorted(third_party))}, not {top}")
    return out


def io_violations(root: Path) -> list[str]:
    """I/O imports and clock reads in ``encoding``."""
    out: list[str] = []
    for path in python_files(root, "encoding"):
        rel = path.relative_to(root).as_posix()
        for imp in imports_of(root, path):
            if imp.top in IO_MODULES:
                out.append(f"{imp}: encoding does no I/O")
            clock = CLOCK_READS.get(imp.module, frozenset())
            for name in imp.names:
                if name in clock:
                    out.append(f"{imp}: encoding must not read the clock ({name})")
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                reason = _clock_read(node)
                if reason:
                    out.append(f"{rel}:{node.lineno}: {reason}: encoding must not read "
                               "the clock (take `now` as an argument)")
    return out


def _clock_read(call: ast.Call) -> str:
    func = call.func
    assert isinstance(func, ast.Attribute)
    owner = func.value
    owner_name = (owner.id if isinstance(owner, ast.Name)
                  else owner.attr if isinstance(owner, ast.Attribute) else "")
    attr = func.attr
    if owner_name == "time":
        if attr in CLOCK_READS["time"]:
            return f"time.{attr}()"
        if attr in CLOCK_DEFAULTS and len(call.args) <= CLOCK_DEFAULTS[attr]:
            return f"time.{attr}() without a time argument"
    if owner_name in ("datetime", "date") and attr in DATETIME_NOW:
        return f"{owner_name}.{attr}()"
    return ""


def sqlite_violations(root: Path) -> list[str]:
    return [f"{imp}: only {', '.join(sorted(SQLITE_OWNERS))} may use SQLite"
            for _pkg, imp in all_imports(root)
            if imp.top in SQLITE_MODULES and imp.path not in SQLITE_OWNERS]


def bench_violations(root: Path) -> list[str]:
    return [f"{imp}: nothing but bench/ imports bench" for pkg, imp in all_imports(root)
            if imp.top == "bench" and pkg != "bench"]


# --- the rules -----------------------------------------------------------------------------


def test_every_package_is_there() -> None:
    for package in PACKAGES:
        assert python_files(ROOT, package), f"no Python files under {package}/"


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_one_way(package: str) -> None:
    bad = direction_violations(ROOT, package)
    assert not bad, "imports against docs/architecture.md:\n" + "\n".join(bad)


def test_encoding_does_no_io_and_reads_no_clock() -> None:
    bad = io_violations(ROOT)
    assert not bad, "encoding/ is the sans-IO core:\n" + "\n".join(bad)


def test_only_the_store_touches_sqlite() -> None:
    bad = sqlite_violations(ROOT)
    assert not bad, "\n".join(bad)


def test_nothing_imports_bench() -> None:
    bad = bench_violations(ROOT)
    assert not bad, "\n".join(bad)


def test_every_module_has_a_docstring() -> None:
    missing = []
    for package in PACKAGES:
        for path in python_files(ROOT, package):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if not (ast.get_docstring(tree) or "").strip():
                missing.append(path.relative_to(ROOT).as_posix())
    assert not missing, "modules without a docstring:\n" + "\n".join(missing)


# --- the checker itself catches what it should ---------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_checker_resolves_relative_imports(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "encoding/__init__.py": '"""x."""\nfrom .pdu import codec\n',
        "encoding/pdu/__init__.py": '"""x."""\nfrom . import codec\n',
        "encoding/pdu/codec.py": '"""x."""\nfrom ..text import gsm7\nfrom ... import smsc\n',
    })
    found = {str(i) for p in python_files(root, "encoding") for i in imports_of(root, p)}
    assert found == {
        "encoding/__init__.py:2: from encoding.pdu import codec",
        "encoding/pdu/__init__.py:2: from encoding.pdu import codec",
        "encoding/pdu/codec.py:2: from encoding.text import gsm7",
        "encoding/pdu/codec.py:3: from  import smsc",
    }
    [bad] = direction_violations(root, "encoding")
    assert bad.startswith("encoding/pdu/codec.py:3:") and "leaves the package tree" in bad


def test_checker_flags_bad_imports_and_clock_reads(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "encoding/a.py": ('"""x."""\nimport time\nimport asyncio\nfrom routing import store\n'
                          "import numpy\nfrom datetime import datetime\n"
                          "def f(epoch):\n    time.gmtime(epoch)\n    time.gmtime()\n"
                          "    datetime.now()\n    return time.monotonic()\n"),
        "routing/b.py": '"""x."""\nimport smsc.app\nimport sqlite_utils\ndef g():\n'
                        "    from esme import pool\n",
        "esme/c.py": '"""x."""\nfrom smsc import tenant\nimport sqlite3\n',
        "smsc/d.py": '"""x."""\nfrom bench.simulator import server\nimport anything_else\n',
        "routing/store.py": '"""x."""\nimport sqlite3\n',
        "bench/e.py": "from smsc import app\nimport bench.load\n",
    })
    assert direction_violations(root, "encoding") == [
        "encoding/a.py:4: from routing import store: encoding may not import routing "
        "(of ours it may import: none)",
        "encoding/a.py:5: import numpy: encoding may import only the standard library and "
        "msgspec, not numpy",
    ]
    io = io_violations(root)
    assert [v.split(":", 2)[1] for v in io] == ["3", "9", "10", "11"], io
    assert "time.gmtime() without a time argument" in io[1]
    routing = direction_violations(root, "routing")
    assert [v.split(":", 2)[1] for v in routing] == ["2", "5"], routing
    assert direction_violations(root, "esme") == [
        "esme/c.py:2: from smsc import tenant: esme may not import smsc "
        "(of ours it may import: config, encoding, routing)"]
    assert direction_violations(root, "smsc") == [
        "smsc/d.py:2: from bench.simulator import server: smsc may not import bench "
        "(of ours it may import: config, encoding, esme, routing)"]
    assert direction_violations(root, "bench") == []
    assert [v.split(": ", 1)[0] for v in sqlite_violations(root)] == [
        "routing/b.py:3", "esme/c.py:3"]
    assert [v.split(": ", 1)[0] for v in bench_violations(root)] == ["smsc/d.py:2"]
