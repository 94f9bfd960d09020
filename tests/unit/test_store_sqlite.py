"""Unit tests of the SQLite store (master.store.sqlite) against the Store
contract in master.store: on a temp file and in memory."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from master.store import (
    Compacted,
    Conflict,
    Event,
    KeyExists,
    KeyNotFound,
    Store,
    StoreError,
    open_store,
)
from master.store.sqlite import prefix_end


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = "sqlite://:memory:" if request.param == "memory" else f"sqlite://{tmp_path}/db.sqlite"
    s = open_store(url)
    try:
        yield s
    finally:
        s.close()


def test_create_get_update_delete(store: Store) -> None:
    assert store.current_revision() == 0
    assert store.get("/a") is None
    r1 = store.create("/a", b"one")
    kv = store.get("/a")
    assert kv is not None and (kv.key, kv.value, kv.create_revision, kv.mod_revision) == ("/a", b"one", r1, r1)
    with pytest.raises(KeyExists) as e:
        store.create("/a", b"again")
    assert e.value.key == "/a" and isinstance(e.value, StoreError)
    r2 = store.update("/a", b"two")
    kv = store.get("/a")
    assert kv is not None and (kv.value, kv.create_revision, kv.mod_revision) == (b"two", r1, r2)
    r3, gone = store.delete("/a")
    assert (gone.value, gone.mod_revision, gone.create_revision) == (b"two", r2, r1)
    assert store.get("/a") is None
    assert r1 < r2 < r3 == store.current_revision()
    with pytest.raises(KeyNotFound):
        store.update("/a", b"x")
    with pytest.raises(KeyNotFound):
        store.delete("/a")
    with pytest.raises(KeyNotFound):
        store.update("/never", b"x")
    # failed writes made no revision; re-create starts a new life
    assert store.current_revision() == r3
    r4 = store.create("/a", b"reborn")
    kv = store.get("/a")
    assert kv is not None and kv.create_revision == kv.mod_revision == r4 == r3 + 1


def test_revisions_shared_across_keys(store: Store) -> None:
    revs = [store.create(f"/k/{i}", b"v") for i in range(5)]
    revs.append(store.update("/k/2", b"w"))
    revs.append(store.delete("/k/0")[0])
    assert revs == list(range(1, 8))
    assert store.current_revision() == 7


def test_expected_revision_conflicts(store: Store) -> None:
    r1 = store.create("/c", b"1")
    r2 = store.update("/c", b"2", expected_revision=r1)
    with pytest.raises(Conflict) as e:
        store.update("/c", b"3", expected_revision=r1)
    assert e.value.key == "/c" and e.value.current.mod_revision == r2 and e.value.current.value == b"2"
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


def test_prefix_end() -> None:
    assert prefix_end("/a/") == "/a0"
    assert prefix_end("") is None
    assert prefix_end("a\U0010ffff") == "b"


def test_list_pagination(store: Store) -> None:
    for i in range(10):
        store.create(f"/p/{i:02d}", str(i).encode())
    store.update("/p/03", b"three")
    store.delete("/p/05")
    seen: list[str] = []
    after, pages = "", 0
    rev0 = store.current_revision()
    while True:
        items, rev, more = store.list("/p/", start_after=after, limit=3, revision=rev0 if pages else 0)
        assert rev == rev0
        seen += [kv.key for kv in items]
        pages += 1
        if not more:
            break
        after = items[-1].key
    assert seen == [f"/p/{i:02d}" for i in range(10) if i != 5]
    assert pages == 3
    items, _, more = store.list("/p/", limit=9)
    assert len(items) == 9 and not more
    items, _, more = store.list("/p/", limit=8)
    assert len(items) == 8 and more


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
    r1 = store.create("/x/a", b"a1")
    store.update("/x/a", b"a2")
    r3 = store.create("/x/b", b"b1")
    store.delete("/x/b")
    r5 = store.update("/x/a", b"a3")  # supersedes a2 after the compact point
    store.create("/x/c", b"c1")
    # compact at 4: a1 (superseded by a2 at 2) and b1 + its tombstone go; a2 stays for reads at 4
    assert store.compact(4) == 3
    assert store.compact_revision() == 4
    assert store.compact(4) == 0 and store.compact(2) == 0
    with pytest.raises(Compacted) as e:
        store.list("/x/", revision=r3)
    assert e.value.compact_revision == 4
    with pytest.raises(Compacted):
        store.events_since(r1)
    items, _, _ = store.list("/x/", revision=4)
    assert [(kv.key, kv.value) for kv in items] == [("/x/a", b"a2")]
    items, _, _ = store.list("/x/", revision=r5)
    assert [(kv.key, kv.value) for kv in items] == [("/x/a", b"a3")]
    assert [(ev.type, ev.key, ev.revision) for ev in store.events_since(4)] == [
        ("MODIFIED", "/x/a", 5), ("ADDED", "/x/c", 6)]
    assert store.events_since(4)[0].prev_value == b"a2"
    with pytest.raises(ValueError):
        store.compact(99)
    # revisions keep counting after compaction; the next compaction removes a2
    assert store.create("/x/d", b"d") == 7
    assert store.compact(7) == 1
    assert store.get("/x/a").value == b"a3"  # type: ignore[union-attr]
    assert store.count("/x/") == 3


def test_events_since_order_and_prefix(store: Store) -> None:
    store.create("/e/a", b"1")
    store.create("/f/a", b"x")
    store.update("/e/a", b"2")
    store.delete("/e/a")
    store.create("/e/b", b"3")
    evs = store.events_since(0, "/e/")
    assert evs == [
        Event("ADDED", "/e/a", b"1", None, 1),
        Event("MODIFIED", "/e/a", b"2", b"1", 3),
        Event("DELETED", "/e/a", None, b"2", 4),
        Event("ADDED", "/e/b", b"3", None, 5),
    ]
    assert [e.revision for e in store.events_since(3)] == [4, 5]
    assert [e.revision for e in store.events_since(0, limit=2)] == [1, 2]
    assert store.events_since(5) == []
    assert [e.key for e in store.events_since(0, "/f/")] == ["/f/a"]


def test_subscribe_and_unsubscribe(store: Store) -> None:
    got: list[Event] = []
    unsubscribe = store.subscribe(got.append)
    store.create("/s/a", b"1")
    store.update("/s/a", b"2")
    with pytest.raises(KeyExists):
        store.create("/s/a", b"3")  # failed writes are not events
    store.delete("/s/a")
    assert got == store.events_since(0)
    assert [e.type for e in got] == ["ADDED", "MODIFIED", "DELETED"]
    unsubscribe()
    unsubscribe()
    store.create("/s/b", b"1")
    assert len(got) == 3


def test_failing_subscriber_does_not_undo_write(store: Store) -> None:
    def boom(_: Event) -> None:
        raise RuntimeError("subscriber bug")

    store.subscribe(boom)
    rev = store.create("/b", b"1")
    assert store.get("/b").mod_revision == rev  # type: ignore[union-attr]


def test_survives_restart(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/sub/dir/db.sqlite"
    s = open_store(url)
    try:
        s.create("/r/a", b"1")
        s.create("/r/b", b"2")
        s.update("/r/a", b"3")
        s.delete("/r/b")
        s.compact(2)
    finally:
        s.close()
    s = open_store(url)
    try:
        assert s.current_revision() == 4 and s.compact_revision() == 2
        assert s.get("/r/a").value == b"3"  # type: ignore[union-attr]
        assert s.get("/r/b") is None
        assert s.create("/r/c", b"4") == 5
        with pytest.raises(Compacted):
            s.events_since(1)
    finally:
        s.close()


def test_open_store_rejects_unknown_scheme() -> None:
    with pytest.raises(ValueError):
        open_store("mysql://x")


def test_concurrent_read_modify_write(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}/db.sqlite")
    try:
        store.create("/counter", b"0")
        successes = [0] * 50
        conflicts = [0] * 50
        start = threading.Barrier(50)

        def worker(i: int) -> None:
            start.wait()
            for _ in range(4):
                while True:
                    kv = store.get("/counter")
                    assert kv is not None
                    try:
                        store.update("/counter", str(int(kv.value) + 1).encode(), kv.mod_revision)
                    except Conflict:
                        conflicts[i] += 1
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
        assert int(kv.value) == sum(successes) == 200
        assert store.current_revision() == 201
    finally:
        store.close()
