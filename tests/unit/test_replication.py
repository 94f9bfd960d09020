"""The replication engine (ReplicationControllers and ReplicaSets): its pure
decisions (claiming, how many, which pods go first, the pod from the
template, the status, expectations), then the controller against a real API
server on loopback with no agent: pods created, replaced, adopted, released,
scaled up and down through `/scale`, status counted."""
from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread, pod, unique  # noqa: E402

from apimachinery import kinds  # noqa: E402
from apimachinery.client import Client, StatusError  # noqa: E402
from apimachinery.labels import Selector, selector_from_label_selector  # noqa: E402
from master.controllers.replication import plan  # noqa: E402
from master.controllers.replication.controller import ReplicationEngine, served_kinds  # noqa: E402
from master.controllers.replication.expectations import Expectations  # noqa: E402
from master.controllers.replication.status import compute_status, recheck_after, status_changed  # noqa: E402

PODS = kinds.lookup("", "v1", "pods")
NS = kinds.lookup("", "v1", "namespaces")
RS = kinds.lookup("apps", "v1", "replicasets")
RC = kinds.lookup("", "v1", "replicationcontrollers")
assert PODS and NS and RS and RC
NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
Obj = dict[str, Any]


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def p(name: str, *, node: str = "", phase: str = "Running", ready: bool | None = None, ready_ago: float = 100,
      created_ago: float = 1000, restarts: int = 0, cost: int | None = None, labels: Obj | None = None,
      owner: str | None = None, deleting: bool = False, ns: str = "default") -> Obj:
    md: Obj = {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": labels or {"app": "a"},
               "creationTimestamp": ts(created_ago)}
    if cost is not None:
        md["annotations"] = {plan.DELETION_COST: str(cost)}
    if owner is not None:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": owner,
                                  "controller": True}]
    if deleting:
        md["deletionTimestamp"] = ts(0)
    status: Obj = {"phase": phase, "containerStatuses": [{"name": "c", "restartCount": restarts}]}
    if ready is None:
        ready = phase == "Running"
    status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False",
                             "lastTransitionTime": ts(ready_ago)}]
    return {"metadata": md, "spec": {"nodeName": node}, "status": status}


def owner(uid: str = "o", *, replicas: int = 3, generation: int = 1, min_ready: int = 0,
          status: Obj | None = None, deleting: bool = False) -> Obj:
    md: Obj = {"name": "web", "namespace": "default", "uid": uid, "generation": generation}
    if deleting:
        md["deletionTimestamp"] = ts(0)
    return {"metadata": md, "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                                     "selector": {"matchLabels": {"app": "a"}},
                                     "template": {"metadata": {"labels": {"app": "a", "tier": "t"},
                                                               "annotations": {"x": "y"}},
                                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": status or {"replicas": 0}}


# -- pod facts --------------------------------------------------------------------------
def test_pod_facts() -> None:
    assert plan.is_active(p("a", phase="Pending"))
    assert not plan.is_active(p("a", phase="Succeeded")) and not plan.is_active(p("a", phase="Failed"))
    assert not plan.is_active(p("a", deleting=True))
    assert plan.is_ready(p("a")) and not plan.is_ready(p("a", ready=False))
    assert not plan.is_ready({"status": {}})
    assert plan.is_available(p("a", ready_ago=0), 0, NOW)
    assert plan.is_available(p("a", ready_ago=11), 10, NOW)
    assert not plan.is_available(p("a", ready_ago=10), 10, NOW)  # strictly longer, as upstream
    assert not plan.is_available(p("a", ready=False, ready_ago=99), 10, NOW)
    ref = plan.owner_reference(owner(), "apps/v1", "ReplicaSet")
    assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "o",
                   "controller": True, "blockOwnerDeletion": True}
    assert plan.controller_ref(p("a", owner="o"))["uid"] == "o" and plan.controller_ref(p("a")) is None


# -- claiming ----------------------------------------------------------------------------
def test_claim_sorts_pods() -> None:
    sel = Selector.from_map({"app": "a"})
    pods = [p("mine", owner="o"), p("orphan"), p("other", owner="x"), p("stray", owner="o", labels={"app": "b"}),
            p("orphan-other-labels", labels={"app": "b"}), p("orphan-going", deleting=True),
            p("orphan-elsewhere", ns="kube-system")]
    c = plan.claim(owner(), sel, pods)
    assert [x["metadata"]["name"] for x in c.owned] == ["mine"]
    assert [x["metadata"]["name"] for x in c.adopt] == ["orphan"]
    assert [x["metadata"]["name"] for x in c.release] == ["stray"]
    dying = plan.claim(owner(deleting=True), sel, pods)  # neither adopts nor releases
    assert [x["metadata"]["name"] for x in dying.owned] == ["mine"] and not dying.adopt and not dying.release
    pod_ = p("q")
    ref = plan.owner_reference(owner(), "apps/v1", "ReplicaSet")
    assert plan.adopt_patch(pod_, ref) == {"metadata": {"ownerReferences": [ref], "uid": "uid-q"}}
    assert plan.release_patch(pod_, "o") == {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "o"}],
                                                          "uid": "uid-q"}}


