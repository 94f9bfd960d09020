"""The layers point one way (STYLE.md, practice 1): master and nodeagent use
apimachinery; nodeagent uses cni and cgroups; those use csrc; nothing points
back.  Inside master, the controllers and the scheduler reach state only
through the API (apimachinery's client), and the store imports nothing else
of master.  `coracle` (scripts/coracle, the command line) sits above them all.
Read from the import statements, so a new module is checked too."""
from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOP = {"apimachinery", "csrc", "cgroups", "cni", "master", "nodeagent", "coracle"}
# folder -> the modules (top-level packages, or dotted prefixes) it may import
ALLOWED = {
    "apimachinery": {"apimachinery"},
    "csrc": {"csrc"},
    "cgroups": {"cgroups", "csrc"},
    "cni": {"cni", "csrc"},
    "master": {"master", "apimachinery"},
    "master/controllers": {"master.controllers", "apimachinery"},
    "master/scheduler": {"master.scheduler", "apimachinery"},
    "master/store": {"master.store"},
    "nodeagent": {"nodeagent", "apimachinery", "cni", "cgroups", "csrc"},
    "scripts/coracle": TOP,
}


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return {m for m in out if m.split(".")[0] in TOP}


def _rules(path: pathlib.Path) -> set[str]:
    """The most specific folder in ALLOWED that holds this file."""
    rel = path.relative_to(ROOT).as_posix()
    best = max((f for f in ALLOWED if rel.startswith(f + "/")), key=len)
    return ALLOWED[best]


def _ok(mod: str, allowed: set[str]) -> bool:
    return any(mod == a or mod.startswith(a + ".") for a in allowed)


def test_layers_point_one_way() -> None:
    bad = []
    for folder in ALLOWED:
        for path in (ROOT / folder).rglob("*.py"):
            allowed = _rules(path)
            bad += [f"{path.relative_to(ROOT)} imports {m}" for m in sorted(_imports(path)) if not _ok(m, allowed)]
    assert not bad, "layering violations:\n" + "\n".join(sorted(set(bad)))


def test_the_rules_catch_a_controller_reaching_for_the_store(tmp_path: pathlib.Path) -> None:
    src = "from master.store.sqlite import SQLiteStore\nfrom apimachinery import meta\n"
    (tmp_path / "x.py").write_text(src)
    mods = _imports(tmp_path / "x.py")
    assert [m for m in mods if not _ok(m, ALLOWED["master/controllers"])] == ["master.store.sqlite"]
