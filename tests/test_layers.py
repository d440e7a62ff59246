"""The layers hold by themselves (STYLE.md; issue 7): an import scan of the source tree.

- ``shared`` is pure: no Flask, Werkzeug, Kivy, SQLAlchemy, requests, and neither front end.
- ``kiosk`` never imports ``onsite_server`` (anything both need lives in ``shared``).
- ``onsite_server.services`` and ``onsite_server.fhir`` reach no Flask, directly or through
  the modules they import (the package ``__init__`` aside, which Python imports anyway).
- ``central_emulator`` is separate: it never imports ``onsite_server``.
- No import circles (issue 17): no module reaches itself again through the modules it
  imports, lazy imports inside functions included. A module importing its own package (a
  blueprint's views reading ``bp``, a package's ``__init__`` re-exporting its modules) is no
  circle: Python runs the package's ``__init__`` before any module in it.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WEB = ("flask", "werkzeug", "jinja2")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@cache
def _imports(path: Path) -> frozenset[str]:
    """Absolute names of every module a file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else \
        _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            found.add(stem)
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return frozenset(found)


def _source(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _closure(start: Path, stop_at_inits: bool) -> dict[str, str]:
    """Every module reachable from a file through our own modules: name -> who imported it."""
    seen: dict[str, str] = {}
    todo = [(start, _module_name(start))]
    while todo:
        path, who = todo.pop()
        for name in _imports(path):
            if name in seen:
                continue
            seen[name] = who
            source = _source(name)
            if source is None:
                continue
            if stop_at_inits and source.name == "__init__.py" and name.count(".") <= 1:
                continue  # a package's __init__ is imported by Python for any submodule
            todo.append((source, name))
    return seen


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py")) if (ROOT / package).is_dir() else []


def _forbidden(names: dict[str, str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(f"{name} (via {who})" for name, who in names.items()
                  if any(name == p or name.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize("path", _files("shared"), ids=lambda p: str(p.relative_to(ROOT)))
def test_shared_is_pure(path: Path) -> None:
    names = {n: _module_name(path) for n in _imports(path)}
    assert _forbidden(names, (*WEB, "kivy", "sqlalchemy", "requests", "kiosk",
                              "onsite_server", "central_emulator")) == []


@pytest.mark.parametrize("path", _files("kiosk"), ids=lambda p: str(p.relative_to(ROOT)))
def test_kiosk_never_imports_the_server(path: Path) -> None:
    names = {n: _module_name(path) for n in _imports(path)}
    assert _forbidden(names, ("onsite_server", "central_emulator", *WEB)) == []


@pytest.mark.parametrize("path", _files("onsite_server/services") + _files("onsite_server/fhir"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_services_and_fhir_reach_no_web_framework(path: Path) -> None:
    reached = _closure(path, stop_at_inits=True)
    assert _forbidden(reached, WEB) == []
    assert _forbidden(reached, ("onsite_server.errors", "onsite_server.api",
                                "onsite_server.db")) == []


@pytest.mark.parametrize("path", _files("central_emulator"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_emulator_is_separate(path: Path) -> None:
    names = {n: _module_name(path) for n in _imports(path)}
    assert _forbidden(names, ("onsite_server", "kiosk")) == []


PACKAGES = ("shared", "kiosk", "onsite_server", "central_emulator")


def _graph() -> dict[str, set[str]]:
    """Each of our modules -> the modules of ours it imports (not its own ancestor packages)."""
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in _files(package):
            me = _module_name(path)
            edges = set()
            for name in _imports(path):
                source = _source(name)
                if source is None:
                    continue
                target = _module_name(source)
                if target != me and not me.startswith(target + "."):
                    edges.add(target)
            graph[me] = edges
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of a graph: its strongly connected parts of two or more modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                part.append(top)
                if top == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_import_circles() -> None:
    assert _circles(_graph()) == []


def test_the_circle_scan_sees_a_circle() -> None:
    """The circle scan itself works, on a made-up graph and on the real one."""
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []
    graph = _graph()
    # The real graph is read: errors reaches the database's engines, and not the reverse.
    assert "onsite_server.db.engines" in graph["onsite_server.errors"]
    graph["onsite_server.db.engines"].add("onsite_server.errors")
    assert ["onsite_server.db.engines", "onsite_server.errors"] in _circles(graph)


def test_the_scan_sees_a_violation() -> None:
    """The scan itself works: errors.py (a web module) is seen to reach Flask."""
    reached = _closure(ROOT / "onsite_server" / "errors.py", stop_at_inits=True)
    assert _forbidden(reached, WEB)
    assert "onsite_server.services.errors" in reached
