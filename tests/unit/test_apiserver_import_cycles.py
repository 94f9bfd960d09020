"""No import cycles inside master/apiserver: the graph of its modules' imports, read from the AST,
has no cycle (issue 9: `openapi` <-> `openapi_v2` and `schemas` <-> `resources/crschema` were two).

Every import counts, at module level or inside a function (a deferred import hides a cycle, it does
not break it), except those under `if TYPE_CHECKING:`.  Importing `a.b.c` also imports the packages
`a.b` and `a`, as Python does.  One pattern is allowed: a module importing its own ancestor package
(a package's `__init__` that imports its submodules to register them, and the submodules that use
what it defines: `resources/__init__` and `resources/pods`).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "master.apiserver"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    base = ROOT / PACKAGE.replace(".", "/")
    return {module_name(p): p for p in base.rglob("*.py")}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that `name` imports (with their ancestor packages)."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            skip.update(id(n) for b in node.body for n in ast.walk(b))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        for t in targets:
            parts = t.split(".")
            for i in range(1, len(parts) + 1):
                candidate = ".".join(parts[:i])
                if candidate in known:
                    out.add(candidate)
    own_ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    return out - own_ancestors - {name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: imported(m, p, known) for m, p in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    g = {"master.apiserver.x.a": {"master.apiserver.y.b"}, "master.apiserver.y.c": {"master.apiserver.x.d"}}
    assert cycles(folders(g)) == [["master.apiserver.x", "master.apiserver.y"]]


def test_the_graph_reads_imports() -> None:
    g = graph()
    assert "master.apiserver.errors" in g["master.apiserver.app"]
    assert "master.apiserver.resources" in g["master.apiserver.registry"]


def folders(g: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph with each subpackage of master/apiserver (resources, schemas, printers, ...) taken as one
    node, the modules at its top as themselves."""
    def node(m: str) -> str:
        parts = m.split(".")
        return ".".join(parts[:3])  # master.apiserver.<module or subpackage>
    out: dict[str, set[str]] = {}
    for m, deps in g.items():
        out.setdefault(node(m), set()).update(node(d) for d in deps if node(d) != node(m))
    return out


def test_no_import_cycles_in_the_api_server() -> None:
    found = cycles(graph())
    assert not found, "import cycles inside master/apiserver:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_import_cycles_between_its_folders() -> None:
    """schemas <-> resources (validation read crschema, customresource read schemas) was one: a folder
    imports another only if that one does not import it back, through any of their modules."""
    found = cycles(folders(graph()))
    assert not found, "import cycles between master/apiserver's folders:\n" + "\n".join(" <-> ".join(c) for c in found)