# -- how many ------------------------------------------------------------------------------
def test_replica_diff_and_batches() -> None:
    assert plan.replica_diff(3, 1) == 2 and plan.replica_diff(1, 3) == -2 and plan.replica_diff(2, 2) == 0
    assert plan.replica_diff(2000, 0) == 500 and plan.replica_diff(0, 2000) == -500
    assert plan.replica_diff(10, 0, burst=3) == 3
    assert plan.slow_start_batches(0) == []
    assert plan.slow_start_batches(1) == [1]
    assert plan.slow_start_batches(10) == [1, 2, 4, 3]
    assert plan.slow_start_batches(500) == [1, 2, 4, 8, 16, 32, 64, 128, 245]
    for n in range(0, 70):
        assert sum(plan.slow_start_batches(n)) == n


# -- which go first --------------------------------------------------------------------------
def first(a: Obj, b: Obj, related: list[Obj] | None = None) -> str:
    """The one deleted first of two, checked in both orders."""
    one = plan.pods_to_delete([a, b], related or [a, b], 1, NOW)[0]["metadata"]["name"]
    two = plan.pods_to_delete([b, a], related or [a, b], 1, NOW)[0]["metadata"]["name"]
    assert one == two
    return one


def test_deletion_ranking_each_rule() -> None:
    assert first(p("unscheduled", phase="Pending"), p("scheduled", node="n1", phase="Pending")) == "unscheduled"
    assert first(p("pending", node="n", phase="Pending"), p("running", node="n")) == "pending"
    assert first(p("unknown", node="n", phase="Unknown"), p("running", node="n")) == "unknown"
    assert first(p("pending", node="n", phase="Pending"), p("unknown", node="n", phase="Unknown")) == "pending"
    assert first(p("notready", node="n", ready=False), p("ready", node="n")) == "notready"
    assert first(p("cheap", node="n", cost=-5), p("dear", node="n", cost=10)) == "cheap"
    assert first(p("nocost", node="n"), p("dear", node="n", cost=1)) == "nocost"
    # doubled up: two related pods on n1, one on n2
    a, b, c = p("a", node="n1"), p("b", node="n2"), p("c", node="n1")
    assert plan.pods_to_delete([b, a], [a, b, c], 1, NOW)[0]["metadata"]["name"] == "a"
    assert first(p("young-ready", node="n", ready_ago=10), p("old-ready", node="n", ready_ago=10_000)) == "young-ready"
    assert first(p("restarts", node="n", restarts=5), p("steady", node="n", restarts=1)) == "restarts"
    side_a, side_b = p("sidecar-restarts", node="n"), p("sidecar-steady", node="n")
    for x, n in ((side_a, 4), (side_b, 0)):
        x["spec"]["initContainers"] = [{"name": "proxy", "restartPolicy": "Always"}, {"name": "init"}]
        x["status"]["initContainerStatuses"] = [{"name": "proxy", "restartCount": n}, {"name": "init", "restartCount": 9 - n}]
    assert first(side_a, side_b) == "sidecar-restarts"
    # no related pods (an owner without a controller, as upstream): the node spread plays no part
    assert plan.pods_to_delete([b, a], [], 1, NOW)[0]["metadata"]["name"] == "b"  # a tie keeps the order
    assert first(p("new", node="n", created_ago=10, ready_ago=5), p("old", node="n", created_ago=10_000,
                                                                    ready_ago=5)) == "new"


