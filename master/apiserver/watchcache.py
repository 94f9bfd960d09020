"""The API server's watch cache: every change the store commits, decoded
once and fanned out to the watchers whose resource, namespace and selectors
match.

It keeps the events of the last `window_seconds` so a watch may resume from
any resourceVersion inside that window; older versions get 410 Gone and the
client relists.  A watcher that falls `queue_size` events behind is closed:
it relists, as with kine and the upstream cacher.
"""
from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from apimachinery import meta
from apimachinery.kinds import ResourceInfo
from master.apiserver import storage
from master.store import Event, Store

Filter = Callable[[dict[str, Any]], bool]


@dataclass(slots=True)
class CachedEvent:
    revision: int
    type: str
    res: ResourceInfo
    namespace: str
    obj: dict[str, Any]
    prev: dict[str, Any] | None
    at: float


@dataclass(eq=False)
class Watcher:
    res: ResourceInfo
    namespace: str | None
    matches: Filter
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue())
    limit: int = 10_000
    closed: bool = False

    def offer(self, ev: CachedEvent) -> None:
        """Translate one change for this watcher (selector transitions become ADDED/DELETED)."""
        if self.closed or ev.res is not self.res:
            return
        if self.namespace and ev.namespace != self.namespace:
            return
        now = self.matches(ev.obj)
        before = ev.prev is not None and self.matches(ev.prev)
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
        self.queue.put_nowait((kind, ev.obj))


class WatchCache:
    def __init__(self, store: Store, window_seconds: float = 300.0, max_events: int = 200_000):
        self._store = store
        self._window = window_seconds
        self._events: collections.deque[CachedEvent] = collections.deque(maxlen=max_events)
        self._watchers: set[Watcher] = set()
        self.start_revision = store.current_revision()
        self._unsubscribe = store.subscribe(self._on_event)

    def close(self) -> None:
        self._unsubscribe()
        for w in list(self._watchers):
            self.stop(w)

    def _on_event(self, ev: Event) -> None:
        res = storage.resource_of_key(ev.key)
        if res is None:
            return
        prev = storage.decode(ev.prev_value, ev.revision) if ev.prev_value is not None else None
        if ev.type == "DELETED":
            assert prev is not None
            obj = prev
        else:
            assert ev.value is not None
            obj = storage.decode(ev.value, ev.revision)
        cached = CachedEvent(ev.revision, ev.type, res, meta.namespace(obj), obj, prev, time.monotonic())
        if len(self._events) == self._events.maxlen:
            self.start_revision = self._events[0].revision
        self._events.append(cached)
        self._trim()
        for w in self._watchers:
            w.offer(cached)

    def _trim(self) -> None:
        horizon = time.monotonic() - self._window
        while self._events and self._events[0].at < horizon:
            self.start_revision = self._events.popleft().revision

    def oldest_resumable(self) -> int:
        self._trim()
        return self.start_revision

    def watch(self, res: ResourceInfo, namespace: str | None, matches: Filter, from_revision: int) -> Watcher:
        """Start a watcher that receives every change after from_revision.

        Raises LookupError when from_revision is older than the cache holds (the caller answers 410)."""
        if from_revision < self.oldest_resumable():
            raise LookupError(from_revision)
        w = Watcher(res, namespace, matches)
        for ev in self._events:
            if ev.revision > from_revision:
                w.offer(ev)
        self._watchers.add(w)
        return w

    def stop(self, w: Watcher) -> None:
        self._watchers.discard(w)
        w.closed = True

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)
