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
* ``routing`` imports only ``encoding`` and ``config`` of ours, and msgspec, sqlite_utils and
  phonenumbers (a number's region and time zones: quiet hours, analytics by country).
* Only the SQLite implementation of the storage interfaces (``routing/sqlite/``) imports
  sqlite3 or sqlite_utils, and only the NATS JetStream one (``routing/nats/``) imports nats.
* ``esme`` imports only ``encoding``, ``config`` and ``routing`` of ours.
* ``smsc`` imports anything but ``bench``; nothing but ``bench`` imports ``bench``.
* Every module has a docstring.

Every import counts, including those inside functions and under ``TYPE_CHECKING``: a
type-only import still ties the packages together. Failures name the file, the line and
the import.

No import circles between any two modules of the project (the packages above and
``tests/``), whatever the direction rule allows. The graph has one node per module; a
package is its ``__init__.py`` (a namespace package such as ``tests`` has no node). Each
import is an edge from the importing module to the module it names, relative imports
resolved:

* ``import a.b.c`` is an edge to ``a.b.c`` (the parents Python runs first are not counted:
  each of them is reached, if at all, by its own imports);
* ``from a.b import n`` is an edge to the submodule ``a.b.n`` when there is one, else to
  ``a.b``, the module the name comes from.

A package ``__init__.py`` importing its own submodules is not a circle by itself: its
re-exports are edges only for importers *outside* the package. ``from esme import Pool`` in
``smsc/app.py`` runs all of ``esme/__init__.py``, so it depends on every module that file
imports. For an importer *inside* the package, a name the ``__init__`` re-exports is looked
through to the submodule it comes from, level by level for nested packages: ``from esme
import Connection`` in ``esme/pool.py`` is an edge to ``esme.connection``, not to
``esme/__init__.py`` (whose ``from .pool import Pool`` would otherwise close a circle). What
still reaches the ``__init__`` from inside is a real circle: ``import esme`` itself, or a
name the ``__init__`` defines rather than re-exports. A module importing itself is ignored.

Each circle is reported as a chain of modules (``a → b → a``) with the import behind every
link under it: the shortest circle through each module of every strongly connected set,
each circle once.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
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
    "routing": frozenset({"msgspec", "sqlite_utils", "phonenumbers", "nats"}),
}
IO_MODULES = frozenset({
    "asyncio", "socket", "sqlite3", "sqlite_utils", "prometheus_client", "threading",
    "selectors", "ssl", "subprocess", "multiprocessing", "concurrent", "uvloop", "http",
    "urllib", "aiosqlite", "apsw",
})
SQLITE_MODULES = frozenset({"sqlite3", "sqlite_utils", "aiosqlite", "apsw"})
SQLITE_OWNER = "routing/sqlite/"  # the SQLite implementation of routing/repository.py
NATS_MODULES = frozenset({"nats"})
NATS_OWNER = "routing/nats/"  # the NATS JetStream implementation (several nodes)
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
            yield Import(rel, node.lineno, _from_module(package, node), names)


def _from_module(package: list[str], node: ast.ImportFrom) -> str:
    """The absolute module of ``from … import``; "" when a relative import leaves the tree."""
    if node.level == 0:
        return node.module or ""
    up = node.level - 1
    if up >= len(package):
        return ""  # climbs out of our packages
    base = package[:len(package) - up]
    return ".".join([*base, node.module] if node.module else base)


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


def _engine_violations(root: Path, modules: frozenset[str], owner: str,
                       engine: str) -> list[str]:
    return [f"{imp}: only the modules under {owner} may use {engine}"
            for _pkg, imp in all_imports(root)
            if imp.top in modules and not imp.path.startswith(owner)]


def sqlite_violations(root: Path) -> list[str]:
    return _engine_violations(root, SQLITE_MODULES, SQLITE_OWNER, "SQLite")


def nats_violations(root: Path) -> list[str]:
    return _engine_violations(root, NATS_MODULES, NATS_OWNER, "NATS")


def bench_violations(root: Path) -> list[str]:
    return [f"{imp}: nothing but bench/ imports bench" for pkg, imp in all_imports(root)
            if imp.top == "bench" and pkg != "bench"]


# --- import circles ------------------------------------------------------------------------

CIRCLE_PACKAGES = (*PACKAGES, "tests")