def test_deletion_ranking_precedence_and_buckets() -> None:
    # an earlier rule wins over every later one
    assert first(p("unscheduled-old", phase="Running", created_ago=1e6),
                 p("scheduled-pending-new", node="n", phase="Pending", created_ago=1)) == "unscheduled-old"
    assert first(p("notready-cost", node="n", ready=False, cost=100), p("ready-cheap", node="n", cost=-100)) \
        == "notready-cost"
    # ready times in one log2 bucket (100 s and 101 s both ~2^46.5 ns) tie: the uid decides
    assert first(p("b", node="n", ready_ago=100), p("a", node="n", ready_ago=101)) == "a"
    assert first(p("b", node="n", created_ago=100), p("a", node="n", created_ago=101)) == "a"
    # count >= len: everything
    pods = [p("x"), p("y")]
    assert plan.pods_to_delete(pods, pods, 5, NOW) == pods
    # a full ordering, shuffled input
    ordered = [p("1", phase="Pending"), p("2", node="n", phase="Pending"), p("3", node="n", ready=False),
               p("4", node="n", cost=-1), p("5", node="n", ready_ago=5), p("6", node="n", ready_ago=5000)]
    shuffled = [ordered[i] for i in (4, 1, 5, 0, 3, 2)]
    got = [x["metadata"]["name"] for x in plan.pods_to_delete(shuffled, shuffled, 5, NOW)]
    assert got == ["1", "2", "3", "4", "5"]


def test_pod_from_template() -> None:
    o = owner()
    ref = plan.owner_reference(o, "apps/v1", "ReplicaSet")
    made = plan.pod_from_template(o, ref)
    assert made["metadata"] == {"generateName": "web-", "namespace": "default", "ownerReferences": [ref],
                                "labels": {"app": "a", "tier": "t"}, "annotations": {"x": "y"}}
    assert made["spec"] == o["spec"]["template"]["spec"] and made["spec"] is not o["spec"]["template"]["spec"]
    made["metadata"]["labels"]["app"] = "changed"
    assert o["spec"]["template"]["metadata"]["labels"]["app"] == "a"


# -- status ------------------------------------------------------------------------------------
def test_status_counts() -> None:
    o = owner(min_ready=30, generation=4)
    pods = [p("a", ready_ago=100), p("b", ready_ago=5), p("c", ready=False, labels={"app": "a", "tier": "t"}),
            p("d", phase="Pending", labels={"app": "a", "tier": "t"})]
    s = compute_status(o, pods, None, NOW)
    assert s == {"replicas": 4, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 1,
                 "observedGeneration": 4}
    assert status_changed(o, s)
    assert not status_changed(o | {"status": s}, s)
    assert status_changed(o | {"status": s, "metadata": {**o["metadata"], "generation": 5}}, s)
    empty = compute_status(owner(replicas=0), [], None, NOW)
    assert empty == {"replicas": 0, "observedGeneration": 1}  # zero counts omitted except replicas
    assert not status_changed(owner(replicas=0, status=empty), empty)


def test_status_failure_condition() -> None:
    o = owner(replicas=3)
    s = compute_status(o, [p("a")], "quota exceeded", NOW)
    assert s["conditions"] == [{"type": "ReplicaFailure", "status": "True", "lastTransitionTime": ts(0),
                                "reason": "FailedCreate", "message": "quota exceeded"}]
    later = compute_status(o | {"status": s}, [p("a")], "another error", NOW + timedelta(seconds=9))
    assert later["conditions"] == s["conditions"]  # kept as it was while failures go on
    assert compute_status(owner(replicas=0), [p("a")], "boom", NOW)["conditions"][0]["reason"] == "FailedDelete"
    healed = compute_status(o | {"status": s}, [p("a")], None, NOW)
    assert "conditions" not in healed and status_changed(o | {"status": s}, healed)


def test_recheck_after_min_ready() -> None:
    o = owner(replicas=2, min_ready=10)
    waiting = compute_status(o, [p("a", ready_ago=1), p("b", ready_ago=1)], None, NOW)
    assert recheck_after(o, waiting) == 10.0
    done = compute_status(o, [p("a", ready_ago=60), p("b", ready_ago=60)], None, NOW)
    assert recheck_after(o, done) is None
    assert recheck_after(owner(replicas=2), waiting) is None


