"""Server-side apply by schema (master/apiserver/schemas/structure.py, fieldset.py, ssa.py): list types
(map with several keys, set, atomic), atomic maps and structs, upstream's list-merge order, Update
bookkeeping against a zero object, apply to the scale subresource, and our components' manager names."""
from __future__ import annotations

import copy
import re
import sys
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread  # noqa: E402

from apimachinery import kinds  # noqa: E402
from apimachinery.client import user_agent  # noqa: E402
from master.apiserver import errors, openapi, scalerest, ssa  # noqa: E402
from master.apiserver.patching import APPLY_PATCH  # noqa: E402
from master.apiserver.registry import Registry  # noqa: E402
from master.apiserver.schemas import structure  # noqa: E402
from master.store import open_store  # noqa: E402

T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"
C = ("f:spec", "f:containers", 'k:{"name":"c"}')


def pod(**container: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", **container}]}}


def owned(obj: dict[str, Any]) -> dict[str, ssa.FieldSet]:
    return {m.manager: m.fields for m in ssa.read_managers(obj)}


# -- the types ----------------------------------------------------------------------------
def test_types_follow_upstream_list_and_map_types() -> None:
    p = structure.for_kind("", "v1", "Pod")
    spec = p.child("spec")
    container = spec.child("containers").elem
    assert container is not None
    ports = container.child("ports")
    assert (ports.list_type, ports.keys, ports.key_defaults) == ("map", ("containerPort", "protocol"), {"protocol": "TCP"})
    assert (container.child("env").list_type, container.child("env").keys) == ("map", ("name",))
    assert container.child("args").atomic and container.child("command").atomic
    assert spec.child("tolerations").atomic and spec.child("nodeSelector").atomic
    assert spec.child("topologySpreadConstraints").keys == ("topologyKey", "whenUnsatisfiable")
    assert p.child("metadata").child("finalizers").list_type == "set"
    assert p.child("metadata").child("ownerReferences").keys == ("uid",)
    assert not p.child("metadata").child("labels").atomic
    d = structure.for_kind("apps", "v1", "Deployment").child("spec")
    assert d.child("selector").atomic and d.child("selector").shape == "struct"
    assert "template" in d.implicit and "selector" not in d.value_structs
    svc = structure.for_kind("", "v1", "Service").child("spec")
    assert svc.child("ports").keys == ("port", "protocol") and svc.child("selector").atomic
    claim = structure.for_kind("", "v1", "PersistentVolume").child("spec").child("claimRef")
    assert not claim.atomic  # granular on that field, though ObjectReference is atomic elsewhere
    assert structure.for_kind("", "v1", "Event").child("involvedObject").atomic


def test_served_openapi_carries_the_extensions() -> None:
    comps = openapi.document("apps", "v1")["components"]["schemas"]
    assert comps["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"] == "atomic"
    ports = comps["io.k8s.api.core.v1.Container"]["properties"]["ports"]
    assert ports["x-kubernetes-list-type"] == "map"
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    assert comps["io.k8s.api.core.v1.ContainerPort"]["properties"]["protocol"]["default"] == "TCP"
    assert comps["io.k8s.api.core.v1.PodSpec"]["properties"]["tolerations"]["x-kubernetes-list-type"] == "atomic"
    meta = comps["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]
    assert meta["finalizers"]["x-kubernetes-list-type"] == "set"
    spec = comps["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]
    assert spec["template"]["default"] == {} and "default" not in spec["selector"]  # value vs pointer


def test_kind_without_schema_is_open_and_untyped() -> None:
    t = structure.for_kind("crt.example.com", "v1", "Widget")
    fs = ssa.field_set({"metadata": {"labels": {"a": "1"}}, "spec": {"x": {"y": 1}, "l": [1, 2]}}, t)
    assert fs == {("f:metadata", "f:labels", "f:a"), ("f:spec",), ("f:spec", "f:x"), ("f:spec", "f:x", "f:y"),
                  ("f:spec", "f:l")}  # untyped: every key is a member (deduced maps), lists atomic


# -- list of type map with two keys --------------------------------------------------------------
def test_ports_53_tcp_and_udp_by_two_managers() -> None:
    live = ssa.apply(None, pod(image="dns", ports=[{"containerPort": 53}]), "tcp-owner", "Pod", T0)
    live = ssa.apply(live, pod(ports=[{"containerPort": 53, "protocol": "UDP"}]), "udp-owner", "Pod", T1)
    ports = live["spec"]["containers"][0]["ports"]
    assert ports == [{"containerPort": 53}, {"containerPort": 53, "protocol": "UDP"}]
    tcp, udp = C + ("f:ports", 'k:{"containerPort":53,"protocol":"TCP"}'), C + ("f:ports", 'k:{"containerPort":53,"protocol":"UDP"}')
    got = owned(live)
    assert tcp in got["tcp-owner"] and udp not in got["tcp-owner"]
    assert {udp, udp + ("f:containerPort",), udp + ("f:protocol",), C, C + ("f:name",)} == got["udp-owner"]
    fv1 = next(e for e in live["metadata"]["managedFields"] if e["manager"] == "udp-owner")["fieldsV1"]
    assert 'k:{"containerPort":53,"protocol":"UDP"}' in fv1["f:spec"]["f:containers"]['k:{"name":"c"}']["f:ports"]
    # the TCP owner drops its port: only its item goes; the container stays, shared by name
    after = ssa.apply(live, pod(image="dns"), "tcp-owner", "Pod", T2)
    assert after["spec"]["containers"][0]["ports"] == [{"containerPort": 53, "protocol": "UDP"}]


def test_conflict_inside_a_two_key_item_names_its_path() -> None:
    live = ssa.apply(None, pod(ports=[{"containerPort": 53, "protocol": "UDP", "hostPort": 1}]), "a", "Pod", T0)
    with pytest.raises(ssa.ApplyConflict) as exc:
        ssa.apply(live, pod(ports=[{"containerPort": 53, "protocol": "UDP", "hostPort": 2}]), "b", "Pod", T1)
    assert [c["field"] for c in exc.value.causes()] == \
        ['.spec.containers[name="c"].ports[containerPort=53,protocol="UDP"].hostPort']


def test_item_without_its_key_is_invalid_for_apply_and_atomic_for_update() -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"name": "x"}]}}
    with pytest.raises(ssa.InvalidObject, match="omits key field"):
        ssa.apply(None, svc, "a", "Service", T0)
    created = copy.deepcopy(svc)
    ssa.record_update(None, created, "w", "Service", T0)
    assert ("f:spec", "f:ports") in owned(created)["w"]


