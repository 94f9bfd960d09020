"""The API server's watch cache: every change the store commits, decoded
once and fanned out to the watchers whose resource, namespace and selectors
match.

It keeps the events of the last `window_seconds` so a watch may resume from
any resourceVersion inside that window; older versions get 410 Gone and the
client relists.  A watcher that falls `queue_size` events behind is closed:
it relists, as with kine and the upstream cacher.

It also holds the current state of every object (loaded once at start, kept
by the same events), so lists are served from memory as upstream's cacher
does.  On SQLite a list is exact because the store calls `_on_event`
synchronously after each commit; on etcd events arrive through a watch, so
the API server first awaits `wait_for` (its own writes' revisions, or the
store's current revision for a consistent read).  `get` and `namespace` may be
called from the store pool's threads: they only read one dict entry.  Each event is encoded once per watched version and the bytes
are shared by every watcher (`CachedEvent.encoded`); list items keep their
encoding until the object changes (`Entry.item`).
"""
from __future__ import annotations

import asyncio
import bisect
import collections
import heapq
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from apimachinery import meta
from apimachinery.kinds import ResourceInfo, same_storage, storage_resource
from master.apiserver import storage
from master.apiserver.resources.conversion import convert
from master.store import Event, Store

try:
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover - orjson is a dependency; stay usable without it
    import json

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

Filter = Callable[[dict[str, Any]], bool]


@dataclass(slots=True)
class Entry:
    """One live object as the cache holds it; `item` is its list-item encoding (no kind/apiVersion)."""
    obj: dict[str, Any]
    raw: bytes | None = None

    def item(self) -> bytes:
        if self.raw is None:
            self.raw = dumps({k: v for k, v in self.obj.items() if k not in ("kind", "apiVersion")})
        return self.raw


@dataclass(slots=True)
class CachedEvent:
    revision: int
    type: str
    res: ResourceInfo
    namespace: str
    obj: dict[str, Any]
    prev: dict[str, Any] | None
    at: float
    enc: dict[str, bytes] = field(default_factory=dict)
    matched: dict[str, tuple[bool, bool]] = field(default_factory=dict)

    def encoded(self, kind: str, obj: dict[str, Any]) -> bytes:
        """`{"type": kind, "object": obj}` and a newline, encoded once per (kind, version) and shared."""
        k = f"{kind} {obj.get('apiVersion', '')}"
        b = self.enc.get(k)
        if b is None:
            b = self.enc[k] = dumps({"type": kind, "object": obj}) + b"\n"
        return b


class Delivery(tuple):
    """(type, object) as a watcher receives it, with the shared event (for its encoded bytes) beside."""
    ev: CachedEvent

    def encoded(self) -> bytes:
        return self.ev.encoded(self[0], self[1])


@dataclass(eq=False)
class Watcher:
    res: ResourceInfo
    namespace: str | None
    matches: Filter
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue())
    limit: int = 10_000
    closed: bool = False
    selector_key: str | None = None  # watchers with equal keys share one selector evaluation per event

    def offer(self, ev: CachedEvent) -> None:
        """Translate one change for this watcher (selector transitions become ADDED/DELETED)."""
        if self.closed or not same_storage(ev.res, self.res):
            return
        if self.namespace and ev.namespace != self.namespace:
            return
        obj, prev = ev.obj, ev.prev
        if ev.res is not self.res or self.res.custom is not None:  # another version of the same resource
            # (a custom resource's objects carry the version that wrote them)
            obj, prev = convert(obj, self.res), (convert(prev, self.res) if prev is not None else None)
        memo = f"{self.selector_key} {self.res.group_version}" if self.selector_key is not None else ""
        hit = ev.matched.get(memo) if memo else None
        if hit is None:
            now = self.matches(obj)
            before = prev is not None and self.matches(prev)
            if memo:
                ev.matched[memo] = (now, before)
        else:
            now, before = hit
        if ev.type == "MODIFIED":
            if now and before:
                kind = "MODIFIED"
            elif now:
                kind = "ADDED"
            elif before:
                kind = "DELETED"
            else:
                return
        elif not now:
            return
        else:
            kind = ev.type
        if self.queue.qsize() >= self.limit:
            self.closed = True
            self.queue.put_nowait(None)
            return
        d = Delivery((kind, obj))
        d.ev = ev
        self.queue.put_nowait(d)