# -- expectations -------------------------------------------------------------------------------
def test_expectations() -> None:
    t = [0.0]
    e = Expectations(clock=lambda: t[0], timeout=300)
    assert e.satisfied("k")
    e.expect_creations("k", 2)
    assert not e.satisfied("k") and e.pending("k") == (2, 0)
    e.creation_observed("k")
    assert not e.satisfied("k")
    e.creation_observed("k")
    e.creation_observed("k")  # one too many never goes below zero
    assert e.satisfied("k") and e.pending("k") == (0, 0)
    e.expect_deletions("k", ["ns/a", "ns/b"])
    e.deletion_observed("k", "ns/a")
    e.deletion_observed("k", "ns/a")  # seen twice (deletionTimestamp, then gone) counts once
    assert not e.satisfied("k")
    e.deletion_observed("k", "ns/c")
    assert not e.satisfied("k")
    e.deletion_observed("k", "ns/b")
    assert e.satisfied("k")
    e.expect_creations("k", 5)
    t[0] = 301.0
    assert e.satisfied("k")  # expired: a lost event does not wedge the owner
    e.forget("k")
    assert e.pending("k") == (0, 0)


def test_owner_kinds_and_selectors() -> None:
    by_tag = {k.tag: k for k in served_kinds()}
    assert set(by_tag) == {"rc", "rs"}
    rc = {"spec": {"selector": {"app": "a"}, "template": {"metadata": {"labels": {"app": "a", "x": "y"}}}}}
    assert by_tag["rc"].selector(rc).matches({"app": "a"})
    bare = {"spec": {"template": {"metadata": {"labels": {"app": "a", "x": "y"}}}}}
    assert not by_tag["rc"].selector(bare).matches({"app": "a"}) and by_tag["rc"].selector(bare).matches(
        {"app": "a", "x": "y"})
    rs = {"spec": {"selector": {"matchLabels": {"app": "a"},
                                "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}}}
    assert by_tag["rs"].selector(rs) == selector_from_label_selector(rs["spec"]["selector"])
    assert by_tag["rs"].selector(rs).matches({"app": "a"}) and not by_tag["rs"].selector(rs).matches(
        {"app": "a", "env": "prod"})
    assert by_tag["rs"].controls({"kind": "ReplicaSet"}) and not by_tag["rs"].controls({"kind": "ReplicationController"})


# -- the controller against a real API server -----------------------------------------------------
def run(srv: ServerThread, scenario: Callable[[Client, str], Awaitable[None]], **engine: Any) -> None:
    ns = unique("crt-repl")

    async def main() -> None:
        async with Client(srv.url) as c:
            await c.create(NS, None, {"metadata": {"name": ns}})
            task = asyncio.create_task(ReplicationEngine(c, **engine).run())
            try:
                await asyncio.wait_for(scenario(c, ns), 30)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await c.delete(NS, None, ns)  # nothing finalizes it here; the in-memory store goes with the server
    asyncio.run(main())


def rs_body(name: str, replicas: int, labels: Obj | None = None) -> Obj:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod("x")["spec"]}}}


async def pods_of(c: Client, ns: str, owner_uid: str | None = None) -> list[Obj]:
    items = (await c.list(PODS, ns))["items"]
    live = [x for x in items if not x["metadata"].get("deletionTimestamp")]
    if owner_uid is None:
        return live
    return [x for x in live if (plan.controller_ref(x) or {}).get("uid") == owner_uid]


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(400):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def count_is(c: Client, ns: str, uid: str, n: int) -> None:
    async def check() -> bool:
        return len(await pods_of(c, ns, uid)) == n
    await until(check, f"{n} pods owned by {uid}")


async def status_is(c: Client, res: Any, ns: str, name: str, **want: int) -> Obj:
    got: Obj = {}

    async def check() -> bool:
        nonlocal got
        got = (await c.get(res, ns, name)).get("status") or {}
        return all(int(got.get(k) or 0) == v for k, v in want.items())
    await until(check, f"status {want} (last {got})")
    return got