@dataclass(frozen=True)
class Modules:
    """The project's modules: dotted name → file, and what each package re-exports."""

    files: dict[str, Path]
    packages: frozenset[str]  # dotted names of the regular packages (their ``__init__.py``)
    # package → exported name → (module it is imported from, its name there)
    reexports: dict[str, dict[str, tuple[str, str]]]


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(root: Path, packages: tuple[str, ...] = CIRCLE_PACKAGES) -> Modules:
    files = {module_name(root, p): p for pkg in packages if (root / pkg).is_dir()
             for p in python_files(root, pkg)}
    pkgs = frozenset(module_name(root, p) for p in files.values() if p.name == "__init__.py")
    reexports: dict[str, dict[str, tuple[str, str]]] = {}
    for package in pkgs:
        path = files[package]
        names: dict[str, tuple[str, str]] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                source = _from_module(_package_of(root, path), node)
                if source == package or _inside(source, package):
                    for alias in node.names:
                        names[alias.asname or alias.name] = (source, alias.name)
        reexports[package] = names
    return Modules(files, pkgs, reexports)


def _inside(module: str, package: str) -> bool:
    return module.startswith(package + ".")


def _known(mods: Modules, dotted: str) -> str | None:
    """The longest prefix of ``dotted`` that is one of our modules (None if none is)."""
    parts = dotted.split(".")
    while parts:
        name = ".".join(parts)
        if name in mods.files:
            return name
        parts.pop()
    return None


def _target(mods: Modules, importer: str, module: str, name: str | None) -> str | None:
    """The module an import depends on: see the module docstring."""
    seen: set[tuple[str, str]] = set()
    while True:
        if name is not None and name != "*" and f"{module}.{name}" in mods.files:
            return f"{module}.{name}"
        if (name is not None and module in mods.packages and _inside(importer, module)
                and name in mods.reexports[module] and (module, name) not in seen):
            seen.add((module, name))
            source, original = mods.reexports[module][name]
            if source != module:
                module, name = source, original
                continue
        return _known(mods, module)


def import_graph(root: Path, mods: Modules | None = None) -> dict[str, dict[str, Import]]:
    """module → module it imports → the first import (by line) behind that edge."""
    mods = mods or find_modules(root)
    graph: dict[str, dict[str, Import]] = {name: {} for name in mods.files}
    for importer, path in mods.files.items():
        edges = graph[importer]
        for imp in imports_of(root, path):
            if imp.top not in CIRCLE_PACKAGES:
                continue
            if not imp.names:  # import a.b.c
                targets = [_target(mods, importer, imp.module, None)]
            else:
                targets = [_target(mods, importer, imp.module, n) for n in imp.names]
            for target in targets:
                if target is None or target == importer:
                    continue
                if target not in edges or imp.line < edges[target].line:
                    edges[target] = imp
    return graph


