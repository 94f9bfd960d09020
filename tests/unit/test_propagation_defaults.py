"""Each kind's default deletion propagation, as upstream's strategies set it:
core/v1 ReplicationControllers orphan their dependents when a DELETE names no
policy (backwards compatibility), apps/v1 kinds and the rest go Background,
events never get a garbage-collector finalizer.  The pure decision first, then
a real API server on loopback with the garbage collector running."""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread, pod, unique  # noqa: E402

from apimachinery import kinds  # noqa: E402
from apimachinery.client import Client, StatusError  # noqa: E402
from master.apiserver import errors  # noqa: E402
from master.apiserver.deletion import propagation_policy  # noqa: E402
from master.controllers import garbagecollector as gc  # noqa: E402

RC = kinds.lookup("", "v1", "replicationcontrollers")
RS = kinds.lookup("apps", "v1", "replicasets")
CM = kinds.lookup("", "v1", "configmaps")
EVENTS = kinds.lookup("", "v1", "events")
EVENTS_V1 = kinds.lookup("events.k8s.io", "v1", "events")
PODS = kinds.lookup("", "v1", "pods")


# ---- the decision (pure) ------------------------------------------------------------
def test_defaults_by_kind() -> None:
    assert propagation_policy({}, RC) == "Orphan"
    assert propagation_policy({}, RS) == "Background" and propagation_policy({}, CM) == "Background"
    assert propagation_policy({}) == "Background"  # no kind given: the generic default
    jobs = kinds.ResourceInfo("batch", "v1", "Job", "jobs", True)  # upstream's other OrphanDependents kind
    assert propagation_policy({}, jobs) == "Orphan"


@pytest.mark.parametrize("options,expected", [
    ({"propagationPolicy": "Background"}, "Background"),
    ({"propagationPolicy": "Foreground"}, "Foreground"),
    ({"orphanDependents": False}, "Background"),
    ({"orphanDependents": True}, "Orphan"),
])
def test_options_override_the_default(options: dict[str, Any], expected: str) -> None:
    assert propagation_policy(options, RC) == expected
    assert propagation_policy(options, RS) == expected


def test_a_finalizer_the_object_holds_overrides_the_default() -> None:
    assert propagation_policy({}, RC, ["foregroundDeletion"]) == "Foreground"
    assert propagation_policy({}, RS, ["orphan"]) == "Orphan"
    assert propagation_policy({"propagationPolicy": "Background"}, RC, ["orphan"]) == "Background"


def test_events_never_propagate_but_bad_values_are_still_400() -> None:
    for res in (EVENTS, EVENTS_V1):
        assert propagation_policy({"propagationPolicy": "Foreground"}, res) == "Background"
        assert propagation_policy({"orphanDependents": True}, res) == "Background"
    with pytest.raises(errors.APIError) as e:
        propagation_policy({"propagationPolicy": "Sideways"}, EVENTS)
    assert e.value.code == 400


# ---- over HTTP, with the garbage collector --------------------------------------------
def run(srv: ServerThread, scenario: Callable[[Client], Awaitable[None]]) -> None:
    async def main() -> None:
        async with Client(srv.url) as c:
            task = asyncio.create_task(gc.GarbageCollector(c).run())
            try:
                await asyncio.wait_for(scenario(c), 20)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    asyncio.run(main())


async def gone(c: Client, res: Any, ns: str, name: str) -> bool:
    for _ in range(200):
        try:
            await c.get(res, ns, name)
        except StatusError as e:
            if e.code == 404:
                return True
            raise
        await asyncio.sleep(0.05)
    return False


