"""The EndpointSlice controller (discovery.k8s.io/v1), as
kube-controller-manager's: for every Service with a selector, slices named
`<service>-<random>` labelled `kubernetes.io/service-name` and
`endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`,
owned by the Service (so the garbage collector removes them with it), at
most 100 endpoints each, with ready/serving/terminating conditions.

Level-triggered: informers on Services, Pods, Nodes and EndpointSlices feed a
keyed work queue of Service keys; a sync reads the caches and carries out the
`Plan` of `endpointslice_reconciler.reconcile`.  `SliceTracker` remembers the
generation of every slice this controller wrote, so a sync that runs before
the informer has seen those writes waits (requeue) instead of creating twice.
`endpoint_controller_tasks` starts this controller and the Endpoints
controller (`controller.py`) on one shared pod and service informer.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from apimachinery import kinds, meta
from apimachinery.client import Client, StatusError
from apimachinery.informer import Informer
from apimachinery.workqueue import WorkQueue, work
from apimachinery.apigroups import ALL, APIGroups
from master.controllers.endpoints import membership as em
from master.controllers.endpoints.controller import EndpointsController, ServicePods, namespace_terminating
from master.controllers.endpoints.slice_reconciler import CONTROLLER, MANAGED_BY, SERVICE_NAME, MAX_PER_SLICE, reconcile

log = logging.getLogger("coracle.endpointslice")
SLICES = kinds.lookup("discovery.k8s.io", "v1", "endpointslices")
NODES = kinds.lookup("", "v1", "nodes")
SLICE_CHANGE_DELAY = 1.0  # upstream's endpointSliceChangeMinSyncDelay
DELETION_EXPECTED = -1
Obj = dict[str, Any]


class StaleCache(Exception):
    """The slice informer has not yet seen this controller's own writes; the sync is retried."""


def managed(slice_: Obj) -> bool:
    return meta.labels(slice_).get(MANAGED_BY) == CONTROLLER


def service_key(slice_: Obj) -> str | None:
    svc = meta.labels(slice_).get(SERVICE_NAME)
    return f"{meta.namespace(slice_)}/{svc}" if svc else None


class SliceTracker:
    """Upstream's EndpointSliceTracker: per Service, slice uid -> the generation this controller
    last wrote (DELETION_EXPECTED after deleting it)."""

    def __init__(self) -> None:
        self.gens: dict[str, dict[str, int]] = {}

    def update(self, slice_: Obj) -> None:
        key = service_key(slice_)
        if key:
            self.gens.setdefault(key, {})[meta.uid(slice_)] = int(slice_["metadata"].get("generation", 0))

    def expect_deletion(self, slice_: Obj) -> None:
        key = service_key(slice_)
        if key:
            self.gens.setdefault(key, {})[meta.uid(slice_)] = DELETION_EXPECTED

    def has(self, slice_: Obj) -> bool:
        return meta.uid(slice_) in self.gens.get(service_key(slice_) or "", {})

    def should_sync(self, slice_: Obj) -> bool:
        """A change this controller did not make (unknown slice or a newer generation)."""
        g = self.gens.get(service_key(slice_) or "", {}).get(meta.uid(slice_))
        return g is None or int(slice_["metadata"].get("generation", 0)) > g

    def handle_deletion(self, slice_: Obj) -> bool:
        """Forget a deleted slice; True when this controller deleted it."""
        gens = self.gens.get(service_key(slice_) or "", {})
        return gens.pop(meta.uid(slice_), None) == DELETION_EXPECTED

    def stale(self, key: str, slices: list[Obj]) -> bool:
        gens = self.gens.get(key)
        if not gens:
            return False
        seen = {meta.uid(s): int(s["metadata"].get("generation", 0)) for s in slices}
        for uid, g in seen.items():
            want = gens.get(uid)
            if want is not None and (want == DELETION_EXPECTED or want > g):
                return True
        return any(g != DELETION_EXPECTED and uid not in seen for uid, g in gens.items())

    def forget(self, key: str) -> None:
        self.gens.pop(key, None)


def on_the_wire(slice_: Obj) -> Obj:
    """Empty lists as the API server's storage round trip leaves them (null), so kubectl prints
    `<unset>` for a placeholder as on a real cluster."""
    for f in ("endpoints", "ports"):
        if not slice_.get(f):
            slice_[f] = None
    return slice_


