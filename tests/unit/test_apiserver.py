"""The API server over real HTTP on loopback: discovery, OpenAPI, CRUD and
Status errors, selectors, paging, patches, subresources, graceful delete,
Table output, watch, and a store that survives a restart."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ACCEPT_DISCOVERY, POD_ACCEPT_TABLE, ServerThread, node, pod, unique  # noqa: E402

from master.store import open_store  # noqa: E402

AGG_CT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


@pytest.fixture
def http(srv: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        yield c


@pytest.fixture
def ns(http: httpx.Client) -> str:
    name = unique("crt-ns")
    r = http.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert r.status_code == 201, r.text
    return name


def pods_path(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/pods" + (f"/{name}" if name else "")


def mkpod(http: httpx.Client, ns: str, name: str, **kw: Any) -> dict[str, Any]:
    r = http.post(pods_path(ns), json=pod(name, **kw))
    assert r.status_code == 201, r.text
    return r.json()


def names(body: dict[str, Any]) -> set[str]:
    return {i["metadata"]["name"] for i in body["items"]}


def status_of(r: httpx.Response, code: int, reason: str) -> dict[str, Any]:
    assert r.status_code == code, r.text
    body = r.json()
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["code"] == code and body["reason"] == reason, body
    return body


# ---- discovery, version, OpenAPI ------------------------------------------------

def test_version_minor_32(http: httpx.Client) -> None:
    v = http.get("/version").json()
    assert (v["major"], v["minor"]) == ("1", "32")


def test_aggregated_discovery_core_and_groups(http: httpx.Client) -> None:
    r = http.get("/api", headers={"Accept": ACCEPT_DISCOVERY})
    assert r.headers["content-type"] == AGG_CT
    body = r.json()
    assert body["kind"] == "APIGroupDiscoveryList" and body["apiVersion"] == "apidiscovery.k8s.io/v2"
    core = body["items"][0]
    assert core["metadata"] == {} and core["versions"][0]["version"] == "v1"
    res = {x["resource"]: x for x in core["versions"][0]["resources"]}
    assert {"pods", "nodes", "namespaces", "events"} <= set(res)
    assert res["pods"]["scope"] == "Namespaced" and res["nodes"]["scope"] == "Cluster"
    assert res["pods"]["shortNames"] == ["po"] and res["pods"]["singularResource"] == "pod"
    assert res["pods"]["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert {"status", "binding", "log"} <= {s["subresource"] for s in res["pods"]["subresources"]}
    r = http.get("/apis", headers={"Accept": ACCEPT_DISCOVERY})
    assert r.headers["content-type"] == AGG_CT
    groups = {i["metadata"]["name"]: i for i in r.json()["items"]}
    lease = groups["coordination.k8s.io"]["versions"][0]
    assert lease["version"] == "v1" and [x["resource"] for x in lease["resources"]] == ["leases"]


def test_legacy_discovery(http: httpx.Client) -> None:
    r = http.get("/api", headers={"Accept": "application/json, */*"})
    assert r.headers["content-type"].startswith("application/json") and "as=" not in r.headers["content-type"]
    assert r.json()["kind"] == "APIVersions" and r.json()["versions"] == ["v1"]
    groups = http.get("/apis").json()
    assert groups["kind"] == "APIGroupList"
    coord = next(g for g in groups["groups"] if g["name"] == "coordination.k8s.io")
    assert coord["preferredVersion"]["groupVersion"] == "coordination.k8s.io/v1"
    v1 = http.get("/api/v1").json()
    assert v1["kind"] == "APIResourceList" and v1["groupVersion"] == "v1"
    byname = {x["name"]: x for x in v1["resources"]}
    assert byname["pods"]["namespaced"] is True and byname["pods"]["kind"] == "Pod"
    assert byname["namespaces"]["namespaced"] is False and "ns" in byname["namespaces"]["shortNames"]
    assert byname["pods/status"]["kind"] == "Pod" and "pods/binding" in byname
    lv1 = http.get("/apis/coordination.k8s.io/v1").json()
    assert lv1["groupVersion"] == "coordination.k8s.io/v1"
    assert [x["name"] for x in lv1["resources"]] == ["leases"]
    assert http.get("/apis/coordination.k8s.io").json()["kind"] == "APIGroup"


@pytest.mark.parametrize("path", ["/apis/nope.example.com", "/apis/nope.example.com/v1",
                                  "/apis/coordination.k8s.io/v9", "/api/v2", "/api/v1/foos",
                                  "/api/v1/namespaces/default/foos"])
def test_unknown_paths_404(http: httpx.Client, path: str) -> None:
    status_of(http.get(path), 404, "NotFound")


def test_openapi_v3_has_patch_with_gvk_and_field_validation(http: httpx.Client) -> None:
    index = http.get("/openapi/v3").json()["paths"]
    assert {"api/v1", "apis/coordination.k8s.io/v1"} <= set(index)
    for gv, kinds_expected in (("api/v1", {"Pod", "Node", "Namespace", "Event"}),
                               ("apis/coordination.k8s.io/v1", {"Lease"})):
        doc = http.get(index[gv]["serverRelativeURL"]).json()
        assert doc["openapi"].startswith("3.")
        found = set()
        for ops in doc["paths"].values():
            op = ops.get("patch")
            if op is None:
                continue
            assert "fieldValidation" in {p["name"] for p in op["parameters"] if p["in"] == "query"}
            found.add(op["x-kubernetes-group-version-kind"]["kind"])
        assert kinds_expected <= found, (gv, found)
    status_of(http.get("/openapi/v3/apis/nope/v1"), 404, "NotFound")


# ---- create / get / list ------------------------------------------------------------

def test_create_get_pod(http: httpx.Client, ns: str) -> None:
    created = mkpod(http, ns, "web")
    md = created["metadata"]
    assert md["uid"] and md["creationTimestamp"].endswith("Z") and int(md["resourceVersion"]) > 0
    assert md["namespace"] == ns and created["status"]["phase"] == "Pending"
    got = http.get(pods_path(ns, "web")).json()
    assert got["metadata"]["uid"] == md["uid"] and got["metadata"]["resourceVersion"] == md["resourceVersion"]
    assert got["kind"] == "Pod" and got["apiVersion"] == "v1"
    body = status_of(http.get(pods_path(ns, "nope")), 404, "NotFound")
    assert body["details"]["name"] == "nope" and body["details"]["kind"] == "pods"


def test_create_event_and_node(http: httpx.Client, ns: str) -> None:
    ev = {"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "web", "namespace": ns},
          "reason": "Test", "message": "hello", "type": "Normal"}
    assert http.post(f"/api/v1/namespaces/{ns}/events", json=ev).status_code == 201
    r = http.get(f"/api/v1/namespaces/{ns}/events", params={"fieldSelector": "involvedObject.name=web"})
    assert names(r.json()) == {"e1"}
    n = unique("crt-node")
    r = http.post("/api/v1/nodes", json=node(n))
    assert r.status_code == 201 and "namespace" not in r.json()["metadata"]
    assert http.get(f"/api/v1/nodes/{n}").json()["status"]["allocatable"]["cpu"] == "2"
    assert http.delete(f"/api/v1/nodes/{n}").status_code == 200
    assert http.get(f"/api/v1/nodes/{n}").status_code == 404


def test_label_selectors(http: httpx.Client, ns: str) -> None:
    mkpod(http, ns, "a", labels={"app": "web", "tier": "fe"})
    mkpod(http, ns, "b", labels={"app": "db", "tier": "be"})
    mkpod(http, ns, "c", labels={"app": "web"})
    mkpod(http, ns, "d")

    def sel(s: str) -> set[str]:
        r = http.get(pods_path(ns), params={"labelSelector": s})
        assert r.status_code == 200, r.text
        return names(r.json())

    assert sel("app=web") == {"a", "c"}
    assert sel("app!=web") == {"b", "d"}
    assert sel("app in (db,web),tier") == {"a", "b"}
    assert sel("app notin (web)") == {"b", "d"}
    assert sel("tier") == {"a", "b"}
    assert sel("!tier") == {"c", "d"}
    status_of(http.get(pods_path(ns), params={"labelSelector": "app in ("}), 400, "BadRequest")


def test_field_selectors(http: httpx.Client, ns: str) -> None:
    mkpod(http, ns, "a", node="crt-n1")
    mkpod(http, ns, "b")
    r = http.patch(pods_path(ns, "a") + "/status", json={"status": {"phase": "Running"}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text

    def sel(s: str, path: str = pods_path(ns)) -> set[str]:
        r = http.get(path, params={"fieldSelector": s})
        assert r.status_code == 200, r.text
        return names(r.json())

    assert sel("metadata.name=b") == {"b"}
    assert sel("spec.nodeName=crt-n1") == {"a"}
    assert sel("spec.nodeName=crt-n1", "/api/v1/pods") == {"a"}
    assert sel("status.phase!=Running") == {"b"}
    assert sel("spec.nodeName=crt-n1,status.phase!=Succeeded,status.phase!=Failed") == {"a"}
    body = status_of(http.get(pods_path(ns), params={"fieldSelector": "spec.bogus=1"}), 400, "BadRequest")
    assert "spec.bogus" in body["message"]
    status_of(http.get(pods_path(ns), params={"fieldSelector": "metadata.name"}), 400, "BadRequest")


def test_pagination_over_25_pods(http: httpx.Client, ns: str) -> None:
    for i in range(25):
        mkpod(http, ns, f"p{i:02d}")
    seen: list[str] = []
    token, pages = "", 0
    while True:
        params: dict[str, Any] = {"limit": 10}
        if token:
            params["continue"] = token
        body = http.get(pods_path(ns), params=params).json()
        assert len(body["items"]) <= 10
        seen += [i["metadata"]["name"] for i in body["items"]]
        pages += 1
        token = body["metadata"].get("continue", "")
        if not token:
            break
    assert pages == 3 and seen == [f"p{i:02d}" for i in range(25)]
    status_of(http.get(pods_path(ns), params={"limit": 5, "continue": "garbage!"}), 400, "BadRequest")


# ---- write errors -------------------------------------------------------------------

def test_conflicts_and_bad_bodies(http: httpx.Client, ns: str) -> None:
    created = mkpod(http, ns, "web")
    status_of(http.post(pods_path(ns), json=pod("web")), 409, "AlreadyExists")
    fresh = http.patch(pods_path(ns, "web"), json={"metadata": {"labels": {"v": "2"}}},
                       headers={"Content-Type": "application/merge-patch+json"}).json()
    assert fresh["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    stale = dict(created, metadata=dict(created["metadata"], labels={"v": "3"}))
    status_of(http.put(pods_path(ns, "web"), json=stale), 409, "Conflict")
    assert http.get(pods_path(ns, "web")).json()["metadata"]["labels"] == {"v": "2"}
    status_of(http.post(pods_path(ns), content=b"{not json", headers={"Content-Type": "application/json"}),
              400, "BadRequest")
    status_of(http.post(pods_path("crt-no-such-ns"), json=pod("x")), 404, "NotFound")
    status_of(http.patch(pods_path(ns, "web"), content=b"\x00", headers={"Content-Type": "application/vnd.kubernetes.protobuf"}),
              415, "UnsupportedMediaType")


@pytest.mark.parametrize("mutate,field", [
    (lambda p: p["spec"].update(containers=[]), "spec.containers"),
    (lambda p: p["metadata"].update(name="Bad_Name"), "metadata.name"),
    (lambda p: p["spec"]["containers"][0].update(resources={"requests": {"cpu": "lots"}}),
     "spec.containers[0].resources.requests[cpu]"),
    (lambda p: p["spec"]["containers"][0].pop("image"), "spec.containers[0].image"),
])
def test_invalid_pod_422(http: httpx.Client, ns: str, mutate: Any, field: str) -> None:
    p = pod("x")
    mutate(p)
    body = status_of(http.post(pods_path(ns), json=p), 422, "Invalid")
    assert field in [c["field"] for c in body["details"]["causes"]], body
    assert body["details"]["kind"] == "Pod"


def test_a_field_of_the_wrong_type_is_a_400_as_upstreams_decoder_says(http: httpx.Client, ns: str) -> None:
    p = pod("x")
    p["spec"] = "nope"  # upstream: "json: cannot unmarshal string into Go struct field Pod.spec of type v1.PodSpec"
    body = status_of(http.post(pods_path(ns), json=p), 400, "BadRequest")
    assert body["message"].startswith('Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string')


def test_terminating_namespace_forbids_new_pods(http: httpx.Client) -> None:
    name = unique("crt-ns")
    assert http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).status_code == 201
    r = http.delete(f"/api/v1/namespaces/{name}")
    assert r.status_code == 200 and r.json()["status"]["phase"] == "Terminating"
    assert http.get(f"/api/v1/namespaces/{name}").json()["metadata"].get("deletionTimestamp")
    status_of(http.post(pods_path(name), json=pod("x")), 403, "Forbidden")


# ---- patches and updates --------------------------------------------------------------

def test_merge_strategic_and_json_patch(http: httpx.Client, ns: str) -> None:
    mkpod(http, ns, "web", labels={"app": "web"})
    r = http.patch(pods_path(ns, "web"), json={"metadata": {"labels": {"x": "y", "app": None}}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200 and r.json()["metadata"]["labels"] == {"x": "y"}
    smp = {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
           "spec": {"$setElementOrder/containers": [{"name": "main"}],
                    "containers": [{"name": "main", "image": "busybox:1.37"}]}}
    r = http.patch(pods_path(ns, "web"), json=smp, headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status_code == 200, r.text
    c = r.json()["spec"]["containers"]
    assert len(c) == 1 and c[0]["image"] == "busybox:1.37" and c[0]["command"] == ["sleep", "3600"]
    r = http.patch(pods_path(ns, "web"), json=[{"op": "add", "path": "/metadata/labels/j", "value": "p"}],
                   headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 200 and r.json()["metadata"]["labels"] == {"x": "y", "j": "p"}
    r = http.patch(pods_path(ns, "web"), json=[{"op": "test", "path": "/metadata/name", "value": "other"}],
                   headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 422
    assert http.patch(pods_path(ns, "nope"), json={}, headers={"Content-Type": "application/merge-patch+json"}).status_code == 404


def test_pod_spec_immutable_but_image(http: httpx.Client, ns: str) -> None:
    mkpod(http, ns, "web")
    hdr = {"Content-Type": "application/strategic-merge-patch+json"}
    body = status_of(http.patch(pods_path(ns, "web"), json={"spec": {"containers": [{"name": "main", "command": ["true"]}]}},
                                headers=hdr), 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "spec"
    r = http.patch(pods_path(ns, "web"), json={"spec": {"containers": [{"name": "main", "image": "busybox:2"}]}}, headers=hdr)
    assert r.status_code == 200 and r.json()["spec"]["containers"][0]["image"] == "busybox:2"


def test_put_of_minimal_manifest_is_defaulted_like_create(http: httpx.Client, ns: str) -> None:
    mkpod(http, ns, "web")
    body = pod("web", image="busybox:1.37")  # what `kubectl replace -f` sends: no server defaults in it
    r = http.put(pods_path(ns, "web"), json=body)
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["restartPolicy"] == "Always" and r.json()["spec"]["containers"][0]["image"] == "busybox:1.37"


def test_apply_patch_creates_absent_object(http: httpx.Client, ns: str) -> None:
    r = http.patch(pods_path(ns, "ssa"), content=json.dumps(pod("ssa")).encode(),
                   headers={"Content-Type": "application/apply-patch+yaml"}, params={"fieldManager": "kubectl"})
    assert r.status_code == 201 and r.json()["metadata"]["uid"]


def test_status_subresource(http: httpx.Client, ns: str) -> None:
    p = mkpod(http, ns, "web", labels={"a": "1"})
    p["status"] = {"phase": "Running", "podIP": "10.244.0.5"}
    p["metadata"]["labels"] = {"a": "changed"}
    r = http.put(pods_path(ns, "web") + "/status", json=p)
    assert r.status_code == 200, r.text
    got = http.get(pods_path(ns, "web")).json()
    assert got["status"]["phase"] == "Running" and got["metadata"]["labels"] == {"a": "1"}
    got["status"]["phase"] = "Failed"
    got["metadata"]["labels"] = {"a": "2"}
    r = http.put(pods_path(ns, "web"), json=got)
    assert r.status_code == 200
    got = http.get(pods_path(ns, "web")).json()
    assert got["status"]["phase"] == "Running" and got["metadata"]["labels"] == {"a": "2"}
    r = http.patch(pods_path(ns, "web") + "/status", json={"status": {"phase": "Succeeded"}, "spec": {"nodeName": "x"}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200
    got = http.get(pods_path(ns, "web")).json()
    assert got["status"]["phase"] == "Succeeded" and "nodeName" not in got["spec"]


def test_binding(http: httpx.Client, ns: str) -> None:
    mkpod(http, ns, "web")
    b = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web"}, "target": {"kind": "Node", "name": "crt-n1"}}
    assert http.post(pods_path(ns, "web") + "/binding", json=b).status_code == 201
    assert http.get(pods_path(ns, "web")).json()["spec"]["nodeName"] == "crt-n1"
    b["target"]["name"] = "crt-n2"
    status_of(http.post(pods_path(ns, "web") + "/binding", json=b), 409, "Conflict")
    assert http.get(pods_path(ns, "web")).json()["spec"]["nodeName"] == "crt-n1"
    status_of(http.post(pods_path(ns, "web") + "/binding", json={"target": {}}), 422, "Invalid")
    status_of(http.post(pods_path(ns, "ghost") + "/binding", json=b), 404, "NotFound")


# ---- delete -------------------------------------------------------------------------

def test_graceful_delete(http: httpx.Client, ns: str) -> None:
    mkpod(http, ns, "bound", node="crt-n1")
    mkpod(http, ns, "free")
    r = http.delete(pods_path(ns, "bound"))
    assert r.status_code == 200
    md = r.json()["metadata"]
    assert md["deletionTimestamp"] and md["deletionGracePeriodSeconds"] == 30
    assert http.get(pods_path(ns, "bound")).json()["metadata"]["deletionTimestamp"] == md["deletionTimestamp"]
    r = http.delete(pods_path(ns, "free"))
    assert r.status_code == 200
    status_of(http.get(pods_path(ns, "free")), 404, "NotFound")
    uid = http.get(pods_path(ns, "bound")).json()["metadata"]["uid"]
    status_of(http.request("DELETE", pods_path(ns, "bound"), json={"gracePeriodSeconds": 0, "preconditions": {"uid": "wrong"}}),
              409, "Conflict")
    r = http.request("DELETE", pods_path(ns, "bound"), json={"gracePeriodSeconds": 0, "preconditions": {"uid": uid}})
    assert r.status_code == 200
    status_of(http.get(pods_path(ns, "bound")), 404, "NotFound")
    status_of(http.delete(pods_path(ns, "bound")), 404, "NotFound")


def test_delete_grace_zero_query_on_bound_pod_keeps_it_terminating(http: httpx.Client, ns: str) -> None:
    mkpod(http, ns, "bound", node="crt-n1")
    r = http.delete(pods_path(ns, "bound"), params={"gracePeriodSeconds": "0"})
    assert r.status_code == 200 and r.json()["metadata"]["deletionGracePeriodSeconds"] == 1
    r = http.delete(pods_path(ns, "bound"), params={"gracePeriodSeconds": "0"})
    assert r.status_code == 200
    status_of(http.get(pods_path(ns, "bound")), 404, "NotFound")


def test_deletecollection(http: httpx.Client, ns: str) -> None:
    for n, app in (("a", "x"), ("b", "x"), ("c", "y")):
        mkpod(http, ns, n, labels={"app": app})
    r = http.delete(pods_path(ns), params={"labelSelector": "app=x"})
    assert r.status_code == 200 and names(r.json()) == {"a", "b"}
    assert names(http.get(pods_path(ns)).json()) == {"c"}


def test_dry_run_creates_nothing(http: httpx.Client, ns: str) -> None:
    r = http.post(pods_path(ns), json=pod("dry"), params={"dryRun": "All"})
    assert r.status_code == 201 and r.json()["metadata"]["name"] == "dry"
    status_of(http.get(pods_path(ns, "dry")), 404, "NotFound")
    mkpod(http, ns, "real")
    r = http.delete(pods_path(ns, "real"), params={"dryRun": "All"})
    assert r.status_code == 200
    assert http.get(pods_path(ns, "real")).status_code == 200


# ---- Table --------------------------------------------------------------------------------

def test_table_pods_and_nodes(http: httpx.Client, ns: str) -> None:
    mkpod(http, ns, "web", labels={"app": "web"}, node="crt-n1")
    r = http.get(pods_path(ns), headers={"Accept": POD_ACCEPT_TABLE}, params={"limit": 500})
    assert r.headers["content-type"] == "application/json;as=Table;v=v1;g=meta.k8s.io"
    t = r.json()
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1" and t["metadata"]["resourceVersion"]
    cols = [c["name"] for c in t["columnDefinitions"]]
    assert cols[:5] == ["Name", "Ready", "Status", "Restarts", "Age"] and {"IP", "Node"} <= set(cols)
    assert [c["priority"] for c in t["columnDefinitions"] if c["name"] == "Node"] == [1]
    [row] = t["rows"]
    cells = dict(zip(cols, row["cells"]))
    assert cells["Name"] == "web" and cells["Ready"] == "0/1" and cells["Status"] == "Pending" and cells["Node"] == "crt-n1"
    assert row["object"]["metadata"]["labels"] == {"app": "web"}
    single = http.get(pods_path(ns, "web"), headers={"Accept": POD_ACCEPT_TABLE}).json()
    assert single["kind"] == "Table" and single["rows"][0]["cells"][0] == "web"
    n = unique("crt-node")
    http.post("/api/v1/nodes", json=node(n))
    try:
        t = http.get("/api/v1/nodes", headers={"Accept": POD_ACCEPT_TABLE}).json()
        cols = [c["name"] for c in t["columnDefinitions"]]
        assert cols[:5] == ["Name", "Status", "Roles", "Age", "Version"]
        row = next(r["cells"] for r in t["rows"] if r["cells"][0] == n)
        assert row[1] == "Ready"
    finally:
        http.delete(f"/api/v1/nodes/{n}")


# ---- watch ------------------------------------------------------------------------------------

def watch_events(http: httpx.Client, path: str, params: dict[str, Any], act: Any = None, want: int = 100,
                 headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Open a watch, run act(), then read up to `want` events (or until the server ends the stream)."""
    out: list[dict[str, Any]] = []
    with http.stream("GET", path, params={"watch": "true", **params}, headers=headers or {}) as resp:
        assert resp.status_code == 200
        if act is not None:
            act()
        for line in resp.iter_lines():
            if line:
                out.append(json.loads(line))
                if len(out) >= want:
                    break
    return out


