"""The etcd v3 backend of the `Store` contract (Debian's `etcd-server` 3.4).

Mapping: a key's revision is etcd's mod_revision; create is a txn on
create_revision == 0, update/delete with an expected revision a txn on
mod_revision == N (unconditional ones on mod_revision > 0, so a missing key
is KeyNotFound); a list at a revision is a range with `revision`; history
(`events_since`) is a watch from revision + 1 read up to the current
revision; etcd's ErrCompacted becomes Compacted. Every key is stored under
the URL's `prefix` (none by default), so clusters or tests can share one etcd.

Subscribers: one watch on the prefix, read by a daemon thread, feeds a queue.
Events are delivered in revision order, one at a time, on the event loop that
was running when `subscribe` was first called (the API server's), else on the
watch thread. A write made on that delivery thread waits (briefly) for its own
event and delivers the queue before it returns, so, as with SQLite, the watch
cache has seen a write when its handler answers. Writes by other masters
arrive through the same watch.

Neighbours: the contract in `master.store`, the wire in
`master.store.etcdhttp`; the SQLite backend beside it does the same job.
"""
from __future__ import annotations

import asyncio
import builtins
import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from master.store import Compacted, Conflict, Event, KeyExists, KeyNotFound, KeyValue, StoreError
from master.store.etcdhttp import (
    ERR_COMPACTED,
    ERR_FUTURE,
    Gateway,
    GatewayError,
    b64,
    parse_endpoints,
    range_end,
    unb64,
)

log = logging.getLogger(__name__)

OWN_EVENT_WAIT = 2.0  # seconds a write on the delivery thread waits for its watch event


def parse_url(url: str) -> tuple[list[str], str]:
    """`etcd://h1:2379,h2:2379?prefix=/x` -> (endpoint URLs, key prefix)."""
    parts = urlsplit(url)
    if parts.scheme != "etcd":
        raise ValueError(f"not an etcd store URL: {url!r}")
    prefix = parse_qs(parts.query).get("prefix", [""])[0]
    return parse_endpoints(parts.netloc), prefix.rstrip("/") if prefix != "/" else ""


def _rev(header: dict[str, Any]) -> int:
    return int(header.get("revision", 0))


