"""The Endpoints and EndpointSlice controllers: their pure decisions
(membership, ports, repacking, truncation, trigger times, slice planning),
then both controllers together against a real API server on loopback, with
pod status written through pods/status (ready / not ready, named ports, a
headless hostname, terminating, a selector change, the Service deleted)."""
from __future__ import annotations

import asyncio
import copy
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread, node  # noqa: E402

from apimachinery import kinds  # noqa: E402
from apimachinery.client import Client, StatusError  # noqa: E402
from master.controllers.endpoints import controller as epc  # noqa: E402
from master.controllers.endpoints import membership as em  # noqa: E402
from master.controllers.endpoints import slice_reconciler as rec  # noqa: E402
from master.controllers.endpoints.slices import SliceTracker, endpoint_controller_tasks  # noqa: E402
from master.controllers.garbagecollector import GarbageCollector  # noqa: E402

Obj = dict[str, Any]
PODS = kinds.lookup("", "v1", "pods")
SVCS = kinds.lookup("", "v1", "services")
EPS = kinds.lookup("", "v1", "endpoints")
SLICES = kinds.lookup("discovery.k8s.io", "v1", "endpointslices")
NODES = kinds.lookup("", "v1", "nodes")


def mkpod(name: str, ip: str | None = "10.1.0.1", ready: bool = True, labels: dict | None = None,
          ports: list[Obj] | None = None, ns: str = "default", node_name: str = "n1", **extra: Any) -> Obj:
    status: Obj = {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": "2025-01-01T00:00:05Z"}]}
    if ip:
        status |= {"podIP": ip, "podIPs": [{"ip": ip}]}
    spec: Obj = {"nodeName": node_name, "containers": [{"name": "c", "ports": ports or []}]} | extra.pop("spec", {})
    md: Obj = {"name": name, "namespace": ns, "uid": f"uid-{name}", "resourceVersion": "1",
               "labels": {"app": "web"} if labels is None else labels} | extra.pop("metadata", {})
    return {"metadata": md, "spec": spec, "status": status | extra.pop("status", {})}


def mksvc(name: str = "web", ports: list[Obj] | None = None, selector: dict | None = None, **spec: Any) -> Obj:
    ports = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}] if ports is None else ports
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-svc-{name}", "labels": {"tier": "x"},
                         "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"selector": {"app": "web"} if selector is None else selector, "ports": ports,
                     "clusterIP": "10.96.3.3", "ipFamilies": ["IPv4"]} | spec}


# -- membership ---------------------------------------------------------------------
def test_membership_rules() -> None:
    svc, pod = mksvc(), mkpod("a")
    assert em.selects(svc, pod) and not em.selects(svc, mkpod("b", labels={"app": "db"}))
    assert not em.selects(svc, mkpod("c", ns="other"))
    assert not em.managed(mksvc(selector={})) and not em.managed(mksvc(type="ExternalName"))
    assert em.in_endpoints(pod, False)
    assert not em.in_endpoints(mkpod("d", ip=None), True)
    assert not em.in_endpoints(mkpod("e", status={"phase": "Succeeded"}), True)
    dying = mkpod("f", metadata={"deletionTimestamp": "2025-01-01T00:00:09Z"})
    assert not em.in_endpoints(dying, False) and em.in_endpoints(dying, True)
    named = mkpod("g", ports=[{"name": "web", "containerPort": 9090}, {"name": "dns", "containerPort": 53, "protocol": "UDP"}])
    assert em.find_port(named, {"port": 80, "targetPort": 8080}) == 8080
    assert em.find_port(named, {"port": 80}) == 80
    assert em.find_port(named, {"port": 80, "targetPort": "web", "protocol": "TCP"}) == 9090
    assert em.find_port(named, {"port": 53, "targetPort": "dns", "protocol": "TCP"}) is None  # protocol must match
    assert em.find_port(named, {"port": 53, "targetPort": "dns", "protocol": "UDP"}) == 53
    side = mkpod("h", spec={"initContainers": [{"name": "s", "restartPolicy": "Always",
                                                 "ports": [{"name": "side", "containerPort": 7000}]}]})
    assert em.find_port(side, {"port": 1, "targetPort": "side"}) == 7000
    host = mkpod("i", spec={"hostname": "db-0", "subdomain": "web"})
    assert em.hostname_for(host, svc) == "db-0" and em.hostname_for(host, mksvc("other")) is None
    assert em.hostname_for(mkpod("j", spec={"hostname": "x"}), svc) is None


