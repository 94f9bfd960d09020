"""`master.apiserver.storecalls` with fakes: inline calls for a store that
does not block, pool calls that wait for the watch cache to see their writes,
and shared revision requests that each start after their callers arrived
(the consistent-read rule). The same on a real etcd and HTTP:
tests/integration/test_apiserver_etcd_consistency.py."""
from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from master.apiserver.storecalls import StoreCalls


class FakeStore:
    """A blocking store: `current_revision` waits for the test to release
    each call in turn; writes are recorded per thread as etcd's are."""

    blocking = True

    def __init__(self) -> None:
        self.revision = 0
        self.calls: list[tuple[int, threading.Event]] = []  # (revision read on entry, its release)
        self._local = threading.local()

    def current_revision(self) -> int:
        release = threading.Event()
        seen = self.revision  # a linearizable read sees what was acknowledged before it started
        self.calls.append((seen, release))
        assert release.wait(10), "the test never released this revision request"
        return seen

    def write(self) -> int:
        self.revision += 1
        self._local.written = self.revision
        return self.revision

    def written_revision(self) -> int:
        return int(getattr(self._local, "written", 0))


class FakeCache:
    def __init__(self) -> None:
        self.revision = 0
        self.waited: list[int] = []

    async def wait_for(self, revision: int, timeout: float) -> bool:
        self.waited.append(revision)
        return True


async def _until(check: Any) -> None:
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def test_revision_requests_are_shared_but_start_after_their_callers() -> None:
    store = FakeStore()
    calls = StoreCalls(store, None, FakeCache())  # type: ignore[arg-type]

    async def main() -> tuple[int, int, int]:
        first = asyncio.ensure_future(calls.revision())
        await _until(lambda: len(store.calls) == 1)  # the first request is in flight
        store.write()  # acknowledged after that request read, before the next callers arrive
        second = asyncio.ensure_future(calls.revision())
        third = asyncio.ensure_future(calls.revision())
        await asyncio.sleep(0)
        assert len(store.calls) == 1  # they wait for the next request, not this one
        store.calls[0][1].set()
        await _until(lambda: len(store.calls) == 2)
        store.calls[1][1].set()
        return await first, await second, await third

    try:
        assert asyncio.run(main()) == (0, 1, 1)
        assert len(store.calls) == 2  # one request served both later callers
    finally:
        calls.close()


def test_pool_calls_wait_for_the_cache_to_see_their_writes() -> None:
    store, cache = FakeStore(), FakeCache()
    calls = StoreCalls(store, None, cache)  # type: ignore[arg-type]
    threads: list[int] = []

    def write() -> str:
        threads.append(threading.get_ident())
        store.write()
        return "written"

    def write_then_fail() -> None:
        store.write()
        raise LookupError("after the write")

    async def main() -> None:
        loop_thread = threading.get_ident()
        assert await calls.run(write) == "written"
        assert threads[0] != loop_thread and cache.waited == [1]
        assert await calls.run(lambda: "read only") == "read only"
        assert cache.waited == [1]  # nothing written: nothing to wait for
        with pytest.raises(LookupError):
            await calls.run(write_then_fail)
        assert cache.waited == [1, 2]  # what a failed call wrote is waited for too

    try:
        asyncio.run(main())
    finally:
        calls.close()


def test_a_store_that_does_not_block_is_called_inline() -> None:
    class Quick:
        def current_revision(self) -> int:
            return 3

    cache = FakeCache()
    calls = StoreCalls(Quick(), None, cache)  # type: ignore[arg-type]

    async def main() -> None:
        loop_thread = threading.get_ident()
        assert await calls.run(threading.get_ident) == loop_thread
        assert await calls.list_from_cache("") and cache.waited == []

    asyncio.run(main())
    assert not calls.blocking
