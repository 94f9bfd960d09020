"""The Endpoints controller: for every Service with a selector, an Endpoints
object of the same name listing its pods, as kube-controller-manager's
endpoint controller.  Ready pods go to `addresses`, the others to
`notReadyAddresses` (all to `addresses` with `publishNotReadyAddresses`);
ports are resolved per pod (a named targetPort by container port name), and
the subsets are repacked so pods offering the same ports share one.  A
Service without a selector keeps the Endpoints its user wrote; a deleted
Service's Endpoints are deleted.  The API server keeps `default/kubernetes`.

Level-triggered: informers on Services, Pods and Endpoints feed a keyed work
queue of Service keys; a sync reads the caches, computes the object with the
pure functions below and writes only when it differs.  Membership rules live
in `endpoints_membership`; the EndpointSlice controller is `endpointslice`.
"""
from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from apimachinery import kinds, meta
from apimachinery.client import Client, StatusError
from apimachinery.informer import Informer
from apimachinery.workqueue import WorkQueue, work
from master.controllers.endpoints import membership as em

log = logging.getLogger("coracle.endpoints")
ENDPOINTS = kinds.lookup("", "v1", "endpoints")
SERVICES = kinds.lookup("", "v1", "services")
PODS = kinds.lookup("", "v1", "pods")
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
MAX_CAPACITY = 1000
Obj = dict[str, Any]


# -- decisions (pure) ---------------------------------------------------------
def address(svc: Obj, pod: Obj) -> Obj | None:
    """The pod's EndpointAddress for this Service: its IP of the Service's family, or None."""
    ip = em.ip_of_family(pod, em.service_family(svc, pod))
    if ip is None:
        return None
    addr: Obj = {"ip": ip}
    host = em.hostname_for(pod, svc)
    if host:
        addr["hostname"] = host
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        addr["nodeName"] = node
    addr["targetRef"] = em.target_ref(pod)
    return addr


def endpoint_port(svc_port: Obj, number: int) -> Obj:
    port: Obj = {"port": number, "protocol": svc_port.get("protocol", "TCP")}
    if svc_port.get("name"):
        port = {"name": svc_port["name"]} | port
    if svc_port.get("appProtocol"):
        port["appProtocol"] = svc_port["appProtocol"]
    return port


def subsets_for(svc: Obj, pods: list[Obj]) -> list[Obj]:
    """The Service's subsets, repacked: one single-address subset per pod and resolved port first,
    as upstream's syncService builds them."""
    publish = em.publish_not_ready(svc)
    out: list[Obj] = []
    for pod in pods:
        if not em.in_endpoints(pod, publish):
            continue
        addr = address(svc, pod)
        if addr is None:
            continue
        field = "addresses" if publish or em.is_ready(pod) else "notReadyAddresses"
        svc_ports = (svc.get("spec") or {}).get("ports") or []
        if not svc_ports:
            if em.headless_without_ports(svc):
                out.append({field: [addr]})
            continue
        for sp in svc_ports:
            number = em.find_port(pod, sp)
            if number is not None:
                out.append({field: [addr], "ports": [endpoint_port(sp, number)]})
    return repack(out)


def _addr_key(a: Obj) -> tuple[str, str]:
    return str(a.get("ip", "")), str((a.get("targetRef") or {}).get("uid", ""))


def _port_key(p: Obj) -> tuple[str, int, str, str]:
    return str(p.get("name", "")), int(p.get("port", 0)), str(p.get("protocol", "TCP")), str(p.get("appProtocol", ""))


