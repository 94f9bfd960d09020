"""Field selectors and the selectable fields of each kind."""
from __future__ import annotations

import pytest

from apimachinery.fields import (
    FieldSelectorError,
    object_fields,
    parse_field_selector,
    supported_fields,
    unsupported_fields,
)

POD = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
             "serviceAccountName": "default"},
    "status": {"phase": "Running", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}]},
}


def test_parse_and_requirements() -> None:
    sel = parse_field_selector("spec.nodeName=n1, status.phase==Running,metadata.name!=x")
    assert sel.requirements == (("spec.nodeName", "=", "n1"), ("status.phase", "=", "Running"),
                                ("metadata.name", "!=", "x"))
    assert sel.value_for("spec.nodeName") == "n1"
    assert sel.value_for("metadata.name") is None
    assert sel.value_for("nope") is None


def test_matching() -> None:
    fields = object_fields("Pod", POD)
    assert parse_field_selector("spec.nodeName=n1,status.phase=Running").matches(fields)
    assert not parse_field_selector("spec.nodeName=n2").matches(fields)
    assert parse_field_selector("spec.nodeName!=n2").matches(fields)
    assert not parse_field_selector("spec.nodeName!=n1").matches(fields)
    assert parse_field_selector("status.nominatedNodeName=").matches(fields)
    assert not parse_field_selector("status.nominatedNodeName!=").matches(fields)
    empty = parse_field_selector("")
    assert empty.empty and empty.matches(fields) and empty.matches({})


def test_unscheduled_pods_selector_as_scheduler_uses_it() -> None:
    sel = parse_field_selector("spec.nodeName=,status.phase!=Succeeded,status.phase!=Failed")
    pending = {"metadata": {"name": "p"}, "spec": {}, "status": {"phase": "Pending"}}
    assert sel.matches(object_fields("Pod", pending))
    assert not sel.matches(object_fields("Pod", POD))


def test_escapes() -> None:
    sel = parse_field_selector(r"metadata.name=a\,b\=c\!d\\e,type=x")
    assert sel.requirements == (("metadata.name", "=", "a,b=c!d\\e"), ("type", "=", "x"))
    assert parse_field_selector(str(sel)) == sel


@pytest.mark.parametrize("bad", ["novalue", "=x", "a=b,,c=d", r"a=b\q", "a=b,"])
def test_invalid(bad: str) -> None:
    with pytest.raises(FieldSelectorError):
        parse_field_selector(bad)


def test_pod_fields() -> None:
    f = object_fields("Pod", POD)
    assert f == {
        "metadata.name": "web-1", "metadata.namespace": "default", "spec.nodeName": "n1",
        "spec.restartPolicy": "Always", "spec.schedulerName": "default-scheduler",
        "spec.serviceAccountName": "default", "spec.hostNetwork": "false", "status.phase": "Running",
        "status.podIP": "10.244.1.5", "status.nominatedNodeName": "",
    }
    assert object_fields("pods", {"metadata": {"name": "x"}})["spec.nodeName"] == ""


def test_other_kinds() -> None:
    ev = {"metadata": {"name": "e", "namespace": "ns"}, "involvedObject": {"kind": "Pod", "name": "web-1",
          "uid": "u1"}, "reason": "Started", "source": {"component": "kubelet"}, "type": "Normal"}
    f = object_fields("Event", ev)
    assert f["involvedObject.kind"] == "Pod" and f["involvedObject.name"] == "web-1"
    assert f["involvedObject.fieldPath"] == "" and f["source"] == "kubelet" and f["reason"] == "Started"
    assert object_fields("Node", {"metadata": {"name": "n"}, "spec": {"unschedulable": True}}) == {
        "metadata.name": "n", "metadata.namespace": "", "spec.unschedulable": "true"}
    assert object_fields("Namespace", {"metadata": {"name": "a"}, "status": {"phase": "Active"}})["status.phase"] == "Active"
    assert object_fields("Secret", {"metadata": {"name": "s"}, "type": "Opaque"})["type"] == "Opaque"
    assert object_fields("ReplicaSet", {"metadata": {"name": "r"}, "status": {"replicas": 3}})["status.replicas"] == "3"
    assert object_fields("ConfigMap", {"metadata": {"name": "c", "namespace": "d"}}) == {
        "metadata.name": "c", "metadata.namespace": "d"}


def test_unsupported_fields() -> None:
    sel = parse_field_selector("spec.nodeName=n1,spec.bogus=1,metadata.name=x,spec.bogus!=2")
    assert unsupported_fields("Pod", sel) == ["spec.bogus"]
    assert unsupported_fields("ConfigMap", sel) == ["spec.nodeName", "spec.bogus"]
    assert "status.replicas" in supported_fields("ReplicationController")
