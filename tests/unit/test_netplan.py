"""The network plan (apimachinery.netplan): its arithmetic, that the master,
the agent and the `coracle` command take their defaults from it, and that no
other source module writes its values out again (string constants in code,
read from the AST so docstrings and comments, which document them, may; tests
and docs may too).  cni/ gets the values through the config the agent writes."""
from __future__ import annotations

import ast
import ipaddress
import pathlib

import pytest

from apimachinery import netplan

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCES = ("apimachinery", "master", "nodeagent", "cni", "cgroups", "csrc", "scripts")
HOME = ROOT / "apimachinery" / "netplan.py"


def _prefix(cidr: str) -> str:
    """`10.244.`: the network's first two octets, which every address and subnet of a /16 starts with."""
    return ".".join(str(ipaddress.ip_network(cidr).network_address).split(".")[:2]) + "."


LITERALS = (netplan.CLUSTER_CIDR, netplan.SERVICE_CIDR, netplan.api_server_ip(), netplan.dns_ip(),
            _prefix(netplan.CLUSTER_CIDR), _prefix(netplan.SERVICE_CIDR), netplan.BRIDGE, netplan.CLUSTER_DOMAIN,
            netplan.STATE_DIR, netplan.RUN_DIR)


def test_arithmetic() -> None:
    assert (netplan.api_server_ip(), netplan.dns_ip()) == ("10.96.0.1", "10.96.0.10")
    assert (netplan.api_server_ip("10.98.0.0/16"), netplan.dns_ip("10.98.0.0/16")) == ("10.98.0.1", "10.98.0.10")
    assert netplan.first_node_subnet() == "10.244.0.0/24"
    assert netplan.first_node_subnet("10.246.0.0/16", 26) == "10.246.0.0/26"
    assert netplan.api_server_host() == "kubernetes.default.svc.cluster.local"
    assert netplan.service_domain("corp.example") == "svc.corp.example"
    with pytest.raises(ValueError):
        netplan.service_ip("10.96.0.0/29", 10)
    p = netplan.NetworkPlan(service_cidr="10.97.0.0/16")
    assert (p.api_server_ip, p.dns_ip, p.bridge) == ("10.97.0.1", "10.97.0.10", "coracle0")
    assert netplan.DEFAULT == netplan.NetworkPlan() and netplan.DEFAULT.node_mask == 24
    assert netplan.CNI_DIR.startswith(netplan.STATE_DIR + "/") and netplan.RUNC_ROOT.startswith(netplan.RUN_DIR + "/")


def test_everything_reads_the_plan() -> None:
    from coracle.cli import main as cli_main  # noqa: F401 - importable
    from coracle.localcluster import LocalCluster
    from master.apiserver import tokens
    from master.apiserver.resources import allocator
    from master.controllers.nodeipam import NodeIPAM
    from nodeagent.agent import AgentConfig
    from nodeagent.pod import host, spec
    from nodeagent.runtime import images, runc

    a = AgentConfig("n")
    assert (a.cluster_cidr, a.service_cidr, a.bridge, a.state_dir, a.run_dir) == \
        (netplan.CLUSTER_CIDR, netplan.SERVICE_CIDR, netplan.BRIDGE, netplan.STATE_DIR, netplan.RUN_DIR)
    c = LocalCluster()
    assert (c.cluster_cidr, c.service_cidr, c.bridge, c.data_dir, c.run_dir) == \
        (netplan.CLUSTER_CIDR, netplan.SERVICE_CIDR, netplan.BRIDGE, netplan.STATE_DIR, netplan.RUN_DIR)
    ipam = NodeIPAM.__init__.__defaults__
    assert ipam == (netplan.CLUSTER_CIDR, netplan.NODE_MASK)
    assert allocator.SERVICE_CIDR == netplan.SERVICE_CIDR
    assert allocator.SERVICE_IPS.text(allocator.SERVICE_IPS.first) == netplan.api_server_ip()
    assert tokens.DEFAULT_ISSUER == f"https://{netplan.api_server_host()}"
    assert host.CLUSTER_DNS == spec.cluster_dns() == netplan.dns_ip()
    assert (images.DEFAULT_ROOT, runc.DEFAULT_ROOT) == (netplan.IMAGES_DIR, netplan.RUNC_ROOT)
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"hostname": "h", "subdomain": "s"}}
    assert "h.s.ns.svc.cluster.local\th" in spec.hosts_file(pod, "10.0.0.2")
    assert "search ns.svc.cluster.local svc.cluster.local cluster.local" in spec.resolv_conf(pod, "10.96.0.10", "")
    assert "search ns.svc.corp svc.corp corp" in spec.resolv_conf(pod, "10.96.0.10", "", cluster_domain="corp")


