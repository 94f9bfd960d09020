"""Custom resources served from CustomResourceDefinitions: the schema's
pruning and validation and the printer columns as pure functions, then over
HTTP through a real API server on loopback (discovery, REST verbs, status
and scale subresources, watch, Table, deletion with the CRD).
tests/integration/test_customresources_etcd.py reruns the HTTP part on etcd."""
from __future__ import annotations

import copy
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ACCEPT_DISCOVERY, POD_ACCEPT_TABLE, ServerThread  # noqa: E402

from master.apiserver.customresources.printer import custom_table, json_path  # noqa: E402
from master.apiserver.customresources import crschema  # noqa: E402
from master.apiserver.customresources.customresource import resources_for, version_priority  # noqa: E402

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
GROUP = "crt.example.com"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "string", "enum": ["small", "large"]},
            "replicas": {"type": "integer", "minimum": 0, "maximum": 10},
            "name": {"type": "string", "pattern": "^[a-z]+$"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "port": {"x-kubernetes-int-or-string": True},
        }},
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}, "phase": {"type": "string"}}},
    },
}
COLUMNS = [{"name": "Size", "type": "string", "jsonPath": ".spec.size"},
           {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
           {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "priority": 1},
           {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]


def crd(plural: str, kind: str, scope: str = "Namespaced", **version: Any) -> dict[str, Any]:
    v = {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": SCHEMA}, **version}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{GROUP}"},
            "spec": {"group": GROUP, "scope": scope, "versions": [v],
                     "names": {"plural": plural, "kind": kind, "shortNames": [plural[:3]], "categories": ["all"]}}}


# ---- pure ------------------------------------------------------------------------------
def test_prune_drops_undeclared_fields_but_keeps_preserved_ones() -> None:
    obj = {"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x", "odd": 1}, "extra": 1,
           "spec": {"size": "small", "bogus": 2, "labels": {"a": "b"}, "free": {"any": {"thing": 1}},
                    "tags": ["a"]}}
    crschema.prune(obj, SCHEMA, root=True)
    assert obj == {"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x", "odd": 1},
                   "spec": {"size": "small", "labels": {"a": "b"}, "free": {"any": {"thing": 1}}, "tags": ["a"]}}


@pytest.mark.parametrize("spec, expected", [
    ({"size": "small", "replicas": 3, "name": "abc", "port": "http"}, []),
    ({"size": "small", "port": 80}, []),
    ({}, [("spec.size", "Required value")]),
    ({"size": "medium"}, [("spec.size", 'Unsupported value: "medium": supported values: "small", "large"')]),
    ({"size": "small", "replicas": "3"},
     [("spec.replicas", 'Invalid value: "string": spec.replicas in body must be of type integer: "string"')]),
    ({"size": "small", "replicas": 11},
     [("spec.replicas", "Invalid value: 11: spec.replicas in body should be less than or equal to 10")]),
    ({"size": "small", "replicas": -1},
     [("spec.replicas", "Invalid value: -1: spec.replicas in body should be greater than or equal to 0")]),
    ({"size": "small", "name": "A1"},
     [("spec.name", "Invalid value: \"A1\": spec.name in body should match '^[a-z]+$'")]),
    ({"size": "small", "tags": ["a", 1]},
     [("spec.tags[1]", 'Invalid value: "integer": spec.tags[1] in body must be of type string: "integer"')]),
    ({"size": "small", "labels": {"a": True}},
     [("spec.labels.a", 'Invalid value: "boolean": spec.labels.a in body must be of type string: "boolean"')]),
    ({"size": "small", "port": 1.5},
     [("spec.port", "Invalid value: 1.5: spec.port in body must be of type integer,string: 1.5")]),
])
def test_validate_basics(spec: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    obj = {"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x"}, "spec": spec}
    assert crschema.validate(obj, SCHEMA) == expected