def test_watch_from_list_rv_sees_changes_in_order(http: httpx.Client, ns: str) -> None:
    mkpod(http, ns, "before")
    rv = http.get(pods_path(ns)).json()["metadata"]["resourceVersion"]

    def act() -> None:
        mkpod(http, ns, "w")
        http.patch(pods_path(ns, "w"), json={"metadata": {"labels": {"a": "b"}}},
                   headers={"Content-Type": "application/merge-patch+json"})
        http.delete(pods_path(ns, "w"))

    evs = watch_events(http, pods_path(ns), {"resourceVersion": rv, "timeoutSeconds": 5}, act, want=3)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in evs]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    assert evs[1]["object"]["metadata"]["labels"] == {"a": "b"}


def test_watch_rv0_synthetic_added_and_name_selector(http: httpx.Client, ns: str) -> None:
    mkpod(http, ns, "a")
    mkpod(http, ns, "b")
    evs = watch_events(http, pods_path(ns), {"resourceVersion": "0", "timeoutSeconds": 5}, want=2)
    assert sorted((e["type"], e["object"]["metadata"]["name"]) for e in evs) == [("ADDED", "a"), ("ADDED", "b")]

    def act() -> None:
        for n in ("a", "b"):
            http.patch(pods_path(ns, n), json={"metadata": {"labels": {"t": "1"}}},
                       headers={"Content-Type": "application/merge-patch+json"})

    evs = watch_events(http, pods_path(ns), {"resourceVersion": "0", "fieldSelector": "metadata.name=b",
                                             "timeoutSeconds": 1}, act, want=3)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [("ADDED", "b"), ("MODIFIED", "b")]


