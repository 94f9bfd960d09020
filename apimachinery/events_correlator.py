"""Upstream's event correlator (client-go tools/record events_cache.go), pure:
what the recorder should write for each event it is given.

Three stages, each an LRU of 4096 keys, run for every event in this order:

- the aggregator: more than 10 similar events (same source, object, type and
  reason, differing only in message) within 10 minutes become one event whose
  message is "(combined from similar events): <latest message>";
- the logger: an event identical to one already written (same key, message
  included) becomes a patch of that Event object (count + 1, lastTimestamp,
  message, and `series` for events.k8s.io readers) instead of a new object;
- the spam filter: a token bucket per source and object (burst 25, one token
  every 5 minutes); an event over it is skipped (the logger's count still
  advances, so the next write that gets through carries the whole count).

No I/O and no locks: one event loop owns a correlator.  Time is an injected
clock (unix seconds).  Neighbours: `events` (the recorder that builds the
events and carries the results out) and its callers in every component.
"""
from __future__ import annotations

import collections
import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Obj = dict[str, Any]
K = TypeVar("K")
V = TypeVar("V")

MAX_LRU_ENTRIES = 4096
AGGREGATE_MAX_EVENTS = 10
AGGREGATE_INTERVAL = 600.0  # seconds
SPAM_BURST = 25
SPAM_QPS = 1.0 / 300.0
COMBINED = "(combined from similar events): "


class LRU(Generic[K, V]):
    """groupcache's lru.Cache: `get` and `add` make a key the newest; the oldest goes past `size`."""

    def __init__(self, size: int = MAX_LRU_ENTRIES) -> None:
        self.size = size
        self._d: collections.OrderedDict[K, V] = collections.OrderedDict()

    def get(self, key: K) -> V | None:
        v = self._d.get(key)
        if v is not None:
            self._d.move_to_end(key)
        return v

    def add(self, key: K, value: V) -> None:
        self._d[key] = value
        self._d.move_to_end(key)
        if len(self._d) > self.size:
            self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, key: object) -> bool:
        return key in self._d


class TokenBucket:
    """golang.org/x/time/rate as flowcontrol's passive limiter uses it: starts full."""
    __slots__ = ("qps", "burst", "tokens", "last")

    def __init__(self, qps: float, burst: int, now: float) -> None:
        self.qps, self.burst, self.tokens, self.last = qps, burst, float(burst), now

    def try_accept(self, now: float) -> bool:
        if now > self.last:
            self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.qps)
            self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def _src_obj(ev: Obj) -> tuple[str, ...]:
    src, io = ev.get("source") or {}, ev.get("involvedObject") or {}
    return (src.get("component", ""), src.get("host", ""), io.get("kind", ""), io.get("namespace", ""),
            io.get("name", ""), io.get("uid", ""), io.get("apiVersion", ""), ev.get("type", ""))


