"""Server-side Table printing: columns, cells as upstream formats them, row objects."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from master.apiserver.printers import human_duration, table_for

NOW = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)


def ago(**kw: float) -> str:
    return (NOW - dt.timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("seconds,text", [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"), (123, "2m3s"),
    (599, "9m59s"), (600, "10m"), (3 * 3600 - 1, "179m"), (3 * 3600 + 240, "3h4m"), (4 * 3600, "4h"),
    (8 * 3600, "8h"), (47 * 3600, "47h"), (2 * 86400 + 3 * 3600, "2d3h"), (3 * 86400, "3d"),
    (45 * 86400, "45d"), (800 * 86400, "2y70d"), (730 * 86400, "2y"), (3000 * 86400, "8y"),
])
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(dt.timedelta(seconds=seconds)) == text


def _running_pod() -> dict:
    return {
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(minutes=5), "uid": "u"},
        "spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}]},
        "status": {"phase": "Running", "podIP": "10.244.1.2", "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [
                       {"name": "a", "ready": True, "restartCount": 0, "state": {"running": {}}},
                       {"name": "b", "ready": True, "restartCount": 2, "state": {"running": {}},
                        "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(seconds=90)}}}]},
    }


def test_pod_table_shape_and_cells() -> None:
    t = table_for("pods", [_running_pod()], now=NOW)
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1" and t["metadata"] == {}
    names = [c["name"] for c in t["columnDefinitions"]]
    assert names == ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]
    assert [c["priority"] for c in t["columnDefinitions"]] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert t["columnDefinitions"][0]["format"] == "name"
    assert all({"name", "type", "format", "description", "priority"} <= set(c) for c in t["columnDefinitions"])
    row = t["rows"][0]
    assert row["cells"] == ["web", "2/2", "Running", "2 (90s ago)", "5m", "10.244.1.2", "n1", "<none>", "<none>"]
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": _running_pod()["metadata"]}


def test_include_object() -> None:
    pod = _running_pod()
    assert table_for("pods", [pod], now=NOW, include_object="Object")["rows"][0]["object"] is pod
    assert "object" not in table_for("pods", [pod], now=NOW, include_object="None")["rows"][0]
    with pytest.raises(ValueError):
        table_for("pods", [pod], include_object="Everything")


def _status(pod: dict) -> str:
    return table_for("pods", [pod], now=NOW)["rows"][0]["cells"][2]


def _cells(pod: dict) -> list:
    return table_for("pods", [pod], now=NOW)["rows"][0]["cells"]


def test_pod_status_variants() -> None:
    pending = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending"}}
    assert _cells(pending)[:5] == ["p", "0/1", "Pending", "0", "<unknown>"]
    assert _cells(pending)[5:7] == ["<none>", "<none>"]

    waiting = _running_pod()
    waiting["status"]["containerStatuses"][1]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    waiting["status"]["containerStatuses"][1]["ready"] = False
    assert _cells(waiting)[1:3] == ["1/2", "CrashLoopBackOff"]

    done = _running_pod()
    for cs in done["status"]["containerStatuses"]:
        cs.update(ready=False, state={"terminated": {"exitCode": 0, "reason": "Completed"}})
    done["status"]["phase"] = "Succeeded"
    assert _cells(done)[1:3] == ["0/2", "Completed"]
    for cs in done["status"]["containerStatuses"]:
        cs["state"] = {"terminated": {"exitCode": 0}}
    assert _status(done) == "Completed"
    done["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 3}}
    assert _status(done) == "ExitCode:3"
    done["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 137, "signal": 9}}
    assert _status(done) == "Signal:9"
    done["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
    assert _status(done) == "OOMKilled"

    half = _running_pod()
    half["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    half["status"]["containerStatuses"][0]["ready"] = False
    assert _status(half) == "Running"
    half["status"]["conditions"] = []
    assert _status(half) == "NotReady"

    terminating = _running_pod()
    terminating["metadata"]["deletionTimestamp"] = ago(seconds=3)
    assert _status(terminating) == "Terminating"
    terminating["status"]["phase"] = "Succeeded"
    assert _status(terminating) != "Terminating"

    evicted = {"metadata": {"name": "e"}, "spec": {"containers": [{"name": "a"}]},
               "status": {"phase": "Failed", "reason": "Evicted"}}
    assert _status(evicted) == "Evicted"


def test_init_container_status() -> None:
    pod: dict[str, Any] = {"metadata": {"name": "i"},
           "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]},
           "status": {"phase": "Pending", "initContainerStatuses": [
               {"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
               {"name": "i2", "restartCount": 0, "state": {"running": {}}}],
               "containerStatuses": [{"name": "a", "restartCount": 0,
                                      "state": {"waiting": {"reason": "PodInitializing"}}}]}}
    assert _cells(pod)[1:3] == ["0/1", "Init:1/2"]
    pod["status"]["initContainerStatuses"][1]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    pod["status"]["initContainerStatuses"][1]["restartCount"] = 4
    assert _cells(pod)[2:4] == ["Init:CrashLoopBackOff", "4"]
    pod["status"]["initContainerStatuses"][1]["state"] = {"terminated": {"exitCode": 2}}
    assert _status(pod) == "Init:ExitCode:2"
    pod["status"]["initContainerStatuses"][1]["state"] = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    pod["status"]["phase"] = "Running"
    pod["status"]["containerStatuses"][0].update(ready=True, state={"running": {}})
    assert _cells(pod)[1:3] == ["1/1", "Running"]


def test_sidecar_init_container_counts_as_container() -> None:
    pod = {"metadata": {"name": "s"},
           "spec": {"initContainers": [{"name": "side", "restartPolicy": "Always"}], "containers": [{"name": "a"}]},
           "status": {"phase": "Running", "initContainerStatuses": [
               {"name": "side", "ready": True, "started": True, "restartCount": 1, "state": {"running": {}}}],
               "containerStatuses": [{"name": "a", "ready": True, "restartCount": 0, "state": {"running": {}}}]}}
    assert _cells(pod)[1:4] == ["2/2", "Running", "1"]


def test_readiness_gates() -> None:
    pod = _running_pod()
    pod["spec"]["readinessGates"] = [{"conditionType": "x/one"}, {"conditionType": "x/two"}]
    pod["status"]["conditions"].append({"type": "x/one", "status": "True"})
    assert _cells(pod)[8] == "1/2"


def test_node_table() -> None:
    node = {"metadata": {"name": "n1", "creationTimestamp": ago(hours=3, minutes=4),
                         "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": "",
                                    "kubernetes.io/role": "edge"}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.2"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.0-coracle", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                    "kernelVersion": "6.18.0", "containerRuntimeVersion": "runc://1.1.5"}}}
    t = table_for("nodes", [node], now=NOW)
    assert [c["name"] for c in t["columnDefinitions"]] == [
        "Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP", "OS-Image", "Kernel-Version",
        "Container-Runtime"]
    assert t["rows"][0]["cells"] == ["n1", "Ready,SchedulingDisabled", "control-plane,edge,worker", "3h4m",
                                     "v1.32.0-coracle", "10.0.0.2", "<none>", "Debian GNU/Linux 12 (bookworm)",
                                     "6.18.0", "runc://1.1.5"]
    bare = {"metadata": {"name": "n2"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}
    cells = table_for("nodes", [bare, {"metadata": {"name": "n3"}}], now=NOW)["rows"]
    assert cells[0]["cells"][1:3] == ["NotReady", "<none>"]
    assert cells[1]["cells"][1] == "Unknown" and cells[1]["cells"][7] == "<unknown>"


def test_namespace_table() -> None:
    t = table_for("namespaces", [{"metadata": {"name": "default", "creationTimestamp": ago(days=45)},
                                  "status": {"phase": "Active"}}], now=NOW)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert t["rows"][0]["cells"] == ["default", "Active", "45d"]


def test_event_table() -> None:
    ev = {"metadata": {"name": "web.17a", "namespace": "default"}, "type": "Warning", "reason": "BackOff",
          "message": " Back-off restarting failed container \n", "count": 5,
          "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{a}"},
          "source": {"component": "kubelet", "host": "n1"},
          "firstTimestamp": ago(minutes=10), "lastTimestamp": ago(seconds=30)}
    t = table_for("events", [ev], now=NOW)
    cols = t["columnDefinitions"]
    assert [c["name"] for c in cols if c["priority"] == 0] == ["Last Seen", "Type", "Reason", "Object", "Message"]
    assert t["rows"][0]["cells"] == ["30s", "Warning", "BackOff", "pod/web", "spec.containers{a}", "kubelet, n1",
                                     "Back-off restarting failed container", "10m", 5, "web.17a"]
    ev2 = {"metadata": {"name": "e2"}, "eventTime": "2024-05-01T11:59:00.123456Z", "reportingComponent": "sched",
           "involvedObject": {"kind": "Node"}}
    cells = table_for("events", [ev2], now=NOW)["rows"][0]["cells"]
    assert cells[0] == "59s" and cells[3] == "node" and cells[5] == "sched" and cells[7] == "59s" and cells[8] == 1


def test_generic_fallback() -> None:
    t = table_for("podtemplates", [{"metadata": {"name": "cm", "creationTimestamp": ago(seconds=5)}},
                                 {"metadata": {"name": "cm2"}}], now=NOW)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Age"]
    assert [r["cells"] for r in t["rows"]] == [["cm", "5s"], ["cm2", "<unknown>"]]
    assert table_for("podtemplates", [], now=NOW)["rows"] == []


def test_column_definitions_are_copies() -> None:
    t = table_for("pods", [], now=NOW)
    t["columnDefinitions"][0]["name"] = "changed"
    assert table_for("pods", [], now=NOW)["columnDefinitions"][0]["name"] == "Name"
