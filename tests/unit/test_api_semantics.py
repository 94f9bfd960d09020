"""Generic API semantics over real HTTP on loopback: dryRun on every verb,
generateName retries, deletecollection with selectors, finalizers and
propagation policies, the namespace finalize subresource, lists from the
watch cache (resourceVersion=0, resourceVersionMatch), watch bookmarks and
410, and the scale subresource."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread, pod, unique  # noqa: E402

from master.apiserver import registry as registry_mod  # noqa: E402
from master.apiserver.scale import selector_string, to_scale  # noqa: E402

MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
def http(srv: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        yield c


@pytest.fixture
def ns(http: httpx.Client) -> str:
    name = unique("crt-ns")
    assert http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).status_code == 201
    return name


def cm(name: str, **md: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **md}, "data": {"n": "0"}}


def cms(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")


def names(http: httpx.Client, path: str, **params: Any) -> set[str]:
    r = http.get(path, params=params)
    assert r.status_code == 200, r.text
    return {i["metadata"]["name"] for i in r.json()["items"]}


def test_dry_run_changes_nothing_on_any_verb(http: httpx.Client, ns: str) -> None:
    dry = {"dryRun": "All"}
    r = http.post(cms(ns), json=cm("a"), params=dry)
    assert r.status_code == 201 and r.json()["metadata"]["uid"]
    assert http.get(cms(ns, "a")).status_code == 404
    rv = http.post(cms(ns), json=cm("a")).json()["metadata"]["resourceVersion"]
    body = http.get(cms(ns, "a")).json()
    body["data"] = {"n": "9"}
    assert http.put(cms(ns, "a"), json=body, params=dry).json()["data"] == {"n": "9"}
    assert http.patch(cms(ns, "a"), json={"data": {"n": "8"}}, headers=MERGE, params=dry).json()["data"] == {"n": "8"}
    assert http.delete(cms(ns, "a"), params=dry).status_code == 200
    assert http.delete(cms(ns), params=dry).status_code == 200
    after = http.get(cms(ns, "a")).json()
    assert after["data"] == {"n": "0"} and after["metadata"]["resourceVersion"] == rv


def test_generate_name_retries_a_taken_name(http: httpx.Client, ns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    letters = iter("aaaaa" + "aaaaa" + "bbbbb")
    monkeypatch.setattr(registry_mod.random, "choice", lambda _seq: next(letters))
    first = http.post(cms(ns), json={"metadata": {"generateName": "g-"}, "data": {}})
    second = http.post(cms(ns), json={"metadata": {"generateName": "g-"}, "data": {}})
    assert first.json()["metadata"]["name"] == "g-aaaaa"
    assert second.status_code == 201 and second.json()["metadata"]["name"] == "g-bbbbb"


def test_deletecollection_honours_the_label_selector(http: httpx.Client, ns: str) -> None:
    for name, tier in (("a", "web"), ("b", "web"), ("c", "db")):
        assert http.post(cms(ns), json=cm(name, labels={"tier": tier})).status_code == 201
    r = http.delete(cms(ns), params={"labelSelector": "tier=web"})
    assert r.status_code == 200 and {i["metadata"]["name"] for i in r.json()["items"]} == {"a", "b"}
    assert names(http, cms(ns)) == {"c"}


def test_finalizers_keep_an_object_until_the_last_is_removed(http: httpx.Client, ns: str) -> None:
    http.post(cms(ns), json=cm("f", finalizers=["example.com/x", "example.com/y"]))
    r = http.delete(cms(ns, "f"))
    assert r.status_code == 200 and r.json()["metadata"]["deletionTimestamp"]
    assert http.get(cms(ns, "f")).json()["metadata"]["deletionTimestamp"]
    http.patch(cms(ns, "f"), json={"metadata": {"finalizers": ["example.com/y"]}}, headers=MERGE)
    assert http.get(cms(ns, "f")).status_code == 200
    http.patch(cms(ns, "f"), json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert http.get(cms(ns, "f")).status_code == 404


@pytest.mark.parametrize("policy,finalizer", [("Foreground", "foregroundDeletion"), ("Orphan", "orphan")])
def test_propagation_policy_adds_the_collectors_finalizer(http: httpx.Client, ns: str, policy: str,
                                                          finalizer: str) -> None:
    http.post(cms(ns), json=cm("o"))
    r = http.request("DELETE", cms(ns, "o"), json={"propagationPolicy": policy})
    md = r.json()["metadata"]
    assert md["finalizers"] == [finalizer] and md["deletionTimestamp"]
    assert http.get(cms(ns, "o")).status_code == 200


def test_background_and_bad_policy(http: httpx.Client, ns: str) -> None:
    http.post(cms(ns), json=cm("b"))
    assert http.delete(cms(ns, "b"), params={"propagationPolicy": "Sideways"}).status_code == 400
    assert http.delete(cms(ns, "b"), params={"propagationPolicy": "Background"}).status_code == 200
    assert http.get(cms(ns, "b")).status_code == 404


def test_namespace_terminates_and_finalize_lets_it_vanish(http: httpx.Client, ns: str) -> None:
    http.post(cms(ns), json=cm("x"))
    assert http.delete(f"/api/v1/namespaces/{ns}").json()["status"]["phase"] == "Terminating"
    refused = http.post(cms(ns), json=cm("y"))
    assert refused.status_code == 403
    st = refused.json()
    assert st["reason"] == "Forbidden" and st["message"] == (
        f'configmaps "y" is forbidden: unable to create new content in namespace {ns} because it is being terminated')
    assert st["details"]["name"] == "y" and st["details"]["kind"] == "configmaps"
    assert [c["reason"] for c in st["details"]["causes"]] == ["NamespaceTerminating"]
    body = http.get(f"/api/v1/namespaces/{ns}").json()
    assert body["spec"]["finalizers"] == ["kubernetes"]
    body["spec"]["finalizers"] = []
    r = http.put(f"/api/v1/namespaces/{ns}/finalize", json=body)
    assert r.status_code == 200, r.text
    assert http.get(f"/api/v1/namespaces/{ns}").status_code == 404


def test_lists_from_the_watch_cache_match_the_store(http: httpx.Client, ns: str) -> None:
    for i in range(5):
        http.post(f"/api/v1/namespaces/{ns}/pods", json=pod(f"p{i}", labels={"i": str(i % 2)}))
    path = f"/api/v1/namespaces/{ns}/pods"
    cached = http.get(path, params={"resourceVersion": "0"}).json()
    paged = http.get(path, params={"limit": "100"}).json()  # from the store
    assert cached["items"] == paged["items"] and len(cached["items"]) == 5
    assert [i["metadata"]["name"] for i in cached["items"]] == [f"p{i}" for i in range(5)]
    assert "kind" not in cached["items"][0]
    assert names(http, path, resourceVersion="0", labelSelector="i=1") == {"p1", "p3"}
    old_rv = cached["metadata"]["resourceVersion"]
    http.delete(f"{path}/p0")
    assert names(http, path, resourceVersion=old_rv, resourceVersionMatch="Exact") == {f"p{i}" for i in range(5)}
    assert "p0" not in names(http, path, resourceVersion=old_rv, resourceVersionMatch="NotOlderThan")
    assert http.get(path, params={"resourceVersion": str(10**9)}).status_code == 504
    assert http.get(path, params={"resourceVersionMatch": "Exact"}).status_code == 400


def watch_events(http: httpx.Client, path: str, seconds: float, **params: Any) -> list[dict[str, Any]]:
    out = []
    with http.stream("GET", path, params={"watch": "true", "timeoutSeconds": str(int(seconds)), **params}) as r:
        for line in r.iter_lines():
            if line:
                out.append(json.loads(line))
    return out


def test_watch_sends_bookmarks_and_the_initial_events_end(srv: ServerThread, http: httpx.Client, ns: str) -> None:
    assert srv.server is not None
    srv.server.bookmark_seconds = 0.3
    try:
        http.post(cms(ns), json=cm("w"))
        evs = watch_events(http, cms(ns), 1, allowWatchBookmarks="true", sendInitialEvents="true",
                           resourceVersionMatch="NotOlderThan", resourceVersion="0")
    finally:
        srv.server.bookmark_seconds = 30.0
    assert evs[0]["type"] == "ADDED" and evs[0]["object"]["metadata"]["name"] == "w"
    assert evs[1]["type"] == "BOOKMARK"
    assert evs[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    periodic = [e for e in evs[2:] if e["type"] == "BOOKMARK"]
    assert periodic and int(periodic[-1]["object"]["metadata"]["resourceVersion"]) >= \
        int(evs[0]["object"]["metadata"]["resourceVersion"])
    # without allowWatchBookmarks: none
    assert all(e["type"] != "BOOKMARK" for e in watch_events(http, cms(ns), 1))


def test_watch_resumes_from_a_version_and_410_when_too_old() -> None:
    with ServerThread(watch_window=0.3) as s, httpx.Client(base_url=s.url, timeout=10) as http:
        http.post("/api/v1/namespaces/default/configmaps", json=cm("r1"))
        rv = http.get("/api/v1/namespaces/default/configmaps/r1").json()["metadata"]["resourceVersion"]
        http.post("/api/v1/namespaces/default/configmaps", json=cm("r2"))
        evs = watch_events(http, "/api/v1/namespaces/default/configmaps", 1, resourceVersion=rv)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [("ADDED", "r2")]
        time.sleep(0.4)
        http.post("/api/v1/namespaces/default/configmaps", json=cm("r3"))
        evs = watch_events(http, "/api/v1/namespaces/default/configmaps", 1, resourceVersion=rv)
        assert evs[0]["type"] == "ERROR" and evs[0]["object"]["code"] == 410


def rc(name: str, replicas: int) -> dict[str, Any]:
    tmpl = {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"app": name}, "template": tmpl}}


def test_scale_subresource(http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/replicationcontrollers/web"
    r = http.post(f"/api/v1/namespaces/{ns}/replicationcontrollers", json=rc("web", 2))
    assert r.status_code == 201, r.text
    scale = http.get(path + "/scale").json()
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2} and scale["status"]["selector"] == "app=web"
    r = http.patch(path + "/scale", json={"spec": {"replicas": 5}}, headers=MERGE)
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 5
    assert http.get(path).json()["spec"]["replicas"] == 5
    stale = scale | {"spec": {"replicas": 1}}
    assert http.put(path + "/scale", json=stale).status_code == 409
    fresh = http.get(path + "/scale").json() | {"spec": {"replicas": 1}}
    assert http.put(path + "/scale", json=fresh).json()["spec"]["replicas"] == 1
    assert http.patch(path + "/scale", json={"spec": {"replicas": -1}}, headers=MERGE).status_code == 422
    assert http.get(f"/api/v1/namespaces/{ns}/configmaps/x/scale").status_code == 404


def test_scale_pure_helpers() -> None:
    dep = {"metadata": {"name": "d", "namespace": "n", "resourceVersion": "7"},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "d"},
                                                "matchExpressions": [{"key": "tier", "operator": "In",
                                                                      "values": ["a", "b"]}]}},
           "status": {"replicas": 2}}
    s = to_scale(dep)
    assert s["spec"]["replicas"] == 3 and s["status"]["replicas"] == 2
    assert s["metadata"] == {"name": "d", "namespace": "n", "resourceVersion": "7"}
    assert selector_string(dep) == "app=d,tier in (a,b)"