class EndpointSliceController:
    """Pass `shared` to share the service and pod informers with the Endpoints
    controller; without it this controller makes and runs its own."""

    def __init__(self, client: Client, *, shared: ServicePods | None = None, workers: int = 2,
                 max_per_slice: int = MAX_PER_SLICE):
        assert SLICES is not None and NODES is not None
        self.client, self.workers, self.max_per_slice = client, workers, max_per_slice
        self.queue = WorkQueue()
        self.triggers = em.TriggerTimes()
        self.tracker = SliceTracker()
        self._own: list[Informer] = []
        if shared is None:
            shared = ServicePods(client)
            self._own += shared.informers()
        self.pods, self.services, self.index = shared.pods, shared.services, shared.index
        shared.feed(self.queue)
        self.slices = Informer(client, SLICES)
        self.nodes = Informer(client, NODES)
        self._own += [self.slices, self.nodes]
        self.slices.add_handlers(on_add=self._slice_added, on_update=self._slice_updated,
                                 on_delete=self._slice_deleted)

    # -- handlers: only enqueue ------------------------------------------------
    def _slice_changed(self, slice_: Obj) -> None:
        key = service_key(slice_)
        if key:
            self.queue.add_after(key, SLICE_CHANGE_DELAY)

    def _slice_added(self, slice_: Obj) -> None:
        if managed(slice_) and self.tracker.should_sync(slice_):
            self._slice_changed(slice_)

    def _slice_updated(self, old: Obj, new: Obj) -> None:
        if service_key(old) != service_key(new):
            self._slice_changed(old)
            self._slice_changed(new)
        elif managed(old) != managed(new) or (managed(new) and self.tracker.should_sync(new)):
            self._slice_changed(new)

    def _slice_deleted(self, slice_: Obj) -> None:
        if managed(slice_) and self.tracker.has(slice_) and not self.tracker.handle_deletion(slice_):
            self._slice_changed(slice_)

    # -- loop ------------------------------------------------------------------
    async def run(self) -> None:
        tasks = [asyncio.create_task(i.run()) for i in self._own]
        try:
            for inf in (self.pods, self.services, self.slices, self.nodes):
                await inf.synced.wait()
            await asyncio.gather(*(self._worker() for _ in range(self.workers)))
        finally:
            for t in tasks:
                t.cancel()
            self.queue.shutdown()

    async def _worker(self) -> None:
        await work(self.queue, self.sync, "endpointslices", log, (StaleCache, StatusError, OSError, LookupError),
                   lambda e: logging.DEBUG if isinstance(e, StaleCache) else logging.INFO)

    def slices_of(self, svc: Obj) -> list[Obj]:
        ns, name = meta.namespace(svc), meta.name(svc)
        return sorted((s for s in self.slices.list() if meta.namespace(s) == ns and managed(s)
                       and meta.labels(s).get(SERVICE_NAME) == name and not s["metadata"].get("deletionTimestamp")),
                      key=meta.name)

    async def sync(self, key: str) -> None:
        """Bring Service `key`'s slices in line. Idempotent; raises StaleCache while the slice cache
        lags behind this controller's writes, LookupError when pods were left out for a missing Node."""
        svc = self.services.get(key)
        if svc is None:
            self.triggers.forget(key)
            self.tracker.forget(key)
            return  # the garbage collector deletes the slices the Service owned
        if not em.managed(svc):
            return
        pods = self.index.selected_by(svc)
        slices = self.slices_of(svc)
        if self.tracker.stale(key, slices):
            raise StaleCache(key)
        trigger = self.triggers.compute(svc, pods)
        nodes = {meta.name(n): n for n in self.nodes.list()}
        plan = reconcile(svc, pods, slices, nodes, self.max_per_slice)
        await self._carry_out(svc, plan.create, plan.update, plan.delete, trigger)
        if plan.missing_nodes:
            raise LookupError(f"pods of unknown nodes left out: {', '.join(plan.missing_nodes)}")

    async def _carry_out(self, svc: Obj, create: list[Obj], update: list[Obj], delete: list[Obj],
                         trigger: str | None) -> None:
        assert SLICES is not None
        ns = meta.namespace(svc)
        for s in create + update:
            ann = dict(s["metadata"].get("annotations") or {})
            if trigger:
                ann[em.TRIGGER_TIME] = trigger
            else:
                ann.pop(em.TRIGGER_TIME, None)
            s["metadata"]["annotations"] = ann
        if not svc["metadata"].get("deletionTimestamp"):
            for s in create:
                try:
                    made = await self.client.create(SLICES, ns, on_the_wire(s))
                except StatusError as e:
                    if namespace_terminating(e):
                        return
                    raise
                self.tracker.update(made)
                log.info("endpointslices %s: created %s (%d endpoints)", meta.key(svc), meta.name(made),
                         len(made.get("endpoints") or []))
        for s in update:
            self.tracker.update(await self.client.update(SLICES, ns, on_the_wire(s)))
        for s in delete:
            try:
                await self.client.delete(SLICES, ns, meta.name(s))
            except StatusError as e:
                if e.code != 404:
                    raise
            self.tracker.expect_deletion(s)


def endpoint_controller_tasks(client: Client, apis: APIGroups = ALL) -> list[asyncio.Task]:
    """Start the Endpoints and EndpointSlice controllers (each only when its resources are served)
    on one pod and one service informer; the tasks run until cancelled."""
    core = all(apis.lookup("", "v1", p) is not None for p in ("pods", "services", "endpoints"))
    slices = apis.lookup("discovery.k8s.io", "v1", "endpointslices") is not None and \
        apis.lookup("", "v1", "nodes") is not None and apis.lookup("", "v1", "pods") is not None \
        and apis.lookup("", "v1", "services") is not None
    if not core and not slices:
        return []
    shared = ServicePods(client)
    tasks = [asyncio.create_task(i.run()) for i in shared.informers()]
    if core:
        tasks.append(asyncio.create_task(EndpointsController(client, shared=shared).run()))
    if slices:
        tasks.append(asyncio.create_task(EndpointSliceController(client, shared=shared).run()))
    return tasks
