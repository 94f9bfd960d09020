"""Defaults and validation of the issue-3 kinds through the registry on an
in-memory store: apps (selector rules, upstream defaults), RCs, ConfigMaps,
Secrets, RBAC, PV/PVC, quotas and limit ranges, ingresses, endpoints and
endpoint slices, leases, service accounts."""
from __future__ import annotations

import base64
import copy
from typing import Any, Iterator

import pytest

from apimachinery import kinds
from master.apiserver import errors
from master.apiserver.registry import Registry
from master.store import open_store


def R(group: str, plural: str) -> kinds.ResourceInfo:
    res = kinds.lookup(group, "v1", plural)
    assert res is not None
    return res


DEPLOY, RS, RC = R("apps", "deployments"), R("apps", "replicasets"), R("", "replicationcontrollers")
CM, SECRET, SA = R("", "configmaps"), R("", "secrets"), R("", "serviceaccounts")
RBAC = "rbac.authorization.k8s.io"
ROLE, CROLE, RB, CRB = R(RBAC, "roles"), R(RBAC, "clusterroles"), R(RBAC, "rolebindings"), R(RBAC, "clusterrolebindings")
PV, PVC, QUOTA, LIMITS = R("", "persistentvolumes"), R("", "persistentvolumeclaims"), R("", "resourcequotas"), R("", "limitranges")
ING, EP, EPS = R("networking.k8s.io", "ingresses"), R("", "endpoints"), R("discovery.k8s.io", "endpointslices")


@pytest.fixture
def reg() -> Iterator[Registry]:
    store = open_store("sqlite://:memory:")
    r = Registry(store, clock=lambda: "2026-01-01T00:00:00Z")
    r.create(R("", "namespaces"), None, {"metadata": {"name": "default"}})
    try:
        yield r
    finally:
        store.close()


def causes(reg: Registry, res: kinds.ResourceInfo, obj: dict[str, Any], old_name: str | None = None) -> list[str]:
    ns = "default" if res.namespaced else None
    with pytest.raises(errors.APIError) as e:
        if old_name:
            reg.update(res, ns, old_name, obj)
        else:
            reg.create(res, ns, obj)
    assert e.value.code == 422, e.value.message
    return [c["field"] for c in (e.value.details or {}).get("causes", [])]