def test_services_to_update_on_pod_change() -> None:
    web, db = mksvc("web"), mksvc("db", selector={"app": "db"})
    old = mkpod("a")
    assert em.services_to_update([web, db], old, copy.deepcopy(old)) == set()  # same resourceVersion
    annotated = copy.deepcopy(old) | {"metadata": old["metadata"] | {"resourceVersion": "2", "annotations": {"k": "v"}}}
    assert em.services_to_update([web, db], old, annotated) == set()  # nothing endpoints show
    unready = mkpod("a", ready=False, metadata={"resourceVersion": "2"})
    assert em.services_to_update([web, db], old, unready) == {"default/web"}
    moved = mkpod("a", labels={"app": "db"}, metadata={"resourceVersion": "2"})
    assert em.services_to_update([web, db], old, moved) == {"default/web", "default/db"}
    moved_unready = mkpod("a", ready=False, labels={"app": "db"}, metadata={"resourceVersion": "2"})
    assert em.services_to_update([web, db], old, moved_unready) == {"default/web", "default/db"}
    both = mkpod("a", labels={"app": "web", "x": "y"}, metadata={"resourceVersion": "2"})
    assert em.services_to_update([web, db], old, both) == set()  # labels changed, membership did not
    new_ip = mkpod("a", ip="10.1.0.9", metadata={"resourceVersion": "2"})
    assert em.services_to_update([web, db], old, new_ip) == {"default/web"}


def test_trigger_times() -> None:
    t = em.TriggerTimes()
    svc = mksvc()
    a = mkpod("a")
    assert t.compute(svc, [a]) == "2025-01-01T00:00:00Z"  # first sight: the Service's creation
    assert t.compute(svc, [a]) is None  # nothing new since
    b = mkpod("b", status={"conditions": [{"type": "Ready", "status": "True",
                                            "lastTransitionTime": "2025-01-01T00:01:00.250Z"}]})
    c = mkpod("c", status={"conditions": [{"type": "Ready", "status": "True",
                                            "lastTransitionTime": "2025-01-01T00:02:00Z"}]})
    assert t.compute(svc, [a, b, c]) == "2025-01-01T00:01:00.25Z"  # the earliest change not yet seen
    assert t.compute(svc, [a, b, c]) is None
    t.forget("default/web")
    assert t.compute(svc, [a]) == "2025-01-01T00:00:00Z"


# -- Endpoints ------------------------------------------------------------------------
def addr(pod: str, ip: str, node_name: str = "n1", **extra: Any) -> Obj:
    return {"ip": ip, **extra, "nodeName": node_name,
            "targetRef": {"kind": "Pod", "namespace": "default", "name": pod, "uid": f"uid-{pod}"}}


