"""The API server's storage contract: a revisioned key-value store with etcd
semantics (kine's narrow interface), its errors, its events, and the factory.

Neighbours: `master.store.sqlite` is the embedded backend (an append-only
revision log in SQLite, as k3s's kine); `master.store.etcd` puts the same
`Store` protocol on etcd v3. Only the API server calls a store; its watch cache
feeds on `subscribe` and `events_since`. resourceVersion is the revision.

Errors (all carry `.key`, the key or prefix concerned)::

    StoreError
    ├── KeyExists      create of a live key
    ├── KeyNotFound    update/delete of a missing key
    ├── Conflict       expected_revision != the key's mod_revision (.current)
    └── Compacted      a revision older than the compact revision (.compact_revision)
"""
from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    type: Literal["ADDED", "MODIFIED", "DELETED"]
    key: str
    value: bytes | None  # new value (None for DELETED)
    prev_value: bytes | None  # value before the change (None for ADDED)
    revision: int  # the revision this change made


class StoreError(Exception):
    """Base of every store error; `.key` names the key or prefix concerned."""

    def __init__(self, key: str = "", message: str = "") -> None:
        super().__init__(message or key)
        self.key = key


class KeyExists(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(key, f"key already exists: {key}")


class KeyNotFound(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(key, f"key not found: {key}")


class Conflict(StoreError):
    def __init__(self, key: str, expected: int, current: KeyValue) -> None:
        super().__init__(
            key, f"conflict on {key}: expected revision {expected}, current {current.mod_revision}"
        )
        self.expected = expected
        self.current = current


class Compacted(StoreError):
    def __init__(self, key: str, revision: int, compact_revision: int) -> None:
        super().__init__(
            key, f"revision {revision} is compacted (compact revision {compact_revision})"
        )
        self.revision = revision
        self.compact_revision = compact_revision


class Store(Protocol):
    """A revisioned key-value store. Every method is synchronous and
    thread-safe. Each write is one atomic transaction that makes exactly one
    new revision; revisions are shared by all keys and strictly increase.
    Writes are not retried here.

    A backend whose calls wait on the network (etcd) has `blocking = True`
    and a `written_revision()` (the newest revision the calling thread wrote
    through it): the API server calls it from a thread pool and then awaits
    its watch cache up to that revision (`is_blocking`). SQLite's calls take
    tens of microseconds and run inline on the event loop."""

    def current_revision(self) -> int:
        """The newest revision (0 for an empty store): at least that of every
        write acknowledged before the call, by any master (on etcd a quorum read)."""
        ...

    def get(self, key: str) -> KeyValue | None:
        """The live value of key, or None."""
        ...

    def list(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> tuple[list[KeyValue], int, bool]:
        """Keys with the prefix in key order, after start_after (exclusive),
        at most limit (0 = all), as of `revision` (0 = now; older than the
        compact revision: Compacted). Returns (items, the list's revision, more)."""
        ...

    def count(self, prefix: str) -> int:
        """Number of live keys with the prefix."""
        ...

    def create(self, key: str, value: bytes) -> int:
        """Create key; returns the new revision. KeyExists if live."""
        ...

    def update(self, key: str, value: bytes, expected_revision: int = 0) -> int:
        """Replace key's value; 0 = unconditional. KeyNotFound; Conflict."""
        ...

    def delete(self, key: str, expected_revision: int = 0) -> tuple[int, KeyValue]:
        """Delete key; returns (revision, the deleted kv). KeyNotFound; Conflict."""
        ...

    def events_since(self, revision: int, prefix: str = "", limit: int = 0) -> builtins.list[Event]:
        """Changes with revision > the given one, oldest first, keys with the
        prefix, at most limit (0 = all). Compacted if revision < compact revision."""
        ...

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call callback after each committed write (by anyone: on etcd also
        other masters'), one event at a time, in revision order; it must not
        write to the store. SQLite calls it on the writer's thread before the
        write returns; etcd on the event loop that subscribed first, and before
        a write made on that loop returns. Returns an idempotent unsubscribe
        function."""
        ...

    def compact(self, revision: int) -> int:
        """Drop history older than revision (each key keeps its row as of
        revision, so reads at revision and later stay exact). Idempotent;
        returns rows removed."""
        ...

    def compact_revision(self) -> int:
        """The revision of the last compaction (0 if none)."""
        ...

    def close(self) -> None:
        """Close the store; idempotent."""
        ...


def is_blocking(store: Store) -> bool:
    """Whether the store's calls wait on the network (see `Store`)."""
    return bool(getattr(store, "blocking", False))


def written_revision(store: Store) -> int:
    """The newest revision the calling thread wrote through a blocking store (0: none or unknown)."""
    written = getattr(store, "written_revision", None)
    return int(written()) if written is not None else 0


def open_store(url: str) -> Store:
    """Open a store by URL: `sqlite:///abs/path.db`, `sqlite://rel/path.db`,
    `sqlite://:memory:`, or `etcd://host:port[,host:port...][?prefix=/p]`
    (etcd v3; every key is stored under the prefix). Raises ValueError for
    an unknown scheme."""
    if url.startswith("sqlite://"):
        from master.store.sqlite import SQLiteStore

        return SQLiteStore(url[len("sqlite://"):] or ":memory:")
    if url.startswith("etcd://"):
        from master.store.etcd import EtcdStore
        from master.store.etcdclient import parse_url

        endpoints, prefix = parse_url(url)
        return EtcdStore(endpoints, prefix)
    raise ValueError(f"unsupported store URL {url!r}: use sqlite:///path/to/db, sqlite://:memory:"
                     " or etcd://127.0.0.1:2379")


__all__ = [
    "Compacted",
    "Conflict",
    "Event",
    "KeyExists",
    "KeyNotFound",
    "KeyValue",
    "Store",
    "StoreError",
    "is_blocking",
    "open_store",
    "written_revision",
]