# -- atomic lists, sets, atomic maps ---------------------------------------------------------
def test_atomic_list_is_replaced_and_owned_whole() -> None:
    live = ssa.apply(None, pod(args=["a", "b"], image="x"), "a", "Pod", T0)
    assert C + ("f:args",) in owned(live)["a"] and not any(len(p) > 4 and p[3] == "f:args" for p in owned(live)["a"])
    with pytest.raises(ssa.ApplyConflict) as exc:
        ssa.apply(live, pod(args=["c"]), "b", "Pod", T1)
    assert [c["field"] for c in exc.value.causes()] == ['.spec.containers[name="c"].args']
    new = ssa.apply(live, pod(args=["c"]), "b", "Pod", T1, force=True)
    assert new["spec"]["containers"][0]["args"] == ["c"]  # not merged with ["a", "b"]
    assert C + ("f:args",) in owned(new)["b"] and C + ("f:args",) not in owned(new)["a"]
    tol = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"tolerations": [{"key": "x"}]}}
    merged = ssa.merge(tol, {"spec": {"tolerations": [{"key": "y"}]}}, "Pod")
    assert merged["spec"]["tolerations"] == [{"key": "y"}]


def test_set_values_owned_one_by_one() -> None:
    def cm(*fins: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m", "finalizers": list(fins)}}
    live = ssa.apply(None, cm("a"), "one", "ConfigMap", T0)
    live = ssa.apply(live, cm("b"), "two", "ConfigMap", T1)
    assert live["metadata"]["finalizers"] == ["a", "b"]
    assert owned(live) == {"one": {("f:metadata", "f:finalizers", 'v:"a"')},
                           "two": {("f:metadata", "f:finalizers", 'v:"b"')}}
    dropped = ssa.apply(live, cm(), "one", "ConfigMap", T2)
    assert dropped["metadata"]["finalizers"] == ["b"]


def test_atomic_map_selector_is_one_field() -> None:
    def dep(sel: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"selector": sel, "template": {"metadata": {"labels": {"app": "d"}}}}}
    sel = {"matchLabels": {"app": "d"}, "matchExpressions": [{"key": "t", "operator": "Exists"}]}
    live = ssa.apply(None, dep(sel), "a", "Deployment", T0)
    assert ("f:spec", "f:selector") in owned(live)["a"]
    assert not any(p[:2] == ("f:spec", "f:selector") and len(p) > 2 for p in owned(live)["a"])
    new = ssa.apply(live, dep({"matchLabels": {"app": "d"}}), "a", "Deployment", T1)
    assert new["spec"]["selector"] == {"matchLabels": {"app": "d"}}  # replaced whole, not merged
    with pytest.raises(ssa.ApplyConflict) as exc:
        ssa.apply(new, dep({"matchLabels": {"app": "e"}}), "b", "Deployment", T2)
    assert [c["field"] for c in exc.value.causes()] == [".spec.selector"]
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"selector": {"a": "1", "b": "2"}}}
    merged = ssa.merge(svc, {"spec": {"selector": {"a": "1"}}}, "Service")
    assert merged["spec"]["selector"] == {"a": "1"}
    assert ssa.field_set(svc, "Service") == {("f:spec", "f:selector")}


