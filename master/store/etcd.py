"""The etcd v3 backend of the `Store` contract (Debian's `etcd-server` 3.4),
on the `etcd-sdk-python` client library (module `pyetcd`: etcd's gRPC API).

Why this library: of the maintained etcd v3 clients on PyPI, measured against
etcd 3.4 on this 2-core VM (`scripts/bench/etcd_clients.py`; per call,
sequential, and 8 threads or tasks in parallel):

    library            range of one key     create txn        range x8 threads
    etcd-sdk-python    350 us, 230 us CPU   570 us, 300 us    4,700/s, 220 us CPU
    aetcd (asyncio)    410 us, 290 us CPU   630 us, 360 us    5,600/s, 160 us CPU
    etcd3gw (requests) 1,200 us, 870 us     1,460 us, 870 us    920/s, 1,000 us CPU
    (our old http.client gateway client: 530 us, 190 us CPU; 3,100/s x8)

etcd3gw spends four times the CPU. aetcd spends a third less CPU in parallel
but is asyncio-only: its calls would run on the API server's loop (their CPU
is loop time, and the registry above the store is synchronous) or need a loop
of their own, the `Store` contract is synchronous (SQLite's calls are ~50 us
and stay inline), and it takes one endpoint. etcd-sdk-python (python-etcd3's API,
maintained) is synchronous, thread-safe over one HTTP/2 channel per endpoint,
gives the GIL back while a call waits, so the API server's small thread pool
overlaps round trips, and fails over between endpoints. (`etcd3` is
unmaintained.)

Mapping: a key's revision is etcd's mod_revision; create is a txn on
create_revision == 0, update/delete with an expected revision a txn on
mod_revision == N (unconditional ones on mod_revision > 0, so a missing key
is KeyNotFound); a list at a revision is a range with `revision`; history
(`events_since`) is a watch from revision + 1 read up to the current
revision; etcd's ErrCompacted becomes Compacted. Every key is stored under
the URL's `prefix` (none by default), so clusters or tests can share one etcd.

Errors: the library's (and gRPC's) become the contract's: OUT_OF_RANGE
"compacted" is Compacted, every other failure a StoreError naming the key.
Fail-over (`etcdclient`): an endpoint that fails is set aside for a second
and the call goes to the next; reads are re-sent, writes only when the
connection was refused (a write that may have landed is not sent twice).

Neighbours: the contract in `master.store`; `master.store.etcdclient` makes
the library's client from a store URL; `master.store.etcdwatch` feeds
subscribers; the SQLite backend beside it does the same job.
"""
from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from pyetcd import etcdrpc
from pyetcd import exceptions as etcd_errors

from master.store import Compacted, Conflict, Event, KeyExists, KeyNotFound, KeyValue, StoreError
from master.store.etcdclient import connect, never_sent, range_end, reason
from master.store.etcdwatch import WatchFeed, event_of

log = logging.getLogger(__name__)

T = TypeVar("T")


