"""Server-side apply and managedFields bookkeeping (master/apiserver/ssa.py), pure."""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from master.apiserver import ssa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread  # noqa: E402

T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"


def deploy(replicas: int | None = 2, image: str = "nginx", labels: dict[str, str] | None = None,
           extra_container: bool = False) -> dict[str, Any]:
    containers: list[dict[str, Any]] = [{"name": "web", "image": image}]
    if extra_container:
        containers.append({"name": "side", "image": "busybox"})
    spec: dict[str, Any] = {"template": {"spec": {"containers": containers}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "default", "labels": labels or {"app": "d"}}, "spec": spec}


def entries(obj: dict[str, Any]) -> dict[tuple[str, str], ssa.FieldSet]:
    return {(m.manager, m.operation): m.fields for m in ssa.read_managers(obj)}


CONTAINER = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}')


# -- field sets and encoding -----------------------------------------------------
def test_field_set_leaves_keyed_items_and_stripped_meta() -> None:
    fs = ssa.field_set(deploy(), "Deployment")
    assert ("f:spec", "f:replicas") in fs
    assert ("f:metadata", "f:labels", "f:app") in fs
    assert ("f:metadata", "f:labels") not in fs  # an Apply owns the keys, not the map (upstream's ToFieldSet)
    assert CONTAINER in fs and CONTAINER + ("f:image",) in fs and CONTAINER + ("f:name",) in fs
    assert ("f:spec",) not in fs and ("f:apiVersion",) not in fs and ("f:kind",) not in fs
    assert not any(p[:2] == ("f:metadata", "f:name") or p[:2] == ("f:metadata", "f:namespace") for p in fs)


def test_field_set_set_lists_atomic_lists_and_empty_maps() -> None:
    obj = {"metadata": {"finalizers": ["a", "b"]}, "spec": {"args": ["x", "y"], "securityContext": {},
                                                            "tolerations": [{"key": "k"}]}}
    fs = ssa.field_set(obj, "Pod")
    assert ("f:metadata", "f:finalizers", 'v:"a"') in fs and ("f:metadata", "f:finalizers", 'v:"b"') in fs
    assert ("f:spec", "f:args") in fs  # atomic: one leaf
    assert ("f:spec", "f:tolerations") in fs  # a list of maps without a merge key is atomic
    assert ("f:spec", "f:securityContext") in fs


def test_container_ports_and_service_ports_keys() -> None:
    pod = {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}}
    # keyed by containerPort and protocol, in name order, the left-out protocol by its default
    port = ("f:spec", "f:containers", 'k:{"name":"c"}', "f:ports", 'k:{"containerPort":80,"protocol":"TCP"}')
    assert {port, port + ("f:containerPort",)} <= ssa.field_set(pod, "Pod")
    svc = {"spec": {"ports": [{"port": 53, "protocol": "UDP"}]}}
    assert ("f:spec", "f:ports", 'k:{"port":53,"protocol":"UDP"}', "f:protocol") in ssa.field_set(svc, "Service")