def test_list_merge_order_as_structured_merge_diff() -> None:
    def names(*ns: str) -> dict[str, Any]:
        return {"spec": {"containers": [{"name": n} for n in ns]}}
    order = [c["name"] for c in ssa.merge(names("a", "b", "c"), names("c", "a"), "Pod")["spec"]["containers"]]
    assert order == ["b", "c", "a"]  # shared items in the applied order, live-only ones keep their place
    order = [c["name"] for c in ssa.merge(names("a", "b"), names("x", "b", "y"), "Pod")["spec"]["containers"]]
    assert order == ["a", "x", "b", "y"]


# -- Update bookkeeping ------------------------------------------------------------------------
def test_update_owns_created_maps_and_lists_with_dot() -> None:
    old = pod(image="x")
    ssa.record_update(None, old, "creator", "Pod", T0)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    new["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}
    ssa.record_update(old, new, "setter", "Pod", T1)
    fv1 = next(e for e in new["metadata"]["managedFields"] if e["manager"] == "setter")["fieldsV1"]
    item = fv1["f:spec"]["f:containers"]['k:{"name":"c"}']
    assert item["f:env"] == {".": {}, 'k:{"name":"A"}': {".": {}, "f:name": {}, "f:value": {}}}
    # resources is a value struct (present, empty, in a zero container): not a member; limits is
    assert item["f:resources"] == {"f:limits": {".": {}, "f:cpu": {}}}


def test_status_update_against_zero_status() -> None:
    old = pod(image="x")
    ssa.record_update(None, old, "creator", "Pod", T0)
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    ssa.record_update(old, new, "kubelet", "Pod", T1, "status")
    [e] = [e for e in new["metadata"]["managedFields"] if e["manager"] == "kubelet"]
    assert e["subresource"] == "status"
    assert e["fieldsV1"] == {"f:status": {"f:conditions": {".": {}, 'k:{"type":"Ready"}': {
        ".": {}, "f:status": {}, "f:type": {}}}, "f:phase": {}}}


# -- the scale subresource -------------------------------------------------------------------------
DEPLOYMENTS = kinds.lookup("apps", "v1", "deployments")
NAMESPACES = kinds.lookup("", "v1", "namespaces")
assert DEPLOYMENTS and NAMESPACES


@pytest.fixture
def reg() -> Iterator[Registry]:
    store = open_store("sqlite://:memory:")
    ticks = iter(f"2026-01-01T00:{m:02d}:00Z" for m in range(60))
    r = Registry(store, clock=lambda: next(ticks))
    r.create(NAMESPACES, None, {"metadata": {"name": "default"}})
    try:
        yield r
    finally:
        store.close()


def deployment(replicas: int = 2) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "d"}},
                     "template": {"metadata": {"labels": {"app": "d"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def scale(replicas: int) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "d"}, "spec": {"replicas": replicas}}


def entries(obj: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"], e.get("subresource", "")): e for e in obj["metadata"]["managedFields"]}


def test_scale_apply_conflicts_with_the_replicas_owner_then_force(reg: Registry) -> None:
    assert DEPLOYMENTS is not None
    reg.patch(DEPLOYMENTS, "default", "d", APPLY_PATCH, deployment(), manager="kubectl")
    with pytest.raises(errors.APIError) as exc:
        scalerest.update_scale(reg, DEPLOYMENTS, "default", "d", scale(5), APPLY_PATCH, manager="hpa")
    assert exc.value.code == 409
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas' in str(exc.value)
    assert reg.get(DEPLOYMENTS, "default", "d")["spec"]["replicas"] == 2
    # the same value is shared, no conflict
    got = scalerest.update_scale(reg, DEPLOYMENTS, "default", "d", scale(2), APPLY_PATCH, manager="hpa")
    assert got["kind"] == "Scale" and got["spec"]["replicas"] == 2
    shared = entries(reg.get(DEPLOYMENTS, "default", "d"))
    assert shared[("hpa", "Apply", "scale")]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert shared[("hpa", "Apply", "scale")]["apiVersion"] == "apps/v1"
    assert "f:replicas" in shared[("kubectl", "Apply", "")]["fieldsV1"]["f:spec"]
    got = scalerest.update_scale(reg, DEPLOYMENTS, "default", "d", scale(5), APPLY_PATCH, manager="hpa", force=True)
    assert got["spec"]["replicas"] == 5
    obj = reg.get(DEPLOYMENTS, "default", "d")
    assert obj["spec"]["replicas"] == 5
    after = entries(obj)
    assert after[("hpa", "Apply", "scale")]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in after[("kubectl", "Apply", "")]["fieldsV1"]["f:spec"]
    assert "f:selector" in after[("kubectl", "Apply", "")]["fieldsV1"]["f:spec"]  # the rest stays kubectl's
    # now the deployment's applier conflicts with the scale applier
    with pytest.raises(errors.APIError) as exc:
        reg.patch(DEPLOYMENTS, "default", "d", APPLY_PATCH, deployment(3), manager="kubectl")
    assert exc.value.code == 409 and 'conflict with "hpa" with subresource "scale": .spec.replicas' in str(exc.value)


def test_scale_apply_validation(reg: Registry) -> None:
    assert DEPLOYMENTS is not None
    reg.patch(DEPLOYMENTS, "default", "d", APPLY_PATCH, deployment(), manager="kubectl")
    for body, code in ((scale(-1), 422), ({"kind": "Deployment", "spec": {"replicas": 1}}, 400),
                       ({**scale(1), "metadata": {"name": "other"}}, 400)):
        with pytest.raises(errors.APIError) as exc:
            scalerest.update_scale(reg, DEPLOYMENTS, "default", "d", body, APPLY_PATCH, manager="hpa")
        assert exc.value.code == code, body
    with pytest.raises(errors.APIError) as exc:
        scalerest.update_scale(reg, DEPLOYMENTS, "default", "d", scale(1), APPLY_PATCH, manager=None)
    assert exc.value.code == 422


# -- manager names of our components -------------------------------------------------------------------
@pytest.mark.parametrize("component", ["kubelet", "kube-scheduler", "kube-controller-manager"])
def test_component_user_agents_name_upstreams_managers(component: str) -> None:
    ua = user_agent(component)
    assert re.fullmatch(rf"{component}/v1\.32\.0 \(linux/[a-z0-9_]+\) coracle", ua), ua
    assert ua.split("/")[0] == component


@pytest.fixture(scope="module")
def http(srv: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        yield c


def test_http_manager_from_component_user_agent_and_scale_apply(http: httpx.Client) -> None:
    url = "/apis/apps/v1/namespaces/default/deployments"
    r = http.post(url, json=deployment(), headers={"User-Agent": user_agent("kube-controller-manager")})
    assert r.status_code == 201, r.text
    try:
        assert [e["manager"] for e in r.json()["metadata"]["managedFields"]] == ["kube-controller-manager"]
        r = http.patch(url + "/d/scale", params={"fieldManager": "hpa"}, json=scale(4),
                       headers={"Content-Type": APPLY_PATCH})
        assert r.status_code == 409, r.text
        # the Scale sees the object's entries in its own version (upstream's ScaleHandler)
        assert 'conflict with "kube-controller-manager" using autoscaling/v1' in r.json()["message"]
        r = http.patch(url + "/d/scale", params={"fieldManager": "hpa"}, json=scale(2),
                       headers={"Content-Type": APPLY_PATCH})
        assert r.status_code == 200 and r.json()["spec"]["replicas"] == 2, r.text
        got = entries(http.get(url + "/d").json())
        assert got[("hpa", "Apply", "scale")]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    finally:
        http.delete(url + "/d")
