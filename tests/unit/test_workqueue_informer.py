"""WorkQueue (dedup, one worker per key, rate-limited requeue) and Informer
(list then watch, handlers, relist diff, relist after 410) against an
in-process API server."""
from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread, pod  # noqa: E402

from apimachinery import kinds  # noqa: E402
from apimachinery.client import Client  # noqa: E402
from apimachinery.informer import Informer  # noqa: E402
from apimachinery.workqueue import WorkQueue  # noqa: E402

PODS = kinds.lookup("", "v1", "pods")


# ---- WorkQueue -----------------------------------------------------------------------

def test_dedup_and_requeue_while_processing() -> None:
    async def main() -> None:
        q = WorkQueue()
        for k in ("a", "b", "a", "a"):
            q.add(k)
        assert len(q) == 2
        assert await q.get() == "a"
        q.add("a")  # dirty while processing: not handed out twice
        assert len(q) == 1 and await q.get() == "b"
        assert len(q) == 0
        q.done("b")
        q.done("a")  # now it comes back once
        assert len(q) == 1 and await asyncio.wait_for(q.get(), 1) == "a"
        q.done("a")
        assert len(q) == 0
        q.shutdown()
    asyncio.run(main())


def test_one_worker_per_key() -> None:
    """Adds of a key being processed coalesce into one more run, never a second worker on it."""
    async def main() -> None:
        q = WorkQueue()
        active: set[str] = set()
        overlaps: list[str] = []
        runs: dict[str, int] = {}
        gate = asyncio.Event()

        async def worker() -> None:
            while True:
                k = await q.get()
                if k in active:
                    overlaps.append(k)
                active.add(k)
                runs[k] = runs.get(k, 0) + 1
                if k == "hot":
                    await gate.wait()     # held while the adds below arrive
                await asyncio.sleep(0)
                active.discard(k)
                q.done(k)

        workers = [asyncio.create_task(worker()) for _ in range(4)]
        q.add("hot")
        await _until(lambda: "hot" in active)
        for _ in range(9):
            q.add("hot")
            q.add("cold")
            await asyncio.sleep(0)
        gate.set()
        # all served; a done() requeues a dirty key in the same step as it leaves `active`, so this is final
        await _until(lambda: len(q) == 0 and not active)
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        assert overlaps == []
        assert runs["hot"] == 2 and 1 <= runs["cold"] <= 9 and len(q) == 0  # coalesced, and the last add served
    asyncio.run(main())


def test_rate_limited_requeue_backs_off_and_forget_resets() -> None:
    async def main() -> None:
        q = WorkQueue(base_delay=0.04, max_delay=0.1)
        delays = []
        for _ in range(4):
            t0 = time.monotonic()
            q.add_rate_limited("k")
            assert len(q) == 0
            k = await asyncio.wait_for(q.get(), 2)
            delays.append(time.monotonic() - t0)
            q.done(k)
        assert delays[0] >= 0.035 and delays[1] >= 0.075 and delays[2] >= 0.095
        assert delays[3] < 0.3  # capped at max_delay
        q.forget("k")
        t0 = time.monotonic()
        q.add_rate_limited("k")
        await asyncio.wait_for(q.get(), 2)
        assert time.monotonic() - t0 < 0.075
        q.shutdown()
    asyncio.run(main())


def test_add_after_keeps_the_earlier_deadline() -> None:
    async def main() -> None:
        q = WorkQueue()
        q.add_after("k", 5.0)
        q.add_after("k", 0.02)
        q.add_after("k", 3.0)
        assert await asyncio.wait_for(q.get(), 1) == "k"
        q.done("k")
        q.shutdown()
    asyncio.run(main())


# ---- Informer ------------------------------------------------------------------------

class Recorder:
    def __init__(self, inf: Informer):
        self.log: list[tuple[str, str]] = []
        inf.add_handlers(on_add=lambda o: self.log.append(("add", o["metadata"]["name"])),
                         on_update=lambda o, n: self.log.append(("update", n["metadata"]["name"])),
                         on_delete=lambda o: self.log.append(("delete", o["metadata"]["name"])))