def _strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's algorithm; the sets of more than one module, each sorted, in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                members.append(top)
                if top == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _shortest_cycle(graph: dict[str, dict[str, Import]], start: str,
                    within: set[str]) -> list[str]:
    """The shortest path start → … → start inside ``within`` (breadth first, sorted)."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph[node]):
                if nxt not in within:
                    continue
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if nxt not in parent:
                    parent[nxt] = node
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    raise AssertionError(f"{start} is in a circle but none was found")  # pragma: no cover


def import_circles(root: Path) -> list[str]:
    """Each circle as ``a → b → a`` and, indented under it, the import behind each link."""
    graph = import_graph(root)
    out: list[str] = []
    for members in _strongly_connected(graph):
        within = set(members)
        cycles: list[list[str]] = []
        for start in members:
            cycle = _shortest_cycle(graph, start, within)[:-1]
            first = cycle.index(min(cycle))
            cycle = cycle[first:] + cycle[:first]  # one rotation per circle: no repeats
            if cycle not in cycles:
                cycles.append(cycle)
        for cycle in cycles:
            chain = [*cycle, cycle[0]]
            links = [f"    {graph[a][b]}" for a, b in pairwise(chain)]
            out.append(" → ".join(chain) + "\n" + "\n".join(links))
    return out


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


def test_only_the_jetstream_engine_touches_nats() -> None:
    bad = nats_violations(ROOT)
    assert not bad, "\n".join(bad)


def test_nothing_imports_bench() -> None:
    bad = bench_violations(ROOT)
    assert not bad, "\n".join(bad)


def test_no_import_circles() -> None:
    circles = import_circles(ROOT)
    assert not circles, (f"{len(circles)} import circle(s); each module must be importable "
                         "without its importer:\n" + "\n".join(circles))


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
        "routing/sqlite/store.py": '"""x."""\nimport sqlite3\n',
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


def test_circle_checker_counts_every_import(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "esme/__init__.py": '"""x."""\n',
        "esme/a.py": '"""x."""\ndef f():\n    from .b import x\n',
        "esme/b.py": ('"""x."""\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n'
                      "    from esme.a import f\nx = 1\n"),
        "bench/__init__.py": '"""x."""\n',
        "bench/p.py": '"""x."""\nimport bench.q\nimport bench.r\n',
        "bench/q.py": '"""x."""\nfrom . import p\n',
        "bench/r.py": '"""x."""\nimport bench.p as p\nimport bench.r\n',
    })
    assert import_circles(root) == [
        "bench.p → bench.q → bench.p\n"
        "    bench/p.py:2: import bench.q\n"
        "    bench/q.py:2: from bench import p",
        "bench.p → bench.r → bench.p\n"
        "    bench/p.py:3: import bench.r\n"
        "    bench/r.py:2: import bench.p",
        "esme.a → esme.b → esme.a\n"
        "    esme/a.py:3: from esme.b import x\n"
        "    esme/b.py:4: from esme.a import f",
    ]


def test_circle_checker_reads_package_reexports(tmp_path: Path) -> None:
    files = {
        # re-exports, looked through from inside, nested: no circle
        "encoding/__init__.py": '"""x."""\nfrom .pdu import Pdu\nfrom .constants import C\n',
        "encoding/constants.py": '"""x."""\nC = 1\n',
        "encoding/pdu/__init__.py": '"""x."""\nfrom .base import Pdu\nfrom .codec import dec\n',
        "encoding/pdu/base.py": '"""x."""\nfrom encoding import C\nclass Pdu: ...\n',
        "encoding/pdu/codec.py": '"""x."""\nfrom encoding import Pdu\nfrom .. import C\n',
        # tests/ is a namespace package of helpers
        "tests/helper.py": '"""x."""\nfrom encoding import Pdu\n',
        "tests/unit/test_x.py": '"""x."""\nfrom tests.helper import Pdu\n',
    }
    assert import_circles(_tree(tmp_path, files)) == []
    graph = import_graph(tmp_path)
    assert sorted(graph["encoding.pdu.codec"]) == ["encoding.constants", "encoding.pdu.base"]
    assert sorted(graph["encoding.pdu"]) == ["encoding.pdu.base", "encoding.pdu.codec"]
    assert sorted(graph["tests.unit.test_x"]) == ["tests.helper"]
    assert sorted(graph["tests.helper"]) == ["encoding"]  # from outside: the whole __init__

    # a name the __init__ defines itself, or the package as such, is a circle from inside
    files["encoding/pdu/__init__.py"] += "MAX = 4\n"
    files["encoding/pdu/codec.py"] += "from . import MAX\n"
    files["encoding/pdu/base.py"] += "import encoding.pdu\n"
    # through an __init__, from outside the package
    files["config/__init__.py"] = '"""x."""\nfrom .loader import load\n'
    files["config/loader.py"] = '"""x."""\ndef load():\n    from encoding.constants import C\n'
    files["encoding/constants.py"] += "from config import load\n"
    assert import_circles(_tree(tmp_path, files)) == [
        "config → config.loader → encoding.constants → config\n"
        "    config/__init__.py:2: from config.loader import load\n"
        "    config/loader.py:3: from encoding.constants import C\n"
        "    encoding/constants.py:3: from config import load",
        "encoding.pdu → encoding.pdu.base → encoding.pdu\n"
        "    encoding/pdu/__init__.py:2: from encoding.pdu.base import Pdu\n"
        "    encoding/pdu/base.py:4: import encoding.pdu",
        "encoding.pdu → encoding.pdu.codec → encoding.pdu\n"
        "    encoding/pdu/__init__.py:3: from encoding.pdu.codec import dec\n"
        "    encoding/pdu/codec.py:4: from encoding.pdu import MAX",
    ]
