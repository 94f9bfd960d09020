"""`--runtime-config`: parsing into the served set (pure), and what that set
does to discovery, OpenAPI, routing and the controllers' resource choice;
then a real API server over loopback whose served set is switched while its
store keeps the objects."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ACCEPT_DISCOVERY, ServerThread, unique  # noqa: E402

from apimachinery import kinds  # noqa: E402
from master.apiserver import discovery, errors, openapi, paths  # noqa: E402
from apimachinery.apigroups import ALL, RuntimeConfigError, parse_pairs, parse_runtime_config  # noqa: E402
from master.controllers import namespace  # noqa: E402
from master.controllers.garbagecollector import GarbageCollector  # noqa: E402

AGG = discovery.AGGREGATED_V2
EVERY_GV = {(g, v) for g, vs in kinds.groups().items() for v in vs}


def gvs(text: str) -> set[tuple[str, str]]:
    return {(g, v) for g, vs in parse_runtime_config(text).groups().items() for v in vs}


# -- parsing -------------------------------------------------------------------
def test_default_serves_the_whole_table() -> None:
    assert parse_runtime_config("").served == kinds.RESOURCES == ALL.served
    assert gvs("") == EVERY_GV and len(EVERY_GV) > 8


def test_one_group_version_off() -> None:
    assert gvs("networking.k8s.io/v1=false") == EVERY_GV - {("networking.k8s.io", "v1")}
    assert gvs("apps/v1=false,rbac.authorization.k8s.io/v1=false") == \
        EVERY_GV - {("apps", "v1"), ("rbac.authorization.k8s.io", "v1")}


def test_all_off_then_core_on_whatever_the_order() -> None:
    assert gvs("api/all=false,api/v1=true") == {("", "v1")}
    assert gvs("api/v1=true,api/all=false") == {("", "v1")}  # matchers first, then group-versions
    assert gvs("api/all=false,v1") == {("", "v1")}  # bare key is true; `v1` names the core group
    assert gvs("api/all=false,api/v1=true,apps/v1=true") == {("", "v1"), ("apps", "v1")}
    assert gvs("api/all=false,apps/v1=false") == set()
    assert gvs("api/ga=false") == set() and gvs("api/beta=false,api/alpha=false") == EVERY_GV


def test_later_value_of_a_key_wins_and_legacy_is_ignored() -> None:
    assert gvs("apps/v1=false,apps/v1=true") == EVERY_GV
    assert gvs("apps/v1=true,apps/v1=0") == EVERY_GV - {("apps", "v1")}
    assert gvs("api/legacy=false") == EVERY_GV
    assert parse_pairs(" api/v1 = false , v1/pods=true,x") == {"/v1": "false", "/v1/pods": "true", "x": ""}


def test_autoscaling_keeps_the_other_version_with_the_right_preference() -> None:
    apis = parse_runtime_config("autoscaling/v2=false")
    assert apis.versions("autoscaling") == ["v1"]
    assert discovery.api_group("autoscaling", apis.versions("autoscaling"))["preferredVersion"]["version"] == "v1"
    assert parse_runtime_config("autoscaling/v1=false").versions("autoscaling") == ["v2"]
    assert parse_runtime_config("").versions("autoscaling") == ["v2", "v1"]


def test_resource_level_switch() -> None:
    apis = parse_runtime_config("apps/v1/replicasets=false")
    assert apis.lookup("apps", "v1", "deployments") is not None and apis.lookup("apps", "v1", "replicasets") is None
    only = parse_runtime_config("apps/v1=false,apps/v1/deployments=true")
    assert [r.plural for r in only.in_group_version("apps", "v1")] == ["deployments"]
    assert gvs("api/v1/pods=false") == EVERY_GV and parse_runtime_config("api/v1/pods=false").lookup("", "v1", "pods") is None


@pytest.mark.parametrize("text,message", [
    ("apps/v9=false", "group version apps/v9 that has not been registered"),
    ("apps/v1=maybe", "invalid value apps/v1=maybe"),
    ("api/all=1", "invalid value api/all=1"),
    ("apps/v1/widgets=false", "unknown resource 'widgets'"),
    ("apps/v1/deployments/x=false", "invalid key apps/v1/deployments/x"),
    ("v2", "invalid key v2"),
    ("api/v2=true", "unknown api groups api"),
    ("crt.example.com/v1=false,apps/v1=false", "unknown api groups crt.example.com"),
    ("api/all=false", "invalid key with only api/all=false"),
    ("pods=false", "invalid key pods"),
])
def test_errors(text: str, message: str) -> None:
    with pytest.raises(RuntimeConfigError, match=message):
        parse_runtime_config(text)


# -- documents and routing -----------------------------------------------------
def test_discovery_and_openapi_tell_the_truth() -> None:
    apis = parse_runtime_config("autoscaling/v2=false,networking.k8s.io/v1=false")
    names = [g["name"] for g in discovery.api_group_list(apis)["groups"]]
    assert "networking.k8s.io" not in names and "apps" in names
    hpa = next(g for g in discovery.api_group_list(apis)["groups"] if g["name"] == "autoscaling")
    assert [v["version"] for v in hpa["versions"]] == ["v1"] and hpa["preferredVersion"]["version"] == "v1"
    agg = {i["metadata"]["name"]: [v["version"] for v in i["versions"]]
           for i in discovery.aggregated(False, AGG, apis)["items"]}
    assert agg["autoscaling"] == ["v1"] and "networking.k8s.io" not in agg
    idx = openapi.index(apis)["paths"]
    assert "apis/autoscaling/v1" in idx and "apis/autoscaling/v2" not in idx and "apis/networking.k8s.io/v1" not in idx
    assert openapi.respond("/openapi/v3/apis/autoscaling/v1", apis=apis).status == 200
    for p in ("/openapi/v3/apis/autoscaling/v2", "/openapi/v3/apis/networking.k8s.io/v1"):
        with pytest.raises(errors.APIError) as e:
            openapi.respond(p, apis=apis)
        assert e.value.code == 404
    core_only = parse_runtime_config("api/all=false,api/v1=true")
    assert discovery.api_group_list(core_only)["groups"] == [] and discovery.aggregated(False, AGG, core_only)["items"] == []
    assert discovery.api_versions("x", core_only)["versions"] == ["v1"]
    assert discovery.api_versions("x", parse_runtime_config("api/all=false,apps/v1=true"))["versions"] == []
    assert set(openapi.index(core_only)["paths"]) == {"api/v1"}


def test_paths_refuse_switched_off_resources() -> None:
    apis = parse_runtime_config("networking.k8s.io/v1=false,api/v1/configmaps=false")
    assert paths.parse("/apis/networking.k8s.io/v1/namespaces/d/ingresses/x").res.plural == "ingresses"
    for p in ("/apis/networking.k8s.io/v1/namespaces/d/ingresses/x", "/apis/networking.k8s.io/v1/ingresses",
              "/api/v1/namespaces/d/configmaps"):
        with pytest.raises(paths.UnknownPath):
            paths.parse(p, apis)
    assert paths.parse("/api/v1/namespaces/d/pods/x/status", apis).subresource == "status"


def test_controllers_pick_served_versions_and_skip_the_rest() -> None:
    apis = parse_runtime_config("autoscaling/v2=false,apps/v1=false")
    ns_res = {(r.group, r.version, r.plural) for r in namespace.namespaced_resources(apis)}
    assert ("autoscaling", "v1", "horizontalpodautoscalers") in ns_res
    assert not any(g == "apps" for g, _v, _p in ns_res) and ("", "v1", "pods") in ns_res
    assert len(namespace.namespaced_resources()) == len([r for r in kinds.stored_resources() if r.namespaced])
    gc = GarbageCollector(client=None, apis=apis)  # type: ignore[arg-type]  # the informers are not run
    watched = {(i.res.group, i.res.version, i.res.plural) for i in gc.informers}
    assert ("autoscaling", "v1", "horizontalpodautoscalers") in watched and ("apps", "v1", "deployments") not in watched
    assert ("", "v1", "pods") in watched
    assert GarbageCollector(client=None, apis=parse_runtime_config("api/all=false,apps/v1=false")).informers == []  # type: ignore[arg-type]


# -- a real server whose served set changes over one store -----------------------
@pytest.fixture
def srv() -> Iterator[ServerThread]:
    s = ServerThread().start()
    try:
        yield s
    finally:
        s.stop()


HPA_V2 = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
          "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                   "minReplicas": 1, "maxReplicas": 3}}


def test_server_switches_versions_and_storage_survives(srv: ServerThread) -> None:
    assert srv.server is not None
    name = unique("crt-hpa")
    v2 = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"
    v1 = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers"
    with httpx.Client(base_url=srv.url, timeout=10) as http:
        r = http.post(v2, json={**HPA_V2, "metadata": {"name": name}})
        assert r.status_code == 201, r.text
        srv.server.apis = parse_runtime_config("autoscaling/v2=false,networking.k8s.io/v1=false")
        miss = http.get(f"{v2}/{name}")
        assert miss.status_code == 404 and miss.json()["reason"] == "NotFound"
        assert "the server could not find the requested resource" in miss.json()["message"]
        got = http.get(f"{v1}/{name}")
        assert got.status_code == 200 and got.json()["apiVersion"] == "autoscaling/v1"
        assert got.json()["spec"]["maxReplicas"] == 3
        assert http.get("/apis/autoscaling/v2").status_code == 404
        assert http.get("/apis/networking.k8s.io").status_code == 404
        assert http.get("/apis/networking.k8s.io/v1").status_code == 404
        assert http.get("/apis/autoscaling").json()["preferredVersion"]["version"] == "v1"
        agg = http.get("/apis", headers={"Accept": ACCEPT_DISCOVERY}).json()
        assert {i["metadata"]["name"]: [v["version"] for v in i["versions"]] for i in agg["items"]}["autoscaling"] == ["v1"]
        assert "apis/autoscaling/v2" not in http.get("/openapi/v3").json()["paths"]
        assert http.get("/openapi/v3/apis/networking.k8s.io/v1").status_code == 404

        srv.server.apis = parse_runtime_config("api/all=false,api/v1=true")
        assert http.get(f"{v1}/{name}").status_code == 404
        assert http.get("/apis").json()["groups"] == []
        assert http.get("/api").json()["versions"] == ["v1"]
        assert http.get("/api/v1/namespaces/default").status_code == 200

        srv.server.apis = ALL  # back on: the object was in the store all along
        assert http.get(f"{v2}/{name}").json()["spec"]["maxReplicas"] == 3
        assert http.delete(f"{v2}/{name}").status_code == 200
