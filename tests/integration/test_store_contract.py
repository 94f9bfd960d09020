"""The `Store` contract (master.store) as one suite run against every
backend: SQLite in memory and on a file, and a real etcd (Debian's
`etcd-server`, started on free loopback ports for this module and removed
after it). Revisions are checked relative to the store's revision at the
start of each test, since one etcd serves the whole module; each test gets
its own etcd key prefix."""
from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import etcd_fixture  # noqa: E402

from master.store import (  # noqa: E402
    Compacted,
    Conflict,
    Event,
    KeyExists,
    KeyNotFound,
    Store,
    StoreError,
    open_store,
)

BACKENDS = ["sqlite-memory", "sqlite-file", "etcd"]


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


def _open(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    if kind == "sqlite-memory":
        return open_store("sqlite://:memory:")
    if kind == "sqlite-file":
        return open_store(f"sqlite://{tmp_path}/db.sqlite")
    server = request.getfixturevalue("etcd")
    return open_store(server.store_url(f"/crt-{uuid.uuid4().hex[:8]}"))


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = _open(request.param, tmp_path, request)
    try:
        yield s
    finally:
        s.close()


def test_create_get_update_delete(store: Store) -> None:
    base = store.current_revision()
    assert store.get("/a") is None
    r1 = store.create("/a", b"one")
    assert r1 == base + 1
    kv = store.get("/a")
    assert kv is not None and (kv.key, kv.value, kv.create_revision, kv.mod_revision) == ("/a", b"one", r1, r1)
    with pytest.raises(KeyExists) as e:
        store.create("/a", b"again")
    assert e.value.key == "/a" and isinstance(e.value, StoreError)
    r2 = store.update("/a", b"two")
    kv = store.get("/a")
    assert kv is not None and (kv.value, kv.create_revision, kv.mod_revision) == (b"two", r1, r2)
    r3, gone = store.delete("/a")
    assert (gone.key, gone.value, gone.mod_revision, gone.create_revision) == ("/a", b"two", r2, r1)
    assert store.get("/a") is None
    assert r1 < r2 < r3 == store.current_revision()
    with pytest.raises(KeyNotFound):
        store.update("/a", b"x")
    with pytest.raises(KeyNotFound):
        store.delete("/a")
    with pytest.raises(KeyNotFound):
        store.update("/never", b"x")
    with pytest.raises(KeyNotFound):
        store.update("/never", b"x", expected_revision=r1)
    # failed writes made no revision; re-create starts a new life
    assert store.current_revision() == r3
    r4 = store.create("/a", b"reborn")
    kv = store.get("/a")
    assert kv is not None and kv.create_revision == kv.mod_revision == r4 == r3 + 1


def test_empty_value_round_trips(store: Store) -> None:
    store.create("/empty", b"")
    assert store.get("/empty").value == b""  # type: ignore[union-attr]


def test_revisions_shared_across_keys(store: Store) -> None:
    base = store.current_revision()
    revs = [store.create(f"/k/{i}", b"v") for i in range(5)]
    revs.append(store.update("/k/2", b"w"))
    revs.append(store.delete("/k/0")[0])
    assert revs == [base + i for i in range(1, 8)]
    assert store.current_revision() == base + 7


def test_expected_revision_conflicts(store: Store) -> None:
    r1 = store.create("/c", b"1")
    r2 = store.update("/c", b"2", expected_revision=r1)
    with pytest.raises(Conflict) as e:
        store.update("/c", b"3", expected_revision=r1)
    assert e.value.key == "/c" and e.value.current.mod_revision == r2 and e.value.current.value == b"2"
    assert e.value.current.key == "/c" and e.value.expected == r1
    with pytest.raises(Conflict):
        store.delete("/c", expected_revision=r1)
    assert store.get("/c").value == b"2"  # type: ignore[union-attr]
    r3, _ = store.delete("/c", expected_revision=r2)
    assert r3 == store.current_revision()


def test_list_prefix_is_exact(store: Store) -> None:
    store.create("/registry/pods/default/a", b"a")
    store.create("/registry/pods/default2/x", b"x")
    store.create("/registry/pods/default/b", b"b")
    store.create("/registry/pods/defaul", b"no")
    store.create("/registry/pods/default", b"no")
    items, rev, more = store.list("/registry/pods/default/")
    assert [kv.key for kv in items] == ["/registry/pods/default/a", "/registry/pods/default/b"]
    assert rev == store.current_revision() and not more
    assert store.count("/registry/pods/default/") == 2
    assert store.count("/registry/pods/") == 5
    assert store.count("") == 5
    store.delete("/registry/pods/default/a")
    items, _, _ = store.list("/registry/pods/default/")
    assert [kv.key for kv in items] == ["/registry/pods/default/b"]
    assert store.count("/registry/pods/default/") == 1


def test_list_pagination(store: Store) -> None:
    for i in range(10):
        store.create(f"/p/{i:02d}", str(i).encode())
    store.update("/p/03", b"three")
    store.delete("/p/05")
    seen: list[str] = []
    after, pages = "", 0
    rev0 = store.current_revision()
    store.create("/p/99", b"after the first page: not in this list")
    while True:
        items, rev, more = store.list("/p/", start_after=after, limit=3, revision=rev0)
        assert rev == rev0
        seen += [kv.key for kv in items]
        pages += 1
        if not more:
            break
        after = items[-1].key
    assert seen == [f"/p/{i:02d}" for i in range(10) if i != 5]
    assert pages == 3
    items, _, more = store.list("/p/", limit=10)
    assert len(items) == 10 and not more
    items, _, more = store.list("/p/", limit=9)
    assert len(items) == 9 and more
    assert [kv.value for kv in store.list("/p/", start_after="/p/02", limit=1)[0]] == [b"three"]


def test_list_at_old_revision(store: Store) -> None:
    r1 = store.create("/h/a", b"a1")
    r2 = store.create("/h/b", b"b1")
    r3 = store.update("/h/a", b"a2")
    r4, _ = store.delete("/h/b")
    store.create("/h/c", b"c1")
    store.create("/h/b", b"b2")

    def at(rev: int) -> list[tuple[str, bytes, int]]:
        items, got, _ = store.list("/h/", revision=rev)
        assert got == rev
        return [(kv.key, kv.value, kv.mod_revision) for kv in items]

    assert at(r1) == [("/h/a", b"a1", r1)]
    assert at(r2) == [("/h/a", b"a1", r1), ("/h/b", b"b1", r2)]
    assert at(r3) == [("/h/a", b"a2", r3), ("/h/b", b"b1", r2)]
    assert at(r4) == [("/h/a", b"a2", r3)]
    now, _, _ = store.list("/h/")
    assert [(kv.key, kv.value) for kv in now] == [("/h/a", b"a2"), ("/h/b", b"b2"), ("/h/c", b"c1")]


def test_compact(store: Store) -> None:
    b = store.current_revision()
    r1 = store.create("/x/a", b"a1")
    store.update("/x/a", b"a2")
    r3 = store.create("/x/b", b"b1")
    store.delete("/x/b")
    r5 = store.update("/x/a", b"a3")  # supersedes a2 after the compact point
    store.create("/x/c", b"c1")
    # compact at b+4: a1 (superseded by a2) and b1 + its tombstone go; a2 stays for reads at b+4
    assert store.compact(b + 4) == 3
    assert store.compact_revision() == b + 4
    assert store.compact(b + 4) == 0 and store.compact(b + 2) == 0
    with pytest.raises(Compacted) as e:
        store.list("/x/", revision=r3)
    assert e.value.compact_revision == b + 4
    with pytest.raises(Compacted):
        store.events_since(r1)
    items, _, _ = store.list("/x/", revision=b + 4)
    assert [(kv.key, kv.value) for kv in items] == [("/x/a", b"a2")]
    items, _, _ = store.list("/x/", revision=r5)
    assert [(kv.key, kv.value) for kv in items] == [("/x/a", b"a3")]
    assert [(ev.type, ev.key, ev.revision) for ev in store.events_since(b + 4)] == [
        ("MODIFIED", "/x/a", b + 5), ("ADDED", "/x/c", b + 6)]
    assert store.events_since(b + 4)[0].prev_value == b"a2"
    with pytest.raises(ValueError):
        store.compact(b + 99)
    # revisions keep counting after compaction; the next compaction removes a2
    assert store.create("/x/d", b"d") == b + 7
    assert store.compact(b + 7) == 1
    assert store.get("/x/a").value == b"a3"  # type: ignore[union-attr]
    assert store.count("/x/") == 3


def test_events_since_order_and_prefix(store: Store) -> None:
    b = store.current_revision()
    store.create("/e/a", b"1")
    store.create("/f/a", b"x")
    store.update("/e/a", b"2")
    store.delete("/e/a")
    store.create("/e/b", b"3")
    evs = store.events_since(b, "/e/")
    assert evs == [
        Event("ADDED", "/e/a", b"1", None, b + 1),
        Event("MODIFIED", "/e/a", b"2", b"1", b + 3),
        Event("DELETED", "/e/a", None, b"2", b + 4),
        Event("ADDED", "/e/b", b"3", None, b + 5),
    ]
    assert [e.revision for e in store.events_since(b + 3)] == [b + 4, b + 5]
    assert [e.revision for e in store.events_since(b, limit=2)] == [b + 1, b + 2]
    assert store.events_since(b + 5) == []
    assert [e.key for e in store.events_since(b, "/f/")] == ["/f/a"]
    assert store.events_since(b + 4, "/f/") == []


def _eventually(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


def test_subscribe_and_unsubscribe(store: Store) -> None:
    b = store.current_revision()
    got: list[Event] = []
    unsubscribe = store.subscribe(got.append)
    store.create("/s/a", b"1")
    store.update("/s/a", b"2")
    with pytest.raises(KeyExists):
        store.create("/s/a", b"3")  # failed writes are not events
    store.delete("/s/a")
    # delivered by the time the write returns, on the writing thread (no loop here)
    assert got == store.events_since(b)
    assert [e.type for e in got] == ["ADDED", "MODIFIED", "DELETED"]
    unsubscribe()
    unsubscribe()
    store.create("/s/b", b"1")
    time.sleep(0.1)
    assert len(got) == 3


def test_subscriber_on_event_loop_sees_write_before_it_returns(store: Store) -> None:
    """The API server writes on its loop and its watch cache subscribed there:
    each event reaches the cache on the loop thread before the write returns."""
    got: list[tuple[int, bool]] = []
    done = threading.Event()

    async def main() -> list[int]:
        loop_thread = threading.get_ident()
        store.subscribe(lambda ev: got.append((ev.revision, threading.get_ident() == loop_thread)))
        revs = []
        for i in range(5):
            rev = store.create(f"/l/{i}", b"v")
            assert got and got[-1][0] == rev
            revs.append(rev)
        done.set()
        return revs

    revs = asyncio.run(main())
    assert done.is_set() and got == [(r, True) for r in revs]


def test_failing_subscriber_does_not_undo_write(store: Store) -> None:
    def boom(_: Event) -> None:
        raise RuntimeError("subscriber bug")

    store.subscribe(boom)
    rev = store.create("/b", b"1")
    assert store.get("/b").mod_revision == rev  # type: ignore[union-attr]


@pytest.mark.parametrize(("kind", "rounds"), [("sqlite-file", 4), ("etcd", 1)])
def test_concurrent_read_modify_write(kind: str, rounds: int, tmp_path: Path,
                                      request: pytest.FixtureRequest) -> None:
    """50 clients doing read-modify-write of one counter: it ends equal to
    the number of successful writes. (etcd: one round each, as every attempt
    is a round trip and 50 contenders make ~1,300 of them.)"""
    store = _open(kind, tmp_path, request)
    try:
        base = store.create("/counter", b"0")
        successes = [0] * 50
        start = threading.Barrier(50)

        def worker(i: int) -> None:
            start.wait()
            for _ in range(rounds):
                while True:
                    kv = store.get("/counter")
                    assert kv is not None
                    try:
                        store.update("/counter", str(int(kv.value) + 1).encode(), kv.mod_revision)
                    except Conflict:
                        continue
                    successes[i] += 1
                    break

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        kv = store.get("/counter")
        assert kv is not None
        assert int(kv.value) == sum(successes) == 50 * rounds
        assert store.current_revision() == base + 50 * rounds
    finally:
        store.close()


def test_etcd_two_stores_share_one_prefix(etcd: etcd_fixture.EtcdServer) -> None:
    """Two masters on one etcd: a write by one reaches the other's subscribers."""
    url = etcd.store_url(f"/crt-{uuid.uuid4().hex[:8]}")
    a, b = open_store(url), open_store(url)
    try:
        got: list[Event] = []
        b.subscribe(got.append)
        rev = a.create("/shared", b"1")
        _eventually(lambda: len(got) == 1)
        assert got == [Event("ADDED", "/shared", b"1", None, rev)]
        assert b.get("/shared").mod_revision == rev  # type: ignore[union-attr]
    finally:
        a.close()
        b.close()


def test_etcd_prefix_isolates_keys(etcd: etcd_fixture.EtcdServer) -> None:
    a = open_store(etcd.store_url("/crt-iso-a"))
    b = open_store(etcd.store_url("/crt-iso-a2"))
    try:
        a.create("/k", b"a")
        b.create("/k", b"b")
        assert [kv.value for kv in a.list("")[0]] == [b"a"] and a.count("") == 1
        assert b.get("/k").value == b"b"  # type: ignore[union-attr]
    finally:
        a.delete("/k")
        b.delete("/k")
        a.close()
        b.close()


def test_open_store_urls() -> None:
    from master.store.etcdclient import parse_url

    assert parse_url("etcd://127.0.0.1:2379?prefix=/registry") == (["http://127.0.0.1:2379"], "/registry")
    assert parse_url("etcd://a:1,b:2") == (["http://a:1", "http://b:2"], "")
    with pytest.raises(ValueError):
        open_store("mysql://x")


def test_etcd_watch_resumes_after_etcd_restart() -> None:
    """The subscription watch survives etcd going away: it resumes from the
    last revision it saw, so the events written meanwhile are not lost."""
    if not etcd_fixture.available():
        pytest.skip("etcd-server is not installed")
    with etcd_fixture.EtcdServer() as server:
        url = server.store_url("/crt-restart")
        store, writer = open_store(url), None
        try:
            got: list[Event] = []
            store.subscribe(got.append)
            r1 = store.create("/r/a", b"1")
            server.restart()
            writer = open_store(url)
            r2 = writer.create("/r/b", b"2")
            r3 = writer.update("/r/a", b"3")
            _eventually(lambda: len(got) == 3, timeout=10)
            assert [(e.type, e.key, e.revision) for e in got] == [
                ("ADDED", "/r/a", r1), ("ADDED", "/r/b", r2), ("MODIFIED", "/r/a", r3)]
            assert store.get("/r/a").value == b"3"  # type: ignore[union-attr]
        finally:
            store.close()
            if writer is not None:
                writer.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_etcd_errors_map_to_the_contract(etcd: etcd_fixture.EtcdServer) -> None:
    """The client library's errors (gRPC status codes underneath) become the
    contract's: a future revision and an unreachable etcd are StoreErrors
    naming what was asked, a compacted revision is Compacted."""
    store = open_store(etcd.store_url(f"/crt-{uuid.uuid4().hex[:8]}"))
    try:
        rev = store.create("/m/a", b"1")
        with pytest.raises(StoreError) as e:
            store.list("/m/", revision=rev + 1000)
        assert type(e.value) is StoreError and e.value.key == "/m/" and "future" in str(e.value)
        store.update("/m/a", b"2")
        store.compact(rev + 1)
        with pytest.raises(Compacted) as c:
            store.list("/m/", revision=rev)
        assert c.value.compact_revision >= rev + 1 and c.value.key == "/m/"
        with pytest.raises(Compacted):
            store.events_since(rev - 1)
    finally:
        store.close()
    port = _closed_port()
    with pytest.raises(StoreError, match="unavailable"):
        open_store(f"etcd://127.0.0.1:{port}")


def test_etcd_fails_over_between_endpoints(etcd: etcd_fixture.EtcdServer) -> None:
    """A URL naming a dead endpoint beside the live one: every call succeeds
    whichever endpoint the client starts on (it picks one at random, so
    several stores are opened), writes included, as they never left."""
    url = f"etcd://127.0.0.1:{_closed_port()},127.0.0.1:{etcd.client_port}?prefix=/crt-{uuid.uuid4().hex[:8]}"
    stores = [open_store(url) for _ in range(6)]
    try:
        got: list[Event] = []
        stores[0].subscribe(got.append)
        for i, store in enumerate(stores):
            rev = store.create(f"/f/{i}", b"1")
            assert store.get(f"/f/{i}").mod_revision == rev  # type: ignore[union-attr]
            store.update(f"/f/{i}", b"2", expected_revision=rev)
            store.delete(f"/f/{i}")
            assert store.list("/f/")[0] == []
        _eventually(lambda: len(got) == 3 * len(stores))
        assert [e.type for e in got] == ["ADDED", "MODIFIED", "DELETED"] * len(stores)
    finally:
        for store in stores:
            store.close()