def repack(subsets: list[Obj]) -> list[Obj]:
    """Upstream's RepackSubsets: map every port to the addresses offering it (not-ready wins over
    ready for the same address and port), then give each distinct address set one subset with all
    its ports. Sorted (addresses by IP and uid, ports and subsets by key) so the result is stable."""
    addrs: dict[tuple[str, str], Obj] = {}
    by_port: dict[tuple[str, int, str, str] | None, dict[tuple[str, str], bool]] = {}
    ports: dict[tuple[str, int, str, str], Obj] = {}
    for ss in subsets:
        keys: list[tuple[str, int, str, str] | None] = []
        for p in ss.get("ports") or []:
            keys.append(_port_key(p))
            ports.setdefault(_port_key(p), p)
        for pk in keys or [None]:  # None: a subset without ports keeps its addresses
            seen = by_port.setdefault(pk, {})
            for a, is_ready in [(a, True) for a in ss.get("addresses") or []] + \
                            [(a, False) for a in ss.get("notReadyAddresses") or []]:
                ak = _addr_key(a)
                addrs.setdefault(ak, a)
                if seen.get(ak, True):
                    seen[ak] = is_ready
    groups: dict[frozenset, list[tuple[str, int, str, str]]] = {}
    for pk, seen in by_port.items():
        group = groups.setdefault(frozenset(seen.items()), [])
        if pk is not None:
            group.append(pk)
    out = []
    for members, pks in groups.items():
        packed: Obj = {}
        ready = sorted(k for k, r in members if r)
        unready = sorted(k for k, r in members if not r)
        if ready:
            packed["addresses"] = [addrs[k] for k in ready]
        if unready:
            packed["notReadyAddresses"] = [addrs[k] for k in unready]
        if pks:
            packed["ports"] = [ports[k] for k in sorted(pks)]
        out.append(packed)
    out.sort(key=lambda s: (sorted(_port_key(p) for p in s.get("ports") or []),
                            [_addr_key(a) for a in s.get("addresses") or []],
                            [_addr_key(a) for a in s.get("notReadyAddresses") or []]))
    return out


def truncate(subsets: list[Obj]) -> bool:
    """Upstream's truncateEndpoints: keep at most MAX_CAPACITY addresses, ready ones first, each
    subset keeping its share (rounded up). Mutates the subsets; True when something was cut."""
    total_ready = sum(len(s.get("addresses") or []) for s in subsets)
    total_unready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if total_ready + total_unready <= MAX_CAPACITY:
        return False
    cut_ready = total_ready > MAX_CAPACITY
    limit, total = (MAX_CAPACITY, total_ready) if cut_ready else (MAX_CAPACITY - total_ready, total_unready)
    room = limit
    for s in subsets:
        field = "addresses" if cut_ready else "notReadyAddresses"
        have = s.get(field) or []
        n = min(math.ceil(len(have) / total * limit), room)
        s[field] = have[:n]
        if cut_ready:
            s.pop("notReadyAddresses", None)
        room -= len(s[field])
        if not s[field]:
            del s[field]
    return True


def _strip_rv(subsets: list[Obj]) -> list[Obj]:
    """Subsets without targetRef.resourceVersion, which upstream ignores when comparing."""
    out = []
    for s in subsets:
        s2 = dict(s)
        for f in ("addresses", "notReadyAddresses"):
            if f in s:
                s2[f] = [a | {"targetRef": {k: v for k, v in a["targetRef"].items() if k != "resourceVersion"}}
                         if a.get("targetRef") else a for a in s[f]]
        out.append(s2)
    return out


def desired(svc: Obj, pods: list[Obj], current: Obj | None, trigger_time: str | None) -> Obj | None:
    """The Endpoints to write for the Service, or None when `current` already says the same
    (subsets, the Service's labels, the over-capacity annotation). A new object when current is None."""
    subsets = subsets_for(svc, pods)
    svc_labels = dict(meta.labels(svc))
    if current is not None:
        cur_labels = {k: v for k, v in meta.labels(current).items() if k != em.HEADLESS}
        n = sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or []) for s in subsets)
        capacity_ok = n <= MAX_CAPACITY and OVER_CAPACITY not in (current["metadata"].get("annotations") or {})
        if _strip_rv(current.get("subsets") or []) == subsets and cur_labels == svc_labels and capacity_ok:
            return None
        md = dict(current["metadata"])
        obj: Obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": md}
    else:
        md = {"name": meta.name(svc), "namespace": meta.namespace(svc)}
        obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": md}
    annotations = dict(md.get("annotations") or {})
    if trigger_time:
        annotations[em.TRIGGER_TIME] = trigger_time
    else:
        annotations.pop(em.TRIGGER_TIME, None)
    if truncate(subsets):
        annotations[OVER_CAPACITY] = "truncated"
    else:
        annotations.pop(OVER_CAPACITY, None)
    labels = svc_labels
    if not em.ip_set(svc):
        labels[em.HEADLESS] = ""
    md["labels"], md["annotations"] = labels, annotations
    for f in ("labels", "annotations"):
        if not md[f]:
            del md[f]
    obj["subsets"] = subsets
    return obj