class FakeLister:
    """Just enough of Client for Informer._relist."""

    def __init__(self, items: list[dict[str, Any]], rv: str):
        self.items, self.rv = items, rv

    async def list(self, *_a: Any, **_kw: Any) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": self.rv}, "items": [dict(i) for i in self.items]}


def _obj(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "resourceVersion": rv}}


def test_relist_emits_the_difference() -> None:
    assert PODS is not None

    async def main() -> None:
        lister = FakeLister([_obj("x", "1"), _obj("y", "2")], "2")
        inf = Informer(lister, PODS)  # type: ignore[arg-type]
        rec = Recorder(inf)
        await inf._relist()
        assert sorted(rec.log) == [("add", "x"), ("add", "y")] and inf.synced.is_set()
        rec.log.clear()
        lister.items, lister.rv = [_obj("y", "5"), _obj("z", "6")], "6"
        await inf._relist()
        assert sorted(rec.log) == [("add", "z"), ("delete", "x"), ("update", "y")]
        assert set(inf.cache) == {"default/y", "default/z"} and inf._rv == "6"
        assert inf.get("default/y")["kind"] == "Pod"  # type: ignore[index]
        rec.log.clear()
        await inf._relist()  # nothing changed: nothing emitted
        assert rec.log == []
    asyncio.run(main())


async def _until(cond: Any, timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def test_informer_list_then_watch_handlers() -> None:
    assert PODS is not None

    async def main(url: str) -> None:
        client = Client(url)
        await client.create(PODS, "default", pod("pre"))
        inf = Informer(client, PODS, "default")
        rec = Recorder(inf)
        task = asyncio.create_task(inf.run())
        try:
            await asyncio.wait_for(inf.synced.wait(), 5)
            assert rec.log == [("add", "pre")] and inf.get("default/pre") is not None
            await client.create(PODS, "default", pod("new"))
            await client.patch(PODS, "default", "pre", {"metadata": {"labels": {"a": "b"}}})
            await client.delete(PODS, "default", "new")
            await _until(lambda: len(rec.log) >= 4)
            assert rec.log[1:] == [("add", "new"), ("update", "pre"), ("delete", "new")]
            assert set(inf.cache) == {"default/pre"}
            assert inf.get("default/pre")["metadata"]["labels"] == {"a": "b"}  # type: ignore[index]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()

    with ServerThread() as srv:
        asyncio.run(main(srv.url))


def test_informer_relists_after_410() -> None:
    """The watch cache forgets fast; events the informer's selector hides do
    not move its resourceVersion, so its next watch is too old: 410, relist."""
    assert PODS is not None

    async def main(url: str) -> None:
        client = Client(url)
        lists = 0
        real_list = client.list

        async def counting_list(*a: Any, **kw: Any) -> dict[str, Any]:
            nonlocal lists
            lists += 1
            return await real_list(*a, **kw)
        client.list = counting_list  # type: ignore[method-assign]
        await client.create(PODS, "default", pod("mine", labels={"crt": "yes"}))
        inf = Informer(client, PODS, "default", label_selector="crt=yes", watch_timeout=1)
        rec = Recorder(inf)
        task = asyncio.create_task(inf.run())
        try:
            await asyncio.wait_for(inf.synced.wait(), 5)
            for i in range(3):
                await client.create(PODS, "default", pod(f"other{i}"))
            await asyncio.sleep(0.1)  # older than the cache window now
            await _until(lambda: lists >= 2, timeout=6)
            # and it is still live after the relist
            await client.create(PODS, "default", pod("mine2", labels={"crt": "yes"}))
            await _until(lambda: ("add", "mine2") in rec.log)
            assert set(inf.cache) == {"default/mine", "default/mine2"}
            assert rec.log.count(("add", "mine")) == 1  # the relist did not re-add what it had
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()

    with ServerThread(watch_window=0.05) as srv:
        asyncio.run(main(srv.url))
