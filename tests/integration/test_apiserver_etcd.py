"""The API server's HTTP suite (tests/unit/test_apiserver.py) again, on the
etcd backend: the same tests, with the module's server on a real etcd
(Debian's `etcd-server` on free loopback ports, removed after the module)
under a key prefix of its own. Plus a master restart on etcd."""
from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
import etcd_fixture  # noqa: E402
from apiserver_fixture import ServerThread  # noqa: E402
from test_apiserver import *  # noqa: E402,F401,F403
from test_apiserver import mkpod, names, pods_path  # noqa: E402

from master.store import open_store  # noqa: E402

PREFIX = f"/crt-{uuid.uuid4().hex[:8]}"  # the module server's etcd key prefix

# These build their own SQLite servers: already run by the unit suite.
del test_watch_too_old_rv_is_410, test_store_survives_master_restart  # noqa: F821


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


@pytest.fixture(scope="module")
def srv(etcd: etcd_fixture.EtcdServer) -> Iterator[ServerThread]:
    s = ServerThread(store=open_store(etcd.store_url(PREFIX))).start()
    try:
        yield s
    finally:
        s.stop()


def test_store_survives_master_restart_on_etcd(etcd: etcd_fixture.EtcdServer) -> None:
    url = etcd.store_url(f"/crt-{uuid.uuid4().hex[:8]}")
    with ServerThread(store=open_store(url)) as s, httpx.Client(base_url=s.url) as http:
        uid = mkpod(http, "default", "keep")["metadata"]["uid"]
    with ServerThread(store=open_store(url)) as s, httpx.Client(base_url=s.url) as http:
        got = http.get(pods_path("default", "keep"))
        assert got.status_code == 200 and got.json()["metadata"]["uid"] == uid
        assert names(http.get("/api/v1/namespaces").json()) >= {"default", "kube-system", "kube-node-lease"}


def test_objects_live_in_etcd(srv: ServerThread, etcd: etcd_fixture.EtcdServer) -> None:
    """The suite above really ran on etcd: a namespace made over HTTP is an
    etcd key under the server's prefix, with the resourceVersion as its mod_revision."""
    name = f"crt-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=srv.url, timeout=10) as http:
        made = http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).json()
    key = f"{PREFIX}/registry/core/namespaces/{name}".encode()
    answer = httpx.post(f"{etcd.url}/v3/kv/range", json={"key": etcd_fixture.b64(key)}).json()
    assert answer["kvs"][0]["mod_revision"] == made["metadata"]["resourceVersion"]
