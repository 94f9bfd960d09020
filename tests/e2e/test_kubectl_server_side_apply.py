"""`kubectl apply --server-side` against a real `coracle master` (no node agent):
creation, re-apply, pruning of fields the applier dropped, conflicts with another
manager (`kubectl scale`) and `--force-conflicts`, migration from client-side
apply, and managedFields as `--show-managed-fields` prints them."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_kubectl_master import Master  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")]

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}{extra_label}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: web
        image: busybox:1.36
        command: ["sleep", "3600"]
"""


def deploy(name: str, replicas: int = 2, tier: bool = False) -> str:
    return DEPLOY.format(name=name, replicas=replicas, extra_label=", tier: front" if tier else "")


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    # the API server alone: no deployment controller writing status between the applies checked here
    m = Master(tmp_path_factory.mktemp("crt-ssa"), components="apiserver")
    stopped = False
    try:
        yield m
        rc = m.stop()
        stopped = True
        assert rc == 0, (m.tmp / "master.log").read_text()
    finally:
        if not stopped:
            m.stop()


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout={r.stdout}\nstderr={r.stderr}"
    return r.stdout


def get(master: Master, name: str, *extra: str) -> dict[str, Any]:
    return dict(json.loads(ok(master.kubectl("get", "deployment", name, "-o", "json", *extra))))


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"].get("managedFields", [])}


def test_create_reapply_and_prune(master: Master) -> None:
    out = ok(master.kubectl("apply", "--server-side", "-f", "-", input=deploy("crt-ssa1", tier=True)))
    assert out.strip() == "deployment.apps/crt-ssa1 serverside-applied"
    obj = get(master, "crt-ssa1", "--show-managed-fields")
    assert obj["metadata"]["labels"] == {"app": "crt-ssa1", "tier": "front"}
    fields = managers(obj)[("kubectl", "Apply")]
    assert fields["f:spec"]["f:replicas"] == {}
    assert fields["f:metadata"]["f:labels"]["f:tier"] == {}
    assert fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']["f:image"] == {}
    rv = obj["metadata"]["resourceVersion"]
    ok(master.kubectl("apply", "--server-side", "-f", "-", input=deploy("crt-ssa1", tier=True)))
    assert get(master, "crt-ssa1")["metadata"]["resourceVersion"] == rv  # unchanged: no write
    ok(master.kubectl("apply", "--server-side", "-f", "-", input=deploy("crt-ssa1")))
    obj = get(master, "crt-ssa1", "--show-managed-fields")
    assert obj["metadata"]["labels"] == {"app": "crt-ssa1"}  # the dropped label is removed
    assert "f:tier" not in managers(obj)[("kubectl", "Apply")]["f:metadata"]["f:labels"]
    assert "managedFields" not in get(master, "crt-ssa1")["metadata"]  # hidden without the flag
    ok(master.kubectl("delete", "deployment", "crt-ssa1"))


def test_conflict_with_scale_then_force(master: Master) -> None:
    ok(master.kubectl("apply", "--server-side", "-f", "-", input=deploy("crt-ssa2")))
    ok(master.kubectl("scale", "deployment", "crt-ssa2", "--replicas=5"))
    obj = get(master, "crt-ssa2", "--show-managed-fields")
    scalers = [e for e in obj["metadata"]["managedFields"] if e.get("subresource") == "scale"]
    assert [(e["manager"], e["operation"], e["fieldsV1"]) for e in scalers] == \
        [("kubectl", "Update", {"f:spec": {"f:replicas": {}}})]  # kubectl scale sends no fieldManager
    assert "f:replicas" not in managers(obj)[("kubectl", "Apply")]["f:spec"]  # the Update took it
    r = master.kubectl("apply", "--server-side", "-f", "-", input=deploy("crt-ssa2", replicas=3))
    assert r.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1 at ' \
        in r.stderr and r.stderr.splitlines()[0].endswith(": .spec.replicas"), r.stderr
    assert get(master, "crt-ssa2")["spec"]["replicas"] == 5
    # the same value as the other manager's is no conflict: ownership is shared
    ok(master.kubectl("apply", "--server-side", "-f", "-", input=deploy("crt-ssa2", replicas=5)))
    out = ok(master.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                            input=deploy("crt-ssa2", replicas=3)))
    assert "serverside-applied" in out
    obj = get(master, "crt-ssa2", "--show-managed-fields")
    assert obj["spec"]["replicas"] == 3
    assert all(e.get("subresource") != "scale" for e in obj["metadata"]["managedFields"])  # lost its only field
    assert managers(obj)[("kubectl", "Apply")]["f:spec"]["f:replicas"] == {}
    ok(master.kubectl("delete", "deployment", "crt-ssa2"))