async def make_ready(c: Client, ns: str, x: Obj) -> None:
    body = {**x, "status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}
    await c.update(PODS, ns, body, subresource="status")


def test_rs_creates_scales_replaces(srv: ServerThread) -> None:
    async def scenario(c: Client, ns: str) -> None:
        rs = await c.create(RS, ns, rs_body("web", 3))
        uid = rs["metadata"]["uid"]
        await count_is(c, ns, uid, 3)
        made = await pods_of(c, ns, uid)
        for x in made:
            md = x["metadata"]
            assert md["name"].startswith("web-") and len(md["name"]) == len("web-") + 5
            assert md["labels"] == {"app": "web"}
            assert md["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                                              "uid": uid, "controller": True, "blockOwnerDeletion": True}]
        await status_is(c, RS, ns, "web", replicas=3, fullyLabeledReplicas=3, readyReplicas=0, observedGeneration=1)
        await make_ready(c, ns, made[0])
        await status_is(c, RS, ns, "web", replicas=3, readyReplicas=1, availableReplicas=1)
        # scale up and down through /scale
        await c.patch(RS, ns, "web", {"spec": {"replicas": 5}}, subresource="scale")
        await count_is(c, ns, uid, 5)
        await status_is(c, RS, ns, "web", replicas=5, observedGeneration=2)
        await c.patch(RS, ns, "web", {"spec": {"replicas": 1}}, subresource="scale")
        await count_is(c, ns, uid, 1)
        left = (await pods_of(c, ns, uid))[0]
        assert left["metadata"]["name"] == made[0]["metadata"]["name"]  # the ready one stays
        await status_is(c, RS, ns, "web", replicas=1, readyReplicas=1, observedGeneration=3)
        # a deleted pod is replaced
        await c.delete(PODS, ns, left["metadata"]["name"])
        await count_is(c, ns, uid, 1)
        assert (await pods_of(c, ns, uid))[0]["metadata"]["name"] != left["metadata"]["name"]
        events = (await c.request("GET", f"/api/v1/namespaces/{ns}/events"))["items"]
        reasons = {e["reason"] for e in events if e["involvedObject"]["uid"] == uid}
        assert {"SuccessfulCreate", "SuccessfulDelete"} <= reasons
    run(srv, scenario)


def test_rs_adopts_and_releases(srv: ServerThread) -> None:
    async def scenario(c: Client, ns: str) -> None:
        await c.create(PODS, ns, pod("orphan", labels={"app": "db"}))
        await c.create(PODS, ns, pod("unrelated", labels={"app": "other"}))
        rs = await c.create(RS, ns, rs_body("db", 2))
        uid = rs["metadata"]["uid"]
        await count_is(c, ns, uid, 2)
        assert "orphan" in {x["metadata"]["name"] for x in await pods_of(c, ns, uid)}
        assert not (await c.get(PODS, ns, "unrelated"))["metadata"].get("ownerReferences")
        # relabel the adopted pod: released, and a replacement made
        await c.patch(PODS, ns, "orphan", {"metadata": {"labels": {"app": "elsewhere"}}})

        async def released() -> bool:
            return not (await c.get(PODS, ns, "orphan"))["metadata"].get("ownerReferences")
        await until(released, "the relabelled pod released")
        await count_is(c, ns, uid, 2)
        assert "orphan" not in {x["metadata"]["name"] for x in await pods_of(c, ns, uid)}
        assert len(await pods_of(c, ns)) == 4
    run(srv, scenario)


def test_burst_converges_without_overshoot(srv: ServerThread) -> None:
    async def scenario(c: Client, ns: str) -> None:
        rs = await c.create(RS, ns, rs_body("many", 12))
        await count_is(c, ns, rs["metadata"]["uid"], 12)
        await status_is(c, RS, ns, "many", replicas=12)
        await asyncio.sleep(0.3)  # late syncs must not add more
        assert len(await pods_of(c, ns)) == 12
        await c.patch(RS, ns, "many", {"spec": {"replicas": 0}}, subresource="scale")
        await count_is(c, ns, rs["metadata"]["uid"], 0)
        await status_is(c, RS, ns, "many", replicas=0)
    run(srv, scenario, burst=5)


def test_rc_creates_and_scales(srv: ServerThread) -> None:
    async def scenario(c: Client, ns: str) -> None:
        body = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "old"},
                "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "old"}}, "spec": pod("x")["spec"]}}}
        rc = await c.create(RC, ns, body)
        uid = rc["metadata"]["uid"]
        await count_is(c, ns, uid, 2)
        ref = (await pods_of(c, ns, uid))[0]["metadata"]["ownerReferences"][0]
        assert ref["apiVersion"] == "v1" and ref["kind"] == "ReplicationController" and ref["controller"]
        await status_is(c, RC, ns, "old", replicas=2, fullyLabeledReplicas=2, observedGeneration=1)
        await c.patch(RC, ns, "old", {"spec": {"replicas": 3}}, subresource="scale")
        await count_is(c, ns, uid, 3)
        await status_is(c, RC, ns, "old", replicas=3)
    run(srv, scenario)


DEPLOY = kinds.lookup("apps", "v1", "deployments")


def test_scale_down_spreads_siblings(srv: ServerThread) -> None:
    """Two ReplicaSets of one Deployment: scaling one down deletes its pod on the node its
    sibling also uses, and keeps the one alone on its node."""
    async def scenario(c: Client, ns: str) -> None:
        assert DEPLOY is not None
        d = await c.create(DEPLOY, ns, {"metadata": {"name": "d"}, "spec": {
            "replicas": 0, "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": pod("x")["spec"]}}})
        parent = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "uid": d["metadata"]["uid"],
                  "controller": True, "blockOwnerDeletion": True}
        for name, app, node_ in (("a1", "a", "n1"), ("a2", "a", "n2"), ("b1", "b", "n1")):
            await c.create(PODS, ns, pod(name, labels={"app": app}, node=node_))
        uids = {}
        for app, n in (("a", 2), ("b", 1)):
            body = rs_body(app, n)
            body["metadata"]["ownerReferences"] = [parent]
            uids[app] = (await c.create(RS, ns, body))["metadata"]["uid"]
        await count_is(c, ns, uids["a"], 2)
        await count_is(c, ns, uids["b"], 1)
        await c.patch(RS, ns, "a", {"spec": {"replicas": 1}}, subresource="scale")
        await count_is(c, ns, uids["a"], 1)
        assert [x["metadata"]["name"] for x in await pods_of(c, ns, uids["a"])] == ["a2"]
    run(srv, scenario)