class EtcdStore:
    """The `Store` protocol on an etcd v3 cluster. Thread-safe."""

    def __init__(self, endpoints: list[str], prefix: str = "", timeout: float = 10.0) -> None:
        self._gw = Gateway(endpoints, timeout)
        self._ns = prefix.encode()
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[Event], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: collections.deque[Event] = collections.deque()
        self._seen = 0  # newest revision the subscription watch has queued
        self._cond = threading.Condition(self._lock)
        self._deliver = threading.RLock()
        self._drain_scheduled = False  # a drain is queued on the loop (guarded by _lock)
        self._watch_thread: threading.Thread | None = None
        self._stream: Any = None
        self._closed = False
        self._compact_rev = self._probe_compact_revision()

    # --- keys and answers ------------------------------------------------

    def _key(self, key: str) -> bytes:
        if self._ns and not key.startswith("/"):
            raise ValueError(f"key {key!r} must start with '/' in a store with a prefix")
        return self._ns + key.encode()

    def _span(self, prefix: str) -> bytes:
        """The etcd key prefix of the store's keys with this prefix: keys live
        under "<ns>/", so a prefix /a does not reach into a sibling /a2."""
        return self._ns + (prefix.encode() or b"/") if self._ns else prefix.encode()

    def _bounds(self, prefix: str) -> tuple[bytes, bytes]:
        """[start, end) of the etcd range of keys with the prefix (etcd's
        every-key range is ["\\0", "\\0") as a key may not be empty)."""
        span = self._span(prefix)
        return (span, range_end(span)) if span else (b"\0", b"\0")

    def _name(self, raw: str) -> str:
        return unb64(raw)[len(self._ns):].decode()

    def _kv(self, kv: dict[str, Any]) -> KeyValue:
        return KeyValue(self._name(kv["key"]), unb64(kv.get("value")),
                        int(kv.get("create_revision", 0)), int(kv.get("mod_revision", 0)))

    def _call(self, path: str, body: dict[str, Any], what: str, revision: int = 0) -> dict[str, Any]:
        if self._closed:
            raise RuntimeError("store is closed")
        try:
            return self._gw.call(path, body)
        except GatewayError as e:
            if ERR_COMPACTED in e.message:
                self._compact_rev = max(self._compact_rev, self._probe_compact_revision())
                raise Compacted(what, revision, self._compact_rev) from e
            if ERR_FUTURE in e.message:
                raise StoreError(what, f"revision {revision} is in the future") from e
            raise StoreError(what, f"etcd: {e.message}") from e

    def _probe_compact_revision(self) -> int:
        """etcd keeps no readable record of its compact revision; a watch
        from revision 1 is cancelled with it when history was compacted."""
        with self._gw.watch(b"\0", b"\0", 1, prev_kv=False, read_timeout=10.0) as stream:
            for msg in stream:
                if "compact_revision" in msg:
                    return int(msg["compact_revision"])
                if msg.get("events") or (msg.get("created") and _rev(msg.get("header", {})) <= 1):
                    return 0
        return 0

    # --- reads -----------------------------------------------------------

    def current_revision(self) -> int:
        answer = self._call("kv/range", {"key": b64(self._ns + b"\0"), "count_only": True}, "")
        return _rev(answer["header"])

    def compact_revision(self) -> int:
        return self._compact_rev

    def get(self, key: str) -> KeyValue | None:
        answer = self._call("kv/range", {"key": b64(self._key(key))}, key)
        kvs = answer.get("kvs")
        return self._kv(kvs[0]) if kvs else None

    def list(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> tuple[list[KeyValue], int, bool]:
        first, end = self._bounds(prefix)
        start = max(first, self._key(start_after) + b"\0") if start_after else first
        body: dict[str, Any] = {"key": b64(start), "range_end": b64(end)}
        if limit > 0:
            body["limit"] = str(limit)
        if revision:
            if revision < self._compact_rev:
                raise Compacted(prefix, revision, self._compact_rev)
            body["revision"] = str(revision)
        answer = self._call("kv/range", body, prefix, revision)
        items = [self._kv(kv) for kv in answer.get("kvs", [])]
        return items, revision or _rev(answer["header"]), bool(answer.get("more"))

    def count(self, prefix: str) -> int:
        first, end = self._bounds(prefix)
        answer = self._call("kv/range", {"key": b64(first), "range_end": b64(end),
                                         "count_only": True}, prefix)
        return int(answer.get("count", 0))

    def _history(self, after: int, prefix: str, stop_at: int, limit: int = 0) -> builtins.list[Event]:
        """Events in (after, stop_at] under prefix. The watch covers every key,
        so each revision up to stop_at shows up and the read knows when to stop."""
        if after < self._compact_rev:
            raise Compacted(prefix, after, self._compact_rev)
        out: builtins.list[Event] = []
        if stop_at <= after:
            return out
        want = self._span(prefix)
        with self._gw.watch(b"\0", b"\0", after + 1, read_timeout=30.0) as stream:
            for msg in stream:
                if "compact_revision" in msg:
                    self._compact_rev = max(self._compact_rev, int(msg["compact_revision"]))
                    raise Compacted(prefix, after, self._compact_rev)
                for ev in msg.get("events", []):
                    rev = int(ev["kv"].get("mod_revision", 0))
                    if rev > stop_at:
                        return out
                    if unb64(ev["kv"]["key"]).startswith(want):
                        out.append(self._event(ev))
                        if limit and len(out) >= limit:
                            return out
                    if rev == stop_at:
                        return out
        return out

    def events_since(self, revision: int, prefix: str = "", limit: int = 0) -> builtins.list[Event]:
        return self._history(revision, prefix, self.current_revision(), limit)

    def _event(self, ev: dict[str, Any]) -> Event:
        kv, prev = ev["kv"], ev.get("prev_kv")
        key, rev = self._name(kv["key"]), int(kv.get("mod_revision", 0))
        old = unb64(prev.get("value")) if prev else None
        if ev.get("type") == "DELETE":
            return Event("DELETED", key, None, old, rev)
        if int(kv.get("create_revision", 0)) == rev:
            return Event("ADDED", key, unb64(kv.get("value")), None, rev)
        return Event("MODIFIED", key, unb64(kv.get("value")), old, rev)

    # --- writes ----------------------------------------------------------

    def _txn(self, key: str, compare: dict[str, Any], op: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        k = b64(self._key(key))
        body = {"compare": [{"key": k, **compare}], "success": [op],
                "failure": [{"request_range": {"key": k}}]}
        answer = self._call("kv/txn", body, key)
        return bool(answer.get("succeeded")), answer

    def _failed(self, key: str, expected: int, answer: dict[str, Any]) -> StoreError:
        kvs = answer["responses"][0]["response_range"].get("kvs")
        if not kvs:
            return KeyNotFound(key)
        return Conflict(key, expected, self._kv(kvs[0]))

    def _condition(self, expected: int) -> dict[str, Any]:
        if expected:
            return {"target": "MOD", "result": "EQUAL", "mod_revision": str(expected)}
        return {"target": "MOD", "result": "GREATER", "mod_revision": "0"}

    def create(self, key: str, value: bytes) -> int:
        ok, answer = self._txn(key, {"target": "CREATE", "result": "EQUAL", "create_revision": "0"},
                               {"request_put": {"key": b64(self._key(key)), "value": b64(value)}})
        if not ok:
            raise KeyExists(key)
        return self._written(_rev(answer["header"]))

    def update(self, key: str, value: bytes, expected_revision: int = 0) -> int:
        ok, answer = self._txn(key, self._condition(expected_revision),
                               {"request_put": {"key": b64(self._key(key)), "value": b64(value)}})
        if not ok:
            raise self._failed(key, expected_revision, answer)
        return self._written(_rev(answer["header"]))

    def delete(self, key: str, expected_revision: int = 0) -> tuple[int, KeyValue]:
        ok, answer = self._txn(key, self._condition(expected_revision),
                               {"request_delete_range": {"key": b64(self._key(key)), "prev_kv": True}})
        if not ok:
            raise self._failed(key, expected_revision, answer)
        gone = self._kv(answer["responses"][0]["response_delete_range"]["prev_kvs"][0])
        return self._written(_rev(answer["header"])), gone

    def compact(self, revision: int) -> int:
        """Compact etcd's history at revision; returns the rows of this
        store's prefix it drops (superseded values and tombstones), counted
        from the history first, so the number means what SQLite's does.
        Compaction is cluster-wide in etcd: it drops other prefixes' history too."""
        now = self.current_revision()
        if revision > now:
            raise ValueError(f"compact revision {revision} is beyond current {now}")
        if revision <= self._compact_rev:
            return 0
        try:
            events = self._history(self._compact_rev, "", revision)
        except Compacted:
            return 0  # another master compacted past us meanwhile
        try:
            self._call("kv/compaction", {"revision": str(revision), "physical": False}, "", revision)
        except Compacted:
            return 0
        self._compact_rev = revision
        return sum((e.type != "ADDED") + (e.type == "DELETED") for e in events)

    # --- subscribers -----------------------------------------------------

    def _on_delivery_thread(self) -> bool:
        if self._loop is None:
            return True
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _written(self, rev: int) -> int:
        """After a write at rev: on the delivery thread, wait for its event and deliver."""
        if self._subscribers and self._on_delivery_thread():
            with self._cond:
                if not self._cond.wait_for(lambda: self._seen >= rev or self._closed, OWN_EVENT_WAIT):
                    log.warning("etcd watch has not delivered revision %d after %.1fs", rev, OWN_EVENT_WAIT)
            self._drain()
        return rev

    def _scheduled_drain(self) -> None:
        with self._lock:
            self._drain_scheduled = False
        self._drain()

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

    def _watch_loop(self, start: int) -> None:
        next_rev = start
        while not self._closed:
            try:
                self._stream = self._gw.watch(*self._bounds(""), next_rev)
                for msg in self._stream:
                    if "compact_revision" in msg:
                        lost = int(msg["compact_revision"])
                        log.error("etcd watch fell behind compaction at %d; events %d..%d are lost",
                                  lost, next_rev, lost)
                        next_rev = lost + 1
                        break
                    events = [self._event(ev) for ev in msg.get("events", [])]
                    if not events:
                        continue
                    with self._cond:
                        self._pending.extend(events)
                        self._seen = events[-1].revision
                        self._cond.notify_all()
                    next_rev = events[-1].revision + 1
                    self._schedule_drain()
            except (httpx.HTTPError, GatewayError, OSError, ValueError) as e:
                if not self._closed:
                    log.warning("etcd watch broke (%s); resuming from revision %d", e, next_rev)
                    time.sleep(0.5)
            finally:
                if self._stream is not None:
                    self._stream.close()

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

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        start = self.current_revision() + 1
        with self._lock:
            self._subscribers.append(callback)
            if self._loop is None:
                try:
                    self._loop = asyncio.get_running_loop()
                except RuntimeError:
                    pass
            if self._watch_thread is None:
                self._seen = start - 1
                self._watch_thread = threading.Thread(target=self._watch_loop, args=(start,),
                                                      name="crt-etcd-watch", daemon=True)
                self._watch_thread.start()

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._subscribers.clear()
            self._cond.notify_all()
        if self._stream is not None:
            self._stream.close()
        if self._watch_thread is not None:
            self._watch_thread.join(5.0)
        self._gw.close()
