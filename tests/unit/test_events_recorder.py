"""The event recorder (apimachinery/events.py): the Events it builds, its
fire-and-forget writes (fake client), and, against a real in-process API
server, the regression for the flood of issue 9 (7,600 identical Failed
events for one pod in 3 minutes ended as 7,600 Event objects)."""
from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread  # noqa: E402

from apimachinery.client import Client, StatusError  # noqa: E402
from apimachinery.events import EventRecorder  # noqa: E402

POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web", "namespace": "default", "uid": "u-1", "resourceVersion": "42"}}
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "u-n"}}


class Clock:
    def __init__(self, t: float = 1_800_000_000.25) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeClient:
    """Records every write; `down` makes them fail as an unreachable server does."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.objects: dict[str, dict[str, Any]] = {}
        self.down = False

    async def create(self, _res: Any, ns: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("create", ns, obj))
        if self.down:
            raise httpx.ConnectError("connection refused")
        name = obj["metadata"]["name"]
        if name in self.objects:
            raise StatusError(409, {"reason": "AlreadyExists"})
        out = dict(obj, metadata=dict(obj["metadata"], resourceVersion=str(len(self.calls))))
        self.objects[name] = out
        return out

    async def patch(self, _res: Any, ns: str, name: str, patch: dict[str, Any], patch_type: str) -> dict[str, Any]:
        self.calls.append(("patch", ns, (name, patch, patch_type)))
        if self.down:
            raise httpx.ConnectError("connection refused")
        if name not in self.objects:
            raise StatusError(404, {"reason": "NotFound"})
        self.objects[name] = dict(self.objects[name], **patch)
        return self.objects[name]


def recorder(client: FakeClient, clock: Clock, **kw: Any) -> EventRecorder:
    return EventRecorder(cast(Client, client), "kubelet", host="n1", clock=clock, **kw)


def test_the_event_is_built_as_upstreams_recorder_builds_it() -> None:
    r = EventRecorder(cast(Client, FakeClient()), "kubelet", host="n1", clock=Clock())
    ev = r.make_event(POD, "Warning", "Failed", "no image")
    assert ev["metadata"] == {"name": f"web.{int(1_800_000_000.25 * 1e9):x}", "namespace": "default"}
    assert ev["involvedObject"] == {"kind": "Pod", "apiVersion": "v1", "namespace": "default", "name": "web",
                                    "uid": "u-1", "resourceVersion": "42"}
    assert ev["source"] == {"component": "kubelet", "host": "n1"}
    assert (ev["reportingComponent"], ev["reportingInstance"]) == ("kubelet", "n1")
    assert ev["firstTimestamp"] == ev["lastTimestamp"] == "2027-01-15T08:00:00Z"
    assert (ev["count"], ev["type"], ev["reason"], ev["message"]) == (1, "Warning", "Failed", "no image")
    again = r.make_event(POD, "Warning", "Failed", "no image")  # same clock tick: still a new name
    assert again["metadata"]["name"] != ev["metadata"]["name"]
    cluster = r.make_event(NODE, "Normal", "Starting", "hi")  # cluster-scoped objects: events in default
    assert cluster["metadata"]["namespace"] == "default" and "namespace" not in cluster["involvedObject"]
    assert EventRecorder(cast(Client, FakeClient()), "default-scheduler").source == {"component": "default-scheduler"}


def test_writes_run_in_the_background_in_order_and_fold_repeats() -> None:
    async def main() -> None:
        client, clock = FakeClient(), Clock()
        r = recorder(client, clock)
        for _ in range(3):
            r.event(POD, "Warning", "Failed", "no image")
            clock.t += 1
        assert client.calls == []  # nothing written inline
        assert await r.flush()
        assert [c[0] for c in client.calls] == ["create", "patch", "patch"]
        name, patch, ptype = client.calls[2][2]
        assert name == client.calls[0][2]["metadata"]["name"] and ptype == "strategic"
        assert patch["count"] == 3 and patch["series"]["count"] == 3
        assert patch["lastTimestamp"] == "2027-01-15T08:00:02Z"
        assert len(client.objects) == 1 and r.written == 3
        await r.close()
    asyncio.run(main())


def test_an_api_that_is_down_drops_events_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "coracle.events")

    async def main() -> None:
        client, clock = FakeClient(), Clock()
        client.down = True
        r = recorder(client, clock)
        r.event(POD, "Warning", "Failed", "no image")
        r.event(POD, "Warning", "Failed", "no image")
        assert await r.flush()
        assert r.dropped == 2 and r.written == 0 and len(client.calls) == 2  # no retries
        lost = [rec for rec in caplog.records if "not recorded" in rec.getMessage()]
        assert len(lost) == 2 and lost[0].levelno == logging.DEBUG
        assert (lost[0].__dict__["pod"], lost[0].__dict__["uid"]) == ("web", "u-1")  # grep-able by pod
        client.down = False  # back: the next repeat's patch finds nothing and creates the object
        r.event(POD, "Warning", "Failed", "no image")
        assert await r.flush()
        assert [c[0] for c in client.calls[-2:]] == ["patch", "create"]
        (obj,) = client.objects.values()
        assert obj["count"] == 3 and "resourceVersion" not in client.calls[-1][2]["metadata"]
        await r.close()
    asyncio.run(main())


def test_an_event_gone_from_the_server_is_created_again() -> None:
    async def main() -> None:
        client, clock = FakeClient(), Clock()
        r = recorder(client, clock)
        r.event(POD, "Normal", "Pulled", "ok")
        assert await r.flush()
        client.objects.clear()  # expired (TTL) or deleted
        r.event(POD, "Normal", "Pulled", "ok")
        assert await r.flush()
        assert [c[0] for c in client.calls] == ["create", "patch", "create"] and r.written == 2
        await r.close()
    asyncio.run(main())


def test_a_full_queue_drops_and_unknown_types_are_refused() -> None:
    async def main() -> None:
        client, clock = FakeClient(), Clock()
        r = recorder(client, clock, queue_size=3)
        for i in range(5):
            r.event(dict(POD, metadata=dict(POD["metadata"], name=f"p{i}", uid=f"u{i}")), "Normal", "X", "m")
        r.event(POD, "Fatal", "X", "m")
        assert await r.flush()
        assert r.dropped == 2 and len(client.calls) == 3
        await r.close()
        r.event(POD, "Normal", "X", "after close")
        await asyncio.sleep(0)
        assert len(client.calls) == 3
    asyncio.run(main())


def test_event_from_another_thread_is_handed_to_the_loop() -> None:
    async def main() -> None:
        client, clock = FakeClient(), Clock()
        r = recorder(client, clock)
        r.event(POD, "Normal", "A", "on the loop")
        await asyncio.to_thread(r.event, POD, "Normal", "B", "from a thread")
        deadline = time.monotonic() + 5
        while len(client.calls) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert [c[2]["reason"] for c in client.calls] == ["A", "B"]
        await r.close()
    asyncio.run(main())


def test_a_recorder_outlives_its_first_event_loop() -> None:
    client, clock = FakeClient(), Clock()
    r = recorder(client, clock)

    async def send(reason: str) -> None:
        r.event(POD, "Normal", reason, "m")
        assert await r.flush()
    asyncio.run(send("First"))
    asyncio.run(send("Second"))  # the first loop's writer is gone: a new one takes over
    assert [c[2]["reason"] for c in client.calls] == ["First", "Second"]


@pytest.fixture(scope="module")
def srv() -> Any:
    with ServerThread() as s:
        yield s


def test_regression_a_flood_of_identical_events_is_one_object_and_few_writes(srv: ServerThread) -> None:
    """issue 9, defect 1: 7,600 identical Failed events for one pod in 3 minutes."""
    pod = dict(POD, metadata=dict(POD["metadata"], name="flood", uid="u-flood"))

    async def main() -> None:
        clock = Clock()
        start = clock.t
        async with Client(srv.url) as client:
            r = EventRecorder(client, "kubelet", host="n1", clock=clock)
            for i in range(7600):
                clock.t = start + i * 180 / 7600
                r.event(pod, "Warning", "Failed", 'Failed to pull image "nosuch:1": not found')
            assert await r.flush(10)
            assert r.written <= 25 and r.dropped == 0
            items = [e for e in (await client.request("GET", "/api/v1/namespaces/default/events"))["items"]
                     if e["involvedObject"]["uid"] == "u-flood"]
            assert len(items) == 1
            (ev,) = items
            assert ev["count"] == 25 and ev["series"]["count"] == 25
            assert ev["firstTimestamp"] == "2027-01-15T08:00:00Z"
            # five minutes on, the bucket has one token: the write carries every event seen
            clock.t = start + 301
            r.event(pod, "Warning", "Failed", 'Failed to pull image "nosuch:1": not found')
            assert await r.flush(10)
            name = ev["metadata"]["name"]
            ev = await client.request("GET", f"/api/v1/namespaces/default/events/{name}")
            assert ev["count"] == 7601 and ev["lastTimestamp"] == "2027-01-15T08:05:01Z"
            assert ev["firstTimestamp"] == "2027-01-15T08:00:00Z" and r.written == 26
            v1 = await client.request("GET", f"/apis/events.k8s.io/v1/namespaces/default/events/{name}")
            assert v1["deprecatedCount"] == 7601 and v1["series"]["count"] == 7601
            assert v1["series"]["lastObservedTime"].startswith("2027-01-15T08:05:01.")
            await r.close()
    asyncio.run(main())