def test_resources_for_a_crd() -> None:
    c = crd("gadgets", "Gadget", subresources={"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                                      "statusReplicasPath": ".status.replicas"}})
    c["spec"]["versions"].append({"name": "v1beta1", "served": True, "storage": False,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}})
    c["spec"]["versions"].append({"name": "v2", "served": False, "storage": False,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}})
    v1, v1beta1 = resources_for(c)
    assert (v1.group, v1.version, v1.kind, v1.plural, v1.namespaced) == (GROUP, "v1", "Gadget", "gadgets", True)
    assert v1.short_names == ("gad",) and v1.categories == ("all",) and v1beta1.version == "v1beta1"
    assert [s.name for s in v1.subresources] == ["status", "scale"] and v1beta1.subresources == ()
    assert resources_for({"spec": {}}) == []
    assert sorted(["v1alpha1", "v1", "v1beta2", "v2", "v1beta1", "foo"], key=version_priority) == [
        "v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]


def test_printer_columns_and_json_path() -> None:
    obj = {"metadata": {"name": "w", "creationTimestamp": "2026-01-01T00:00:00Z"},
           "spec": {"size": "small", "replicas": 2, "list": [{"a": 1}]}}
    assert json_path(obj, ".spec.list[0].a") == 1 and json_path(obj, ".spec.nope.x") is None
    assert json_path(obj, "{.spec.size}") == "small" and json_path(obj, ".spec.list[3]") is None
    now = dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.UTC)
    table = custom_table(COLUMNS, [obj], now)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size", "Replicas", "Phase", "Age"]
    assert table["columnDefinitions"][3]["priority"] == 1
    assert table["rows"][0]["cells"] == ["w", "small", 2, None, "5m"]
    plain = custom_table([], [obj], now)
    assert [c["name"] for c in plain["columnDefinitions"]] == ["Name", "Age"]
    assert plain["rows"][0]["cells"] == ["w", "5m"]


# ---- over HTTP ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    with ServerThread() as s:  # tests/integration/test_customresources_etcd.py puts one on etcd instead
        yield s


