"""Events expire `ttl` after they were last written (upstream's
`--event-ttl`, default 1h0m0s).  Upstream attaches an etcd lease to every
Event write; here one sweep in the API server process does it on either store
(SQLite or etcd): every min(ttl/10, 60 s) it reads the Events from the watch
cache (memory, no store read) and deletes those last written more than ttl
ago through the registry, each with its resourceVersion as a precondition, so
an Event updated meanwhile (a repeat folded into it) stays.

"Last written" is the latest of creationTimestamp, lastTimestamp,
series.lastObservedTime and eventTime: recorders stamp every write, and an
Event created with old timestamps (copied from elsewhere) still lives ttl after
it was created, as under upstream's lease.

Neighbours: master/main.py starts `EventTTL.run` beside the API server; the
recorders (apimachinery/events.py) write the Events; `registry` deletes.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from apimachinery import kinds
from apimachinery.kinds import ResourceInfo

log = logging.getLogger("coracle.apiserver")
Obj = dict[str, Any]
EVENTS = kinds.lookup("", "v1", "events")
DEFAULT_TTL = 3600.0  # upstream's 1h0m0s
MAX_INTERVAL = 60.0
MIN_INTERVAL = 1.0
YIELD_EVERY = 100  # deletes between yields to the loop (SQLite deletes run inline)

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration (time.ParseDuration: `1h`, `30m`, `90s`, `1h0m0s`, `1.5h`, `0`).
    Raises ValueError for anything else."""
    s = text.strip()
    sign = -1.0 if s.startswith("-") else 1.0
    body = s[1:] if s[:1] in "+-" else s
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    pos, total = 0, 0.0
    while pos < len(body):
        m = _PART.match(body, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r}: use a number and a unit (h, m, s, ms), e.g. 1h, 30m, 90s")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def sweep_interval(ttl: float) -> float:
    return max(MIN_INTERVAL, min(ttl / 10.0, MAX_INTERVAL))


def _stamp(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return _dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def last_written(ev: Obj) -> float | None:
    """Unix seconds of the Event's latest write as its timestamps tell; None when it has none."""
    md = ev.get("metadata") or {}
    stamps = [_stamp(md.get("creationTimestamp")), _stamp(ev.get("lastTimestamp")),
              _stamp((ev.get("series") or {}).get("lastObservedTime")), _stamp(ev.get("eventTime"))]
    known = [t for t in stamps if t is not None]
    return max(known) if known else None


def expired(events: Iterable[Obj], now: float, ttl: float) -> list[tuple[str, str, str]]:
    """(namespace, name, resourceVersion) of the Events last written more than ttl before now."""
    out = []
    for ev in events:
        t = last_written(ev)
        if t is not None and now - t > ttl:
            md = ev["metadata"]
            out.append((md.get("namespace", ""), md["name"], md.get("resourceVersion", "")))
    return out


class Server(Protocol):
    """What the sweep needs of the API server (master.apiserver.app.APIServer)."""
    cache: Any  # WatchCache: list(res, namespace) -> (entries, revision)
    calls: Any  # StoreCalls: run(fn, *args) inline on SQLite, on the pool on etcd
    registry: Any  # Registry: delete(res, ns, name, options)


class EventTTL:
    def __init__(self, server: Server, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.time,
                 res: ResourceInfo | None = EVENTS):
        assert res is not None
        self.server, self.ttl, self.clock, self.res = server, ttl, clock, res
        self.deleted = 0

    async def sweep(self) -> int:
        """Delete the expired Events once; returns how many went.  Safe to run concurrently with
        writers and with other masters' sweeps (a 404 or 409 is someone else's change: skipped)."""
        entries, _rev = self.server.cache.list(self.res, None)
        victims = expired((e.obj for e in entries), self.clock(), self.ttl)
        gone = 0
        for i, (ns, name, rv) in enumerate(victims):
            options = {"preconditions": {"resourceVersion": rv}} if rv else {}
            try:
                await self.server.calls.run(self.server.registry.delete, self.res, ns or None, name, options)
                gone += 1
            except Exception as e:  # an APIError (404, 409) or the store failing: try again next sweep
                if getattr(e, "code", None) not in (404, 409):
                    log.warning("event not expired: %s", e, extra={"kind": "Event", "namespace": ns, "object": name})
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
        if gone:
            log.info("expired %d events older than %.0fs", gone, self.ttl)
        self.deleted += gone
        return gone

    async def run(self) -> None:
        """Sweep every sweep_interval(ttl) until cancelled; a failed sweep is logged and retried."""
        every = sweep_interval(self.ttl)
        while True:
            await asyncio.sleep(every)
            try:
                await self.sweep()
            except Exception as e:
                log.warning("event expiry sweep failed: %s", e)
