"""End to end: ReplicaSets and ReplicationControllers on a real one-node cluster, driven by kubectl.

Node crt-repl, bridge crt-rp<rand>, cluster CIDR 10.237.0.0/16, service CIDR 10.117.0.0/16
(tests/e2e/cluster_fixture.py).  Covered: `kubectl create -f` of a ReplicaSet gives Running pods it
owns, a deleted pod is replaced, `kubectl scale` converges and `kubectl get rs` shows it, deleting
the ReplicaSet takes its pods (garbage collector); the same briefly for a ReplicationController.
Teardown purges the cluster and asserts nothing is left on the host.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster_fixture import E2ECluster, have_tools, wait_for  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(have_tools() is not None, reason=str(have_tools()))]

POD_SPEC = {"terminationGracePeriodSeconds": 2,
            "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}


def rs_manifest(name: str, replicas: int) -> str:
    return json.dumps({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
                       "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                                "template": {"metadata": {"labels": {"app": name}}, "spec": POD_SPEC}}})


def rc_manifest(name: str, replicas: int) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name},
                       "spec": {"replicas": replicas,
                                "template": {"metadata": {"labels": {"app": name}}, "spec": POD_SPEC}}})


@pytest.fixture(scope="module")
def kc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ECluster]:
    e = E2ECluster.make(Path(tmp_path_factory.mktemp("crt-repl")), node_name="crt-repl", bridge_prefix="crt-rp",
                        cluster_cidr="10.237.0.0/16", service_cidr="10.117.0.0/16")
    try:
        e.cluster.up(timeout=60)
        yield e
    finally:
        left = e.teardown()
        assert not left, "left behind:\n" + "\n".join(left) + "\n" + e.logs()


def pods(kc: E2ECluster, app: str) -> list[dict]:
    return json.loads(kc.kubectl("get", "pods", "-l", f"app={app}", "-o", "json").stdout)["items"]


def running_owned(kc: E2ECluster, app: str, kind: str, uid: str) -> list[str]:
    """Names of the pods that run, are not going, and are controlled by the object with this uid."""
    out = []
    for p in pods(kc, app):
        refs = [r for r in p["metadata"].get("ownerReferences") or [] if r.get("controller")]
        if p["metadata"].get("deletionTimestamp") or p["status"].get("phase") != "Running":
            continue
        if refs and refs[0]["kind"] == kind and refs[0]["uid"] == uid and refs[0].get("blockOwnerDeletion"):
            out.append(p["metadata"]["name"])
    return sorted(out)


def exactly(kc: E2ECluster, app: str, kind: str, uid: str, n: int) -> list[str]:
    def check() -> list[str] | None:
        names = running_owned(kc, app, kind, uid)
        return names if len(names) == n and len(pods(kc, app)) == n else None
    return wait_for(check, 45, f"{n} running pods of {kind} {app}")


def columns(kc: E2ECluster, resource: str, name: str) -> list[str]:
    return kc.kubectl("get", resource, name, "--no-headers").stdout.split()


def test_replicaset(kc: E2ECluster) -> None:
    name = "crt-rs"
    assert kc.kubectl("create", "-f", "-", input=rs_manifest(name, 2)).stdout.strip() == \
        f"replicaset.apps/{name} created"
    uid = json.loads(kc.kubectl("get", "rs", name, "-o", "json").stdout)["metadata"]["uid"]
    first = exactly(kc, name, "ReplicaSet", uid, 2)
    assert all(n.startswith(f"{name}-") and len(n) == len(name) + 6 for n in first)

    kc.kubectl("delete", "pod", first[0], "--wait=false")
    replaced = wait_for(lambda: (lambda got: got if len(got) == 2 and first[0] not in got else None)(
        running_owned(kc, name, "ReplicaSet", uid)), 45, "the deleted pod replaced")
    assert first[1] in replaced

    assert kc.kubectl("scale", f"rs/{name}", "--replicas=3").stdout.strip() == f"replicaset.apps/{name} scaled"
    exactly(kc, name, "ReplicaSet", uid, 3)
    wait_for(lambda: columns(kc, "rs", name)[1:4] == ["3", "3", "3"], 30, "DESIRED/CURRENT/READY 3/3/3")
    rs = json.loads(kc.kubectl("get", "rs", name, "-o", "json").stdout)
    assert rs["status"]["availableReplicas"] == 3 and rs["status"]["observedGeneration"] == rs["metadata"]["generation"]
    events = kc.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json").stdout
    assert "SuccessfulCreate" in events

    kc.kubectl("delete", "rs", name, "--timeout=60s", timeout=70)
    wait_for(lambda: pods(kc, name) == [], 45, "the ReplicaSet's pods gone")


def test_replicationcontroller(kc: E2ECluster) -> None:
    name = "crt-rc"
    kc.kubectl("create", "-f", "-", input=rc_manifest(name, 1))
    uid = json.loads(kc.kubectl("get", "rc", name, "-o", "json").stdout)["metadata"]["uid"]
    exactly(kc, name, "ReplicationController", uid, 1)
    assert kc.kubectl("scale", f"rc/{name}", "--replicas=2").stdout.strip() == \
        f"replicationcontroller/{name} scaled"
    exactly(kc, name, "ReplicationController", uid, 2)
    wait_for(lambda: columns(kc, "rc", name)[1:4] == ["2", "2", "2"], 30, "DESIRED/CURRENT/READY 2/2/2")
    kc.kubectl("delete", "rc", name, "--timeout=60s", timeout=70)
    wait_for(lambda: pods(kc, name) == [], 45, "the ReplicationController's pods gone")