@pytest.fixture(scope="module")
def http(srv: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        yield c


@pytest.fixture
def widgets(http: httpx.Client) -> Iterator[str]:
    """A namespaced CRD with status and scale subresources and printer columns; its collection path."""
    body = crd("widgets", "Widget", subresources={
        "status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
        additionalPrinterColumns=COLUMNS)
    r = http.post(CRDS, json=body)
    assert r.status_code == 201, r.text
    yield f"/apis/{GROUP}/v1/namespaces/default/widgets"
    http.delete(f"{CRDS}/widgets.{GROUP}")


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": {"size": "small", **spec}}


def test_crd_status_says_established(http: httpx.Client, widgets: str) -> None:
    st = http.get(f"{CRDS}/widgets.{GROUP}").json()["status"]
    assert {c["type"]: c["status"] for c in st["conditions"]} == {"NamesAccepted": "True", "Established": "True"}
    assert st["acceptedNames"]["kind"] == "Widget" and st["storedVersions"] == ["v1"]


def test_discovery_lists_the_resource_until_the_crd_goes(http: httpx.Client) -> None:
    assert http.get(f"/apis/{GROUP}").status_code == 404
    assert http.post(CRDS, json=crd("gadgets", "Gadget", scope="Cluster", subresources={"status": {}})).status_code == 201
    group = next(g for g in http.get("/apis").json()["groups"] if g["name"] == GROUP)
    assert group["preferredVersion"]["groupVersion"] == f"{GROUP}/v1"
    assert http.get(f"/apis/{GROUP}").json()["versions"] == [{"groupVersion": f"{GROUP}/v1", "version": "v1"}]
    resources = http.get(f"/apis/{GROUP}/v1").json()["resources"]
    assert resources == [
        {"name": "gadgets", "singularName": "gadget", "namespaced": False, "kind": "Gadget",
         "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
         "shortNames": ["gad"], "categories": ["all"]},
        {"name": "gadgets/status", "singularName": "", "namespaced": False, "kind": "Gadget",
         "verbs": ["get", "patch", "update"]}]
    agg = http.get("/apis", headers={"Accept": ACCEPT_DISCOVERY}).json()
    [entry] = [i for i in agg["items"] if i["metadata"]["name"] == GROUP]
    [res] = entry["versions"][0]["resources"]
    assert res["resource"] == "gadgets" and res["scope"] == "Cluster" and res["shortNames"] == ["gad"]
    assert res["responseKind"] == {"group": GROUP, "version": "v1", "kind": "Gadget"}
    assert [s["subresource"] for s in res["subresources"]] == ["status"]
    index = http.get("/openapi/v3").json()["paths"]
    assert f"apis/{GROUP}/v1" in index
    doc = http.get(index[f"apis/{GROUP}/v1"]["serverRelativeURL"]).json()
    schema = doc["components"]["schemas"]["com.example.crt.v1.Gadget"]
    assert schema["x-kubernetes-group-version-kind"] == [{"group": GROUP, "version": "v1", "kind": "Gadget"}]
    assert schema["properties"]["spec"]["properties"]["size"]["enum"] == ["small", "large"]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in doc["components"]["schemas"]
    patch = doc["paths"][f"/apis/{GROUP}/v1/gadgets/{{name}}"]["patch"]
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    assert http.get("/openapi/v2").status_code == 200
    assert http.delete(f"{CRDS}/gadgets.{GROUP}").status_code == 200
    assert http.get(f"/apis/{GROUP}/v1").status_code == 404
    assert all(g["name"] != GROUP for g in http.get("/apis").json()["groups"])
    assert f"apis/{GROUP}/v1" not in http.get("/openapi/v3").json()["paths"]


def test_create_get_list_update_patch_delete(http: httpx.Client, widgets: str) -> None:
    r = http.post(widgets, json=widget("w1", replicas=1, bogus=1) | {"status": {"phase": "Ignored"}})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["spec"] == {"size": "small", "replicas": 1}  # pruned
    assert "status" not in made and made["metadata"]["generation"] == 1 and made["metadata"]["uid"]
    gen = http.post(widgets, json={**widget(""), "metadata": {"generateName": "w-"}}).json()
    assert gen["metadata"]["name"].startswith("w-")
    dry = http.post(widgets, params={"dryRun": "All"}, json=widget("w-dry")).json()
    assert dry["metadata"]["name"] == "w-dry" and http.get(f"{widgets}/w-dry").status_code == 404
    assert http.post(widgets, json=widget("w1")).status_code == 409
    got = http.get(f"{widgets}/w1").json()
    assert got["kind"] == "Widget" and got["apiVersion"] == f"{GROUP}/v1"
    listed = http.get(widgets).json()
    assert listed["kind"] == "WidgetList" and len(listed["items"]) == 2
    assert http.get(f"/apis/{GROUP}/v1/widgets").json()["items"][0]["metadata"]["namespace"] == "default"
    # update: stale resourceVersion is a conflict; a spec change bumps generation; status is ignored
    stale = copy.deepcopy(got)
    got["spec"]["replicas"] = 2
    got["status"] = {"phase": "Ignored"}
    upd = http.put(f"{widgets}/w1", json=got).json()
    assert upd["spec"]["replicas"] == 2 and upd["metadata"]["generation"] == 2 and "status" not in upd
    stale["spec"]["replicas"] = 3
    r = http.put(f"{widgets}/w1", json=stale)
    assert r.status_code == 409 and r.json()["reason"] == "Conflict"
    merge = http.patch(f"{widgets}/w1", content=json.dumps({"spec": {"replicas": 4}}),
                       headers={"Content-Type": "application/merge-patch+json"}).json()
    assert merge["spec"]["replicas"] == 4 and merge["metadata"]["generation"] == 3
    jp = http.patch(f"{widgets}/w1", content=json.dumps([{"op": "replace", "path": "/spec/size", "value": "large"}]),
                    headers={"Content-Type": "application/json-patch+json"}).json()
    assert jp["spec"]["size"] == "large"
    r = http.patch(f"{widgets}/w1", content=json.dumps({"spec": {"replicas": 5}}),
                   headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status_code == 415 and r.json()["reason"] == "UnsupportedMediaType"
    assert "application/merge-patch+json" in r.json()["message"]
    assert http.delete(f"{widgets}/w1").status_code == 200
    assert http.get(f"{widgets}/w1").status_code == 404
    assert http.delete(widgets).json()["kind"] == "WidgetList"
    assert http.get(widgets).json()["items"] == []


def test_field_validation_of_unknown_fields(http: httpx.Client, widgets: str) -> None:
    body = widget("strict", bogus=1)
    r = http.post(widgets, params={"fieldValidation": "Strict"}, json=body)
    assert r.status_code == 400 and 'unknown field "spec.bogus"' in r.json()["message"]
    r = http.post(widgets, json=body)
    assert r.status_code == 201 and r.headers["Warning"] == '299 - "unknown field \\"spec.bogus\\""'
    assert "bogus" not in r.json()["spec"]


def test_invalid_object_is_422_naming_the_field(http: httpx.Client, widgets: str) -> None:
    r = http.post(widgets, json=widget("bad", replicas=20, size="huge"))
    assert r.status_code == 422
    status = r.json()
    assert status["reason"] == "Invalid" and status["details"]["kind"] == "Widget"
    assert status["details"]["group"] == GROUP
    fields = {c["field"]: c["message"] for c in status["details"]["causes"]}
    assert fields == {
        "spec.size": 'Unsupported value: "huge": supported values: "small", "large"',
        "spec.replicas": "Invalid value: 20: spec.replicas in body should be less than or equal to 10"}
    assert 'spec.replicas: Invalid value: 20' in status["message"]
    assert http.post(widgets, json={**widget("nosize"), "spec": {}}).json()["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "message": "Required value", "field": "spec.size"}]


def test_selectors_and_paging(http: httpx.Client, widgets: str) -> None:
    for i in range(3):
        body = widget(f"p{i}")
        body["metadata"]["labels"] = {"tier": "a" if i < 2 else "b"}
        assert http.post(widgets, json=body).status_code == 201
    names = lambda r: [i["metadata"]["name"] for i in r.json()["items"]]  # noqa: E731
    assert names(http.get(widgets, params={"labelSelector": "tier=a"})) == ["p0", "p1"]
    assert names(http.get(widgets, params={"fieldSelector": "metadata.name=p2"})) == ["p2"]
    assert names(http.get(f"/apis/{GROUP}/v1/widgets", params={"fieldSelector": "metadata.namespace=default"})) == [
        "p0", "p1", "p2"]
    assert http.get(widgets, params={"fieldSelector": "spec.size=small"}).status_code == 400
    first = http.get(widgets, params={"limit": "2"}).json()
    assert len(first["items"]) == 2 and first["metadata"]["continue"]
    rest = http.get(widgets, params={"limit": "2", "continue": first["metadata"]["continue"]}).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["p2"]
    gone = http.request("DELETE", widgets, params={"labelSelector": "tier=a"}).json()
    assert sorted(i["metadata"]["name"] for i in gone["items"]) == ["p0", "p1"]
    assert names(http.get(widgets)) == ["p2"]


def test_status_and_scale_subresources(http: httpx.Client, widgets: str) -> None:
    made = http.post(widgets, json=widget("s1", replicas=1)).json()
    made["status"] = {"phase": "Running", "replicas": 1}
    made["spec"]["replicas"] = 7  # ignored on /status
    st = http.put(f"{widgets}/s1/status", json=made).json()
    assert st["status"] == {"phase": "Running", "replicas": 1} and st["spec"]["replicas"] == 1
    assert st["metadata"]["generation"] == 1
    r = http.patch(f"{widgets}/s1/status", content=json.dumps({"status": {"phase": 3}}),
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "status.phase"
    scale = http.get(f"{widgets}/s1/scale").json()
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1 and scale["status"]["replicas"] == 1
    scale["spec"]["replicas"] = 3
    assert http.put(f"{widgets}/s1/scale", json=scale).json()["spec"]["replicas"] == 3
    assert http.get(f"{widgets}/s1").json()["spec"]["replicas"] == 3
    table = http.get(widgets, headers={"Accept": POD_ACCEPT_TABLE}).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size", "Replicas", "Phase", "Age"]
    assert table["rows"][0]["cells"][:4] == ["s1", "small", 3, "Running"]
    one = http.get(f"{widgets}/s1", headers={"Accept": POD_ACCEPT_TABLE}).json()
    assert one["kind"] == "Table" and one["rows"][0]["cells"][0] == "s1"


def test_watch_sees_changes(http: httpx.Client, widgets: str) -> None:
    rv = http.get(widgets).json()["metadata"]["resourceVersion"]
    http.post(widgets, json=widget("watched"))
    http.delete(f"{widgets}/watched")
    with http.stream("GET", widgets, params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "1"}) as w:
        events = [json.loads(line) for line in w.iter_lines() if line]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "watched"),
                                                                              ("DELETED", "watched")]
    assert events[0]["object"]["kind"] == "Widget"


def test_server_side_apply(http: httpx.Client, widgets: str) -> None:
    body = widget("applied", replicas=2)
    r = http.patch(f"{widgets}/applied", params={"fieldManager": "me"}, content=json.dumps(body),
                   headers={"Content-Type": "application/apply-patch+yaml"})
    assert r.status_code == 201, r.text
    body["spec"]["replicas"] = 4
    r = http.patch(f"{widgets}/applied", params={"fieldManager": "me"}, content=json.dumps(body),
                   headers={"Content-Type": "application/apply-patch+yaml"})
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 4
    assert [m["manager"] for m in r.json()["metadata"]["managedFields"]] == ["me"]


def test_versions_share_objects(http: httpx.Client) -> None:
    body = crd("doodads", "Doodad")
    body["spec"]["versions"].append({"name": "v1beta1", "served": True, "storage": False,
                                     "schema": {"openAPIV3Schema": SCHEMA}})
    assert http.post(CRDS, json=body).status_code == 201
    try:
        beta = f"/apis/{GROUP}/v1beta1/namespaces/default/doodads"
        made = http.post(beta, json={**widget("d1"), "kind": "Doodad", "apiVersion": f"{GROUP}/v1beta1"})
        assert made.status_code == 201, made.text
        assert http.get(f"/apis/{GROUP}/v1/namespaces/default/doodads/d1").json()["apiVersion"] == f"{GROUP}/v1"
        assert http.get(f"{beta}/d1").json()["apiVersion"] == f"{GROUP}/v1beta1"
        assert [v["version"] for v in http.get(f"/apis/{GROUP}").json()["versions"]] == ["v1", "v1beta1"]
    finally:
        http.delete(f"{CRDS}/doodads.{GROUP}")


def test_deleting_the_crd_deletes_its_objects(srv: ServerThread, http: httpx.Client) -> None:
    assert http.post(CRDS, json=crd("thingies", "Thingy", scope="Cluster")).status_code == 201
    path = f"/apis/{GROUP}/v1/thingies"
    assert http.post(path, json={**widget("t1"), "kind": "Thingy"}).status_code == 201
    assert http.delete(f"{CRDS}/thingies.{GROUP}").status_code == 200
    assert http.get(path).status_code == 404
    kvs, _rev, _more = srv.store.list(f"/registry/{GROUP}/thingies/")
    assert kvs == []
    # a new CRD of the same name starts empty
    assert http.post(CRDS, json=crd("thingies", "Thingy", scope="Cluster")).status_code == 201
    try:
        assert http.get(path).json()["items"] == []
    finally:
        http.delete(f"{CRDS}/thingies.{GROUP}")


def test_deleting_a_crd_that_names_a_builtin_leaves_the_builtin_objects(http: httpx.Client) -> None:
    ing = "/apis/networking.k8s.io/v1/namespaces/default/ingresses"
    assert http.post(ing, json={"metadata": {"name": "keep"}, "spec": {"defaultBackend": {
        "service": {"name": "web", "port": {"number": 80}}}}}).status_code == 201
    try:
        body = crd("ingresses", "Ingress")
        body["metadata"]["name"] = "ingresses.networking.k8s.io"
        body["spec"]["group"] = "networking.k8s.io"
        assert http.post(CRDS, json=body).status_code == 201
        assert http.delete(f"{CRDS}/ingresses.networking.k8s.io").status_code == 200
        assert http.get(f"{ing}/keep").status_code == 200  # the built-in kind is served and its object kept
    finally:
        http.delete(f"{ing}/keep")
