"""The namespace controller and the garbage collector against a real API
server on loopback: their pure decisions, then whole runs (a namespace
emptied and finalized; background, foreground and orphan propagation)."""
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
from master.controllers import garbagecollector as gc  # noqa: E402
from master.controllers.namespace import NamespaceController, finalized, namespaced_resources, needs_cleanup  # noqa: E402

CM = kinds.lookup("", "v1", "configmaps")
NS = kinds.lookup("", "v1", "namespaces")
PODS = kinds.lookup("", "v1", "pods")


def test_namespace_decisions() -> None:
    live = {"metadata": {"name": "a", "resourceVersion": "4"}, "spec": {"finalizers": ["kubernetes", "x/y"]}}
    assert not needs_cleanup(live)
    dying = live | {"metadata": {"name": "a", "resourceVersion": "4", "deletionTimestamp": "2024-01-01T00:00:00Z"}}
    assert needs_cleanup(dying)
    assert finalized(dying)["spec"]["finalizers"] == ["x/y"]
    assert finalized(dying)["metadata"]["resourceVersion"] == "4"
    assert not needs_cleanup(dying | {"spec": {"finalizers": []}})
    plurals = {r.plural for r in namespaced_resources()}
    assert {"pods", "configmaps"} <= plurals and "namespaces" not in plurals and "nodes" not in plurals


def test_gc_decisions() -> None:
    deps = [{"metadata": {"ownerReferences": [{"uid": "o", "blockOwnerDeletion": True}, {"uid": "p"}]}},
            {"metadata": {"ownerReferences": [{"uid": "o"}]}}]
    assert gc.blocking(deps, "o") == deps[:1] and gc.blocking(deps, "p") == []
    assert gc.refs_without(deps[0], "o") == [{"uid": "p"}]
    assert gc.owner_gone({"uid": "o"}, None) and gc.owner_gone({"uid": "o"}, {"metadata": {"uid": "new"}})
    assert not gc.owner_gone({"uid": "o"}, {"metadata": {"uid": "o"}})
    marked = {"metadata": {"deletionTimestamp": "t", "finalizers": ["orphan"]}}
    assert gc.being_deleted_with(marked, "orphan") and not gc.being_deleted_with(marked, "foregroundDeletion")


def run(srv: ServerThread, controller: Callable[[Client], Any], scenario: Callable[[Client], Awaitable[None]]) -> None:
    async def main() -> None:
        async with Client(srv.url) as c:
            task = asyncio.create_task(controller(c).run())
            try:
                await asyncio.wait_for(scenario(c), 20)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    asyncio.run(main())


async def gone(c: Client, res: Any, ns: str | None, name: str, timeout: float = 10) -> bool:
    for _ in range(int(timeout / 0.05)):
        try:
            await c.get(res, ns, name)
        except StatusError as e:
            if e.code == 404:
                return True
            raise
        await asyncio.sleep(0.05)
    return False


def cm(name: str, owner: dict[str, Any] | None = None, block: bool = False) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if owner is not None:
        md["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
                                  "uid": owner["metadata"]["uid"], "blockOwnerDeletion": block}]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": {}}


def test_namespace_controller_empties_and_finalizes(srv: ServerThread) -> None:
    name = unique("crt-nsc")

    async def scenario(c: Client) -> None:
        await c.create(NS, None, {"metadata": {"name": name}})
        await c.create(CM, name, cm("one"))
        await c.create(PODS, name, pod("p"))
        await c.delete(NS, None, name)
        assert (await c.get(NS, None, name))["status"]["phase"] == "Terminating"
        assert await gone(c, NS, None, name)
        assert (await c.list(CM, name))["items"] == [] and (await c.list(PODS, name))["items"] == []
    run(srv, NamespaceController, scenario)


@pytest.mark.parametrize("policy", ["Background", "Foreground", "Orphan"])
def test_garbage_collector_propagation(srv: ServerThread, policy: str) -> None:
    ns = "default"
    p = unique("crt-gc")

    async def scenario(c: Client) -> None:
        owner = await c.create(CM, ns, cm(p + "-owner"))
        await c.create(CM, ns, cm(p + "-a", owner, block=True))
        await c.create(CM, ns, cm(p + "-b", owner))
        await asyncio.sleep(0.3)  # the collector has seen them (it must not touch live owners' dependents)
        assert (await c.get(CM, ns, p + "-a"))["metadata"]["ownerReferences"]
        await c.request("DELETE", CM.path(ns, p + "-owner"), body={"propagationPolicy": policy})
        assert await gone(c, CM, ns, p + "-owner")
        if policy == "Orphan":
            for d in ("-a", "-b"):
                left = await c.get(CM, ns, p + d)
                assert not left["metadata"].get("ownerReferences")
                await c.delete(CM, ns, p + d)
        else:
            assert await gone(c, CM, ns, p + "-a") and await gone(c, CM, ns, p + "-b")
    run(srv, gc.GarbageCollector, scenario)
