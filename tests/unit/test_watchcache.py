"""The watch cache on an in-memory store: fan-out by resource, namespace and
selector (with ADDED/DELETED on selector transitions), replay from a
revision, 410 for revisions older than the window, and slow watchers
dropped."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Iterator

import pytest

from apimachinery import kinds
from master.apiserver import storage
from master.apiserver.watchcache import WatchCache
from master.store import Store, open_store

PODS = kinds.lookup("", "v1", "pods")
NODES = kinds.lookup("", "v1", "nodes")
assert PODS and NODES


@pytest.fixture
def store() -> Iterator[Store]:
    s = open_store("sqlite://:memory:")
    try:
        yield s
    finally:
        s.close()


def put(store: Store, ns: str, name: str, node: str = "", phase: str = "Pending") -> int:
    assert PODS is not None
    key = storage.object_key(PODS, ns, name)
    obj = {"metadata": {"name": name, "namespace": ns}, "spec": {"nodeName": node}, "status": {"phase": phase}}
    if store.get(key) is None:
        return store.create(key, json.dumps(obj).encode())
    return store.update(key, json.dumps(obj).encode())


def drain(w: Any) -> list[tuple[str, str]]:
    out = []
    while not w.queue.empty():
        item = w.queue.get_nowait()
        out.append(item if item is None else (item[0], item[1]["metadata"]["name"]))
    return out


def everything(_obj: dict[str, Any]) -> bool:
    return True


def test_fan_out_by_resource_and_namespace(store: Store) -> None:
    assert PODS and NODES
    cache = WatchCache(store)
    all_pods = cache.watch(PODS, None, everything, store.current_revision())
    ns_a = cache.watch(PODS, "a", everything, store.current_revision())
    nodes = cache.watch(NODES, None, everything, store.current_revision())
    put(store, "a", "p1")
    put(store, "b", "p2")
    put(store, "a", "p1", node="n1")
    store.delete(storage.object_key(PODS, "a", "p1"))
    store.create(storage.object_key(NODES, None, "n1"), b'{"metadata":{"name":"n1"}}')
    store.create("/registry/unknown/things/x", b"{}")  # not a resource: ignored
    assert drain(all_pods) == [("ADDED", "p1"), ("ADDED", "p2"), ("MODIFIED", "p1"), ("DELETED", "p1")]
    assert drain(ns_a) == [("ADDED", "p1"), ("MODIFIED", "p1"), ("DELETED", "p1")]
    assert drain(nodes) == [("ADDED", "n1")]
    assert cache.watcher_count == 3
    cache.stop(ns_a)
    put(store, "a", "p3")
    assert drain(ns_a) == [] and cache.watcher_count == 2
    cache.close()
    assert cache.watcher_count == 0


def test_selector_transitions(store: Store) -> None:
    assert PODS is not None
    cache = WatchCache(store)

    def on_n1_running(o: dict[str, Any]) -> bool:
        return o["spec"].get("nodeName") == "n1" and o["status"]["phase"] != "Succeeded"

    w = cache.watch(PODS, None, on_n1_running, store.current_revision())
    put(store, "a", "p")                       # does not match: nothing
    put(store, "a", "p", node="n1")            # starts matching: ADDED
    put(store, "a", "p", node="n1", phase="Running")  # still matches: MODIFIED
    put(store, "a", "p", node="n1", phase="Succeeded")  # stops matching: DELETED
    put(store, "a", "p", node="n1", phase="Succeeded")  # matched neither before nor after: nothing
    store.delete(storage.object_key(PODS, "a", "p"))     # deleted while not matching: nothing
    assert drain(w) == [("ADDED", "p"), ("MODIFIED", "p"), ("DELETED", "p")]
    cache.close()


def test_replay_from_revision_and_410(store: Store) -> None:
    assert PODS is not None
    cache = WatchCache(store, window_seconds=0.05)
    r1 = put(store, "a", "p1")
    put(store, "a", "p2")
    w = cache.watch(PODS, None, everything, r1)
    assert drain(w) == [("ADDED", "p2")]
    time.sleep(0.08)
    r3 = put(store, "a", "p3")
    time.sleep(0.08)
    assert cache.oldest_resumable() == r3
    with pytest.raises(LookupError):
        cache.watch(PODS, None, everything, r1)
    w2 = cache.watch(PODS, None, everything, r3)  # at the edge of the window: fine, nothing to replay
    put(store, "a", "p4")
    assert drain(w2) == [("ADDED", "p4")]
    cache.close()


def test_event_count_bound_moves_the_window(store: Store) -> None:
    assert PODS is not None
    cache = WatchCache(store, max_events=3)
    revs = [put(store, "a", f"p{i}") for i in range(5)]
    assert cache.oldest_resumable() >= revs[1]
    with pytest.raises(LookupError):
        cache.watch(PODS, None, everything, revs[0])
    w = cache.watch(PODS, None, everything, revs[2])
    assert drain(w) == [("ADDED", "p3"), ("ADDED", "p4")]
    cache.close()


def test_slow_watcher_is_closed(store: Store) -> None:
    assert PODS is not None
    cache = WatchCache(store)
    w = cache.watch(PODS, None, everything, store.current_revision())
    w.limit = 3
    for i in range(6):
        put(store, "a", f"p{i}")
    got = drain(w)
    assert got == [("ADDED", "p0"), ("ADDED", "p1"), ("ADDED", "p2"), None]  # None: relist
    assert w.closed
    cache.close()


def test_watcher_queue_wakes_an_async_reader(store: Store) -> None:
    assert PODS is not None

    async def main() -> tuple[str, dict[str, Any]]:
        cache = WatchCache(store)
        w = cache.watch(PODS, "a", everything, store.current_revision())
        asyncio.get_running_loop().call_later(0.02, put, store, "a", "late")
        try:
            return await asyncio.wait_for(w.queue.get(), 2)
        finally:
            cache.close()

    kind, obj = asyncio.run(main())
    assert kind == "ADDED" and obj["metadata"]["name"] == "late" and obj["metadata"]["resourceVersion"]