class EtcdStore:
    """The `Store` protocol on an etcd v3 cluster. Thread-safe; every call is
    a network round trip, so the API server calls it off its event loop."""

    blocking = True

    def __init__(self, endpoints: list[str], prefix: str = "", timeout: float = 10.0) -> None:
        self.endpoints = endpoints
        self._client = connect(endpoints, timeout)
        self._ns = prefix.encode()
        self._closed = False
        self._local = threading.local()
        self._compact_rev = 0
        self._compact_rev = self._probe_compact_revision()
        self._feed = WatchFeed(self._open_watch, self._event, self._bounds(""), self.current_revision,
                               self._watch_broke)

    # --- keys, answers and errors ------------------------------------------

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

    def _kv(self, kv: Any) -> KeyValue:
        return KeyValue(kv.key[len(self._ns):].decode(), kv.value, kv.create_revision, kv.mod_revision)

    def _event(self, ev: Any) -> Event:
        return event_of(ev, len(self._ns))

    def _rpc(self, call: Callable[[], T], what: str, revision: int = 0, resend: bool = True,
             raw: bool = False) -> T:
        """One library call with fail-over and the contract's errors (`raw`: gRPC's own errors)."""
        if self._closed:
            raise RuntimeError("store is closed")
        tries = len(self.endpoints)
        for attempt in range(tries):
            try:
                return call()
            except etcd_errors.ConnectionFailedError as e:
                if attempt + 1 < tries and (resend or never_sent(e)):
                    log.warning("etcd endpoint failed (%s); trying the next", reason(e))
                    continue
                raise StoreError(what, f"etcd unavailable: {reason(e)}") from e
            except etcd_errors.Etcd3Exception as e:  # no endpoint left, timeouts, internal errors
                raise StoreError(what, f"etcd: {type(e).__name__} ({reason(e)})") from e
            except grpc.RpcError as e:  # the codes the library passes through
                if raw:
                    raise
                raise self._rpc_error(e, what, revision) from e
        raise AssertionError("unreachable")

    def _rpc_error(self, e: grpc.RpcError, what: str, revision: int) -> StoreError:
        details = e.details() or ""
        if e.code() == grpc.StatusCode.OUT_OF_RANGE and "compacted" in details:
            self._compact_rev = max(self._compact_rev, self._probe_compact_revision())
            return Compacted(what, revision, self._compact_rev)
        if e.code() == grpc.StatusCode.OUT_OF_RANGE and "future" in details:
            return StoreError(what, f"revision {revision} is in the future")
        return StoreError(what, f"etcd: {e.code().name} {details}")

    def _probe_compact_revision(self) -> int:
        """etcd 3.4 keeps no readable record of its compact revision: a read
        at revision 1 tells whether history was compacted, and a watch from
        revision 1 is then cancelled with the compact revision."""
        probe = self._ns + b"\0"
        try:
            self._rpc(lambda: self._client.get_response(probe, revision=1, count_only=True), "", 1, raw=True)
            return 0
        except grpc.RpcError as e:
            if "compacted" not in (e.details() or ""):
                raise StoreError("", f"etcd: {e.code().name} {e.details()}") from e
        stream = self._rpc(lambda: self._open_watch(probe, b"", 1, timeout=10.0), "")
        try:
            for answer in stream:
                if answer.compact_revision:
                    return int(answer.compact_revision)
        except grpc.RpcError as e:
            raise StoreError("", f"etcd: {e.code().name} {e.details()}") from e
        finally:
            stream.cancel()
        return self._compact_rev

    def _watch_broke(self) -> None:
        """A watch stream failed: set its endpoint aside, so the next opens on another."""
        if len(self.endpoints) > 1:
            endpoint = self._client.endpoint_in_use
            if endpoint is not None:
                endpoint.fail()

    def _open_watch(self, key: bytes, end: bytes, start: int, timeout: float | None = None) -> Any:
        """A gRPC watch stream of [key, end) from revision start (prev_kv on);
        iterate it for WatchResponses, cancel() it from any thread."""
        create = etcdrpc.WatchCreateRequest(key=key, range_end=end, start_revision=start, prev_kv=True)
        stub = etcdrpc.WatchStub(self._client.channel)
        return stub.Watch(iter([etcdrpc.WatchRequest(create_request=create)]), timeout=timeout,
                          metadata=self._client.metadata)

    # --- reads -----------------------------------------------------------

    def current_revision(self) -> int:
        """A linearizable read: at least the revision of every write acknowledged before the call."""
        answer = self._rpc(lambda: self._client.get_response(self._ns + b"\0", count_only=True), "")
        return int(answer.header.revision)

    def compact_revision(self) -> int:
        return self._compact_rev

    def get(self, key: str) -> KeyValue | None:
        k = self._key(key)
        answer = self._rpc(lambda: self._client.get_response(k), key)
        return self._kv(answer.kvs[0]) if answer.kvs else None

    def list(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> tuple[list[KeyValue], int, bool]:
        first, end = self._bounds(prefix)
        start = max(first, self._key(start_after) + b"\0") if start_after else first
        if revision and revision < self._compact_rev:
            raise Compacted(prefix, revision, self._compact_rev)
        answer = self._rpc(lambda: self._client.get_range_response(
            start, end, limit=limit or None, revision=revision or None), prefix, revision)
        items = [self._kv(kv) for kv in answer.kvs]
        return items, revision or int(answer.header.revision), bool(answer.more)

    def count(self, prefix: str) -> int:
        first, end = self._bounds(prefix)
        answer = self._rpc(lambda: self._client.get_range_response(first, end, count_only=True), prefix)
        return int(answer.count)

    def _history(self, after: int, prefix: str, stop_at: int, limit: int = 0) -> builtins.list[Event]:
        """Events in (after, stop_at] under prefix. The watch covers every key,
        so each revision up to stop_at shows up and the read knows when to stop."""
        if after < self._compact_rev:
            raise Compacted(prefix, after, self._compact_rev)
        out: builtins.list[Event] = []
        if stop_at <= after:
            return out
        want = self._span(prefix)
        stream = self._rpc(lambda: self._open_watch(b"\0", b"\0", after + 1, timeout=30.0), prefix, after)
        try:
            for answer in stream:
                if answer.compact_revision:
                    self._compact_rev = max(self._compact_rev, int(answer.compact_revision))
                    raise Compacted(prefix, after, self._compact_rev)
                for ev in answer.events:
                    rev = ev.kv.mod_revision
                    if rev > stop_at:
                        return out
                    if ev.kv.key.startswith(want):
                        out.append(self._event(ev))
                        if limit and len(out) >= limit:
                            return out
                    if rev == stop_at:
                        return out
        except grpc.RpcError as e:
            raise self._rpc_error(e, prefix, after) from e
        finally:
            stream.cancel()
        return out

    def events_since(self, revision: int, prefix: str = "", limit: int = 0) -> builtins.list[Event]:
        return self._history(revision, prefix, self.current_revision(), limit)

    # --- writes ----------------------------------------------------------

    def _txn(self, key: str, compare: Any, op: Any) -> tuple[bool, Any]:
        """compare -> op, else read the key: (succeeded, the op's or the read's answer)."""
        k = self._key(key)
        ok, answers = self._rpc(lambda: self._client.transaction(
            compare=[compare], success=[op], failure=[self._client.transactions.get(k)]), key, resend=False)
        return ok, answers[0]

    def _failed(self, key: str, expected: int, found: builtins.list[tuple[bytes, Any]]) -> StoreError:
        if not found:
            return KeyNotFound(key)
        value, meta = found[0]
        return Conflict(key, expected, KeyValue(key, value, meta.create_revision, meta.mod_revision))

    def _expect(self, key: str, expected: int) -> Any:
        mod = self._client.transactions.mod(self._key(key))
        return mod == expected if expected else mod > 0

    def create(self, key: str, value: bytes) -> int:
        k = self._key(key)
        t = self._client.transactions
        ok, answer = self._txn(key, t.create(k) == 0, t.put(k, value))
        if not ok:
            raise KeyExists(key)
        return self._written(answer.response_put.header.revision)

    def update(self, key: str, value: bytes, expected_revision: int = 0) -> int:
        k = self._key(key)
        ok, answer = self._txn(key, self._expect(key, expected_revision), self._client.transactions.put(k, value))
        if not ok:
            raise self._failed(key, expected_revision, answer)
        return self._written(answer.response_put.header.revision)

    def delete(self, key: str, expected_revision: int = 0) -> tuple[int, KeyValue]:
        k = self._key(key)
        ok, answer = self._txn(key, self._expect(key, expected_revision),
                               self._client.transactions.delete(k, prev_kv=True))
        if not ok:
            raise self._failed(key, expected_revision, answer)
        gone = answer.response_delete_range
        return self._written(gone.header.revision), self._kv(gone.prev_kvs[0])

    def _written(self, rev: int) -> int:
        self._local.written = rev
        self._feed.written(rev)
        return int(rev)

    def written_revision(self) -> int:
        """The newest revision the calling thread has written through this store (0: none)."""
        return int(getattr(self._local, "written", 0))

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
            self._rpc(lambda: self._client.compact(revision), "", revision)
        except Compacted:
            return 0  # another master compacted past us meanwhile
        self._compact_rev = revision
        return sum((e.type != "ADDED") + (e.type == "DELETED") for e in events)

    # --- subscribers -----------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        return self._feed.subscribe(callback)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._feed.close()
        self._client.close()