def namespace_terminating(e: StatusError) -> bool:
    causes = (e.status.get("details") or {}).get("causes") or []
    return e.code == 403 and (any(c.get("reason") == "NamespaceTerminating" for c in causes)
                              or "is being terminated" in str(e.status.get("message", "")))


# -- the controller --------------------------------------------------------------
class ServicePods:
    """The service and pod informers, with the pod index, that the Endpoints and
    EndpointSlice controllers share; `feed(queue)` queues a service's key whenever
    the service or a pod it selects changes.  Whoever made it runs its informers."""

    def __init__(self, client: Client):
        assert PODS is not None and SERVICES is not None
        self.pods, self.services, self.index = Informer(client, PODS), Informer(client, SERVICES), em.PodIndex()
        self.pods.add_handlers(on_add=self.index.put, on_update=lambda _o, n: self.index.put(n),
                               on_delete=self.index.remove)

    def informers(self) -> list[Informer]:
        return [self.pods, self.services]

    def feed(self, queue: WorkQueue) -> None:
        def service(svc: Obj) -> None:
            queue.add(meta.key(svc))

        def pod_added(pod: Obj) -> None:
            for key in em.services_for(self.services.list(), pod):
                queue.add(key)

        def pod_updated(old: Obj, new: Obj) -> None:
            for key in em.services_to_update(self.services.list(), old, new):
                queue.add(key)
        self.services.add_handlers(on_add=service, on_update=lambda _o, n: service(n), on_delete=service)
        self.pods.add_handlers(on_add=pod_added, on_update=pod_updated, on_delete=pod_added)


class EndpointsController:
    """Pass `shared` to share the service and pod informers with the EndpointSlice
    controller; without it this controller makes and runs its own."""

    def __init__(self, client: Client, *, shared: ServicePods | None = None, workers: int = 2):
        assert ENDPOINTS is not None
        self.client, self.workers = client, workers
        self.queue = WorkQueue()
        self.triggers = em.TriggerTimes()
        self._own: list[Informer] = []
        if shared is None:
            shared = ServicePods(client)
            self._own += shared.informers()
        self.pods, self.services, self.index = shared.pods, shared.services, shared.index
        shared.feed(self.queue)
        self.endpoints = Informer(client, ENDPOINTS)
        self._own.append(self.endpoints)
        self.endpoints.add_handlers(on_delete=lambda ep: self.queue.add(meta.key(ep)))

    async def run(self) -> None:
        tasks = [asyncio.create_task(i.run()) for i in self._own]
        try:
            for inf in (self.pods, self.services, self.endpoints):
                await inf.synced.wait()
            # Endpoints whose Service went while we were away (upstream's checkLeftoverEndpoints)
            for ep in self.endpoints.list():
                if LEADER_ANNOTATION not in (ep["metadata"].get("annotations") or {}):
                    self.queue.add(meta.key(ep))
            await asyncio.gather(*(self._worker() for _ in range(self.workers)))
        finally:
            for t in tasks:
                t.cancel()
            self.queue.shutdown()

    async def _worker(self) -> None:
        await work(self.queue, self.sync, "endpoints", log, (StatusError, OSError))

    async def sync(self, key: str) -> None:
        """Bring the Endpoints of Service `key` (namespace/name) in line. Idempotent."""
        assert ENDPOINTS is not None
        ns, _, name = key.partition("/")
        if key == "default/kubernetes":
            return  # the API server maintains it
        svc = self.services.get(key)
        if svc is None:
            try:
                await self.client.delete(ENDPOINTS, ns, name)
                log.info("endpoints %s: deleted with its service", key)
            except StatusError as e:
                if e.code != 404:
                    raise
            self.triggers.forget(key)
            return
        if not em.managed(svc):
            return
        pods = self.index.selected_by(svc)
        trigger = self.triggers.compute(svc, pods)
        current = self.endpoints.get(key)
        obj = desired(svc, pods, current, trigger)
        if obj is None:
            return
        try:
            if current is None:
                await self.client.create(ENDPOINTS, ns, obj)
            else:
                await self.client.update(ENDPOINTS, ns, obj)
        except StatusError as e:
            if current is None and namespace_terminating(e):
                return
            raise
        n = [sum(len(s.get(f) or []) for s in obj["subsets"]) for f in ("addresses", "notReadyAddresses")]
        log.info("endpoints %s: %d ready, %d not ready", key, n[0], n[1])
