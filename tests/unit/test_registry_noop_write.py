"""A write that changes nothing is skipped, as upstream's storage does: the
resourceVersion stays, no revision is spent and watchers see no event
(kubectl prints "patched (no change)" from that)."""
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

PODS = kinds.lookup("", "v1", "pods")
NS = kinds.lookup("", "v1", "namespaces")
assert PODS and NS


@pytest.fixture
def reg() -> Iterator[Registry]:
    store = open_store("sqlite://:memory:")
    r = Registry(store, clock=lambda: "2026-01-01T00:00:00Z")
    r.create(NS, None, {"metadata": {"name": "default"}})
    try:
        yield r
    finally:
        store.close()


def test_noop_patch_and_update_keep_the_version(reg: Registry) -> None:
    p = reg.create(PODS, "default", pod("web"))
    rv = p["metadata"]["resourceVersion"]
    head = reg.store.list("/")[1]
    same, _ = reg.patch(PODS, "default", "web", "application/merge-patch+json", {"spec": {"restartPolicy": "Always"}})
    assert same["metadata"]["resourceVersion"] == rv
    got = reg.get(PODS, "default", "web")
    assert reg.update(PODS, "default", "web", got)["metadata"]["resourceVersion"] == rv
    assert reg.store.list("/")[1] == head  # no revision spent
    changed, _ = reg.patch(PODS, "default", "web", "application/merge-patch+json", {"metadata": {"labels": {"a": "b"}}})
    assert int(changed["metadata"]["resourceVersion"]) > int(rv)