def test_watch_selector_transitions(http: httpx.Client, ns: str) -> None:
    mkpod(http, ns, "p")
    rv = http.get(pods_path(ns)).json()["metadata"]["resourceVersion"]

    def act() -> None:
        http.post(pods_path(ns, "p") + "/binding", json={"target": {"kind": "Node", "name": "crt-n1"}})
        http.patch(pods_path(ns, "p") + "/status", json={"status": {"phase": "Running"}},
                   headers={"Content-Type": "application/merge-patch+json"})
        http.patch(pods_path(ns, "p") + "/status", json={"status": {"phase": "Succeeded"}},
                   headers={"Content-Type": "application/merge-patch+json"})

    evs = watch_events(http, pods_path(ns), {"resourceVersion": rv, "timeoutSeconds": 5,
                                             "fieldSelector": "spec.nodeName=crt-n1,status.phase!=Succeeded"}, act, want=3)
    assert [e["type"] for e in evs] == ["ADDED", "MODIFIED", "DELETED"]
    assert evs[0]["object"]["spec"]["nodeName"] == "crt-n1"
    assert evs[2]["object"]["status"]["phase"] == "Succeeded"


def test_watch_timeout_ends_stream(http: httpx.Client, ns: str) -> None:
    t0 = time.monotonic()
    evs = watch_events(http, pods_path(ns), {"resourceVersion": "0", "timeoutSeconds": 1})
    assert evs == [] and time.monotonic() - t0 < 4


