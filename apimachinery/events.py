"""The event recorder every component shares (client-go tools/record):
`event(obj, type, reason, message)` builds a core/v1 Event about obj, runs it
through upstream's correlator (`events_correlator`: spam filter, aggregation,
folding of identical events into one object with a count) and hands what is
left to one background task that creates or patches it through the API.

Contract: `event` never blocks and never raises; it must be called on the
event loop's thread (from another thread it is passed to the loop the recorder
first ran on).  Writes happen in order, one at a time; a write that fails (API
down, namespace going, anything) is logged at debug and dropped, never retried,
as events are best effort.  At most `queue_size` writes wait; more are dropped.
`close` waits briefly for the queue to drain, then drops the rest.

Neighbours: the scheduler, the controllers and the node agent each own one
recorder per component name; the API server stores and expires the events
(master/apiserver/eventttl.py).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from apimachinery import kinds
from apimachinery.logs import obj_fields
from apimachinery.client import Client, StatusError
from apimachinery.events_correlator import Correlator, Result, rfc3339

log = logging.getLogger("coracle.events")
Obj = dict[str, Any]
EVENTS = kinds.lookup("", "v1", "events")
TYPES = ("Normal", "Warning")
QUEUE_SIZE = 1000  # upstream's broadcaster queue (maxQueuedEvents), dropping when full
CLOSE_WAIT = 1.0  # seconds close() lets queued writes finish


def object_reference(obj: Obj) -> Obj:
    """upstream's reference.GetReference for an object as read from the API."""
    md = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind", ""), "namespace": md.get("namespace", ""), "name": md.get("name", ""),
           "uid": md.get("uid", ""), "apiVersion": obj.get("apiVersion", ""),
           "resourceVersion": md.get("resourceVersion", "")}
    return {k: v for k, v in ref.items() if v}


def _about(ref: Obj) -> dict[str, str]:
    """The log fields of the object an event is about (its involvedObject)."""
    return obj_fields({"kind": ref.get("kind", ""), "metadata": ref})


class EventRecorder:
    def __init__(self, client: Client, component: str, host: str = "",
                 clock: Callable[[], float] = time.time, queue_size: int = QUEUE_SIZE):
        self.client = client
        self.component, self.host, self.clock = component, host, clock
        self.source = {"component": component, **({"host": host} if host else {})}
        self.correlator = Correlator(clock)
        self._queue: asyncio.Queue[Result] | None = None
        self._queue_size = queue_size
        self._writer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._last_nanos = 0
        self.written = 0  # writes the API accepted (creates and patches)
        self.dropped = 0  # writes lost: queue full, API errors

    def make_event(self, obj: Obj, etype: str, reason: str, message: str) -> Obj:
        """The core/v1 Event as upstream's makeEvent builds it (name `<object>.<hex unix nanos>`)."""
        now = self.clock()
        nanos = max(int(now * 1e9), self._last_nanos + 1)  # two events in one clock tick get two names
        self._last_nanos = nanos
        ref = object_reference(obj)
        stamp = rfc3339(now)
        return {"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": f"{ref.get('name', '')}.{nanos:x}",
                             "namespace": ref.get("namespace") or "default"},
                "involvedObject": ref, "reason": reason, "message": message, "source": self.source,
                "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1, "type": etype,
                "reportingComponent": self.component, "reportingInstance": self.host}

    def event(self, obj: Obj, etype: str, reason: str, message: str) -> None:
        """Record an event about obj (an object as read from the API, with kind and apiVersion)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            try:
                if self._loop is None:
                    raise RuntimeError("no event loop yet")
                self._loop.call_soon_threadsafe(self.event, obj, etype, reason, message)
            except RuntimeError as e:  # no loop, or it is closed
                log.debug("event %s dropped: %s", reason, e)
            return
        self._loop = loop
        if self._closed:
            return
        if etype not in TYPES:
            log.error("unsupported event type %r (reason %s): not recorded", etype, reason, extra=obj_fields(obj))
            return
        result = self.correlator.correlate(self.make_event(obj, etype, reason, message))
        if result.skip:
            return
        if self._queue is None or self._writer is None or self._writer.get_loop() is not loop:
            self._queue = asyncio.Queue(self._queue_size)  # first event, or a new loop (the old one ended)
            self._writer = loop.create_task(self._write_all(self._queue))
        try:
            self._queue.put_nowait(result)
        except asyncio.QueueFull:
            self.dropped += 1
            log.debug("event %s dropped: %d writes queued", reason, self._queue_size, extra=obj_fields(obj))

    async def _write_all(self, queue: asyncio.Queue[Result]) -> None:
        while True:
            result = await queue.get()
            try:
                await self._write(result)
            finally:
                queue.task_done()

    async def _write(self, result: Result) -> None:
        """upstream's recordEvent: patch an event seen before, create it when new or gone."""
        assert EVENTS is not None and result.event is not None
        ev = result.event
        ns = ev["metadata"]["namespace"]
        try:
            written = None
            if result.patch is not None:
                try:
                    written = await self.client.patch(EVENTS, ns, ev["metadata"]["name"], result.patch, "strategic")
                except StatusError as e:
                    if e.code != 404:
                        raise
            if written is None:
                md = {k: v for k, v in ev["metadata"].items() if k != "resourceVersion"}
                written = await self.client.create(EVENTS, ns, dict(ev, metadata=md))
        except (StatusError, httpx.HTTPError, OSError) as e:
            self.dropped += 1
            log.debug("event %s not recorded: %s", ev.get("reason"), e, extra=_about(ev["involvedObject"]))
            return
        self.written += 1
        self.correlator.update_state(result.key, written)

    async def flush(self, timeout: float = CLOSE_WAIT) -> bool:
        """Wait until every queued write is done (True), or timeout seconds (False)."""
        if self._queue is None or self._writer is None or self._writer.done():
            return self._queue is None or self._queue.empty()
        try:
            async with asyncio.timeout(timeout):
                await self._queue.join()
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        """Let queued writes finish for up to CLOSE_WAIT seconds, then drop the rest.  Idempotent."""
        self._closed = True
        if self._writer is None or self._writer.get_loop() is not asyncio.get_running_loop():
            return  # nothing written yet, or only on a loop that has ended
        if not await self.flush():
            log.debug("%d events dropped at close", self._queue.qsize() if self._queue else 0)
        self._writer.cancel()
        await asyncio.wait([self._writer])