async def rc_with_pods(c: Client, name: str) -> list[str]:
    rc = await c.create(RC, "default", {
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name},
        "spec": {"replicas": 0, "selector": {"app": name}, "template": {
            "metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}})
    ref = {"apiVersion": "v1", "kind": "ReplicationController", "name": name, "uid": rc["metadata"]["uid"],
           "controller": True, "blockOwnerDeletion": True}
    pods = [f"{name}-{i}" for i in range(2)]
    for p in pods:
        body = pod(p, labels={"app": name})
        body["metadata"]["ownerReferences"] = [ref]
        await c.create(PODS, "default", body)
    await asyncio.sleep(0.3)  # the collector has seen them
    return pods


def test_rc_delete_without_options_orphans_its_pods(srv: ServerThread) -> None:
    name = unique("crt-rc")

    async def scenario(c: Client) -> None:
        pods = await rc_with_pods(c, name)
        marked = await c.request("DELETE", RC.path("default", name))  # no DeleteOptions at all
        assert "orphan" in marked["metadata"]["finalizers"] and marked["metadata"]["deletionTimestamp"]
        assert await gone(c, RC, "default", name)
        for p in pods:
            left = await c.get(PODS, "default", p)
            assert not left["metadata"].get("ownerReferences"), left["metadata"]
            await c.delete(PODS, "default", p, grace_period=0)
    run(srv, scenario)


def test_rc_delete_with_background_deletes_its_pods(srv: ServerThread) -> None:
    name = unique("crt-rc")

    async def scenario(c: Client) -> None:
        pods = await rc_with_pods(c, name)
        # what `kubectl delete rc` sends
        await c.request("DELETE", RC.path("default", name), body={"propagationPolicy": "Background"})
        assert await gone(c, RC, "default", name)
        for p in pods:
            assert await gone(c, PODS, "default", p)
    run(srv, scenario)


def test_replicaset_delete_without_options_is_background(srv: ServerThread) -> None:
    name = unique("crt-rs")

    async def scenario(c: Client) -> None:
        rs = await c.create(RS, "default", {
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}})
        body = pod(name + "-0", labels={"app": name})
        body["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name,
                                                "uid": rs["metadata"]["uid"], "controller": True}]
        await c.create(PODS, "default", body)
        await asyncio.sleep(0.3)
        gone_now = await c.request("DELETE", RS.path("default", name))
        assert not gone_now["metadata"].get("finalizers")
        assert await gone(c, PODS, "default", name + "-0")
    run(srv, scenario)


def test_event_delete_ignores_foreground(srv: ServerThread) -> None:
    name = unique("crt-ev")

    async def scenario(c: Client) -> None:
        await c.create(EVENTS, "default", {
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
            "involvedObject": {"kind": "Pod", "name": "x", "namespace": "default"}, "reason": "Test",
            "message": "m", "type": "Normal"})
        done = await c.request("DELETE", EVENTS.path("default", name), body={"propagationPolicy": "Foreground"})
        assert not done["metadata"].get("finalizers")
        assert await gone(c, EVENTS, "default", name)
    run(srv, scenario)


def test_a_later_delete_swaps_the_gc_finalizer(srv: ServerThread) -> None:
    """A second DELETE with another policy replaces the first one's GC finalizer (upstream's generic
    store): Orphan after Foreground, and Background drops both; other finalizers stay."""
    name = unique("crt-cm")

    async def scenario(c: Client) -> None:
        await c.create(CM, "default", {"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": name, "finalizers": ["example.com/hold"]}})
        first = await c.request("DELETE", CM.path("default", name), body={"propagationPolicy": "Foreground"})
        assert first["metadata"]["finalizers"] == ["example.com/hold", "foregroundDeletion"]
        second = await c.request("DELETE", CM.path("default", name), body={"propagationPolicy": "Orphan"})
        assert second["metadata"]["finalizers"] == ["example.com/hold", "orphan"]
        third = await c.request("DELETE", CM.path("default", name), body={"propagationPolicy": "Background"})
        assert third["metadata"]["finalizers"] == ["example.com/hold"]
        held = await c.get(CM, "default", name)
        assert held["metadata"]["finalizers"] == ["example.com/hold"] and held["metadata"]["deletionTimestamp"]
        await c.patch(CM, "default", name, {"metadata": {"finalizers": None}})
        assert await gone(c, CM, "default", name)
    run(srv, scenario)
