"""The layout README's "How it is built" promises, checked by walking every import with `ast`.

Every import counts: at module level, inside functions and under `if TYPE_CHECKING:`, because
each is an arrow a reader has to follow. Fails on any cycle between modules, and on arrows the
layering forbids: `hashing` -> `store`/`index`, `api` -> `store`/`index`, anything -> `api` or
`cli` (except `hashdb serve`, which starts the API), and any import up the layers below.
`api` and `cli` are `hashdb.api` and `hashdb.cli`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hashdb",)

# Lower layers never import higher ones. A module's layer is that of its longest listed prefix.
LAYERS: dict[str, int] = {
    "hashdb": 0, "hashdb.types": 0, "hashdb.errors": 0, "hashdb.config": 0, "hashdb.bits": 0,
    "hashdb.hashing": 1, "hashdb.store": 1, "hashdb.index": 1,
    "hashdb.trust": 2, "hashdb.io": 2,
    "hashdb.service": 3,
    "hashdb.partners": 4,
    "hashdb.cli": 5, "hashdb.api": 5,
}

# (importer prefix, imported prefix): arrows the README forbids even where the layers allow them.
FORBIDDEN = [
    ("hashdb.hashing", "hashdb.store"), ("hashdb.hashing", "hashdb.index"),
    ("hashdb.store", "hashdb.hashing"), ("hashdb.store", "hashdb.index"),
    ("hashdb.index", "hashdb.hashing"), ("hashdb.index", "hashdb.store"),
    ("hashdb.io", "hashdb.store"), ("hashdb.io", "hashdb.index"),
    ("hashdb.api", "hashdb.store"), ("hashdb.api", "hashdb.index"),
]
# Top layers that only they themselves import (bar SERVE): the CLI and the API.
SELF_CONTAINED = ("hashdb.cli", "hashdb.api")
# Exceptions to FORBIDDEN: the one index module that follows the store's change log.
ALLOWED = {("hashdb.index.indexset", "hashdb.store")}
# The one place outside the API that may import it: the function that serves it.
SERVE = ("hashdb.cli.operations", "serve")


@dataclass(frozen=True)
class Arrow:
    importer: str
    imported: str
    line: int
    function: str | None  # the enclosing function's name, None at module level


def module_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is one of our modules (a package's own name
    means its __init__)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _walk(node: ast.AST, function: str | None) -> Iterator[tuple[ast.AST, str | None]]:
    for child in ast.iter_child_nodes(node):
        inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
        yield child, function
        yield from _walk(child, inner)


def arrows(modules: dict[str, Path]) -> list[Arrow]:
    out: list[Arrow] = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node, function in _walk(tree, None):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".") if is_package else module.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                # `from pkg import name` imports the submodule pkg.name when there is one.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                resolved = _resolve(target, modules)
                if resolved is not None and resolved != module:
                    out.append(Arrow(module, resolved, getattr(node, "lineno", 0), function))
    return out


def layer(module: str) -> int:
    best = max((p for p in LAYERS if _within(module, p)), key=len)
    return LAYERS[best]


def cycles(modules: dict[str, Path], found: list[Arrow]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for arrow in found:
        graph[arrow.importer].add(arrow.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

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
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def forbidden(found: list[Arrow]) -> list[str]:
    bad = []
    for arrow in found:
        where = f"{arrow.importer}:{arrow.line} -> {arrow.imported}"
        if (arrow.importer, arrow.function) == SERVE and _within(arrow.imported, "hashdb.api"):
            continue
        for top in SELF_CONTAINED:
            if not _within(arrow.importer, top) and _within(arrow.imported, top):
                bad.append(f"{where} (only {top} imports {top})")
        for importer, imported in FORBIDDEN:
            if (_within(arrow.importer, importer) and _within(arrow.imported, imported)
                    and not any(_within(arrow.importer, a) and _within(arrow.imported, b) for a, b in ALLOWED)):
                bad.append(f"{where} ({importer} may not import {imported})")
        if layer(arrow.imported) > layer(arrow.importer):
            bad.append(f"{where} (up the layers: {layer(arrow.importer)} -> {layer(arrow.imported)})")
    return bad


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in module_files() if not any(_within(m, p) for p in LAYERS if p != "hashdb")
                and m not in LAYERS]
    assert unplaced == [], "modules loose at hashdb/ with no layer; place them in a package or in LAYERS"


def test_no_import_cycles() -> None:
    modules = module_files()
    assert cycles(modules, arrows(modules)) == []


def test_no_forbidden_arrows() -> None:
    assert forbidden(arrows(module_files())) == []


def test_the_walk_sees_what_it_must() -> None:
    """The checks above can fail: the walk finds imports inside functions and resolves packages."""
    modules = module_files()
    found = arrows(modules)
    assert any(a.importer == SERVE[0] and a.function == "serve" and a.imported.startswith("hashdb.api")
               for a in found)
    assert cycles({"a": Path(), "b": Path(), "c": Path()},
                  [Arrow("a", "b", 1, None), Arrow("b", "c", 1, None), Arrow("c", "a", 1, "f")]) == [["a", "b", "c"]]
    assert forbidden([Arrow("hashdb.hashing.media", "hashdb.store.base", 1, None)]) != []
    assert forbidden([Arrow("hashdb.api.views.lookup", "hashdb.index.base", 1, None)]) != []
    assert forbidden([Arrow("hashdb.index.linear", "hashdb.store.base", 1, None)]) != []
    assert forbidden([Arrow("hashdb.index.indexset", "hashdb.store.base", 1, None)]) == []
    assert forbidden([Arrow("hashdb.service.sharing", "hashdb.cli.common", 1, "f")]) != []
    assert forbidden([Arrow("hashdb.service.sharing", "hashdb.api.bodies", 1, "f")]) != []
    assert forbidden([Arrow("hashdb.api.views.lookup", "hashdb.cli.common", 1, None)]) != []
    assert forbidden([Arrow("hashdb.api.views.lookup", "hashdb.api.bodies", 1, None)]) == []
    assert forbidden([Arrow("hashdb.cli.operations", "hashdb.api.server", 1, "serve")]) == []
    assert forbidden([Arrow("hashdb.cli.operations", "hashdb.api.server", 1, "other")]) != []


def _self_attributes(cls: ast.ClassDef) -> tuple[set[str], set[str]]:
    """(names a class defines: methods and annotated attributes, names it uses as `self.X`)."""
    defined = {n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    defined |= {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    used = {n.attr for n in ast.walk(cls) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id == "self"}
    return defined, used


def test_service_concerns_reach_each_other_only_through_shared_dependencies() -> None:
    """A mixin uses only its own methods and what ServiceBase declares (the constructor's
    dependencies and shared helpers), so no concern calls into another one unseen."""
    service = ROOT / "hashdb" / "service"
    base = next(n for n in ast.parse((service / "base.py").read_text()).body
                if isinstance(n, ast.ClassDef) and n.name == "ServiceBase")
    shared, _ = _self_attributes(base)
    assert not any(isinstance(n, ast.If) for n in base.body), "no TYPE_CHECKING stubs in ServiceBase"
    reaching: dict[str, set[str]] = {}
    for path in sorted(service.glob("*.py")):
        for cls in ast.parse(path.read_text()).body:
            if isinstance(cls, ast.ClassDef) and cls.name.endswith("Mixin"):
                own, used = _self_attributes(cls)
                if used - own - shared:
                    reaching[cls.name] = used - own - shared
    assert reaching == {}
