"""The three PATCH types: RFC 6902, RFC 7386 and strategic merge patch."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from apimachinery.patch import (
    PatchError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)

# ---- RFC 6902 ---------------------------------------------------------------

DOC = {"a": {"b": [1, 2, 3]}, "c": "x", "t~/k": 1}


def test_json_patch_ops() -> None:
    before = copy.deepcopy(DOC)
    out = json_patch(DOC, [
        {"op": "add", "path": "/a/b/1", "value": 9},
        {"op": "add", "path": "/a/b/-", "value": 4},
        {"op": "remove", "path": "/a/b/0"},
        {"op": "replace", "path": "/c", "value": {"y": 1}},
        {"op": "copy", "from": "/c", "path": "/d"},
        {"op": "move", "from": "/t~0~1k", "path": "/moved"},
        {"op": "test", "path": "/d/y", "value": 1},
        {"op": "add", "path": "/new", "value": None},
    ])
    assert out == {"a": {"b": [9, 2, 3, 4]}, "c": {"y": 1}, "d": {"y": 1}, "moved": 1, "new": None}
    assert DOC == before


def test_json_patch_root_and_copy_independence() -> None:
    assert json_patch({"a": 1}, [{"op": "replace", "path": "", "value": [1]}]) == [1]
    out = json_patch({"a": {"x": 1}}, [{"op": "copy", "from": "/a", "path": "/b"},
                                       {"op": "replace", "path": "/b/x", "value": 2}])
    assert out == {"a": {"x": 1}, "b": {"x": 2}}


@pytest.mark.parametrize("ops", [
    [{"op": "remove", "path": "/nope"}],
    [{"op": "replace", "path": "/nope", "value": 1}],
    [{"op": "add", "path": "/a/b/7", "value": 1}],
    [{"op": "add", "path": "/a/b/01", "value": 1}],
    [{"op": "add", "path": "/x/y", "value": 1}],
    [{"op": "add", "path": "/c/y", "value": 1}],
    [{"op": "add", "path": "a", "value": 1}],
    [{"op": "add", "path": "/a"}],
    [{"op": "test", "path": "/c", "value": "y"}],
    [{"op": "test", "path": "/t~0~1k", "value": True}],
    [{"op": "move", "from": "/a", "path": "/a/b/x"}],
    [{"op": "frob", "path": "/a"}],
    [{"path": "/a"}],
    [{"op": "remove", "path": ""}],
    {"op": "add"},
])
def test_json_patch_errors(ops: Any) -> None:
    with pytest.raises(PatchError):
        json_patch(DOC, ops)


def test_json_patch_is_atomic() -> None:
    doc = {"a": 1}
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "replace", "path": "/a", "value": 2}, {"op": "remove", "path": "/zz"}])
    assert doc == {"a": 1}


# ---- RFC 7386 ---------------------------------------------------------------

def test_merge_patch_rfc_examples() -> None:
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": "b", "b": "c"}, {"a": None}) == {"b": "c"}
    assert merge_patch({"a": ["b"]}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "c"}, {"a": ["b"]}) == {"a": ["b"]}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch(["a", "b"], ["c", "d"]) == ["c", "d"]
    assert merge_patch({"a": "b"}, ["c"]) == ["c"]
    assert merge_patch({"a": "foo"}, None) is None
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch([1, 2], {"a": "b", "c": None}) == {"a": "b"}
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


def test_merge_patch_does_not_mutate() -> None:
    doc = {"a": {"b": 1}}
    merge_patch(doc, {"a": {"b": 2}})
    assert doc == {"a": {"b": 1}}


# ---- strategic merge patch ------------------------------------------------------

def _pod() -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "v1", "tier": "web"}, "finalizers": ["a/x"],
                     "ownerReferences": [{"uid": "u1", "name": "rs1", "kind": "ReplicaSet"}]},
        "spec": {
            "containers": [{
                "name": "main", "image": "busybox:1", "command": ["sleep", "3600"],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "tolerations": [{"key": "k1", "operator": "Exists"}],
        },
        "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]},
    }


def _has_directive(v: Any) -> bool:
    if isinstance(v, dict):
        return any(k.startswith("$") or _has_directive(x) for k, x in v.items())
    if isinstance(v, list):
        return any(_has_directive(x) for x in v)
    return False


def test_kubectl_apply_patch_keeps_other_container_fields() -> None:
    patch = {"metadata": {"labels": {"app": "v2"}},
             "spec": {"$setElementOrder/containers": [{"name": "main"}],
                      "containers": [{"name": "main", "image": "busybox:2"}]}}
    pod = _pod()
    out = strategic_merge_patch(pod, patch, "Pod")
    c = out["spec"]["containers"]
    assert len(c) == 1 and c[0]["image"] == "busybox:2"
    assert c[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert c[0]["command"] == ["sleep", "3600"] and c[0]["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    assert out["metadata"]["labels"] == {"app": "v2", "tier": "web"}
    assert not _has_directive(out)
    assert pod == _pod()


def test_env_merges_by_name_and_delete_directive() -> None:
    patch = {"spec": {"containers": [{"name": "main", "env": [
        {"name": "B", "value": "20"}, {"name": "C", "value": "3"}, {"name": "A", "$patch": "delete"}]}]}}
    out = strategic_merge_patch(_pod(), patch, "Pod")
    assert out["spec"]["containers"][0]["env"] == [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]


def test_set_image_adds_container_and_keeps_existing() -> None:
    patch = {"spec": {"containers": [{"name": "side", "image": "nginx"}]}}
    out = strategic_merge_patch(_pod(), patch, "Pod")
    assert [c["name"] for c in out["spec"]["containers"]] == ["main", "side"]
    assert out["spec"]["containers"][0]["image"] == "busybox:1"


def test_set_element_order_reorders() -> None:
    doc = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}}
    patch = {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                      "containers": [{"name": "a", "image": "3"}]}}
    out = strategic_merge_patch(doc, patch, "Pod")
    assert out == {"spec": {"containers": [{"name": "b", "image": "2"}, {"name": "a", "image": "3"}]}}


def test_rollout_restart_annotation_on_template() -> None:
    deploy = {"spec": {"template": {"metadata": {"labels": {"app": "x"}},
                                    "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    patch = {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}}}}}
    out = strategic_merge_patch(deploy, patch, "Deployment")
    assert out["spec"]["template"]["metadata"] == {
        "labels": {"app": "x"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}}
    assert out["spec"]["template"]["spec"] == deploy["spec"]["template"]["spec"]


def test_container_ports_by_container_port_and_service_ports_by_port() -> None:
    out = strategic_merge_patch(_pod(), {"spec": {"containers": [{"name": "main", "ports": [
        {"containerPort": 80, "name": "http"}, {"containerPort": 443}]}]}}, "Pod")
    assert out["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 443}]
    svc = {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 53, "protocol": "UDP"}]}}
    out = strategic_merge_patch(svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}, "Service")
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 53, "protocol": "UDP"}]


def test_unkeyed_lists_replace() -> None:
    out = strategic_merge_patch(_pod(), {"spec": {"tolerations": [{"key": "k2", "operator": "Exists"}],
                                                  "containers": [{"name": "main", "command": ["true"]}]}}, "Pod")
    assert out["spec"]["tolerations"] == [{"key": "k2", "operator": "Exists"}]
    assert out["spec"]["containers"][0]["command"] == ["true"]


def test_finalizers_union_and_delete_from_primitive_list() -> None:
    out = strategic_merge_patch(_pod(), {"metadata": {"finalizers": ["b/y", "a/x"]}}, "Pod")
    assert out["metadata"]["finalizers"] == ["a/x", "b/y"]
    out = strategic_merge_patch(_pod(), {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/x"]}}, "Pod")
    assert out["metadata"]["finalizers"] == []
    assert not _has_directive(out)


def test_null_deletes_and_map_patch_directives() -> None:
    out = strategic_merge_patch(_pod(), {"metadata": {"labels": {"tier": None}}, "status": None}, "Pod")
    assert out["metadata"]["labels"] == {"app": "v1"} and "status" not in out
    out = strategic_merge_patch(_pod(), {"metadata": {"labels": {"$patch": "replace", "only": "me"}}}, "Pod")
    assert out["metadata"]["labels"] == {"only": "me"}
    out = strategic_merge_patch(_pod(), {"spec": {"volumes": [{"name": "data", "$patch": "delete"}]}}, "Pod")
    assert out["spec"]["volumes"] == []
    out = strategic_merge_patch(_pod(), {"status": {"$patch": "delete"}}, "Pod")
    assert "status" not in out


def test_list_replace_directive() -> None:
    patch = {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}
    out = strategic_merge_patch(_pod(), patch, "Pod")
    assert out["spec"]["containers"] == [{"name": "only", "image": "x"}]


def test_retain_keys() -> None:
    doc = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert strategic_merge_patch(doc, patch, "Deployment") == {"spec": {"strategy": {"type": "Recreate"}}}


def test_conditions_owner_refs_and_taints_merge_by_key() -> None:
    out = strategic_merge_patch(_pod(), {"status": {"conditions": [{"type": "Ready", "status": "False"}]},
                                         "metadata": {"ownerReferences": [{"uid": "u2", "name": "rs2"}]}}, "Pod")
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "False"},
                                           {"type": "PodScheduled", "status": "True"}]
    assert [o["uid"] for o in out["metadata"]["ownerReferences"]] == ["u1", "u2"]
    node = {"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}}
    out = strategic_merge_patch(node, {"spec": {"taints": [{"key": "a", "effect": "NoExecute"}]}}, "Node")
    assert out["spec"]["taints"] == [{"key": "a", "effect": "NoExecute"}]


def test_new_map_with_nested_directives_is_stripped() -> None:
    out = strategic_merge_patch({}, {"spec": {"$setElementOrder/containers": [{"name": "a"}],
                                              "containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}]}},
                                "Pod")
    assert out == {"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}]}}


@pytest.mark.parametrize("patch", [
    {"spec": {"containers": [{"image": "no-name"}]}},
    {"spec": {"containers": ["str"]}},
    {"metadata": {"$patch": "explode"}},
    {"metadata": {"finalizers": [{"a": 1}]}},
    {"spec": {"$setElementOrder/containers": "x"}},
])
def test_strategic_errors(patch: dict) -> None:
    with pytest.raises(PatchError):
        strategic_merge_patch(_pod(), patch, "Pod")


def test_strategic_rejects_non_object() -> None:
    with pytest.raises(PatchError):
        strategic_merge_patch(_pod(), [1], "Pod")  # type: ignore[arg-type]
