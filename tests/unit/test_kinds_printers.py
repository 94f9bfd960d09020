"""Server-side Table columns and cells of the issue-3 kinds, as upstream's
printers write them, and the kinds table's short names, categories and scope
as discovery reports them."""
from __future__ import annotations

import datetime as dt
from typing import Any

from apimachinery import kinds
from master.apiserver import discovery
from master.apiserver.printers import table_for

NOW = dt.datetime(2026, 1, 1, 1, 0, 0, tzinfo=dt.UTC)
MD = {"name": "x", "creationTimestamp": "2026-01-01T00:00:00Z"}


def table(plural: str, obj: dict[str, Any]) -> tuple[list[str], list[Any], list[str]]:
    t = table_for(plural, [{"metadata": MD, **obj}], now=NOW)
    cols = t["columnDefinitions"]
    return [c["name"] for c in cols if c["priority"] == 0], t["rows"][0]["cells"], [c["name"] for c in cols if c["priority"]]


def test_services() -> None:
    cols, cells, wide = table("services", {"spec": {"type": "NodePort", "clusterIP": "10.96.3.4", "clusterIPs": ["10.96.3.4"],
                                                    "selector": {"b": "2", "a": "1"},
                                                    "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080},
                                                              {"port": 53, "protocol": "UDP"}]}})
    assert cols == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"] and wide == ["Selector"]
    assert cells == ["x", "NodePort", "10.96.3.4", "<none>", "80:30080/TCP,53/UDP", "60m", "a=1,b=2"]
    assert table("services", {"spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.9", "ports": []}})[1][3:5] == ["<pending>", "<none>"]
    assert table("services", {"spec": {"type": "ExternalName", "externalName": "db.example"}})[1][2:4] == ["<none>", "db.example"]


def test_workloads() -> None:
    spec = {"replicas": 3, "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["b", "a"]}]},
        "template": {"spec": {"containers": [{"name": "c1", "image": "busybox"}, {"name": "c2", "image": "nginx:1"}]}}}
    cols, cells, wide = table("deployments", {"spec": spec, "status": {"readyReplicas": 2, "updatedReplicas": 3,
                                                                       "availableReplicas": 2}})
    assert cols == ["Name", "Ready", "Up-to-date", "Available", "Age"] and wide == ["Containers", "Images", "Selector"]
    assert cells == ["x", "2/3", 3, 2, "60m", "c1,c2", "busybox,nginx:1", "app=web,tier in (a,b)"]
    cols, cells, wide = table("replicasets", {"spec": spec, "status": {"replicas": 3, "readyReplicas": 1}})
    assert cols == ["Name", "Desired", "Current", "Ready", "Age"] and cells[:5] == ["x", 3, 3, 1, "60m"]
    rc = table("replicationcontrollers", {"kind": "ReplicationController",
                                          "spec": {"replicas": 1, "selector": {"app": "w"}, "template": spec["template"]}})
    assert rc[1][-1] == "app=w"


def test_hpa_targets_from_either_version() -> None:
    v2 = {"apiVersion": "autoscaling/v2", "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                                                   "minReplicas": 1, "maxReplicas": 5, "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]},
        "status": {"currentReplicas": 2}}
    cols, cells, _ = table("horizontalpodautoscalers", v2)
    assert cols == ["Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"]
    assert cells == ["x", "Deployment/web", "cpu: <unknown>/80%", "1", 5, 2, "60m"]
    v1 = {"apiVersion": "autoscaling/v1", "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                                                   "maxReplicas": 5, "targetCPUUtilizationPercentage": 50},
          "status": {"currentReplicas": 1, "currentCPUUtilizationPercentage": 20}}
    assert table("horizontalpodautoscalers", v1)[1][2:4] == ["cpu: 20%/50%", "<unset>"]