def test_migrate_client_side_to_server_side(master: Master) -> None:
    ok(master.kubectl("apply", "-f", "-", input=deploy("crt-ssa3")))
    obj = get(master, "crt-ssa3", "--show-managed-fields")
    assert ("kubectl-client-side-apply", "Update") in managers(obj)
    out = ok(master.kubectl("apply", "--server-side", "-f", "-", input=deploy("crt-ssa3", replicas=3)))
    assert "serverside-applied" in out
    obj = get(master, "crt-ssa3", "--show-managed-fields")
    assert obj["spec"]["replicas"] == 3
    last = json.loads(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 3  # kubectl-last-applied's apply of the annotation went through
    assert managers(obj)[("kubectl", "Apply")]["f:spec"]["f:replicas"] == {}
    # kubectl folds the client-side-apply entry into its Apply entry (a JSON patch of managedFields) and
    # applies again; the annotation stays, owned by kubectl-last-applied
    assert set(managers(obj)) == {("kubectl", "Apply"), ("kubectl-last-applied", "Apply")}
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.36"
    assert obj["spec"]["progressDeadlineSeconds"] == 600
    # client-side apply still works afterwards and sees the server-side change as its own
    ok(master.kubectl("apply", "-f", "-", input=deploy("crt-ssa3", replicas=4)))
    assert get(master, "crt-ssa3")["spec"]["replicas"] == 4
    ok(master.kubectl("delete", "deployment", "crt-ssa3"))


def test_show_managed_fields_yaml(master: Master) -> None:
    ok(master.kubectl("apply", "--server-side", "-f", "-", input=deploy("crt-ssa4")))
    shown = ok(master.kubectl("get", "deployment", "crt-ssa4", "-o", "yaml", "--show-managed-fields"))
    assert "managedFields:" in shown and "manager: kubectl" in shown and "operation: Apply" in shown
    assert "fieldsType: FieldsV1" in shown and 'k:{"name":"web"}' in shown
    assert "managedFields" not in ok(master.kubectl("get", "deployment", "crt-ssa4", "-o", "yaml"))
    ok(master.kubectl("delete", "deployment", "crt-ssa4"))


PORTS = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  template:
    spec:
      containers:
      - name: web
        command: {command}
        ports:
        - containerPort: 53{protocol}
"""


def test_two_field_managers_share_a_container_by_port_and_protocol(master: Master) -> None:
    name = "crt-ssa5"
    ok(master.kubectl("apply", "--server-side", "--field-manager=dns-tcp", "-f", "-", input=deploy(name)))
    ok(master.kubectl("apply", "--server-side", "--field-manager=dns-tcp", "-f", "-",
                      input=deploy(name) + "        ports:\n        - containerPort: 53\n"))
    udp = PORTS.format(name=name, command='["sleep", "3600"]', protocol="\n          protocol: UDP")
    ok(master.kubectl("apply", "--server-side", "--field-manager=dns-udp", "-f", "-", input=udp))
    obj = get(master, name, "--show-managed-fields")
    ports = obj["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert [(p["containerPort"], p["protocol"]) for p in ports] == [(53, "TCP"), (53, "UDP")]

    def container(manager: str) -> dict[str, Any]:
        fields = managers(obj)[(manager, "Apply")]
        return dict(fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}'])
    assert set(container("dns-tcp")["f:ports"]) == {'k:{"containerPort":53,"protocol":"TCP"}'}
    assert set(container("dns-udp")["f:ports"]) == {'k:{"containerPort":53,"protocol":"UDP"}'}
    assert container("dns-udp")["f:command"] == {}  # the same command: shared, owned whole
    assert managers(obj)[("dns-tcp", "Apply")]["f:spec"]["f:selector"] == {}  # an atomic map: one field
    # a different command (an atomic list) conflicts with the other owner, path and all
    r = master.kubectl("apply", "--server-side", "--field-manager=dns-udp", "-f", "-",
                       input=udp.replace('["sleep", "3600"]', '["sleep", "60"]'))
    assert r.returncode != 0
    assert 'conflict with "dns-tcp": .spec.template.spec.containers[name="web"].command' in r.stderr, r.stderr
    # dns-tcp stops applying its port: its item goes, dns-udp's stays
    ok(master.kubectl("apply", "--server-side", "--field-manager=dns-tcp", "-f", "-", input=deploy(name)))
    ports = get(master, name)["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert [(p["containerPort"], p["protocol"]) for p in ports] == [(53, "UDP")]
    ok(master.kubectl("delete", "deployment", name))