def test_encode_decode_round_trip_with_dot() -> None:
    fs = ssa.field_set(deploy(), "Deployment")
    enc = ssa.encode_fields(fs)
    assert enc["f:spec"]["f:replicas"] == {}
    assert enc["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}'] == \
        {".": {}, "f:image": {}, "f:name": {}}
    assert ssa.decode_fields(enc) == fs
    assert ssa.decode_fields(json.loads(json.dumps(enc))) == fs


def test_decode_rejects_garbage() -> None:
    with pytest.raises(ssa.InvalidManagedFields):
        ssa.decode_fields({"spec": {}})
    with pytest.raises(ssa.InvalidManagedFields):
        ssa.decode_fields([])


def test_path_string_as_upstream() -> None:
    assert ssa.path_string(("f:spec", "f:replicas")) == ".spec.replicas"
    assert ssa.path_string(CONTAINER + ("f:image",)) == '.spec.template.spec.containers[name="web"].image'
    assert ssa.path_string(("f:spec", "f:ports", 'k:{"port":53}')) == ".spec.ports[port=53]"
    assert ssa.path_string(("f:metadata", "f:finalizers", 'v:"x"')) == '.metadata.finalizers[="x"]'


def test_value_at_and_remove_path() -> None:
    obj = deploy(extra_container=True)
    obj["metadata"]["finalizers"] = ["a", "b"]
    t = ssa.type_of("Deployment")
    assert ssa.value_at(obj, CONTAINER + ("f:image",), t) == (True, "nginx")
    assert ssa.value_at(obj, ("f:spec", "f:nothing"), t) == (False, None)
    ssa.remove_path(obj, CONTAINER, t)
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["side"]
    ssa.remove_path(obj, ("f:metadata", "f:finalizers", 'v:"a"'), t)
    assert obj["metadata"]["finalizers"] == ["b"]
    ssa.remove_path(obj, ("f:spec", "f:gone", "f:deeper"), t)  # already gone is success
    ssa.remove_path(obj, ("f:spec", "f:replicas"), t)
    assert "replicas" not in obj["spec"]


# -- Update operations -----------------------------------------------------------------
def test_create_records_all_fields_under_update() -> None:
    obj = deploy()
    ssa.record_update(None, obj, "kubectl-create", "Deployment", T0)
    [e] = obj["metadata"]["managedFields"]
    assert (e["manager"], e["operation"], e["apiVersion"], e["time"], e["fieldsType"]) == \
        ("kubectl-create", "Update", "apps/v1", T0, "FieldsV1")
    # an Update owns what it added: maps it created are members too (`.`), the structs a zero Deployment
    # has (spec, template, its spec) are not
    assert ssa.decode_fields(e["fieldsV1"]) == ssa.field_set(deploy(), "Deployment") | {
        ("f:metadata", "f:labels"), ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}')}
    assert "f:spec" in e["fieldsV1"] and "." not in e["fieldsV1"]["f:spec"]
    assert "subresource" not in e


def test_update_takes_changed_fields_from_other_manager() -> None:
    old = deploy()
    ssa.record_update(None, old, "creator", "Deployment", T0)
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    ssa.record_update(old, new, "scaler", "Deployment", T1)
    got = entries(new)
    assert got[("scaler", "Update")] == {("f:spec", "f:replicas")}
    assert ("f:spec", "f:replicas") not in got[("creator", "Update")]
    times = {m.manager: m.time for m in ssa.read_managers(new)}
    assert times == {"creator": T0, "scaler": T1}


def test_update_that_changes_nothing_keeps_entries_and_times() -> None:
    old = deploy()
    ssa.record_update(None, old, "creator", "Deployment", T0)
    new = copy.deepcopy(old)
    ssa.record_update(old, new, "other", "Deployment", T1)
    assert new == old


def test_removed_fields_leave_every_set() -> None:
    old = deploy(labels={"app": "d", "tier": "x"})
    ssa.record_update(None, old, "creator", "Deployment", T0)
    new = copy.deepcopy(old)
    del new["metadata"]["labels"]["tier"]
    ssa.record_update(old, new, "editor", "Deployment", T1)
    assert ("f:metadata", "f:labels", "f:tier") not in entries(new)[("creator", "Update")]
    assert ("editor", "Update") not in entries(new)  # it owns nothing: no entry


def test_status_is_not_owned_by_main_writes_and_status_writes_own_only_status() -> None:
    old = deploy()
    ssa.record_update(None, old, "creator", "Deployment", T0)
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 2}
    ssa.record_update(old, new, "controller", "Deployment", T1, "status")
    [ctl] = [m for m in ssa.read_managers(new) if m.manager == "controller"]
    assert ctl.subresource == "status" and ctl.fields == {("f:status", "f:replicas")}
    newer = copy.deepcopy(new)
    newer["status"]["replicas"] = 3
    ssa.record_update(new, newer, "main-writer", "Deployment", T2)
    assert ("main-writer", "Update") not in entries(newer)


