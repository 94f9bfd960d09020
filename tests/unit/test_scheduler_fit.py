"""Scheduler: the pure fit/score decisions, then the scheduling loop end to
end against an in-process API server (binding, events, Unschedulable, retry
when a bigger node appears)."""
from __future__ import annotations

import asyncio
import logging
import time
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread, node, pod  # noqa: E402

from apimachinery import kinds  # noqa: E402
from apimachinery.client import Client  # noqa: E402
from master.scheduler import fit  # noqa: E402
from master.scheduler.scheduler import Scheduler  # noqa: E402

PODS = kinds.lookup("", "v1", "pods")
NODES = kinds.lookup("", "v1", "nodes")
EVENTS = kinds.lookup("", "v1", "events")


def p(name: str = "p", **kw: Any) -> dict[str, Any]:
    return pod(name, **kw)


# ---- pure ----------------------------------------------------------------------------

def test_pod_request_sums_containers_and_takes_max_init() -> None:
    x = p(cpu="100m", memory="64Mi")
    x["spec"]["containers"].append({"name": "b", "image": "i", "resources": {"requests": {"cpu": "0.2", "memory": "1Gi"}}})
    assert fit.pod_request(x) == fit.Request(300, 64 * 2**20 + 2**30)
    x["spec"]["initContainers"] = [{"name": "i", "image": "i", "resources": {"requests": {"cpu": "2"}}}]
    assert fit.pod_request(x) == fit.Request(2000, 64 * 2**20 + 2**30)
    assert fit.pod_request(p()) == fit.Request(0, 0)


@pytest.mark.parametrize("n,used,count,reason", [
    (node("n", ready=False), (0, 0), 0, "node(s) were not ready"),
    (node("n", unschedulable=True), (0, 0), 0, "node(s) were unschedulable"),
    (node("n", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]), (0, 0), 0, "node(s) had untolerated taint"),
    (node("n", labels={"disk": "hdd"}), (0, 0), 0, "node(s) didn't match Pod's node affinity/selector"),
    (node("n", cpu="1"), (600, 0), 1, "Insufficient cpu"),
    (node("n", memory="1Gi"), (0, 2**30 - 100 * 2**20), 1, "Insufficient memory"),
    (node("n", pods="2"), (0, 0), 2, "Too many pods"),
])
def test_reject_reasons(n: dict[str, Any], used: tuple[int, int], count: int, reason: str) -> None:
    x = p(cpu="500m", memory="128Mi")
    x["spec"]["nodeSelector"] = {"disk": "ssd"}
    n["metadata"]["labels"].setdefault("disk", "ssd")
    assert fit.reject_reason(x, n, fit.Request(*used), count) == reason


def test_fits_exactly_and_not_ready_without_condition() -> None:
    x = p(cpu="500m", memory="512Mi")
    assert fit.reject_reason(x, node("n", cpu="1", memory="1Gi"), fit.Request(500, 512 * 2**20), 3) is None
    bare = node("n")
    bare["status"].pop("conditions")
    assert fit.reject_reason(x, bare, fit.Request(0, 0), 0) == "node(s) were not ready"


@pytest.mark.parametrize("tol,ok", [
    ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}, True),
    ({"key": "k", "value": "v"}, True),
    ({"key": "k", "operator": "Exists"}, True),
    ({"operator": "Exists"}, True),
    ({"key": "k", "value": "other"}, False),
    ({"key": "k", "operator": "Exists", "effect": "NoExecute"}, False),
    ({"key": "other", "operator": "Exists"}, False),
])
def test_tolerations(tol: dict[str, str], ok: bool) -> None:
    x = p()
    x["spec"]["tolerations"] = [tol]
    n = node("n", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}])
    assert (fit.reject_reason(x, n, fit.Request(0, 0), 0) is None) == ok


def test_prefer_no_schedule_taint_does_not_filter() -> None:
    n = node("n", taints=[{"key": "k", "value": "v", "effect": "PreferNoSchedule"}])
    assert fit.reject_reason(p(), n, fit.Request(0, 0), 0) is None


def test_place_message_counts_reasons() -> None:
    nodes = [node("a", ready=False), node("b", unschedulable=True), node("c", cpu="100m"), node("d", cpu="200m")]
    name, why = fit.place(p(cpu="500m"), nodes, {})
    assert name is None
    assert why == ("0/4 nodes are available: 2 Insufficient cpu, 1 node(s) were not ready, "
                   "1 node(s) were unschedulable.")
    assert fit.place(p(), [], {}) == (None, "0/0 nodes are available.")


def test_least_allocated_picks_emptier_node() -> None:
    nodes = [node("busy", cpu="4", memory="8Gi"), node("idle", cpu="4", memory="8Gi")]
    usage = fit.usage_by_node([p("x", cpu="3", memory="6Gi", node="busy")])
    assert fit.place(p(cpu="100m", memory="100Mi"), nodes, usage) == ("idle", "")
    big = [node("small", cpu="2", memory="2Gi"), node("big", cpu="16", memory="64Gi")]
    assert fit.place(p(cpu="1", memory="1Gi"), big, {})[0] == "big"