class RefusingClient(Client):
    """A real client whose pod creations are refused while `refuse` is set (a quota, say)."""
    refuse = True
    creates = 0

    async def create(self, res: Any, namespace: str | None, obj: Obj) -> Obj:
        if res is PODS:
            type(self).creates += 1
            if type(self).refuse:
                raise StatusError(403, {"reason": "Forbidden", "message": "exceeded quota: pods"})
        return await super().create(res, namespace, obj)


def test_failed_creations_set_replica_failure(srv: ServerThread) -> None:
    ns = unique("crt-repl")

    async def main() -> None:
        async with Client(srv.url) as c, RefusingClient(srv.url) as refusing:
            await c.create(NS, None, {"metadata": {"name": ns}})
            task = asyncio.create_task(ReplicationEngine(refusing).run())
            try:
                await c.create(RS, ns, rs_body("q", 4))
                got = await status_is(c, RS, ns, "q", replicas=0)

                async def failing() -> bool:
                    nonlocal got
                    got = (await c.get(RS, ns, "q"))["status"]
                    return bool(got.get("conditions"))
                await until(failing, "a ReplicaFailure condition")
                cond = got["conditions"][0]
                assert (cond["type"], cond["status"], cond["reason"]) == ("ReplicaFailure", "True", "FailedCreate")
                assert "exceeded quota" in cond["message"]
                assert RefusingClient.creates >= 1 and await pods_of(c, ns) == []
                RefusingClient.refuse = False  # the quota lifted: the retry (with back-off) converges
                await status_is(c, RS, ns, "q", replicas=4)

                async def healed() -> bool:
                    return not (await c.get(RS, ns, "q"))["status"].get("conditions")
                await until(healed, "the condition cleared")
                assert len(await pods_of(c, ns)) == 4
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await c.delete(NS, None, ns)
    asyncio.run(main())