def deployment(name: str = "web", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    labels = labels or {"app": name}
    return {"metadata": {"name": name}, "spec": {
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        **spec}}


def test_deployment_defaults_like_upstream(reg: Registry) -> None:
    d = reg.create(DEPLOY, "default", deployment())
    spec = d["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (10, 600)
    pod = spec["template"]["spec"]
    assert (pod["restartPolicy"], pod["dnsPolicy"], pod["containers"][0]["imagePullPolicy"]) == ("Always", "ClusterFirst", "Always")
    assert d["status"] == {} and d["metadata"]["generation"] == 1


def test_deployment_selector_rules(reg: Registry) -> None:
    no_sel = deployment()
    del no_sel["spec"]["selector"]
    assert causes(reg, DEPLOY, no_sel) == ["spec.selector"]
    assert causes(reg, DEPLOY, deployment(labels={"app": "other"})) == ["spec.template.metadata.labels"]
    assert causes(reg, DEPLOY, deployment(replicas=-1)) == ["spec.replicas"]
    assert causes(reg, DEPLOY, deployment(strategy={"type": "Sideways"})) == ["spec.strategy.type"]
    bad_pod = deployment()
    bad_pod["spec"]["template"]["spec"]["containers"][0].pop("image")
    assert causes(reg, DEPLOY, bad_pod) == ["spec.template.spec.containers[0].image"]
    reg.create(DEPLOY, "default", deployment())
    changed = deployment(labels={"app": "web", "tier": "x"})
    changed["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "x"}}
    assert causes(reg, DEPLOY, changed, old_name="web") == ["spec.selector"]
    # a spec change bumps generation; the selector stays
    d = reg.update(DEPLOY, "default", "web", deployment(replicas=3))
    assert d["metadata"]["generation"] == 2 and d["spec"]["replicas"] == 3


def test_replicaset_and_rc(reg: Registry) -> None:
    rs = reg.create(RS, "default", deployment("rs1"))
    assert rs["spec"]["replicas"] == 1 and "strategy" not in rs["spec"]
    assert causes(reg, RS, deployment("rs2", labels={"x": "y"})) == ["spec.template.metadata.labels"]
    rc = reg.create(RC, "default", {"metadata": {"name": "rc"}, "spec": {"template": {
        "metadata": {"labels": {"app": "rc"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
    assert rc["spec"]["selector"] == {"app": "rc"} and rc["metadata"]["labels"] == {"app": "rc"}
    assert rc["spec"]["replicas"] == 1
    mismatch = {"metadata": {"name": "rc2"}, "spec": {"selector": {"app": "a"}, "template": {
        "metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    assert causes(reg, RC, mismatch) == ["spec.template.metadata.labels"]


def test_configmaps(reg: Registry) -> None:
    cm = reg.create(CM, "default", {"metadata": {"name": "cfg"}, "data": {"a.txt": "x"},
                                    "binaryData": {"b": base64.b64encode(b"\0").decode()}})
    assert "status" not in cm and "generation" not in cm["metadata"]
    assert causes(reg, CM, {"metadata": {"name": "c2"}, "data": {"bad/key": "x"}}) == ["data[bad/key]"]
    assert causes(reg, CM, {"metadata": {"name": "c2"}, "binaryData": {"k": "!!"}}) == ["binaryData[k]"]
    assert causes(reg, CM, {"metadata": {"name": "c2"}, "data": {"k": "1"}, "binaryData": {"k": "AA=="}}) == ["binaryData[k]"]
    reg.create(CM, "default", {"metadata": {"name": "frozen"}, "data": {"k": "1"}, "immutable": True})
    assert causes(reg, CM, {"metadata": {"name": "frozen"}, "data": {"k": "2"}, "immutable": True}, "frozen") == ["data"]


def test_secrets(reg: Registry) -> None:
    s = reg.create(SECRET, "default", {"metadata": {"name": "s"}, "data": {"a": base64.b64encode(b"old").decode()},
                                       "stringData": {"a": "new", "b": "plain"}})
    assert s["type"] == "Opaque" and "stringData" not in s
    assert {k: base64.b64decode(v) for k, v in s["data"].items()} == {"a": b"new", "b": b"plain"}
    assert causes(reg, SECRET, {"metadata": {"name": "s2"}, "data": {"a": "not base64!"}}) == ["data[a]"]
    assert causes(reg, SECRET, {"metadata": {"name": "s2"}, "type": "kubernetes.io/tls", "data": {}}) == \
        ["data[tls.crt]", "data[tls.key]"]
    assert causes(reg, SECRET, {"metadata": {"name": "s"}, "type": "kubernetes.io/basic-auth",
                                "stringData": {"username": "u"}}, "s") == ["type"]


def test_rbac(reg: Registry) -> None:
    role = reg.create(CROLE, None, {"metadata": {"name": "system:controller:crt"},
                                    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                                              {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]})
    assert role["metadata"]["name"] == "system:controller:crt"
    assert causes(reg, ROLE, {"metadata": {"name": "r"}, "rules": [{"nonResourceURLs": ["/x"], "verbs": ["get"]}]}) == \
        ["rules[0].nonResourceURLs"]
    assert causes(reg, ROLE, {"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"]}]}) == \
        ["rules[0].verbs"]
    rb = reg.create(RB, "default", {"metadata": {"name": "rb"}, "roleRef": {"kind": "Role", "name": "r"},
                                    "subjects": [{"kind": "User", "name": "alice"},
                                                 {"kind": "ServiceAccount", "name": "default"}]})
    assert rb["roleRef"]["apiGroup"] == RBAC and rb["subjects"][0]["apiGroup"] == RBAC
    assert "apiGroup" not in rb["subjects"][1]
    rb["roleRef"]["name"] = "other"
    assert causes(reg, RB, rb, "rb") == ["roleRef"]
    assert causes(reg, CRB, {"metadata": {"name": "c"}, "roleRef": {"kind": "Role", "name": "r"},
                             "subjects": [{"kind": "ServiceAccount", "name": "sa"}]}) == ["roleRef.kind", "subjects[0].namespace"]


def test_volumes(reg: Registry) -> None:
    pv = reg.create(PV, None, {"metadata": {"name": "pv1"}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/crt-pv"}}})
    assert (pv["spec"]["persistentVolumeReclaimPolicy"], pv["spec"]["volumeMode"], pv["status"]) == \
        ("Retain", "Filesystem", {"phase": "Pending"})
    assert causes(reg, PV, {"metadata": {"name": "pv2"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                                  "capacity": {"storage": "1Gi"}}}) == ["spec"]
    pvc = reg.create(PVC, "default", {"metadata": {"name": "c"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    assert pvc["status"] == {"phase": "Pending"}
    assert causes(reg, PVC, {"metadata": {"name": "c2"}, "spec": {"accessModes": ["ReadWriteOnce"]}}) == \
        ["spec.resources[storage]"]
    pvc["spec"]["accessModes"] = ["ReadWriteMany"]
    assert causes(reg, PVC, pvc, "c") == ["spec"]


def test_quota_limits_ingress_endpoints(reg: Registry) -> None:
    q = reg.create(QUOTA, "default", {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "10", "requests.cpu": "1"}}})
    assert q["status"] == {}
    assert causes(reg, QUOTA, {"metadata": {"name": "q2"}, "spec": {"hard": {"pods": "ten"}}}) == ["spec.hard[pods]"]
    reg.create(LIMITS, "default", {"metadata": {"name": "l"}, "spec": {"limits": [
        {"type": "Container", "default": {"cpu": "500m"}, "max": {"cpu": "1"}}]}})
    assert causes(reg, LIMITS, {"metadata": {"name": "l2"}, "spec": {"limits": [
        {"type": "Container", "default": {"cpu": "2"}, "max": {"cpu": "1"}}]}}) == ["spec.limits[0].default[cpu]"]
    ing = {"metadata": {"name": "i"}, "spec": {"rules": [{"host": "a.example", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}
    assert reg.create(ING, "default", copy.deepcopy(ing))["status"] == {"loadBalancer": {}}
    del ing["spec"]["rules"][0]["http"]["paths"][0]["pathType"]
    ing["metadata"]["name"] = "i2"
    assert causes(reg, ING, ing) == ["spec.rules[0].http.paths[0].pathType"]
    ep = reg.create(EP, "default", {"metadata": {"name": "e"}, "subsets": [
        {"addresses": [{"ip": "10.250.0.5"}], "ports": [{"port": 80}]}]})
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    assert causes(reg, EP, {"metadata": {"name": "e2"}, "subsets": [{"addresses": [{"ip": "nope"}]}]}) == \
        ["subsets[0].addresses[0].ip"]
    reg.create(EPS, "default", {"metadata": {"name": "s"}, "addressType": "IPv4",
                                "endpoints": [{"addresses": ["10.250.0.5"]}], "ports": [{"port": 80}]})
    assert causes(reg, EPS, {"metadata": {"name": "s2"}, "endpoints": []}) == ["addressType"]
    assert causes(reg, EPS, {"metadata": {"name": "s2"}, "addressType": "IPv6",
                             "endpoints": [{"addresses": ["10.250.0.5"]}]}) == ["endpoints[0].addresses[0]"]


def test_serviceaccount(reg: Registry) -> None:
    sa = reg.create(SA, "default", {"metadata": {"name": "robot"}})
    assert "status" not in sa and "generation" not in sa["metadata"]
    assert causes(reg, SA, {"metadata": {"name": "r2"}, "secrets": [{}]}) == ["secrets[0].name"]