def test_watch_table_events(http: httpx.Client, ns: str) -> None:
    rv = http.get(pods_path(ns)).json()["metadata"]["resourceVersion"]

    def act() -> None:
        mkpod(http, ns, "t1")
        mkpod(http, ns, "t2")

    evs = watch_events(http, pods_path(ns), {"resourceVersion": rv, "timeoutSeconds": 5}, act, want=2,
                       headers={"Accept": POD_ACCEPT_TABLE})
    assert [e["type"] for e in evs] == ["ADDED", "ADDED"]
    first, second = evs[0]["object"], evs[1]["object"]
    assert first["kind"] == "Table" and first["columnDefinitions"][0]["name"] == "Name"
    assert first["rows"][0]["cells"][0] == "t1" and second["rows"][0]["cells"][0] == "t2"
    assert second["columnDefinitions"] is None and second["metadata"]["resourceVersion"]


def test_watch_too_old_rv_is_410() -> None:
    with ServerThread(watch_window=0.05) as s, httpx.Client(base_url=s.url, timeout=10) as http:
        mkpod(http, "default", "old")
        time.sleep(0.1)
        mkpod(http, "default", "new")
        evs = watch_events(http, pods_path("default"), {"resourceVersion": "1", "timeoutSeconds": 2})
        assert len(evs) == 1 and evs[0]["type"] == "ERROR"
        assert evs[0]["object"]["code"] == 410 and evs[0]["object"]["reason"] == "Expired"


def test_bad_watch_rv_400(http: httpx.Client, ns: str) -> None:
    status_of(http.get(pods_path(ns), params={"watch": "true", "resourceVersion": "abc"}), 400, "BadRequest")


# ---- persistence ---------------------------------------------------------------------------

def test_store_survives_master_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    with ServerThread(store=open_store(url)) as s, httpx.Client(base_url=s.url) as http:
        uid = mkpod(http, "default", "keep")["metadata"]["uid"]
    with ServerThread(store=open_store(url)) as s, httpx.Client(base_url=s.url) as http:
        got = http.get(pods_path("default", "keep"))
        assert got.status_code == 200 and got.json()["metadata"]["uid"] == uid
        assert names(http.get("/api/v1/namespaces").json()) >= {"default", "kube-system", "kube-node-lease"}