def test_subsets_ready_not_ready_and_repacked() -> None:
    svc = mksvc(ports=[{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                       {"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP"}])
    pods = [mkpod("a", "10.1.0.3"), mkpod("b", "10.1.0.2", ready=False),
            mkpod("c", "10.1.0.1", ports=[{"name": "metrics", "containerPort": 9101}]),
            mkpod("d", None), mkpod("e", "10.1.0.5", metadata={"deletionTimestamp": "2025-01-01T00:00:09Z"}),
            mkpod("f", "10.1.0.6", status={"phase": "Failed"})]
    got = epc.subsets_for(svc, pods)
    http = {"name": "http", "port": 8080, "protocol": "TCP"}
    metrics = {"name": "metrics", "port": 9101, "protocol": "TCP"}
    # repacked by port: every pod offers http; only c has a port named metrics
    assert got == [{"addresses": [addr("c", "10.1.0.1"), addr("a", "10.1.0.3")],
                    "notReadyAddresses": [addr("b", "10.1.0.2")], "ports": [http]},
                   {"addresses": [addr("c", "10.1.0.1")], "ports": [metrics]}], got
    # publishNotReadyAddresses: every pod with an IP is an address, terminating ones too
    pub = epc.subsets_for(mksvc(publishNotReadyAddresses=True), pods)
    assert [a["ip"] for a in pub[0]["addresses"]] == ["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.5"]
    assert "notReadyAddresses" not in pub[0]


def test_subsets_headless_hostname_and_no_ports() -> None:
    svc = mksvc(ports=[], clusterIP="None")
    pods = [mkpod("db-0", "10.1.0.7", spec={"hostname": "db-0", "subdomain": "web"})]
    assert epc.subsets_for(svc, pods) == [{"addresses": [addr("db-0", "10.1.0.7", hostname="db-0")]}]
    assert epc.subsets_for(mksvc(ports=[]), pods) == []  # not headless: no ports, no subsets


def test_repack_merges_and_not_ready_wins() -> None:
    p80, p81 = {"port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "TCP"}
    a, b = {"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}
    got = epc.repack([{"addresses": [a], "ports": [p80]}, {"addresses": [b], "ports": [p80]},
                      {"addresses": [a], "ports": [p81]}, {"addresses": [b], "ports": [p81]}])
    assert got == [{"addresses": [a, b], "ports": [p80, p81]}]
    got = epc.repack([{"addresses": [a], "ports": [p80]}, {"notReadyAddresses": [a], "ports": [p80]}])
    assert got == [{"notReadyAddresses": [a], "ports": [p80]}]
    assert epc.repack([{"addresses": [a]}, {"addresses": [b]}]) == [{"addresses": [a, b]}]


def test_desired_endpoints_object() -> None:
    svc = mksvc()
    pods = [mkpod("a", "10.1.0.1")]
    new = epc.desired(svc, pods, None, "2025-01-01T00:00:00Z")
    assert new is not None
    assert new["metadata"] == {"name": "web", "namespace": "default", "labels": {"tier": "x"},
                               "annotations": {em.TRIGGER_TIME: "2025-01-01T00:00:00Z"}}
    stored = copy.deepcopy(new)
    stored["metadata"]["resourceVersion"] = "7"
    stored["subsets"][0]["addresses"][0]["targetRef"]["resourceVersion"] = "3"  # ignored when comparing
    assert epc.desired(svc, pods, stored, None) is None
    changed = epc.desired(svc, pods + [mkpod("b", "10.1.0.2")], stored, None)
    assert changed is not None and changed["metadata"]["resourceVersion"] == "7"
    assert em.TRIGGER_TIME not in (changed["metadata"].get("annotations") or {})
    relabelled = epc.desired(svc | {"metadata": svc["metadata"] | {"labels": {"tier": "y"}}}, pods, stored, None)
    assert relabelled is not None and relabelled["metadata"]["labels"] == {"tier": "y"}
    headless = epc.desired(mksvc(clusterIP="None"), pods, None, None)
    assert headless is not None and headless["metadata"]["labels"] == {"tier": "x", em.HEADLESS: ""}
    assert "annotations" not in headless["metadata"]


def test_truncate_over_capacity() -> None:
    ready = [{"ip": f"10.2.{i // 250}.{i % 250}"} for i in range(900)]
    unready = [{"ip": f"10.3.{i // 250}.{i % 250}"} for i in range(300)]
    subsets = [{"addresses": ready[:600], "notReadyAddresses": unready[:200]},
               {"addresses": ready[600:], "notReadyAddresses": unready[200:]}]
    assert epc.truncate(subsets)
    assert [len(s["addresses"]) for s in subsets] == [600, 300]
    assert sum(len(s.get("notReadyAddresses") or []) for s in subsets) == 100
    many = [{"addresses": ready + [{"ip": f"10.4.0.{i}"} for i in range(200)], "notReadyAddresses": unready}]
    assert epc.truncate(many) and len(many[0]["addresses"]) == 1000 and "notReadyAddresses" not in many[0]
    assert not epc.truncate([{"addresses": ready[:10]}])
    svc = mksvc()
    big = [mkpod(f"p{i}", f"10.5.{i // 250}.{i % 250}") for i in range(1001)]
    obj = epc.desired(svc, big, None, None)
    assert obj is not None and obj["metadata"]["annotations"] == {epc.OVER_CAPACITY: "truncated"}
    assert len(obj["subsets"][0]["addresses"]) == 1000


# -- EndpointSlice plans ------------------------------------------------------------------
NODES_BY_NAME = {"n1": {"metadata": {"name": "n1", "labels": {rec.ZONE: "zone-a"}}}}


def as_stored(plan_obj: Obj, name: str, gen: int = 1) -> Obj:
    s = copy.deepcopy(plan_obj)
    s["metadata"] = {k: v for k, v in s["metadata"].items() if k != "generateName"} | {
        "name": name, "uid": f"uid-{name}", "generation": gen, "resourceVersion": str(gen)}
    return s


def test_slice_for_a_new_service() -> None:
    svc = mksvc()
    pods = [mkpod("a", "10.1.0.1"), mkpod("b", "10.1.0.2", ready=False),
            mkpod("c", "10.1.0.3", metadata={"deletionTimestamp": "2025-01-01T00:00:09Z"})]
    plan = rec.reconcile(svc, pods, [], NODES_BY_NAME)
    assert not plan.update and not plan.delete and len(plan.create) == 1
    s = plan.create[0]
    assert s["metadata"]["generateName"] == "web-" and s["addressType"] == "IPv4"
    assert s["metadata"]["labels"] == {"tier": "x", rec.SERVICE_NAME: "web", rec.MANAGED_BY: rec.CONTROLLER}
    assert s["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                                 "uid": "uid-svc-web", "controller": True, "blockOwnerDeletion": True}]
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    conds = {e["targetRef"]["name"]: e["conditions"] for e in s["endpoints"]}
    assert conds == {"a": {"ready": True, "serving": True, "terminating": False},
                     "b": {"ready": False, "serving": False, "terminating": False},
                     "c": {"ready": False, "serving": True, "terminating": True}}
    assert s["endpoints"][0] == {"addresses": ["10.1.0.1"], "conditions": conds["a"], "nodeName": "n1", "zone": "zone-a",
                                 "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"}}
    # publishNotReadyAddresses: ready regardless
    pub = rec.reconcile(mksvc(publishNotReadyAddresses=True), pods, [], NODES_BY_NAME).create[0]
    assert all(e["conditions"]["ready"] for e in pub["endpoints"])


def test_slice_placeholder_and_steady_state() -> None:
    svc = mksvc()
    plan = rec.reconcile(svc, [], [], NODES_BY_NAME)
    assert len(plan.create) == 1 and plan.create[0]["endpoints"] == [] and plan.create[0]["ports"] == []
    placeholder = as_stored(plan.create[0], "web-aaaaa")
    placeholder |= {"endpoints": None, "ports": None}
    assert rec.reconcile(svc, [], [placeholder], NODES_BY_NAME) == rec.Plan()  # kept, not recreated
    # a pod appears: the placeholder (about to be deleted) is reused by an update
    plan = rec.reconcile(svc, [mkpod("a")], [placeholder], NODES_BY_NAME)
    assert not plan.create and not plan.delete and len(plan.update) == 1
    assert plan.update[0]["metadata"]["name"] == "web-aaaaa" and len(plan.update[0]["endpoints"]) == 1
    stored = as_stored(plan.update[0], "web-aaaaa", 2)
    assert rec.reconcile(svc, [mkpod("a")], [stored], NODES_BY_NAME) == rec.Plan()
    # readiness flips: update in place; label of the Service changes: update
    plan = rec.reconcile(svc, [mkpod("a", ready=False)], [stored], NODES_BY_NAME)
    assert [e["conditions"]["ready"] for e in plan.update[0]["endpoints"]] == [False]
    relabelled = svc | {"metadata": svc["metadata"] | {"labels": {"tier": "y"}}}
    plan = rec.reconcile(relabelled, [mkpod("a")], [stored], NODES_BY_NAME)
    assert plan.update[0]["metadata"]["labels"]["tier"] == "y" and not plan.create
    # the last pod goes: the slice becomes the placeholder again (update, not delete + create)
    plan = rec.reconcile(svc, [], [stored], NODES_BY_NAME)
    assert not plan.create and not plan.delete and plan.update[0]["endpoints"] == []


def test_slices_of_at_most_max_endpoints_and_best_fit() -> None:
    svc = mksvc()
    pods = [mkpod(f"p{i:03d}", f"10.1.{i // 200}.{i % 200 + 1}") for i in range(250)]
    plan = rec.reconcile(svc, pods, [], NODES_BY_NAME)
    assert sorted(len(s["endpoints"]) for s in plan.create) == [50, 100, 100]
    stored = [as_stored(s, f"web-{i}") for i, s in enumerate(plan.create)]
    assert rec.reconcile(svc, pods, stored, NODES_BY_NAME) == rec.Plan()
    # 30 more pods fit the 50-slice best
    more = pods + [mkpod(f"q{i:02d}", f"10.9.0.{i + 1}") for i in range(30)]
    plan = rec.reconcile(svc, more, stored, NODES_BY_NAME)
    assert not plan.create and [len(s["endpoints"]) for s in plan.update] == [80]
    # a removed pod's slice is updated and then topped up with new pods first
    fewer = [p for p in more if p["metadata"]["name"] != "p000"] + [mkpod("r", "10.9.1.1")]
    plan = rec.reconcile(svc, fewer, stored, NODES_BY_NAME)
    sizes = {s["metadata"]["name"]: len(s["endpoints"]) for s in plan.update}
    small = next(s["metadata"]["name"] for s in stored if len(s["endpoints"]) == 50)
    first = next(s["metadata"]["name"] for s in stored if any(e["targetRef"]["name"] == "p000" for e in s["endpoints"]))
    assert not plan.create and not plan.delete and sizes == {first: 100, small: 80}


def test_slices_split_by_port_set_unowned_and_missing_node() -> None:
    svc = mksvc(ports=[{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}])
    pods = [mkpod("a", "10.1.0.1", ports=[{"name": "web", "containerPort": 8080}]),
            mkpod("b", "10.1.0.2", ports=[{"name": "web", "containerPort": 9090}]),
            mkpod("c", "10.1.0.3", node_name="gone")]
    plan = rec.reconcile(svc, pods, [], NODES_BY_NAME)
    # c has no port named web (its port set is empty) and is left out while its node is unknown
    assert sorted(s["ports"][0]["port"] for s in plan.create) == [8080, 9090]
    assert plan.missing_nodes == ["c (node gone)"]
    plan = rec.reconcile(svc | {"spec": svc["spec"] | {"publishNotReadyAddresses": True}}, pods, [], NODES_BY_NAME)
    assert not plan.missing_nodes and [s["endpoints"][0]["nodeName"] for s in plan.create if not s["ports"]] == ["gone"]
    foreign = as_stored(rec.reconcile(mksvc(), [mkpod("a")], [], NODES_BY_NAME).create[0], "web-old")
    foreign["metadata"]["ownerReferences"][0]["uid"] = "uid-of-an-older-web"
    plan = rec.reconcile(mksvc(), [mkpod("a")], [foreign], NODES_BY_NAME)
    assert len(plan.create) == 1 and plan.delete == [foreign] and not plan.update  # not ours: never reused
    assert plan.create[0]["metadata"]["ownerReferences"][0]["uid"] == "uid-svc-web"


def test_slice_tracker() -> None:
    t = SliceTracker()
    s = as_stored(rec.new_slice(mksvc(), [], "IPv4"), "web-a", gen=2)
    assert t.should_sync(s) and not t.stale("default/web", [])
    t.update(s)
    assert not t.should_sync(s) and t.stale("default/web", []) and not t.stale("default/web", [s])
    older = copy.deepcopy(s)
    older["metadata"]["generation"] = 1
    assert t.stale("default/web", [older])
    t.expect_deletion(s)
    assert t.stale("default/web", [s]) and not t.stale("default/web", [])
    assert t.handle_deletion(s) and not t.has(s)
    t.update(s)
    assert not t.handle_deletion(s)  # someone else deleted it


# -- the controllers against a real API server --------------------------------------------------
def run(srv: ServerThread, scenario: Callable[[Client], Awaitable[None]]) -> None:
    async def main() -> None:
        async with Client(srv.url) as c:
            tasks = endpoint_controller_tasks(c) + [asyncio.create_task(GarbageCollector(c).run())]
            try:
                await asyncio.wait_for(scenario(c), 30)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    asyncio.run(main())


async def until(fn: Callable[[], Awaitable[Any]], what: str, timeout: float = 15) -> Any:
    last: Any = None
    for _ in range(int(timeout / 0.05)):
        try:
            last = await fn()
            if last:
                return last
        except StatusError as e:
            last = e
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


async def make_pod(c: Client, name: str, ip: str, ready: bool, *, labels: dict | None = None,
                   ports: list[Obj] | None = None, **spec: Any) -> Obj:
    pod = {"metadata": {"name": name, "labels": labels or {"app": "web"}},
           "spec": {"nodeName": "crt-ep-node", "terminationGracePeriodSeconds": 30,
                    "containers": [{"name": "c", "image": "busybox", "ports": ports or []}]} | spec}
    await c.create(PODS, "default", pod)
    return await set_status(c, name, ip, ready)


async def set_status(c: Client, name: str, ip: str, ready: bool) -> Obj:
    cond = {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": "2025-03-01T00:00:00Z"}
    return await c.patch(PODS, "default", name, {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                                                            "conditions": [cond]}}, subresource="status")


async def endpoints(c: Client, name: str) -> Obj:
    return await c.get(EPS, "default", name)


async def slices(c: Client, name: str) -> list[Obj]:
    return (await c.list(SLICES, "default", label_selector=f"{rec.SERVICE_NAME}={name}"))["items"]


def ips(ep: Obj, field: str) -> list[str]:
    return sorted(a["ip"] for s in ep.get("subsets") or [] for a in s.get(field) or [])


def test_controllers_follow_pods_and_services(srv: ServerThread) -> None:
    async def scenario(c: Client) -> None:
        await c.create(NODES, None, node("crt-ep-node", labels={rec.ZONE: "z1"}))
        await make_pod(c, "web-1", "10.244.7.1", True, ports=[{"name": "http", "containerPort": 8081}])
        await make_pod(c, "web-2", "10.244.7.2", False, ports=[{"name": "http", "containerPort": 8082}])
        await make_pod(c, "other", "10.244.7.3", True, labels={"app": "other"})
        await c.create(SVCS, "default", {"metadata": {"name": "web", "labels": {"team": "a"}},
                                         "spec": {"selector": {"app": "web"},
                                                  "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        # (the pod and service informers are separate streams: the first write may predate a pod)
        ep = await until(lambda: _ep_with(c, "web", ["10.244.7.1"], ["10.244.7.2"]), "Endpoints web with both pods")
        assert ep["metadata"]["labels"] == {"team": "a"} and em.TRIGGER_TIME in ep["metadata"]["annotations"]
        ports = sorted(s["ports"][0]["port"] for s in ep["subsets"])
        assert ports == [8081, 8082]  # the named port resolves per pod
        addr0 = next(s for s in ep["subsets"] if s.get("addresses"))["addresses"][0]
        assert addr0["nodeName"] == "crt-ep-node" and addr0["targetRef"]["kind"] == "Pod"
        assert addr0["targetRef"]["name"] == "web-1" and addr0["targetRef"]["uid"]
        sl = await until(lambda: _n_slices(c, "web", 2), "two slices of web (one per resolved port)")
        assert all(s["metadata"]["name"].startswith("web-") for s in sl)
        assert all(s["metadata"]["labels"][rec.MANAGED_BY] == rec.CONTROLLER for s in sl)
        by_port = {s["ports"][0]["port"]: s["endpoints"][0] for s in sl}
        assert by_port[8081]["conditions"] == {"ready": True, "serving": True, "terminating": False}
        assert by_port[8082]["conditions"]["ready"] is False and by_port[8081]["zone"] == "z1"

        # web-2 becomes ready
        await set_status(c, "web-2", "10.244.7.2", True)
        await until(lambda: _ready_ips(c, "web", ["10.244.7.1", "10.244.7.2"]), "web-2 ready in Endpoints")
        await until(lambda: _slice_ready(c, "web", {"10.244.7.1": True, "10.244.7.2": True}), "web-2 ready in slices")

        # web-1 terminating: gone from Endpoints, terminating in the slice
        await c.delete(PODS, "default", "web-1")
        await until(lambda: _ready_ips(c, "web", ["10.244.7.2"]), "web-1 out of Endpoints")
        await until(lambda: _slice_cond(c, "web", "10.244.7.1", {"ready": False, "serving": True, "terminating": True}),
                    "web-1 terminating in its slice")

        # the selector moves to app=other
        await c.patch(SVCS, "default", "web", {"spec": {"selector": {"app": "other"}, "ports": [
            {"name": "http", "port": 80, "targetPort": 9000}]}})
        await until(lambda: _ready_ips(c, "web", ["10.244.7.3"]), "Endpoints follow the selector")
        await until(lambda: _slice_ready(c, "web", {"10.244.7.3": True}), "slices follow the selector")
        sl = await slices(c, "web")
        assert len(sl) == 1 and sl[0]["ports"] == [{"name": "http", "port": 9000, "protocol": "TCP"}]

        # the Service goes: its Endpoints and slices go with it
        await c.delete(SVCS, "default", "web")
        await until(lambda: _gone(c, "web"), "Endpoints deleted with the Service")
        await until(lambda: _no_slices(c, "web"), "slices garbage-collected with the Service")
        for name in ("web-1", "web-2", "other"):
            await c.delete(PODS, "default", name, grace_period=0)
    run(srv, scenario)


def test_headless_hostname_publish_and_manual_endpoints(srv: ServerThread) -> None:
    async def scenario(c: Client) -> None:
        try:
            await c.create(NODES, None, node("crt-ep-node"))
        except StatusError as e:
            assert e.code == 409
        await make_pod(c, "db-0", "10.244.8.1", False, labels={"app": "db"}, hostname="db-0", subdomain="db")
        await c.create(SVCS, "default", {"metadata": {"name": "db"},
                                         "spec": {"clusterIP": "None", "selector": {"app": "db"},
                                                  "publishNotReadyAddresses": True}})
        ep = await until(lambda: _ep_with(c, "db", ["10.244.8.1"], []), "Endpoints db with db-0")
        assert ep["subsets"] == [{"addresses": [{"ip": "10.244.8.1", "hostname": "db-0", "nodeName": "crt-ep-node",
                                                 "targetRef": {"kind": "Pod", "namespace": "default", "name": "db-0",
                                                               "uid": ep["subsets"][0]["addresses"][0]["targetRef"]["uid"]}}]}]
        assert ep["metadata"]["labels"] == {em.HEADLESS: ""}
        sl = await until(lambda: _slices_with_endpoints(c, "db"), "a slice of db with db-0")
        assert sl[0]["endpoints"][0]["hostname"] == "db-0" and sl[0]["endpoints"][0]["conditions"]["ready"] is True
        assert sl[0]["metadata"]["labels"][em.HEADLESS] == ""
        # a Service without a selector: its hand-written Endpoints stay as written
        await c.create(SVCS, "default", {"metadata": {"name": "manual"}, "spec": {"ports": [{"port": 80}]}})
        await c.create(EPS, "default", {"metadata": {"name": "manual"},
                                        "subsets": [{"addresses": [{"ip": "10.244.8.9"}], "ports": [{"port": 80}]}]})
        # a pod-less selector Service gets an empty Endpoints and a placeholder slice
        await c.create(SVCS, "default", {"metadata": {"name": "lonely"},
                                         "spec": {"selector": {"app": "nobody"}, "ports": [{"port": 80}]}})
        lonely = await until(lambda: endpoints(c, "lonely"), "Endpoints lonely")
        assert not lonely.get("subsets")
        ph = await until(lambda: slices(c, "lonely"), "placeholder slice")
        assert len(ph) == 1 and not ph[0].get("endpoints") and not ph[0].get("ports")
        # a deleted slice of ours is made again
        await c.delete(SLICES, "default", ph[0]["metadata"]["name"])
        again = await until(lambda: _other_slice(c, "lonely", ph[0]["metadata"]["name"]), "placeholder recreated")
        assert again[0]["metadata"]["labels"][rec.SERVICE_NAME] == "lonely"
        # a deleted Endpoints is made again
        await c.delete(EPS, "default", "db")
        await until(lambda: endpoints(c, "db"), "Endpoints db recreated")
        manual = await endpoints(c, "manual")
        assert ips(manual, "addresses") == ["10.244.8.9"] and not await slices(c, "manual")
        kube = await endpoints(c, "kubernetes")
        assert "labels" not in kube["metadata"] or em.HEADLESS not in kube["metadata"]["labels"]
        for svc in ("db", "manual", "lonely"):
            await c.delete(SVCS, "default", svc)
        await until(lambda: _gone(c, "db"), "db Endpoints deleted")
        await until(lambda: _gone(c, "manual"), "manual Endpoints deleted with its Service")
        await c.delete(PODS, "default", "db-0", grace_period=0)
    run(srv, scenario)


async def _ep_with(c: Client, name: str, ready: list[str], not_ready: list[str]) -> Obj | None:
    ep = await endpoints(c, name)
    return ep if ips(ep, "addresses") == ready and ips(ep, "notReadyAddresses") == not_ready else None


async def _ready_ips(c: Client, name: str, want: list[str]) -> bool:
    return ips(await endpoints(c, name), "addresses") == want


async def _slice_ready(c: Client, name: str, want: dict[str, bool]) -> bool:
    got = {e["addresses"][0]: e["conditions"]["ready"] for s in await slices(c, name) for e in s.get("endpoints") or []}
    return got == want


async def _slice_cond(c: Client, name: str, ip: str, want: Obj) -> bool:
    return any(e["addresses"] == [ip] and e["conditions"] == want
               for s in await slices(c, name) for e in s.get("endpoints") or [])


async def _gone(c: Client, name: str) -> bool:
    try:
        await endpoints(c, name)
    except StatusError as e:
        return e.code == 404
    return False


async def _n_slices(c: Client, name: str, n: int) -> list[Obj]:
    got = await slices(c, name)
    return got if len(got) == n else []


async def _slices_with_endpoints(c: Client, name: str) -> list[Obj]:
    got = await slices(c, name)
    return got if got and all(s.get("endpoints") for s in got) else []


async def _no_slices(c: Client, name: str) -> bool:
    return not await slices(c, name)


async def _other_slice(c: Client, name: str, old: str) -> list[Obj]:
    got = await slices(c, name)
    return got if got and all(s["metadata"]["name"] != old for s in got) else []
