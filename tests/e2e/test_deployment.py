"""End to end: a Deployment on a real one-node cluster, driven by kubectl 1.32.

Node crt-dep, bridge crt-dp<rand>, cluster CIDR 10.236.0.0/16, service CIDR 10.118.0.0/16
(tests/e2e/cluster_fixture.py).  Covered: `kubectl create deployment` gives an Available Deployment
whose pods carry the pod-template-hash of its ReplicaSet; `set image` rolls out a second ReplicaSet
(`rollout status` exits 0, `rollout history` lists revisions 1 and 2); `rollout undo` brings revision
1's template back as revision 3; `scale`; `rollout pause`/`resume` and `rollout restart`.  Needs the
ReplicaSet controller (master/controllers/replication/controller.py) for the pods.  Teardown purges the cluster
and asserts nothing is left on the host.
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

# images the agent imports from Debian's busybox-static: busybox:latest, :1.35 and :1.35.0
V1, V2 = "busybox:1.35", "busybox:1.35.0"


@pytest.fixture(scope="module")
def kc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ECluster]:
    e = E2ECluster.make(Path(tmp_path_factory.mktemp("crt-dep")), node_name="crt-dep", bridge_prefix="crt-dp",
                        cluster_cidr="10.236.0.0/16", service_cidr="10.118.0.0/16")
    try:
        e.cluster.up(timeout=60)
        yield e
    finally:
        left = e.teardown()
        assert not left, "left behind:\n" + "\n".join(left) + "\n" + e.logs()


def get(kc: E2ECluster, *what: str) -> dict:
    return json.loads(kc.kubectl("get", *what, "-o", "json").stdout)


def rollout_status(kc: E2ECluster) -> str:
    p = kc.kubectl("rollout", "status", "deployment/web", "--timeout=45s", timeout=50)
    assert p.returncode == 0
    return p.stdout


def current_rs(kc: E2ECluster) -> dict:
    d = get(kc, "deployment", "web")
    rev = d["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    rss = [r for r in get(kc, "rs", "-l", "app=web")["items"]
           if r["metadata"]["annotations"].get("deployment.kubernetes.io/revision") == rev]
    assert len(rss) == 1, rss
    return rss[0]


def running_pods_of(kc: E2ECluster, rs: dict) -> list[dict]:
    out = []
    for p in get(kc, "pods", "-l", "app=web")["items"]:
        refs = p["metadata"].get("ownerReferences") or []
        if refs and refs[0]["uid"] == rs["metadata"]["uid"] and p["status"].get("phase") == "Running" \
                and not p["metadata"].get("deletionTimestamp"):
            out.append(p)
    return out


def image(kc: E2ECluster) -> str:
    return get(kc, "deployment", "web")["spec"]["template"]["spec"]["containers"][0]["image"]


def test_deployment_rollout_history_undo_scale(kc: E2ECluster) -> None:
    out = kc.kubectl("create", "deployment", "web", f"--image={V1}", "--replicas=2", "--", "sleep", "3600").stdout
    assert out.strip() == "deployment.apps/web created"
    assert "successfully rolled out" in rollout_status(kc)
    kc.kubectl("wait", "--for=condition=Available", "deployment/web", "--timeout=30s", timeout=35)
    rs1 = current_rs(kc)
    h = rs1["metadata"]["labels"]["pod-template-hash"]
    assert rs1["metadata"]["name"] == f"web-{h}"
    pods: list[dict] = wait_for(lambda: (lambda ps: ps if len(ps) == 2 else [])(running_pods_of(kc, rs1)), 30, "2 pods")
    assert all(p["metadata"]["labels"]["pod-template-hash"] == h for p in pods)
    assert kc.kubectl("get", "deployment", "web", "--no-headers").stdout.split()[1:4] == ["2/2", "2", "2"]

    kc.kubectl("set", "image", "deployment/web", f"busybox={V2}")
    assert "successfully rolled out" in rollout_status(kc)
    rs2 = current_rs(kc)
    assert rs2["metadata"]["name"] != rs1["metadata"]["name"] and rs2["spec"]["replicas"] == 2
    assert get(kc, "rs", rs1["metadata"]["name"])["spec"]["replicas"] == 0
    history = kc.kubectl("rollout", "history", "deployment/web").stdout
    assert [ln.split()[0] for ln in history.splitlines()[2:] if ln.strip()] == ["1", "2"], history
    assert V1 in kc.kubectl("rollout", "history", "deployment/web", "--revision=1").stdout

    assert "rolled back" in kc.kubectl("rollout", "undo", "deployment/web").stdout
    assert "successfully rolled out" in rollout_status(kc)
    assert image(kc) == V1
    rs3 = current_rs(kc)
    assert rs3["metadata"]["name"] == rs1["metadata"]["name"]
    assert rs3["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    history = kc.kubectl("rollout", "history", "deployment/web").stdout
    assert [ln.split()[0] for ln in history.splitlines()[2:] if ln.strip()] == ["2", "3"], history

    assert kc.kubectl("scale", "deployment/web", "--replicas=3").stdout.strip() == "deployment.apps/web scaled"
    rollout_status(kc)
    wait_for(lambda: len(running_pods_of(kc, current_rs(kc))) == 3, 30, "3 running pods")

    kc.kubectl("rollout", "pause", "deployment/web")
    kc.kubectl("set", "image", "deployment/web", f"busybox={V2}")
    wait_for(lambda: any(c["reason"] == "DeploymentPaused" for c in
                         get(kc, "deployment", "web")["status"].get("conditions") or []), 20, "DeploymentPaused")
    # nothing rolls while paused (the matching ReplicaSet may already carry the next revision, as upstream's)
    assert get(kc, "rs", rs1["metadata"]["name"])["spec"]["replicas"] == 3
    assert get(kc, "rs", rs2["metadata"]["name"])["spec"]["replicas"] == 0
    kc.kubectl("rollout", "resume", "deployment/web")
    assert "successfully rolled out" in rollout_status(kc)
    assert current_rs(kc)["metadata"]["name"] == rs2["metadata"]["name"]

    kc.kubectl("rollout", "restart", "deployment/web")
    assert "successfully rolled out" in rollout_status(kc)
    d = get(kc, "deployment", "web")
    assert "kubectl.kubernetes.io/restartedAt" in d["spec"]["template"]["metadata"]["annotations"]
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "5"
    assert d["status"]["availableReplicas"] == 3 and d["status"]["updatedReplicas"] == 3
    described = kc.kubectl("describe", "deployment", "web").stdout
    assert "NewReplicaSetAvailable" in described and "ScalingReplicaSet" in described, described

    kc.kubectl("delete", "deployment", "web", "--timeout=60s", timeout=70)
    wait_for(lambda: get(kc, "rs", "-l", "app=web")["items"] == [], 30, "the ReplicaSets gone")


def test_recreate_never_overlaps(kc: E2ECluster) -> None:
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "crt-rec"},
                "spec": {"replicas": 2, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": {"app": "crt-rec"}},
                         "template": {"metadata": {"labels": {"app": "crt-rec"}}, "spec": {
                             "terminationGracePeriodSeconds": 1,
                             "containers": [{"name": "main", "image": V1, "command": ["sleep", "3600"]}]}}}}
    kc.apply(json.dumps(manifest))
    kc.kubectl("rollout", "status", "deployment/crt-rec", "--timeout=45s", timeout=50)
    kc.kubectl("set", "image", "deployment/crt-rec", f"main={V2}")
    images_seen: list[set[str]] = []

    def done() -> bool:
        live = [p for p in get(kc, "pods", "-l", "app=crt-rec")["items"] if p["status"].get("phase") in
                ("Pending", "Running")]
        images_seen.append({p["spec"]["containers"][0]["image"] for p in live})
        return len(live) == 2 and images_seen[-1] == {V2} and \
            all(p["status"].get("phase") == "Running" for p in live)
    wait_for(done, 45, "the Recreate rollout", every=0.1)
    assert all(len(seen) <= 1 for seen in images_seen), images_seen  # old and new pods never side by side
    kc.kubectl("rollout", "status", "deployment/crt-rec", "--timeout=30s", timeout=35)
    kc.kubectl("delete", "deployment", "crt-rec", "--timeout=60s", timeout=70)