def test_usage_ignores_finished_and_unbound_pods() -> None:
    done = p("d", cpu="1", node="n")
    done["status"] = {"phase": "Succeeded"}
    usage = fit.usage_by_node([done, p("u", cpu="1"), p("r", cpu="250m", memory="1Mi", node="n"),
                               p("r2", cpu="250m", node="n")])
    assert usage == {"n": (fit.Request(500, 2**20), 2)}


# ---- the loop against a real API server ------------------------------------------------

@pytest.fixture
def srv() -> Iterator[ServerThread]:
    with ServerThread() as s:
        yield s


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 8.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await check()
        if got:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def test_scheduler_binds_reports_and_retries(srv: ServerThread, caplog: pytest.LogCaptureFixture) -> None:
    assert PODS and NODES and EVENTS
    caplog.set_level(logging.INFO, logger="coracle")

    async def main() -> None:
        client = Client(srv.url)
        sched = Scheduler(client)
        task = asyncio.create_task(sched.run())
        try:
            await client.create(NODES, None, node("crt-small", cpu="1", memory="1Gi"))
            await client.create(PODS, "default", p("fits", cpu="500m", memory="256Mi"))

            async def bound(name: str) -> str | None:
                return (await client.get(PODS, "default", name))["spec"].get("nodeName")
            assert await eventually(lambda: bound("fits")) == "crt-small"
            fits = await client.get(PODS, "default", "fits")
            lines = [r for r in caplog.records if r.getMessage() == "bound to node crt-small"]
            assert [(r.namespace, r.pod, r.uid) for r in lines] == [("default", "fits", fits["metadata"]["uid"])]

            async def event(name: str, reason: str) -> dict[str, Any] | None:
                evs = await client.list(EVENTS, "default", field_selector=f"involvedObject.name={name}")
                return next((e for e in evs["items"] if e["reason"] == reason), None)
            ev = await eventually(lambda: event("fits", "Scheduled"))
            assert ev["message"] == "Successfully assigned default/fits to crt-small" and ev["type"] == "Normal"

            await client.create(PODS, "default", p("huge", cpu="3", memory="256Mi"))

            async def unschedulable() -> dict[str, Any] | None:
                got = await client.get(PODS, "default", "huge")
                c = [c for c in got["status"].get("conditions") or [] if c["type"] == "PodScheduled"]
                return c[0] if c and c[0]["status"] == "False" else None
            cond = await eventually(unschedulable)
            assert cond["reason"] == "Unschedulable"
            assert cond["message"] == "0/1 nodes are available: 1 Insufficient cpu."
            failed = await eventually(lambda: event("huge", "FailedScheduling"))
            assert failed["type"] == "Warning" and failed["message"] == cond["message"]
            await asyncio.sleep(0.8)  # the retries with nothing changed write no more events
            evs = await client.list(EVENTS, "default", field_selector="involvedObject.name=huge")
            assert len(evs["items"]) == 1
            assert (await client.get(PODS, "default", "huge"))["spec"].get("nodeName") is None

            await client.create(NODES, None, node("crt-big", cpu="8", memory="8Gi"))
            assert await eventually(lambda: bound("huge")) == "crt-big"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()

    asyncio.run(main())


def test_unschedulable_pod_backs_off(srv: ServerThread) -> None:
    assert PODS and NODES

    async def main() -> None:
        client = Client(srv.url)
        sched = Scheduler(client)
        sched.queue._base = 0.05  # type: ignore[attr-defined]  (fast back-off for the test)
        attempts: list[float] = []
        real = sched.schedule_one

        async def counting(key: str) -> None:
            if key == "default/never":
                attempts.append(time.monotonic())
            await real(key)
        sched.schedule_one = counting  # type: ignore[method-assign]
        task = asyncio.create_task(sched.run())
        try:
            await client.create(PODS, "default", p("never", cpu="100"))
            deadline = time.monotonic() + 15
            while len(attempts) < 6:
                assert time.monotonic() < deadline, f"{len(attempts)} tries in 15 s"
                await asyncio.sleep(0.02)
            # exponential back-off from 50 ms, not a steady 50 ms.  The pod's own PodScheduled=False
            # update brings one extra try at any point (its retry timer stays), so no single gap is
            # fixed; but of 5 rate-limited retries the 4th waits 400 ms, and one extra try cuts that
            # wait in two at most: some gap is at least half of it.  A steady 50 ms never gets there,
            # and a loaded machine only lengthens the gaps.
            gaps = [b - a for a, b in zip(attempts, attempts[1:])]
            assert max(gaps) >= 0.05 * 2 ** 2 * 0.9, gaps
            assert attempts[-1] - attempts[0] >= (0.05 + 0.1 + 0.2) * 0.9, gaps
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()

    asyncio.run(main())