def test_cli_defaults_are_the_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    from coracle import cli
    seen: dict[str, object] = {}
    monkeypatch.setattr(cli, "cmd_agent", lambda a: seen.update(vars(a)) or 0)
    monkeypatch.setattr(cli, "_logging", lambda *a, **k: None)
    assert cli.main(["agent"]) == 0
    assert (seen["cluster_cidr"], seen["service_cidr"], seen["bridge"], seen["state_dir"], seen["run_dir"]) == \
        (netplan.CLUSTER_CIDR, netplan.SERVICE_CIDR, netplan.BRIDGE, netplan.STATE_DIR, netplan.RUN_DIR)


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def written_out(path: pathlib.Path) -> list[str]:
    """The plan's values in this file's code: string constants in Python (docstrings aside), and lines
    that are not comments in the shell scripts."""
    text = path.read_text(errors="replace")
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    if path.suffix == ".py":
        tree = ast.parse(text)
        skip = _docstrings(tree)
        return [f"{rel}:{n.lineno}: {lit!r}" for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip
                for lit in LITERALS if lit in n.value]
    return [f"{rel}:{i}: {lit!r}" for i, line in enumerate(text.splitlines(), 1)
            if not line.lstrip().startswith("#") for lit in LITERALS if lit in line.split(" #")[0]]


def _sources() -> list[pathlib.Path]:
    out = []
    for top in SOURCES:
        for p in (ROOT / top).rglob("*"):
            if not p.is_file() or p == HOME or "__pycache__" in p.parts or p.suffix in (".md", ".pyc", ".so", ".o"):
                continue
            if p.suffix in (".py", ".sh") or (top == "scripts" and not p.suffix and _is_script(p)):
                out.append(p)
    return out


def _is_script(p: pathlib.Path) -> bool:
    with open(p, "rb") as f:
        return f.read(2) == b"#!"


def test_no_module_writes_the_plan_out_again() -> None:
    files = _sources()
    assert any(p.name == "agent.py" for p in files) and any(p.name == "setup" for p in files)
    bad = [hit for p in files for hit in written_out(p)]
    assert not bad, "write these through apimachinery.netplan:\n" + "\n".join(bad)


def test_the_check_catches_a_literal(tmp_path: pathlib.Path) -> None:
    mod = tmp_path / "m.py"
    mod.write_text('"""Docs may say 10.96.0.10 and coracle0."""\n'
                   'BRIDGE = "coracle0"  # 10.244.0.0/16 in a comment is fine\n'
                   'def f(ns):\n    """cluster.local here is documentation."""\n'
                   '    return f"{ns}.svc.cluster.local"\n')
    assert [h.split(": ", 1)[1] for h in written_out(mod)] == ["'coracle0'", "'cluster.local'"]
    sh = tmp_path / "run"
    sh.write_text("#!/bin/sh\n# /var/lib/coracle in a comment\nexec coracle --state-dir /var/lib/coracle\n")
    assert [h.split(": ", 1)[1] for h in written_out(sh)] == ["'/var/lib/coracle'"]
