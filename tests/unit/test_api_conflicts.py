"""Optimistic concurrency under contention: 50 clients doing read-modify-write
of one ConfigMap counter (PUT with the resourceVersion they read; 409 means
read again) end with the counter equal to the number of successful writes.
No root needed: a real API server on loopback with a SQLite file store."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread  # noqa: E402

from master.store import open_store  # noqa: E402

CLIENTS, WRITES = 50, 3
PATH = "/api/v1/namespaces/default/configmaps/crt-counter"


def test_fifty_writers_lose_no_update(tmp_path: Path) -> None:
    fifty_writers(f"sqlite://{tmp_path}/state.db")


def fifty_writers(store_url: str) -> None:
    """The scenario on the store at store_url (the etcd suite runs it too)."""
    with ServerThread(store=open_store(store_url)) as srv:
        with httpx.Client(base_url=srv.url) as c:
            r = c.post("/api/v1/namespaces/default/configmaps",
                       json={"metadata": {"name": "crt-counter"}, "data": {"n": "0"}})
            assert r.status_code == 201
        ok = [0] * CLIENTS
        conflicts = [0] * CLIENTS
        errors: list[str] = []
        start = threading.Barrier(CLIENTS)

        def writer(i: int) -> None:
            with httpx.Client(base_url=srv.url, timeout=30) as c:
                start.wait()
                while ok[i] < WRITES:
                    obj = c.get(PATH).json()
                    obj["data"]["n"] = str(int(obj["data"]["n"]) + 1)
                    r = c.put(PATH, json=obj)
                    if r.status_code == 200:
                        ok[i] += 1
                    elif r.status_code == 409:
                        conflicts[i] += 1
                    else:
                        errors.append(r.text)
                        return

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors
        with httpx.Client(base_url=srv.url) as c:
            final = c.get(PATH).json()
        assert int(final["data"]["n"]) == sum(ok) == CLIENTS * WRITES
        assert sum(conflicts) > 0  # the writers really did collide
