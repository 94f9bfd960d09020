"""Fixtures that run an API test module of tests/unit again on a real etcd:
a module-scoped etcd (Debian's `etcd-server` on free loopback ports) and a
`srv` API server on it under a key prefix of its own.  A `*_etcd.py` module
imports the unit module's tests with `*` and these fixtures after them, so
its `srv` replaces the unit module's SQLite one."""
from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
import etcd_fixture  # noqa: E402
from apiserver_fixture import ServerThread  # noqa: E402

from master.store import open_store  # noqa: E402


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
    s = ServerThread(store=open_store(etcd.store_url(f"/crt-{uuid.uuid4().hex[:8]}"))).start()
    try:
        yield s
    finally:
        s.stop()