def test_config_and_access() -> None:
    assert table("configmaps", {"data": {"a": "1", "b": "2"}, "binaryData": {"c": ""}})[:2] == (["Name", "Data", "Age"], ["x", 3, "60m"])
    assert table("secrets", {"type": "Opaque", "data": {"a": ""}})[:2] == (["Name", "Type", "Data", "Age"], ["x", "Opaque", 1, "60m"])
    assert table("serviceaccounts", {})[:2] == (["Name", "Secrets", "Age"], ["x", 0, "60m"])
    assert table("roles", {})[:2] == (["Name", "Created At"], ["x", "2026-01-01T00:00:00Z"])
    assert table("limitranges", {})[0] == ["Name", "Created At"]
    cols, cells, wide = table("clusterrolebindings", {"roleRef": {"kind": "ClusterRole", "name": "admin"}, "subjects": [
        {"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
        {"kind": "ServiceAccount", "name": "sa", "namespace": "kube-system"}]})
    assert cols == ["Name", "Role", "Age"] and wide == ["Users", "Groups", "ServiceAccounts"]
    assert cells == ["x", "ClusterRole/admin", "60m", "alice", "devs", "kube-system:sa"]
    assert table("leases", {"spec": {"holderIdentity": "node-1"}})[:2] == (["Name", "Holder", "Age"], ["x", "node-1", "60m"])
    q = table("resourcequotas", {"status": {"hard": {"pods": "10", "limits.cpu": "2"}, "used": {"pods": "1"}}})
    assert q[:2] == (["Name", "Age", "Request", "Limit"], ["x", "60m", "pods: 1/10", "limits.cpu: 0/2"])


def test_network_and_storage() -> None:
    eps = {"subsets": [{"addresses": [{"ip": f"10.250.0.{i}"} for i in range(1, 5)], "ports": [{"port": 80}]}]}
    assert table("endpoints", eps)[1] == ["x", "10.250.0.1:80,10.250.0.2:80,10.250.0.3:80 + 1 more...", "60m"]
    assert table("endpoints", {})[1][1] == "<none>"
    cols, cells, _ = table("endpointslices", {"addressType": "IPv4", "ports": [{"port": 80}, {"port": 443}],
                                              "endpoints": [{"addresses": ["10.250.0.1"]}]})
    assert cols == ["Name", "AddressType", "Ports", "Endpoints", "Age"] and cells == ["x", "IPv4", "80,443", "10.250.0.1", "60m"]
    ing = {"spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example"}, {"host": "b.example"}], "tls": [{}]},
           "status": {"loadBalancer": {"ingress": [{"ip": "10.250.0.9"}]}}}
    assert table("ingresses", ing)[:2] == (["Name", "Class", "Hosts", "Address", "Ports", "Age"],
                                           ["x", "nginx", "a.example,b.example", "10.250.0.9", "80, 443", "60m"])
    pv = {"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                   "persistentVolumeReclaimPolicy": "Retain", "claimRef": {"namespace": "default", "name": "c"},
                   "volumeMode": "Filesystem"}, "status": {"phase": "Bound"}}
    cols, cells, wide = table("persistentvolumes", pv)
    assert cols == ["Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim", "StorageClass",
                    "VolumeAttributesClass", "Reason", "Age"] and wide == ["VolumeMode"]
    assert cells == ["x", "1Gi", "RWO,ROX", "Retain", "Bound", "default/c", "", "<unset>", "", "60m", "Filesystem"]
    cols, cells, _ = table("persistentvolumeclaims", {"spec": {"volumeName": "pv1"}, "status": {
        "phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}})
    assert cols == ["Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass", "VolumeAttributesClass", "Age"]
    assert cells[:5] == ["x", "Bound", "pv1", "1Gi", "RWO"]


def test_events_k8s_io_prints_like_core_events() -> None:
    ev = {"apiVersion": "events.k8s.io/v1", "type": "Normal", "reason": "Scaled", "note": "up",
          "regarding": {"kind": "Deployment", "name": "web"}, "eventTime": "2026-01-01T00:59:00Z"}
    cells = table("events", ev)[1]
    assert cells[1:4] == ["Normal", "Scaled", "deployment/web"] and cells[6] == "up"


def test_kinds_table_as_discovery_reports_it() -> None:
    res = {(r["name"]): r for r in discovery.resource_list("", "v1")["resources"]}
    want = {"services": "svc", "endpoints": "ep", "configmaps": "cm", "replicationcontrollers": "rc",
            "resourcequotas": "quota", "limitranges": "limits", "persistentvolumes": "pv",
            "persistentvolumeclaims": "pvc", "serviceaccounts": "sa"}
    for plural, short in want.items():
        assert res[plural]["shortNames"] == [short], plural
    assert "shortNames" not in res["secrets"]
    assert res["persistentvolumes"]["namespaced"] is False
    all_cat = sorted(r.plural for r in kinds.RESOURCES if "all" in r.categories and r.stored_as is None)
    assert all_cat == ["deployments", "horizontalpodautoscalers", "pods", "replicasets", "replicationcontrollers", "services"]
    apps = {r["name"]: r for r in discovery.resource_list("apps", "v1")["resources"]}
    assert apps["deployments"]["shortNames"] == ["deploy"] and "deployments/scale" in apps
    assert apps["deployments/scale"]["kind"] == "Scale"
    scoped = {r.plural: r.namespaced for r in kinds.RESOURCES if r.group == "rbac.authorization.k8s.io"}
    assert scoped == {"roles": True, "rolebindings": True, "clusterroles": False, "clusterrolebindings": False}
    agg = discovery.aggregated(False, discovery.AGGREGATED_V2)
    groups = {i["metadata"]["name"]: [v["version"] for v in i["versions"]] for i in agg["items"]}
    assert groups["autoscaling"] == ["v2", "v1"] and groups["events.k8s.io"] == ["v1"]