def event_key(ev: Obj, src_obj: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """upstream's getEventKey: source, object (with fieldPath), type, reason and message."""
    io = ev.get("involvedObject") or {}
    return (src_obj or _src_obj(ev)) + (io.get("fieldPath", ""), ev.get("reason", ""), ev.get("message", ""))


def spam_key(ev: Obj) -> tuple[str, ...]:
    """upstream's getSpamKey: source, object and type."""
    return _src_obj(ev)


def aggregate_key(ev: Obj, src_obj: tuple[str, ...] | None = None) -> tuple[tuple[str, ...], str]:
    """upstream's EventAggregatorByReasonFunc: (what similar events share, the message)."""
    return ((src_obj or _src_obj(ev)) + (ev.get("reason", ""), ev.get("reportingComponent", ""),
                            ev.get("reportingInstance", ""))), ev.get("message", "")


def rfc3339(t: float) -> str:
    """metav1.Time's form (whole seconds); the last second's text is kept, as events come in bursts."""
    global _last_second
    sec, text = _last_second
    if int(t // 1) != sec:
        sec = int(t // 1)
        text = _dt.datetime.fromtimestamp(sec, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        _last_second = (sec, text)  # one tuple swapped whole: safe to share between threads
    return text


_last_second: tuple[int | None, str] = (None, "")


def micro_time(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class _Similar:
    messages: set[str]
    last: float


@dataclass(frozen=True, slots=True)
class _Written:
    count: int
    first_timestamp: str
    name: str
    resource_version: str


@dataclass(frozen=True, slots=True)
class Result:
    """What to write: skip, or `event` (created when `patch` is None, else patched by name).
    `key` is the logger's key, for `Correlator.update_state` after the write."""
    skip: bool
    event: Obj | None = None
    patch: Obj | None = None
    key: tuple[str, ...] = ()


SKIP = Result(True)


class Correlator:
    def __init__(self, clock: Callable[[], float], *, size: int = MAX_LRU_ENTRIES,
                 burst: int = SPAM_BURST, qps: float = SPAM_QPS,
                 max_similar: int = AGGREGATE_MAX_EVENTS, interval: float = AGGREGATE_INTERVAL) -> None:
        self.clock = clock
        self.burst, self.qps, self.max_similar, self.interval = burst, qps, max_similar, interval
        self._similar: LRU[tuple[str, ...], _Similar] = LRU(size)
        self._written: LRU[tuple[str, ...], _Written] = LRU(size)
        self._buckets: LRU[tuple[str, ...], TokenBucket] = LRU(size)

    def correlate(self, ev: Obj) -> Result:
        """The result for a new event (upstream's EventCorrelate).  `ev` is not changed."""
        now = self.clock()
        src_obj = _src_obj(ev)  # the spam key; the other two keys extend it
        ev, key = self._aggregate(ev, now, src_obj)
        observed = self._observe(ev, key, now, src_obj)
        if observed is None:
            return SKIP
        return Result(False, observed[0], observed[1], key)

    def update_state(self, key: tuple[str, ...], written: Obj) -> None:
        """Remember the Event object the server holds now (name, first timestamp, resourceVersion).
        Events correlated while the write was in flight have counted on: the count never goes back."""
        md = written.get("metadata") or {}
        seen = self._written.get(key)
        count = max(int(written.get("count") or 1), seen.count if seen is not None else 0)
        self._written.add(key, _Written(count, written.get("firstTimestamp") or "",
                                        md.get("name", ""), md.get("resourceVersion", "")))

    def _aggregate(self, ev: Obj, now: float, src_obj: tuple[str, ...]) -> tuple[Obj, tuple[str, ...]]:
        akey, message = aggregate_key(ev, src_obj)
        rec = self._similar.get(akey)
        if rec is None or now - rec.last > self.interval:
            rec = _Similar(set(), now)
        rec.messages.add(message)
        rec.last = now
        self._similar.add(akey, rec)
        if len(rec.messages) < self.max_similar:
            return ev, event_key(ev, src_obj)
        rec.messages.pop()
        io = ev.get("involvedObject") or {}
        stamp = rfc3339(now)
        combined = {"apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": f"{io.get('name', '')}.{int(now * 1e9):x}",
                                 "namespace": (ev.get("metadata") or {}).get("namespace", "")},
                    "involvedObject": io, "reason": ev.get("reason", ""), "message": COMBINED + message,
                    "source": ev.get("source") or {}, "firstTimestamp": stamp, "lastTimestamp": stamp,
                    "count": 1, "type": ev.get("type", "")}
        for f in ("reportingComponent", "reportingInstance"):
            if f in ev:
                combined[f] = ev[f]
        return combined, akey

    def _observe(self, ev: Obj, key: tuple[str, ...], now: float, src_obj: tuple[str, ...]) -> tuple[Obj, Obj | None] | None:
        """Count ev against the object written before under key; returns (event, patch) to write
        it, or None when the spam filter skips it (the count has advanced all the same)."""
        last = self._written.get(key)
        md = ev.get("metadata") or {}
        if last is None or last.count <= 0:
            self._written.add(key, _Written(int(ev.get("count") or 1), ev.get("firstTimestamp") or "",
                                            md.get("name", ""), md.get("resourceVersion", "")))
            return None if self._spam(src_obj, now) else (ev, None)
        count = last.count + 1
        self._written.add(key, _Written(count, last.first_timestamp, last.name, last.resource_version))
        if self._spam(src_obj, now):
            return None
        md = dict(md, name=last.name)
        if last.resource_version:
            md["resourceVersion"] = last.resource_version
        series = {"count": count, "lastObservedTime": micro_time(now)}
        ev = dict(ev, metadata=md, firstTimestamp=last.first_timestamp, count=count, series=series)
        return ev, {"count": count, "lastTimestamp": ev.get("lastTimestamp"), "message": ev.get("message", ""),
                    "series": series}

    def _spam(self, skey: tuple[str, ...], now: float) -> bool:
        bucket = self._buckets.get(skey)
        if bucket is None:
            bucket = TokenBucket(self.qps, self.burst, now)
        accepted = bucket.try_accept(now)
        self._buckets.add(skey, bucket)
        return not accepted
