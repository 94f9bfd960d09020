"""A keyed work queue as client-go's: a key is queued at most once, handed to
one worker at a time, and re-queued with per-key exponential back-off when
its sync fails.  Handlers only `add`; workers `get`, sync, then `done`.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Awaitable, Callable


class WorkQueue:
    def __init__(self, base_delay: float = 0.005, max_delay: float = 60.0):
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._failures: dict[str, int] = {}
        self._waiters: asyncio.Condition | None = None
        self._base, self._max = base_delay, max_delay
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def _cond(self) -> asyncio.Condition:
        if self._waiters is None:
            self._waiters = asyncio.Condition()
        return self._waiters

    def add(self, key: str) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._cond():
            self._cond().notify()

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        old = self._timers.get(key)
        loop = asyncio.get_running_loop()
        if old is not None:
            if old.when() <= loop.time() + delay:
                return
            old.cancel()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: str) -> None:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        self.add_after(key, min(self._base * (2 ** n), self._max))

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    async def get(self) -> str:
        async with self._cond():
            await self._cond().wait_for(lambda: bool(self._queue))
            key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            asyncio.get_running_loop().create_task(self._notify())

    def __len__(self) -> int:
        return len(self._queue)

    def shutdown(self) -> None:
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()


async def work(queue: WorkQueue, sync: Callable[[str], Awaitable[None]], what: str, log: logging.Logger,
               expected: tuple[type[BaseException], ...] = (),
               level: Callable[[BaseException], int] = lambda _e: logging.INFO) -> None:
    """One worker: takes keys from `queue` and syncs them, forgetting a key's
    back-off on success and re-queueing it with back-off on failure.  An
    `expected` failure (a refused write, a lost connection) is logged in one
    line at `level(e)`; anything else with its traceback, and the worker goes
    on: a bug met on one key must not stop the others' syncs."""
    while True:
        key = await queue.get()
        try:
            await sync(key)
            queue.forget(key)
        except expected as e:
            log.log(level(e), "%s %s: sync failed, will retry: %s", what, key, e)
            queue.add_rate_limited(key)
        except Exception:
            log.exception("%s %s: sync crashed, will retry", what, key)
            queue.add_rate_limited(key)
        finally:
            queue.done(key)
