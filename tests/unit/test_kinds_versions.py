"""Resources served in two versions share one store key and one stored form:
HPAs (autoscaling/v2 stored, v1 converted) and Events (core/v1 stored,
events.k8s.io/v1 converted), through the registry, the store and the watch
cache; the kinds table and discovery tell the truth about them."""
from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from apimachinery import kinds
from master.apiserver import discovery, storage
from master.apiserver.registry import Registry
from master.apiserver.resources.conversion import hpa_v1_to_v2, hpa_v2_to_v1
from master.apiserver.watchcache import WatchCache
from master.store import Store, open_store

V1 = kinds.lookup("autoscaling", "v1", "horizontalpodautoscalers")
V2 = kinds.lookup("autoscaling", "v2", "horizontalpodautoscalers")
CORE_EV = kinds.lookup("", "v1", "events")
NEW_EV = kinds.lookup("events.k8s.io", "v1", "events")
assert V1 and V2 and CORE_EV and NEW_EV


@pytest.fixture
def store() -> Iterator[Store]:
    s = open_store("sqlite://:memory:")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def reg(store: Store) -> Registry:
    r = Registry(store, clock=lambda: "2026-01-01T00:00:00Z")
    ns = kinds.lookup("", "v1", "namespaces")
    assert ns
    r.create(ns, None, {"metadata": {"name": "default"}})
    return r


def hpa_v1(name: str = "h", cpu: int | None = 50) -> dict[str, Any]:
    spec: dict[str, Any] = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                            "maxReplicas": 5}
    if cpu is not None:
        spec["targetCPUUtilizationPercentage"] = cpu
    return {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name}, "spec": spec}


def test_table_storage_versions() -> None:
    assert V1 and V2 and NEW_EV and CORE_EV
    assert kinds.storage_resource(V1) is V2 and kinds.storage_resource(V2) is V2
    assert kinds.storage_resource(NEW_EV) is CORE_EV
    assert storage.prefix(V1, "ns") == storage.prefix(V2, "ns") == "/registry/autoscaling/horizontalpodautoscalers/ns/"
    assert storage.prefix(NEW_EV) == storage.prefix(CORE_EV) == "/registry/core/events/"
    assert kinds.groups()["autoscaling"] == ["v2", "v1"]  # v2 preferred, as upstream
    assert discovery.api_group("autoscaling", ["v2", "v1"])["preferredVersion"]["version"] == "v2"
    assert kinds.by_kind("autoscaling", "HorizontalPodAutoscaler") is V2


def test_hpa_v1_write_is_stored_as_v2_and_read_back_both_ways(reg: Registry, store: Store) -> None:
    assert V1 and V2
    created = reg.create(V1, "default", hpa_v1())
    assert created["apiVersion"] == "autoscaling/v1" and created["spec"]["minReplicas"] == 1
    raw = json.loads(store.get("/registry/autoscaling/horizontalpodautoscalers/default/h").value)  # type: ignore[union-attr]
    assert raw["apiVersion"] == "autoscaling/v2"
    assert raw["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
    assert "targetCPUUtilizationPercentage" not in raw["spec"]
    as_v2 = reg.get(V2, "default", "h")
    assert as_v2["apiVersion"] == "autoscaling/v2" and as_v2["spec"]["metrics"] == raw["spec"]["metrics"]
    as_v1 = reg.get(V1, "default", "h")
    assert as_v1["spec"]["targetCPUUtilizationPercentage"] == 50 and "metrics" not in as_v1["spec"]
    assert [o["apiVersion"] for o in reg.list(V1, "default").items] == ["autoscaling/v1"]
    assert [o["apiVersion"] for o in reg.list(V2, None).items] == ["autoscaling/v2"]


def test_v2_only_fields_survive_a_v1_round_trip(reg: Registry) -> None:
    assert V1 and V2
    pods_metric = {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}
    v2 = {"metadata": {"name": "h2"}, "spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 9,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                    pods_metric],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}
    reg.create(V2, "default", v2)
    old = reg.get(V1, "default", "h2")
    assert old["spec"]["targetCPUUtilizationPercentage"] == 70
    old["spec"]["maxReplicas"] = 12  # a v1 client edits what it knows
    reg.update(V1, "default", "h2", old)
    new = reg.get(V2, "default", "h2")
    assert new["spec"]["maxReplicas"] == 12
    assert new["spec"]["metrics"][1] == pods_metric
    assert new["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 60}}
    assert "annotations" not in new["metadata"]


def test_hpa_defaults_and_validation(reg: Registry) -> None:
    assert V1 and V2
    v2 = reg.create(V2, "default", {"metadata": {"name": "d"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "w"},
                                                                         "maxReplicas": 3}})
    assert v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 80
    assert reg.create(V1, "default", hpa_v1("d1", cpu=None))["spec"]["targetCPUUtilizationPercentage"] == 80
    from master.apiserver import errors
    bad = hpa_v1("bad")
    bad["spec"]["minReplicas"] = 9
    with pytest.raises(errors.APIError) as e:
        reg.create(V1, "default", bad)
    assert e.value.code == 422 and "spec.minReplicas" in e.value.message


def test_conversion_functions_round_trip() -> None:
    status_v2 = {"currentReplicas": 2, "desiredReplicas": 3, "currentMetrics": [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40}}}],
        "conditions": [{"type": "AbleToScale", "status": "True"}]}
    obj = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
           "spec": {"maxReplicas": 3, "metrics": []}, "status": status_v2}
    v1 = hpa_v2_to_v1(obj)
    assert v1["status"]["currentCPUUtilizationPercentage"] == 40 and "conditions" not in v1["status"]
    back = hpa_v1_to_v2(v1)
    assert back["status"] == status_v2 and "annotations" not in back["metadata"]


def test_watch_delivers_each_watcher_its_version(reg: Registry, store: Store) -> None:
    assert V1 and V2
    cache = WatchCache(store)
    rev = store.current_revision()
    w1 = cache.watch(V1, "default", lambda o: True, rev)
    w2 = cache.watch(V2, None, lambda o: True, rev)
    reg.create(V2, "default", {"metadata": {"name": "w"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"},
                                                                   "maxReplicas": 2}})
    t1, o1 = w1.queue.get_nowait()
    t2, o2 = w2.queue.get_nowait()
    assert (t1, o1["apiVersion"], o1["spec"]["targetCPUUtilizationPercentage"]) == ("ADDED", "autoscaling/v1", 80)
    assert (t2, o2["apiVersion"], "metrics" in o2["spec"]) == ("ADDED", "autoscaling/v2", True)
    cache.close()


def test_events_k8s_io_shares_core_events(reg: Registry) -> None:
    assert CORE_EV and NEW_EV
    ev = {"metadata": {"name": "e1"}, "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "crt/ctl",
          "reportingInstance": "crt-1", "action": "Scale", "reason": "Scaled", "note": "scaled up", "type": "Normal",
          "regarding": {"kind": "Deployment", "name": "web", "namespace": "default"}}
    reg.create(NEW_EV, "default", ev)
    core = reg.get(CORE_EV, "default", "e1")
    assert core["apiVersion"] == "v1" and core["message"] == "scaled up"
    assert core["involvedObject"]["name"] == "web" and core["reportingComponent"] == "crt/ctl"
    again = reg.get(NEW_EV, "default", "e1")
    assert again["note"] == "scaled up" and again["regarding"]["kind"] == "Deployment" and "message" not in again
    from master.apiserver import errors
    with pytest.raises(errors.APIError) as e:
        reg.create(NEW_EV, "default", {"metadata": {"name": "e2"}, "reason": "x"})
    assert e.value.code == 422