def test_scale_subresource_entry() -> None:
    old = deploy()
    ssa.apply(None, deploy(), "kubectl", "Deployment", T0)
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 7
    ssa.record_update(old, new, "kubectl", "Deployment", T1, "scale")
    [e] = [e for e in new["metadata"]["managedFields"] if e.get("subresource") == "scale"]
    assert e["fieldsV1"] == {"f:spec": {"f:replicas": {}}} and e["operation"] == "Update"


def test_client_sent_managed_fields_are_taken_and_empty_entry_clears() -> None:
    old = deploy()
    ssa.record_update(None, old, "creator", "Deployment", T0)
    new = copy.deepcopy(old)
    new["metadata"]["managedFields"] = [{}]
    new["spec"]["replicas"] = 9
    ssa.record_update(old, new, "patcher", "Deployment", T1)
    assert "managedFields" not in new["metadata"]
    given = copy.deepcopy(old)
    given["metadata"]["managedFields"] = [{"manager": "x", "operation": "Apply", "apiVersion": "apps/v1",
                                           "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
    ssa.record_update(old, given, "patcher", "Deployment", T1)
    assert entries(given) == {("x", "Apply"): {("f:spec", "f:replicas")}}


# -- Apply -----------------------------------------------------------------------------
def test_apply_creates_and_owns_exactly_its_config() -> None:
    new = ssa.apply(None, deploy(), "kubectl", "Deployment", T0)
    assert new["spec"]["replicas"] == 2
    assert entries(new) == {("kubectl", "Apply"): ssa.field_set(deploy(), "Deployment")}


def test_reapply_unchanged_is_identical() -> None:
    live = ssa.apply(None, deploy(), "kubectl", "Deployment", T0)
    again = ssa.apply(live, deploy(), "kubectl", "Deployment", T1)
    assert again == live  # same fields: the entry keeps its time, so the write is a no-op


def test_apply_removes_fields_it_no_longer_applies() -> None:
    live = ssa.apply(None, deploy(labels={"app": "d", "tier": "x"}, extra_container=True), "kubectl", "Deployment", T0)
    new = ssa.apply(live, deploy(labels={"app": "d"}), "kubectl", "Deployment", T1)
    assert new["metadata"]["labels"] == {"app": "d"}
    assert [c["name"] for c in new["spec"]["template"]["spec"]["containers"]] == ["web"]
    assert entries(new)[("kubectl", "Apply")] == ssa.field_set(deploy(labels={"app": "d"}), "Deployment")


def test_apply_keeps_dropped_field_another_manager_owns() -> None:
    live = ssa.apply(None, deploy(labels={"app": "d", "tier": "x"}), "kubectl", "Deployment", T0)
    other = copy.deepcopy(live)
    other["metadata"]["labels"]["tier"] = "y"
    ssa.record_update(live, other, "labeler", "Deployment", T1)
    new = ssa.apply(other, deploy(labels={"app": "d"}), "kubectl", "Deployment", T2)
    assert new["metadata"]["labels"] == {"app": "d", "tier": "y"}
    # and fields nobody applied stay: server defaults, other writers' fields
    live2 = copy.deepcopy(live)
    live2["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    new2 = ssa.apply(live2, deploy(labels={"app": "d"}), "kubectl", "Deployment", T2)
    assert new2["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Always"


def test_keyed_item_stays_while_another_manager_owns_a_field_in_it() -> None:
    live = ssa.apply(None, deploy(extra_container=True), "kubectl", "Deployment", T0)
    other = copy.deepcopy(live)
    other["spec"]["template"]["spec"]["containers"][1]["args"] = ["-v"]
    ssa.record_update(live, other, "sidecar-injector", "Deployment", T1)
    new = ssa.apply(other, deploy(), "kubectl", "Deployment", T2)
    side = [c for c in new["spec"]["template"]["spec"]["containers"] if c["name"] == "side"]
    assert side and side[0]["args"] == ["-v"] and "image" not in side[0]


def test_merge_maps_keyed_lists_atomic_lists_and_sets() -> None:
    live = {"metadata": {"finalizers": ["a"]},
            "spec": {"containers": [{"name": "a", "image": "x", "args": ["1", "2"]}, {"name": "b", "image": "y"}],
                     "keep": 1}}
    applied = {"metadata": {"finalizers": ["b"]},
               "spec": {"containers": [{"name": "a", "args": ["3"]}, {"name": "c", "image": "z"}]}}
    out = ssa.merge(live, applied, "Pod")
    assert out["metadata"]["finalizers"] == ["a", "b"]
    assert out["spec"]["containers"] == [{"name": "a", "image": "x", "args": ["3"]}, {"name": "b", "image": "y"},
                                         {"name": "c", "image": "z"}]
    assert out["spec"]["keep"] == 1
    assert live["spec"]["containers"][0]["args"] == ["1", "2"]  # inputs untouched


def test_conflict_with_other_manager_on_changed_value() -> None:
    live = ssa.apply(None, deploy(), "kubectl", "Deployment", T0)
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    ssa.record_update(live, scaled, "kubectl", "Deployment", T1, "scale")
    with pytest.raises(ssa.ApplyConflict) as exc:
        ssa.apply(scaled, deploy(replicas=3), "kubectl", "Deployment", T2)
    assert str(exc.value) == ('Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" '
                              f"using apps/v1 at {T1}: .spec.replicas")
    assert exc.value.causes() == [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                   "message": f'conflict with "kubectl" with subresource "scale" using apps/v1 at {T1}'}]


def test_same_value_is_shared_not_a_conflict() -> None:
    live = ssa.apply(None, deploy(), "a", "Deployment", T0)
    new = ssa.apply(live, deploy(), "b", "Deployment", T1)
    got = entries(new)
    assert ("f:spec", "f:replicas") in got[("a", "Apply")] and ("f:spec", "f:replicas") in got[("b", "Apply")]
    # one applier dropping a shared field keeps it: the other still owns it
    dropped = ssa.apply(new, deploy(replicas=None), "a", "Deployment", T2)
    assert dropped["spec"]["replicas"] == 2


def test_apply_vs_apply_conflict_message_without_time() -> None:
    live = ssa.apply(None, deploy(), "a", "Deployment", T0)
    with pytest.raises(ssa.ApplyConflict) as exc:
        ssa.apply(live, deploy(replicas=4, image="httpd"), "b", "Deployment", T1)
    msg = str(exc.value)
    assert msg.startswith('Apply failed with 2 conflicts: conflicts with "a":\n')
    assert "- .spec.replicas" in msg and '- .spec.template.spec.containers[name="web"].image' in msg
    assert {c["field"] for c in exc.value.causes()} == {".spec.replicas", '.spec.template.spec.containers[name="web"].image'}


def test_force_moves_ownership() -> None:
    live = ssa.apply(None, deploy(), "a", "Deployment", T0)
    new = ssa.apply(live, deploy(replicas=4), "b", "Deployment", T1, force=True)
    assert new["spec"]["replicas"] == 4
    got = entries(new)
    assert ("f:spec", "f:replicas") in got[("b", "Apply")]
    assert ("f:spec", "f:replicas") not in got[("a", "Apply")]


def test_migration_from_client_side_apply_allowed_by_last_applied() -> None:
    cfg = deploy()
    live = copy.deepcopy(cfg)
    live["metadata"]["annotations"] = {ssa.LAST_APPLIED: json.dumps(cfg)}
    ssa.record_update(None, live, "kubectl-client-side-apply", "Deployment", T0)
    new = ssa.apply(live, deploy(replicas=3), "kubectl", "Deployment", T1)
    assert new["spec"]["replicas"] == 3
    assert json.loads(new["metadata"]["annotations"][ssa.LAST_APPLIED])["spec"]["replicas"] == 3
    # but a value changed behind the last-applied config's back still conflicts
    drifted = copy.deepcopy(live)
    drifted["spec"]["replicas"] = 7
    ssa.record_update(live, drifted, "kubectl-client-side-apply", "Deployment", T1)
    with pytest.raises(ssa.ApplyConflict):
        ssa.apply(drifted, deploy(replicas=3), "kubectl", "Deployment", T2)


def test_last_applied_sync_only_for_kubectl_and_only_when_present() -> None:
    live = ssa.apply(None, deploy(), "kubectl", "Deployment", T0)
    assert "annotations" not in ssa.apply(live, deploy(replicas=3), "kubectl", "Deployment", T1)["metadata"]
    live["metadata"]["annotations"] = {ssa.LAST_APPLIED: "{}"}
    other = ssa.apply(live, deploy(replicas=3), "someone", "Deployment", T1, force=True)
    assert other["metadata"]["annotations"][ssa.LAST_APPLIED] == "{}"


def test_null_in_applied_config_is_not_owned() -> None:
    cfg = deploy()
    cfg["spec"]["paused"] = None
    new = ssa.apply(None, cfg, "kubectl", "Deployment", T0)
    assert "paused" not in new["spec"] and ("f:spec", "f:paused") not in entries(new)[("kubectl", "Apply")]


def test_applied_managed_fields_are_ignored() -> None:
    cfg = deploy()
    cfg["metadata"]["managedFields"] = [{"manager": "evil", "operation": "Apply", "fieldsV1": {}}]
    new = ssa.apply(None, cfg, "kubectl", "Deployment", T0)
    assert set(entries(new)) == {("kubectl", "Apply")}


# -- over HTTP: the registry and handler wiring ---------------------------------------------
APPLY = "application/apply-patch+yaml"
CM_URL = "/api/v1/namespaces/default/configmaps"

CM_YAML = """apiVersion: v1
kind: ConfigMap
metadata:
  name: crt-ssa-cm
data:
  a: "1"
  b: "2"
"""


@pytest.fixture(scope="module")
def http(srv: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=10, headers={"User-Agent": "crt-agent/1.0 (linux)"}) as c:
        yield c


def fields_of(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"].get("managedFields", [])}


def test_http_apply_yaml_create_update_conflict_force(http: httpx.Client) -> None:
    url = CM_URL + "/crt-ssa-cm"
    try:
        r = http.patch(url, params={"fieldManager": "alice"}, content=CM_YAML, headers={"Content-Type": APPLY})
        assert r.status_code == 201, r.text
        assert fields_of(r.json()) == {("alice", "Apply"): {"f:data": {"f:a": {}, "f:b": {}}}}
        r = http.patch(url, params={"fieldManager": "alice"}, content=CM_YAML, headers={"Content-Type": APPLY})
        assert r.status_code == 200
        # a merge patch with no fieldManager: the manager comes from the User-Agent
        r = http.patch(url, json={"data": {"a": "9", "c": "3"}},
                       headers={"Content-Type": "application/merge-patch+json"})
        assert fields_of(r.json())[("crt-agent", "Update")] == {"f:data": {"f:a": {}, "f:c": {}}}
        r = http.patch(url, params={"fieldManager": "alice"}, content=CM_YAML, headers={"Content-Type": APPLY})
        assert r.status_code == 409
        st = r.json()
        assert st["reason"] == "Conflict" and st["message"].startswith(
            'Apply failed with 1 conflict: conflict with "crt-agent" using v1 at ')
        assert st["message"].endswith(": .data.a")
        assert st["details"]["causes"][0]["reason"] == "FieldManagerConflict"
        assert st["details"]["causes"][0]["field"] == ".data.a"
        r = http.patch(url, params={"fieldManager": "alice", "force": "true"},
                       content=CM_YAML.replace('  b: "2"\n', ""), headers={"Content-Type": APPLY})
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["data"] == {"a": "1", "c": "3"}  # b dropped by its only owner; c belongs to crt-agent
        assert fields_of(got) == {("alice", "Apply"): {"f:data": {"f:a": {}}},
                                  ("crt-agent", "Update"): {"f:data": {"f:c": {}}}}
        # a PUT records its changes under its manager too
        got["data"]["c"] = "4"
        r = http.put(url, params={"fieldManager": "kubectl-replace"}, json=got)
        assert fields_of(r.json())[("kubectl-replace", "Update")] == {"f:data": {"f:c": {}}}
        # managedFields: [{}] clears them
        r = http.patch(url, json={"metadata": {"managedFields": [{}]}},
                       headers={"Content-Type": "application/merge-patch+json"})
        assert "managedFields" not in r.json()["metadata"]
        assert "managedFields" not in http.get(url).json()["metadata"]
    finally:
        http.delete(url)


def test_http_apply_needs_field_manager_and_force_only_for_apply(http: httpx.Client) -> None:
    url = CM_URL + "/crt-ssa-cm2"
    r = http.patch(url, content=CM_YAML.replace("crt-ssa-cm", "crt-ssa-cm2"), headers={"Content-Type": APPLY})
    assert r.status_code == 422 and "fieldManager: Required value" in r.json()["message"]
    assert http.get(url).status_code == 404
    r = http.post(CM_URL, json={"metadata": {"name": "crt-ssa-cm2"}, "data": {"x": "1"}})
    try:
        assert fields_of(r.json()) == {("crt-agent", "Update"): {"f:data": {".": {}, "f:x": {}}}}
        r = http.patch(url, params={"force": "true"}, json={"data": {"x": "2"}},
                       headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 422 and "force: Forbidden" in r.json()["message"]
        r = http.patch(url, params={"fieldManager": "bob"}, content=CM_YAML.replace("crt-ssa-cm", "crt-ssa-cm3"),
                       headers={"Content-Type": APPLY})
        assert r.status_code == 400  # the name in the body must match the URL's
    finally:
        http.delete(url)


def test_http_apply_dry_run_writes_nothing(http: httpx.Client) -> None:
    url = CM_URL + "/crt-ssa-cm4"
    r = http.patch(url, params={"fieldManager": "alice", "dryRun": "All"},
                   content=CM_YAML.replace("crt-ssa-cm", "crt-ssa-cm4"), headers={"Content-Type": APPLY})
    assert r.status_code == 201 and fields_of(r.json())[("alice", "Apply")] == {"f:data": {"f:a": {}, "f:b": {}}}
    assert http.get(url).status_code == 404


def test_http_status_apply_keeps_its_entry(http: httpx.Client) -> None:
    url = "/api/v1/namespaces/default/pods/crt-ssa-pod"
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crt-ssa-pod"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    r = http.patch(url, params={"fieldManager": "alice"}, json=body, headers={"Content-Type": APPLY})
    assert r.status_code == 201, r.text
    try:
        status = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crt-ssa-pod"},
                  "status": {"message": "hello"}}
        r = http.patch(url + "/status", params={"fieldManager": "node"}, json=status, headers={"Content-Type": APPLY})
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["status"]["message"] == "hello"
        entries_ = {(e["manager"], e.get("subresource", "")): e["fieldsV1"] for e in got["metadata"]["managedFields"]}
        assert entries_[("node", "status")] == {"f:status": {"f:message": {}}}
        assert "f:spec" in entries_[("alice", "")]
    finally:
        http.delete(url, params={"gracePeriodSeconds": "0"})
