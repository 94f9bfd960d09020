"""The generic registry on an in-memory store, without HTTP: object
bookkeeping, generateName, preconditions, graceful deletion rules, binding,
namespaces, node podCIDR immutability, list paging and name hints."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import node, pod  # noqa: E402

from apimachinery import kinds  # noqa: E402
from apimachinery.fields import parse_field_selector  # noqa: E402
from apimachinery.labels import parse_selector  # noqa: E402
from master.apiserver import errors  # noqa: E402
from master.apiserver.registry import Registry  # noqa: E402
from master.apiserver.resources import pods  # noqa: E402
from master.store import open_store  # noqa: E402

PODS = kinds.lookup("", "v1", "pods")
NODES = kinds.lookup("", "v1", "nodes")
NS = kinds.lookup("", "v1", "namespaces")
LEASES = kinds.lookup("coordination.k8s.io", "v1", "leases")
assert PODS and NODES and NS and LEASES


@pytest.fixture
def reg() -> Iterator[Registry]:
    store = open_store("sqlite://:memory:")
    r = Registry(store, clock=lambda: "2026-01-01T00:00:00Z")
    r.create(NS, None, {"metadata": {"name": "default"}})
    try:
        yield r
    finally:
        store.close()


def code(e: pytest.ExceptionInfo[errors.APIError]) -> tuple[int, str]:
    return e.value.code, e.value.reason


def test_create_sets_metadata_and_defaults(reg: Registry) -> None:
    p = reg.create(PODS, "default", pod("web", cpu="100m"))
    md = p["metadata"]
    assert md["creationTimestamp"] == "2026-01-01T00:00:00Z" and len(md["uid"]) == 36
    assert md["namespace"] == "default" and int(md["resourceVersion"]) > 1
    spec = p["spec"]
    assert spec["restartPolicy"] == "Always" and spec["terminationGracePeriodSeconds"] == 30
    assert spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert p["status"] == {"phase": "Pending", "qosClass": "Burstable"}
    assert reg.get(PODS, "default", "web")["metadata"]["uid"] == md["uid"]


def test_generate_name_and_rv_on_create_rejected(reg: Registry) -> None:
    a = reg.create(PODS, "default", {"metadata": {"generateName": "web-"}, "spec": pod("x")["spec"]})
    b = reg.create(PODS, "default", {"metadata": {"generateName": "web-"}, "spec": pod("x")["spec"]})
    assert a["metadata"]["name"].startswith("web-") and len(a["metadata"]["name"]) == 9
    assert a["metadata"]["name"] != b["metadata"]["name"]
    long = reg.create(PODS, "default", {"metadata": {"generateName": "x" * 70}, "spec": pod("x")["spec"]})
    assert len(long["metadata"]["name"]) == 63 and long["metadata"]["name"].startswith("x" * 58)
    p = pod("y")
    p["metadata"]["resourceVersion"] = "5"
    with pytest.raises(errors.APIError) as e:
        reg.create(PODS, "default", p)
    assert code(e) == (400, "BadRequest")


def test_kind_and_namespace_mismatch_are_400(reg: Registry) -> None:
    with pytest.raises(errors.APIError) as e:
        reg.create(PODS, "default", {"kind": "Node", "metadata": {"name": "x"}})
    assert code(e) == (400, "BadRequest")
    p = pod("x")
    p["metadata"]["namespace"] = "other"
    with pytest.raises(errors.APIError) as e:
        reg.create(PODS, "default", p)
    assert code(e) == (400, "BadRequest")
    with pytest.raises(errors.APIError) as e:
        reg.create(PODS, "default", ["not", "an", "object"])
    assert code(e) == (400, "BadRequest")


def test_update_keeps_system_fields(reg: Registry) -> None:
    p = reg.create(PODS, "default", pod("web"))
    new = pod("web")
    new["metadata"].update(uid="forged", creationTimestamp="1999-01-01T00:00:00Z", labels={"a": "b"})
    got = reg.update(PODS, "default", "web", new)
    assert got["metadata"]["uid"] == p["metadata"]["uid"]
    assert got["metadata"]["creationTimestamp"] == "2026-01-01T00:00:00Z"
    assert got["metadata"]["labels"] == {"a": "b"} and got["status"]["phase"] == "Pending"
    assert int(got["metadata"]["resourceVersion"]) > int(p["metadata"]["resourceVersion"])
    with pytest.raises(errors.APIError) as e:
        reg.update(PODS, "default", "other-name", pod("web"))
    assert code(e) == (400, "BadRequest")
    with pytest.raises(errors.APIError) as e:
        reg.update(PODS, "default", "ghost", pod("ghost"))
    assert code(e) == (404, "NotFound")


def test_node_pod_cidr_set_once(reg: Registry) -> None:
    reg.create(NODES, None, node("n1"))
    got, created = reg.patch(NODES, None, "n1", "application/merge-patch+json", {"spec": {"podCIDR": "10.244.1.0/24"}})
    assert not created and got["spec"]["podCIDR"] == "10.244.1.0/24"
    with pytest.raises(errors.APIError) as e:
        reg.patch(NODES, None, "n1", "application/merge-patch+json", {"spec": {"podCIDR": "10.244.2.0/24"}})
    assert code(e) == (422, "Invalid")
    assert reg.get(NODES, None, "n1")["spec"]["podCIDR"] == "10.244.1.0/24"


def test_pod_with_phase_done_is_deleted_at_once(reg: Registry) -> None:
    reg.create(PODS, "default", pod("done", node="n1"))
    reg.patch(PODS, "default", "done", "application/merge-patch+json", {"status": {"phase": "Succeeded"}}, "status")
    _obj, gone = reg.delete(PODS, "default", "done")
    assert gone
    with pytest.raises(errors.APIError):
        reg.get(PODS, "default", "done")


def test_graceful_delete_then_finish_by_status_update(reg: Registry) -> None:
    reg.create(PODS, "default", pod("web", node="n1"))
    obj, gone = reg.delete(PODS, "default", "web", {"gracePeriodSeconds": 5})
    assert not gone and obj["metadata"]["deletionGracePeriodSeconds"] == 5
    again, gone = reg.delete(PODS, "default", "web", {"gracePeriodSeconds": 10})  # a longer grace is ignored
    assert not gone and again["metadata"]["deletionGracePeriodSeconds"] == 5
    shorter, gone = reg.delete(PODS, "default", "web", {"gracePeriodSeconds": 2})
    assert not gone and shorter["metadata"]["deletionGracePeriodSeconds"] == 2
    with pytest.raises(errors.APIError) as e:
        pods.bind(reg, "default", "web", {"target": {"name": "n2"}})
    assert code(e) == (409, "Conflict")
    _obj, gone = reg.delete(PODS, "default", "web", {"gracePeriodSeconds": 0})
    assert gone


def test_finalizers_hold_deletion(reg: Registry) -> None:
    lease = {"metadata": {"name": "l1", "finalizers": ["crt/hold"]}, "spec": {"holderIdentity": "a"}}
    reg.create(LEASES, "default", lease)
    obj, gone = reg.delete(LEASES, "default", "l1")
    assert not gone and obj["metadata"]["deletionTimestamp"]
    cur = reg.get(LEASES, "default", "l1")
    cur["metadata"]["finalizers"] = []
    reg.update(LEASES, "default", "l1", cur)
    with pytest.raises(errors.APIError) as e:
        reg.get(LEASES, "default", "l1")
    assert code(e) == (404, "NotFound")


def test_resource_version_precondition_on_delete(reg: Registry) -> None:
    p = reg.create(PODS, "default", pod("web"))
    with pytest.raises(errors.APIError) as e:
        reg.delete(PODS, "default", "web", {"preconditions": {"resourceVersion": "1"}})
    assert code(e) == (409, "Conflict")
    _o, gone = reg.delete(PODS, "default", "web", {"preconditions": {"resourceVersion": p["metadata"]["resourceVersion"]}})
    assert gone


def test_list_paging_selectors_and_name_hint(reg: Registry) -> None:
    reg.create(NS, None, {"metadata": {"name": "other"}})
    for i in range(7):
        reg.create(PODS, "default", pod(f"p{i}", labels={"even": str(i % 2 == 0).lower()}))
    reg.create(PODS, "other", pod("p1"))
    page = reg.list(PODS, "default", parse_selector("even=true"), limit=2)
    assert [i["metadata"]["name"] for i in page.items] == ["p0", "p2"] and page.continue_token
    rest = reg.list(PODS, "default", parse_selector("even=true"), limit=2, continue_token=page.continue_token)
    assert [i["metadata"]["name"] for i in rest.items] == ["p4", "p6"] and rest.revision == page.revision
    assert rest.continue_token == ""
    with pytest.raises(errors.APIError) as e:
        reg.list(PODS, "other", limit=1, continue_token=page.continue_token)  # a token of another list
    assert code(e) == (400, "BadRequest")
    byname = reg.list(PODS, None, fields=parse_field_selector("metadata.name=p1"))
    assert sorted(i["metadata"]["namespace"] for i in byname.items) == ["default", "other"]
    one = reg.list(PODS, "other", fields=parse_field_selector("metadata.name=p1"))
    assert [i["metadata"]["namespace"] for i in one.items] == ["other"]
    assert reg.list(PODS, "other", fields=parse_field_selector("metadata.name=p1,metadata.namespace=x")).items == []


def test_namespace_delete_marks_terminating(reg: Registry) -> None:
    reg.create(NS, None, {"metadata": {"name": "crt-gone"}})
    obj, gone = reg.delete(NS, None, "crt-gone")
    assert not gone and obj["status"]["phase"] == "Terminating"
    with pytest.raises(errors.APIError) as e:
        reg.create(PODS, "crt-gone", pod("x"))
    assert code(e) == (403, "Forbidden")
    with pytest.raises(errors.APIError) as e:
        reg.create(NS, None, {"metadata": {"name": "Bad.Name"}})
    assert code(e) == (422, "Invalid")


def test_stored_values_keep_integers_beyond_64_bits(reg: Registry) -> None:
    """Values are written with orjson; one it cannot write (an integer past 64 bits, e.g. in a
    ConfigMap-like free-form field) is written by json and still read back exactly."""
    from master.apiserver import storage
    big = {"metadata": {"name": "x", "resourceVersion": "3"}, "data": {"n": 2**70, "s": "é", "f": 2.5}}
    raw = storage.encode(big)
    assert storage.decode(raw, 9) == {**big, "metadata": {"name": "x", "resourceVersion": "9"}}
    assert big["metadata"]["resourceVersion"] == "3"  # the caller's object is left as it was
    small = {"metadata": {"name": "y"}, "data": {"n": 2**62}}
    assert storage.decode(storage.encode(small), 1)["data"]["n"] == 2**62


def test_patch_retries_on_a_write_that_came_between(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    reg.create(PODS, "default", pod("raced"))
    store_update, raced = reg.store.update, []

    def update(key, value, expected):  # type: ignore[no-untyped-def]
        if not raced:  # another writer (the scheduler, say) gets in first, once
            raced.append(None)
            raced[0] = reg.patch(PODS, "default", "raced", "application/merge-patch+json",
                                 {"metadata": {"labels": {"other": "1"}}})
        return store_update(key, value, expected)
    monkeypatch.setattr(reg.store, "update", update)
    got, _ = reg.patch(PODS, "default", "raced", "application/merge-patch+json", {"metadata": {"labels": {"mine": "1"}}})
    assert got["metadata"]["labels"] == {"other": "1", "mine": "1"}
    # a patch naming a resourceVersion that is no longer current keeps its 409
    with pytest.raises(errors.APIError) as e:
        reg.patch(PODS, "default", "raced", "application/merge-patch+json",
                  {"metadata": {"resourceVersion": raced[0][0]["metadata"]["resourceVersion"], "labels": {"x": "1"}}})
    assert code(e) == (409, "Conflict")
