"""The etcd backend's subscription feed: one gRPC watch on the store's key
prefix, read by a daemon thread, feeding the `Store.subscribe` callbacks.

Events are delivered in revision order, one at a time, on the event loop
that was running when `subscribe` was first called (the API server's, whose
watch cache subscribes), else on the watch thread. A write made on that
delivery thread waits (briefly) for its own event and delivers the queue
before it returns, so the watch cache has seen it when its handler answers;
writes made on other threads (the API server's store pool) return at once,
and the API server awaits its cache instead. Writes by other masters arrive
through the same watch. A broken watch resumes from the revision after the
last one it queued.

Neighbours: `master.store.etcd` owns the client and opens the streams.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
from pyetcd import exceptions as etcd_errors

from master.store import Event

log = logging.getLogger(__name__)

OWN_EVENT_WAIT = 2.0  # seconds a write on the delivery thread waits for its watch event
RETRY_PAUSE = 0.5  # seconds between attempts to reopen a broken watch
DELETE = 1  # mvccpb.Event.EventType


def event_of(ev: Any, strip: int) -> Event:
    """The contract's Event for an etcd watch event (mvccpb.Event, prev_kv
    asked for); `strip` bytes of store prefix come off the key."""
    kv = ev.kv
    key, rev = kv.key[strip:].decode(), kv.mod_revision
    old = ev.prev_kv.value if ev.HasField("prev_kv") else None
    if ev.type == DELETE:
        return Event("DELETED", key, None, old, rev)
    if kv.create_revision == rev:
        return Event("ADDED", key, kv.value, None, rev)
    return Event("MODIFIED", key, kv.value, old, rev)


class WatchFeed:
    """Subscribers of one store. `open_watch(key, end, start)` opens a gRPC
    watch stream; `broken()` is told when one fails (endpoint fail-over)."""

    def __init__(self, open_watch: Callable[[bytes, bytes, int], Any], to_event: Callable[[Any], Event],
                 bounds: tuple[bytes, bytes], current_revision: Callable[[], int],
                 broken: Callable[[], None] = lambda: None) -> None:
        self._open_watch = open_watch
        self._to_event = to_event
        self._bounds = bounds
        self._current_revision = current_revision
        self._broken = broken
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._deliver = threading.RLock()
        self._subscribers: list[Callable[[Event], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: collections.deque[Event] = collections.deque()
        self._seen = 0  # newest revision the watch has queued
        self._drain_scheduled = False  # a drain is queued on the loop (guarded by _lock)
        self._thread: threading.Thread | None = None
        self._stream: Any = None
        self._closed = False

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        start = self._current_revision() + 1
        with self._lock:
            self._subscribers.append(callback)
            if self._loop is None:
                try:
                    self._loop = asyncio.get_running_loop()
                except RuntimeError:
                    pass
            if self._thread is None:
                self._seen = start - 1
                self._thread = threading.Thread(target=self._run, args=(start,), name="crt-etcd-watch",
                                                daemon=True)
                self._thread.start()

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # --- writes ----------------------------------------------------------

    def _on_delivery_thread(self) -> bool:
        if self._loop is None:
            return True
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def written(self, rev: int) -> None:
        """After a write at rev: on the delivery thread, wait for its event and deliver."""
        if self._subscribers and self._on_delivery_thread():
            with self._cond:
                if not self._cond.wait_for(lambda: self._seen >= rev or self._closed, OWN_EVENT_WAIT):
                    log.warning("etcd watch has not delivered revision %d after %.1fs", rev, OWN_EVENT_WAIT)
            self._drain()

    # --- delivery --------------------------------------------------------

    def _drain(self) -> None:
        with self._deliver:
            while True:
                with self._lock:
                    if not self._pending:
                        return
                    event = self._pending.popleft()
                    callbacks = list(self._subscribers)
                for callback in callbacks:
                    try:
                        callback(event)
                    except Exception:  # a committed write stands; the subscriber is at fault
                        log.exception("store subscriber failed on %s rev %d", event.key, event.revision)

    def _scheduled_drain(self) -> None:
        with self._lock:
            self._drain_scheduled = False
        self._drain()

    def _schedule_drain(self) -> None:
        """Deliver the queue on the loop; one wake-up covers every message
        queued before it runs (a busy loop is not woken once per event)."""
        loop = self._loop
        if loop is None:
            self._drain()
            return
        with self._lock:
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        try:
            loop.call_soon_threadsafe(self._scheduled_drain)
        except RuntimeError:  # the loop is closed: nobody is listening there any more
            with self._lock:
                self._drain_scheduled = False

    # --- the watch thread ------------------------------------------------

    def _run(self, start: int) -> None:
        next_rev = start
        while not self._closed:
            stream = None
            try:
                stream = self._open_watch(*self._bounds, next_rev)
                with self._lock:
                    self._stream = stream
                if self._closed:
                    return
                for answer in stream:
                    if answer.compact_revision:
                        lost = int(answer.compact_revision)
                        log.error("etcd watch fell behind compaction at %d; events %d..%d are lost",
                                  lost, next_rev, lost)
                        next_rev = lost + 1
                        break
                    if not answer.events:
                        continue
                    events = [self._to_event(ev) for ev in answer.events]
                    with self._cond:
                        self._pending.extend(events)
                        self._seen = events[-1].revision
                        self._cond.notify_all()
                    next_rev = events[-1].revision + 1
                    self._schedule_drain()
            except (grpc.RpcError, etcd_errors.Etcd3Exception) as e:
                if self._closed:
                    return
                self._broken()
                detail = e.details() if isinstance(e, grpc.RpcError) else type(e).__name__
                log.warning("etcd watch broke (%s); resuming from revision %d", detail, next_rev)
                time.sleep(RETRY_PAUSE)
            finally:
                if stream is not None:
                    stream.cancel()

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._subscribers.clear()
            self._cond.notify_all()
            stream = self._stream
        if stream is not None:
            stream.cancel()
        if self._thread is not None:
            self._thread.join(5.0)
