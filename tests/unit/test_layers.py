"""The layers point one way (STYLE.md, practice 1): master and nodeagent use
apimachinery; nodeagent uses cni and cgroups; those use csrc; nothing points
back.  Read from the import statements, so a new module is checked too."""
from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
ALLOWED = {
    "apimachinery": {"apimachinery"},
    "csrc": {"csrc"},
    "cgroups": {"cgroups", "csrc"},
    "cni": {"cni", "csrc"},
    "master": {"master", "apimachinery"},
    "nodeagent": {"nodeagent", "apimachinery", "cni", "cgroups", "csrc"},
}


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_layers_point_one_way() -> None:
    bad = []
    for pkg, allowed in ALLOWED.items():
        for path in (ROOT / pkg).rglob("*.py"):
            for mod in _imports(path) & set(ALLOWED):
                if mod not in allowed:
                    bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, "layering violations:\n" + "\n".join(bad)
