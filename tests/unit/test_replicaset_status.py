"""A new ReplicaSet's status carries `replicas: 0`, as upstream serialises it
(no omitempty): the Python client's typed V1ReplicaSetStatus requires it.
A Deployment's status stays empty (every field omitempty upstream)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import pod  # noqa: E402

from apimachinery import kinds  # noqa: E402
from master.apiserver.registry import Registry  # noqa: E402
from master.store import open_store  # noqa: E402

RS = kinds.lookup("apps", "v1", "replicasets")
DEPLOY = kinds.lookup("apps", "v1", "deployments")
NS = kinds.lookup("", "v1", "namespaces")
assert RS and DEPLOY and NS


@pytest.fixture
def reg() -> Iterator[Registry]:
    store = open_store("sqlite://:memory:")
    r = Registry(store, clock=lambda: "2026-01-01T00:00:00Z")
    r.create(NS, None, {"metadata": {"name": "default"}})
    try:
        yield r
    finally:
        store.close()


def workload(name: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
        "metadata": {"labels": {"app": name}}, "spec": pod("x")["spec"]}}}


def test_replicaset_status_has_replicas(reg: Registry) -> None:
    rs = reg.create(RS, "default", {**workload("crt-rs"), "status": {"replicas": 7, "readyReplicas": 7}})
    assert rs["status"] == {"replicas": 0}
    assert reg.get(RS, "default", "crt-rs")["status"] == {"replicas": 0}
    assert reg.create(DEPLOY, "default", workload("crt-d"))["status"] == {}