class WatchCache:
    def __init__(self, store: Store, window_seconds: float = 300.0, max_events: int = 200_000,
                 custom: Callable[[str], ResourceInfo | None] = lambda _key: None):
        """`custom`: the custom resource a key outside the kinds table belongs to (customapis)."""
        self._store = store
        self._custom = custom
        self._window = window_seconds
        self._events: collections.deque[CachedEvent] = collections.deque(maxlen=max_events)
        self._watchers: set[Watcher] = set()
        self._objects: dict[str, Entry] = {}
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []  # heap of (revision, seq, future)
        self._seq = itertools.count()
        self._unsubscribe = store.subscribe(self._on_event)
        kvs, self.revision, _ = store.list("/registry/")
        for kv in kvs:
            if self._resource_of_key(kv.key) is not None:
                self._objects.setdefault(kv.key, Entry(storage.decode(kv.value, kv.mod_revision)))
        self.start_revision = self.revision

    def close(self) -> None:
        self._unsubscribe()
        for w in list(self._watchers):
            self.stop(w)

    def _on_event(self, ev: Event) -> None:
        self.revision = max(self.revision, ev.revision)
        res = self._resource_of_key(ev.key)
        if res is None:
            return
        prev = storage.decode(ev.prev_value, ev.revision) if ev.prev_value is not None else None
        if ev.type == "DELETED":
            assert prev is not None
            obj = prev
        else:
            assert ev.value is not None
            obj = storage.decode(ev.value, ev.revision)
        if ev.type == "DELETED":
            self._objects.pop(ev.key, None)
        else:
            self._objects[ev.key] = Entry(obj)
        cached = CachedEvent(ev.revision, ev.type, res, meta.namespace(obj), obj, prev, time.monotonic())
        if len(self._events) == self._events.maxlen:
            self.start_revision = self._events[0].revision
        self._events.append(cached)
        self._trim()
        for w in self._watchers:
            w.offer(cached)
        while self._waiters and self._waiters[0][0] <= self.revision:
            fut = heapq.heappop(self._waiters)[2]
            if not fut.done():
                fut.set_result(None)

    def _resource_of_key(self, key: str) -> ResourceInfo | None:
        res = storage.resource_of_key(key)
        return res if res is not None else self._custom(key)

    async def wait_for(self, revision: int, timeout: float) -> bool:
        """Wait (on the loop the store delivers events on) until the cache has every event up to
        revision; False if it has not within timeout seconds."""
        if self.revision >= revision:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (revision, next(self._seq), fut))
        try:
            async with asyncio.timeout(timeout):
                await fut
            return True
        except TimeoutError:
            return self.revision >= revision
        finally:
            fut.cancel()
            if len(self._waiters) > 1024:  # abandoned waits of a cache that lags: drop them
                self._waiters = [w for w in self._waiters if not w[2].done()]
                heapq.heapify(self._waiters)

    def get(self, res: ResourceInfo, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object as the cache holds it, in res's version, or None.  Shared: do not change it."""
        e = self._objects.get(storage.object_key(res, namespace, name))
        if e is None:
            return None
        return e.obj if storage_resource(res) is res and res.custom is None else convert(e.obj, res)

    def namespace(self, name: str) -> dict[str, Any] | None:
        """The cached Namespace object, or None (absent, or not seen yet)."""
        e = self._objects.get(f"/registry/core/namespaces/{name}")
        return e.obj if e is not None else None

    def _trim(self) -> None:
        horizon = time.monotonic() - self._window
        while self._events and self._events[0].at < horizon:
            self.start_revision = self._events.popleft().revision

    def oldest_resumable(self) -> int:
        self._trim()
        return self.start_revision

    def watch(self, res: ResourceInfo, namespace: str | None, matches: Filter, from_revision: int,
              selector_key: str | None = None) -> Watcher:
        """Start a watcher that receives every change after from_revision.

        Raises LookupError when from_revision is older than the cache holds (the caller answers 410)."""
        if from_revision < self.oldest_resumable():
            raise LookupError(from_revision)
        w = Watcher(res, namespace, matches, selector_key=selector_key)
        start = bisect.bisect_right(self._events, from_revision, key=lambda e: e.revision)
        for i in range(start, len(self._events)):
            w.offer(self._events[i])
        self._watchers.add(w)
        return w

    def stop(self, w: Watcher) -> None:
        self._watchers.discard(w)
        w.closed = True

    def list(self, res: ResourceInfo, namespace: str | None, keep: Filter | None = None) -> tuple[list[Entry], int]:
        """The live objects of res (in namespace), in key order, that keep accepts, and the revision
        they are current at.  Entries are shared: callers must not change them."""
        prefix = storage.prefix(res, namespace)
        stored = self._resource_of_key(prefix + "x")
        out = []
        for key in sorted(k for k in self._objects if k.startswith(prefix)):
            e = self._objects[key]
            if stored is not res or (res.custom is not None and e.obj.get("apiVersion") != res.group_version):
                e = Entry(convert(e.obj, res))
            if keep is None or keep(e.obj):
                out.append(e)
        return out, self.revision

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)
