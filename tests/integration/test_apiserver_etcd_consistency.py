"""The API server on etcd (Debian's `etcd-server` on free loopback ports,
removed after the module): store calls run off the event loop and overlap,
a handler answers only once its watch cache has seen its write, and reads
without a resourceVersion are consistent across two API servers sharing one
etcd prefix (reads from the cache after a quorum read of the revision)."""
from __future__ import annotations

import asyncio
import collections
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import etcd_fixture  # noqa: E402
from apiserver_fixture import ServerThread, pod  # noqa: E402

from master.store import Event, Store, open_store  # noqa: E402


@pytest.fixture(scope="module")
def etcd() -> Iterator[etcd_fixture.EtcdServer]:
    if not etcd_fixture.available():
        pytest.skip("etcd-server is not installed (scripts/setup installs it)")
    server = etcd_fixture.EtcdServer().start()
    try:
        yield server
    finally:
        server.stop()
    assert server.proc is not None and server.proc.poll() is not None
    assert not Path(server.data_dir).exists()


def _url(etcd: etcd_fixture.EtcdServer) -> str:
    return etcd.store_url(f"/crt-{uuid.uuid4().hex[:8]}")


class GatedStore:
    """An etcd store whose creates of pods named `gated-*` wait inside the
    store until the test opens the gate; everything else passes through."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.blocking = True
        self.inside = threading.Semaphore(0)  # released once per gated create that reached the store
        self.gate = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create(self, key: str, value: bytes) -> int:
        if "/gated-" in key:
            self.inside.release()
            assert self.gate.wait(30), "the test never opened the gate"
        return self.inner.create(key, value)


class LaggingStore:
    """An etcd store whose subscribers get each event `lag` seconds late (in
    order): a watch cache that trails the store, as under load."""

    def __init__(self, inner: Store, lag: float) -> None:
        self.inner = inner
        self.lag = lag
        self.blocking = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def subscribe(self, callback: Any) -> Any:
        loop = asyncio.get_running_loop()
        held: collections.deque[tuple[float, Event]] = collections.deque()

        def flush() -> None:
            while held and held[0][0] <= loop.time():
                callback(held.popleft()[1])
            if held:
                loop.call_at(held[0][0], flush)

        def late(ev: Event) -> None:
            held.append((loop.time() + self.lag, ev))
            if len(held) == 1:
                loop.call_at(held[0][0], flush)

        return self.inner.subscribe(late)


def _names(listing: dict[str, Any]) -> set[str]:
    return {item["metadata"]["name"] for item in listing["items"]}


def test_slow_store_calls_overlap_and_leave_the_loop_free(etcd: etcd_fixture.EtcdServer) -> None:
    store: Any = GatedStore(open_store(_url(etcd)))
    with ServerThread(store=store) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        answers: dict[str, int] = {}

        def create(name: str) -> None:
            with httpx.Client(base_url=srv.url, timeout=30) as own:
                answers[name] = own.post("/api/v1/namespaces/default/pods", json=pod(name)).status_code

        slow = [threading.Thread(target=create, args=(f"gated-{i}",)) for i in range(2)]
        for t in slow:
            t.start()
        try:
            # both creates are inside the store at once: two pool threads, not the loop, wait on them
            assert store.inside.acquire(timeout=10) and store.inside.acquire(timeout=10)
            # and meanwhile the loop serves other requests, store calls included
            assert http.post("/api/v1/namespaces/default/pods", json=pod("free")).status_code == 201
            assert http.get("/api/v1/namespaces/default/pods/free").status_code == 200
            assert _names(http.get("/api/v1/namespaces/default/pods?resourceVersion=0").json()) == {"free"}
        finally:
            store.gate.set()
            for t in slow:
                t.join(30)
        assert answers == {"gated-0": 201, "gated-1": 201}
        assert _names(http.get("/api/v1/namespaces/default/pods").json()) == {"free", "gated-0", "gated-1"}


def test_a_write_is_in_the_watch_cache_when_it_is_answered(etcd: etcd_fixture.EtcdServer) -> None:
    """resourceVersion=0 reads come from the watch cache with no wait: each
    one right after a write must already show it."""
    with ServerThread(store=open_store(_url(etcd))) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        path = "/api/v1/namespaces/default/pods"
        for i in range(20):
            made = http.post(path, json=pod(f"p{i}")).json()
            listed = http.get(path, params={"resourceVersion": "0"}).json()
            assert f"p{i}" in _names(listed)
            assert int(listed["metadata"]["resourceVersion"]) >= int(made["metadata"]["resourceVersion"])
            got = http.get(f"{path}/p{i}", params={"resourceVersion": "0"}).json()
            assert got["metadata"]["uid"] == made["metadata"]["uid"]
            patched = http.patch(f"{path}/p{i}", json={"metadata": {"labels": {"n": str(i)}}},
                                 headers={"Content-Type": "application/merge-patch+json"}).json()
            got = http.get(f"{path}/p{i}", params={"resourceVersion": "0"}).json()
            assert got["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]
            assert http.delete(f"{path}/p{i}").status_code == 200
            assert f"p{i}" not in _names(http.get(path, params={"resourceVersion": "0"}).json())
            assert http.get(f"{path}/p{i}", params={"resourceVersion": "0"}).status_code == 404


def test_reads_are_consistent_across_two_api_servers(etcd: etcd_fixture.EtcdServer) -> None:
    """Two API servers on one etcd prefix; B's watch cache trails etcd by
    0.3 s. Whatever A acknowledged, a read without resourceVersion on B shows,
    GET and LIST alike; a namespace made on A is usable on B at once."""
    url = _url(etcd)
    b_store: Any = LaggingStore(open_store(url), 0.3)
    with (ServerThread(store=open_store(url)) as a_srv, ServerThread(store=b_store) as b_srv,
          httpx.Client(base_url=a_srv.url, timeout=30) as a, httpx.Client(base_url=b_srv.url, timeout=30) as b):
        for i in range(10):
            ns = f"crt-ns-{i}"
            assert a.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
            path = f"/api/v1/namespaces/{ns}/pods"
            made = b.post(path, json=pod("x")).json()  # B's cache has not seen the namespace yet
            assert made["metadata"]["namespace"] == ns
            patched = a.patch(f"{path}/x", json={"metadata": {"labels": {"i": str(i)}}},
                              headers={"Content-Type": "application/merge-patch+json"}).json()
            got = b.get(f"{path}/x").json()
            assert got["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]
            assert b.get(path).json()["items"][0]["metadata"]["labels"] == {"i": str(i)}
            assert a.delete(f"{path}/x").status_code == 200
            assert b.get(f"{path}/x").status_code == 404
            assert b.get(path).json()["items"] == []


def test_get_at_a_resource_version(etcd: etcd_fixture.EtcdServer) -> None:
    """GET ?resourceVersion=N is "not older than N": served once the cache
    has N; a version beyond the store's is a 504, as upstream's."""
    with ServerThread(store=open_store(_url(etcd))) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        path = "/api/v1/namespaces/default/pods"
        made = http.post(path, json=pod("rv")).json()
        rv = int(made["metadata"]["resourceVersion"])
        got = http.get(f"{path}/rv", params={"resourceVersion": str(rv)})
        assert got.status_code == 200 and got.json()["metadata"]["uid"] == made["metadata"]["uid"]
        far = http.get(f"{path}/rv", params={"resourceVersion": str(rv + 10_000)})
        assert far.status_code == 504 and far.json()["reason"] == "Timeout"
        assert http.get(f"{path}/rv", params={"resourceVersion": "x"}).status_code == 400
