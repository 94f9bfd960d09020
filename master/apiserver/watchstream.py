"""One watch, streamed: the initial events (a list from the watch cache, for
resourceVersion "" or "0" or sendInitialEvents), then every change the cache
delivers, bookmarks when asked (allowWatchBookmarks), as JSON lines or Table
rows, until timeoutSeconds, the client leaving, or the server closing.  A
resourceVersion older than the cache holds gets a 410 Gone ERROR event.

Neighbours: the app calls `serve` for a GET with watch=true; the events come
from `watchcache` (already encoded once per change, shared by every watcher).
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from aiohttp import web

from master.apiserver import errors, params, paths, tables, watchcache
from master.apiserver.watchcache import WatchCache

_TICK = object()  # a watcher's timer fired
_dumps = watchcache.dumps
JSON = "application/json"


async def serve(request: web.Request, t: paths.Target, cache: WatchCache,
                matches: Callable[[dict[str, Any]], bool], closing: asyncio.Event,
                bookmark_seconds: float) -> web.StreamResponse:
    q = request.query
    timeout = params.query_int(q, "timeoutSeconds", 1800)
    rv = q.get("resourceVersion", "")
    bookmarks = params.query_bool(q, "allowWatchBookmarks")
    send_initial = params.query_bool(q, "sendInitialEvents")
    initial: list[dict[str, Any]] = []
    if rv in ("", "0") or send_initial:
        entries, from_rev = cache.list(t.res, t.namespace, matches)
        initial = [e.obj for e in entries]
    else:
        try:
            from_rev = int(rv)
        except ValueError:
            raise errors.bad_request(f"invalid resourceVersion {rv!r}") from None
    table = tables.wants_table(request)
    resp = web.StreamResponse(headers={"Content-Type": tables.TABLE_TYPE if table else JSON,
                                       "Cache-Control": "no-cache, private"})
    try:
        watcher = cache.watch(t.res, t.namespace, matches, from_rev,
                              selector_key=f"{q.get('labelSelector', '')}|{q.get('fieldSelector', '')}")
    except LookupError:
        await resp.prepare(request)
        status = errors.gone(f"too old resource version: {from_rev} ({cache.oldest_resumable()})").status()
        await resp.write(_dumps({"type": "ERROR", "object": status}) + b"\n")
        return resp
    await resp.prepare(request)
    first = True

    async def send(kind: str, obj: dict[str, Any], shared: bytes | None = None) -> None:
        nonlocal first
        if table and kind != "BOOKMARK":
            body = tables.table(t.res, [obj])
            body["metadata"] = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            if not first:
                body["columnDefinitions"] = None
            obj, shared = body, None
        first = False
        await resp.write(shared or (_dumps({"type": kind, "object": obj}) + b"\n"))

    def bookmark(annotations: dict[str, str] | None = None) -> dict[str, Any]:
        md: dict[str, Any] = {"resourceVersion": str(cache.revision)}
        if annotations:
            md["annotations"] = annotations
        return {"kind": t.res.kind, "apiVersion": t.res.group_version, "metadata": md}

    deadline = time.monotonic() + timeout
    next_bookmark = time.monotonic() + bookmark_seconds
    loop = asyncio.get_running_loop()
    # One timer per watcher puts TICK into its queue when a bookmark, the deadline or a liveness check
    # is due: waiting on the queue alone (no timeout context per event) keeps a delivery cheap, which
    # is what one change fanned out to a thousand watchers costs.
    timer: asyncio.TimerHandle | None = None

    def arm(now: float) -> None:
        nonlocal timer
        due = min(deadline, now + 5.0, next_bookmark if bookmarks else deadline)
        timer = loop.call_at(loop.time() + max(0.0, due - now), watcher.queue.put_nowait, _TICK)
    try:
        for obj in initial:
            await send("ADDED", obj)
        if send_initial and bookmarks:
            await send("BOOKMARK", bookmark({"k8s.io/initial-events-end": "true"}))
        arm(time.monotonic())
        while not closing.is_set():
            item = await watcher.queue.get()
            if item is None:
                break
            if item is _TICK:
                now = time.monotonic()
                if now >= deadline:
                    break
                if bookmarks and now >= next_bookmark and watcher.queue.empty():
                    # every event up to the cache's revision has been sent: safe to report it
                    await send("BOOKMARK", bookmark())
                    next_bookmark = now + bookmark_seconds
                if request.transport is None or request.transport.is_closing():
                    break
                arm(now)
                continue
            await send(item[0], item[1], item.encoded() if isinstance(item, watchcache.Delivery) else None)
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        if timer is not None:
            timer.cancel()
        cache.stop(watcher)
    return resp
