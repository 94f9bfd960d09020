"""How the API server's handlers call the registry and read the watch cache
so that answers stay consistent whatever the store.

SQLite: its calls take tens of microseconds and run inline on the event loop;
its events reach the watch cache before a write returns, so the cache is
always current and nothing here waits.

etcd (`store.blocking`): every call is a network round trip, so calls run on
a small thread pool and concurrent requests overlap their round trips. Two
guarantees are kept on top:

- A handler that wrote answers only once the watch cache has seen its
  writes (the revisions the pool thread wrote, `written_revision`), so a
  client that creates and then lists at resourceVersion=0 sees its object.
- Reads without a resourceVersion are linearizable, served from the cache
  as upstream's consistent reads from cache (KEP 2340) do: get the store's
  current revision (a quorum read), wait until the cache has caught up to it,
  answer from memory. Concurrent requests share one revision request, but a
  request only uses one that started after it arrived, so a write
  acknowledged by any master (several may share one etcd) before the read
  began is seen. A GET whose cache lags (events in flight, or revisions made
  under another prefix of the same etcd, which this cache never sees) also
  reads the store directly, and the first answer wins; a LIST waits
  `LIST_WAIT` for the cache before reading the store. (Upstream moves a
  lagging cache on with requested etcd progress notifications; on etcd
  3.4.23, Debian's, such a notification can overtake events still queued on
  the watch stream, etcd issue 15220, fixed in 3.4.25, so it proves nothing.)

Neighbours: `app` routes, `registry` holds the semantics, `watchcache` the
objects; `master.store` says which stores block.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from apimachinery.kinds import ResourceInfo
from master.apiserver import errors
from master.apiserver.registry import Registry
from master.apiserver.watchcache import WatchCache
from master.store import Store, is_blocking, written_revision

log = logging.getLogger("coracle.apiserver")
T = TypeVar("T")
THREADS = 4  # etcd round trips in flight at once; more only adds GIL contention on 2 cores
WRITE_WAIT = 5.0  # seconds a handler waits for the cache to see its writes before answering anyway
LIST_WAIT = 1.0  # seconds a consistent LIST waits for the cache before reading the store
RV_WAIT = 3.0  # seconds a read at resourceVersion=N waits for the cache to reach N


class StoreCalls:
    def __init__(self, store: Store, registry: Registry, cache: WatchCache, threads: int = THREADS) -> None:
        self.store = store
        self.registry = registry
        self.cache = cache
        self.blocking = is_blocking(store)
        self._pool = ThreadPoolExecutor(threads, "crt-store") if self.blocking else None
        self._next: asyncio.Future[int] | None = None  # the revision request that has not started yet
        self._running = False  # a revision request is in flight

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """fn(*args, **kwargs): inline for SQLite; for a blocking store on the pool, then
        waiting until the cache has seen whatever the call wrote (also when it raised)."""
        if self._pool is None:
            return fn(*args, **kwargs)

        def work() -> tuple[Any, BaseException | None, int]:
            before = written_revision(self.store)
            try:
                result, error = fn(*args, **kwargs), None
            except Exception as e:
                result, error = None, e
            after = written_revision(self.store)
            return result, error, after if after != before else 0

        result, error, rev = await asyncio.get_running_loop().run_in_executor(self._pool, work)
        if rev and not await self.cache.wait_for(rev, WRITE_WAIT):
            log.warning("the watch cache has not seen revision %d after %.0fs; answering anyway",
                               rev, WRITE_WAIT)
        if error is not None:
            raise error
        return result  # type: ignore[no-any-return]

    # -- consistent reads -----------------------------------------------------
    async def revision(self) -> int:
        """The store's current revision, read by a request that started after this call."""
        loop = asyncio.get_running_loop()
        waiting = self._next
        if waiting is None:
            waiting = self._next = loop.create_future()
            if not self._running:
                self._launch(loop)
        return await asyncio.shield(waiting)

    def _launch(self, loop: asyncio.AbstractEventLoop) -> None:
        waiting, self._next = self._next, None
        assert waiting is not None
        self._running = True
        request = loop.run_in_executor(self._pool, self.store.current_revision)

        def done(f: asyncio.Future[int]) -> None:
            self._running = False
            if f.cancelled():
                waiting.cancel()
            elif f.exception() is not None:
                waiting.set_exception(f.exception())  # type: ignore[arg-type]
            else:
                waiting.set_result(f.result())
            if self._next is not None:
                self._launch(loop)

        request.add_done_callback(done)

    async def list_from_cache(self, rv: str) -> bool:
        """Whether a LIST with resourceVersion rv may be answered from the cache: always for
        SQLite and a set rv (the caller checked it), else (most recent) once the cache caught up."""
        if not self.blocking or rv != "":
            return True
        return await self.cache.wait_for(await self.revision(), LIST_WAIT)

    async def caught_up(self, revision: int) -> bool:
        """Whether the cache holds revision, waiting a little for it on a blocking store."""
        if not self.blocking:
            return self.cache.revision >= revision
        return await self.cache.wait_for(revision, RV_WAIT)

    async def get(self, res: ResourceInfo, ns: str | None, name: str, rv: str = "") -> dict[str, Any]:
        """GET of one object: resourceVersion "" most recent, "0" any, N not older than N."""
        if not self.blocking:
            return self.registry.get(res, ns, name)
        target = 0
        if rv not in ("", "0"):
            try:
                target = int(rv)
            except ValueError:
                raise errors.bad_request(f"invalid resourceVersion {rv!r}") from None
            if target > self.cache.revision and not await self.cache.wait_for(target, RV_WAIT):
                current = await self.revision()
                if target > current:
                    raise errors.APIError(504, "Timeout", f"Too large resource version: {target}, current "
                                          f"resource version: {current}")
        elif rv == "":
            target = await self.revision()
        if target > self.cache.revision:
            return await self._race(res, ns, name, target)
        obj = self.cache.get(res, ns, name)
        if obj is None:
            raise errors.not_found(res, name)
        return obj

    async def _race(self, res: ResourceInfo, ns: str | None, name: str, target: int) -> dict[str, Any]:
        """The cache catching up to target, or a read of the store: the first to answer."""
        direct = asyncio.ensure_future(self.run(self.registry.get, res, ns, name))
        caught = asyncio.ensure_future(self.cache.wait_for(target, RV_WAIT))
        try:
            await asyncio.wait((direct, caught), return_when=asyncio.FIRST_COMPLETED)
            if caught.done() and caught.result() and not direct.done():
                obj = self.cache.get(res, ns, name)
                if obj is None:
                    raise errors.not_found(res, name)
                return obj
            return await direct
        finally:
            for f in (direct, caught):
                if not f.done():
                    f.cancel()
            if direct.done() and not direct.cancelled():
                direct.exception()  # retrieved: a lost race's error is not logged as unhandled

