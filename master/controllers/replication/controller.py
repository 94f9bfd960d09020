"""The replication engine: core/v1 ReplicationControllers (a map selector)
and apps/v1 ReplicaSets (a LabelSelector), one engine as upstream's
ReplicaSet controller and ReplicationManager share one.

Each owner keeps `spec.replicas` active pods built from its template: it
adopts matching orphans and releases owned pods that stopped matching,
creates the missing pods in slow-start batches (1, 2, 4, ...; at most 500 per
sync) or deletes the surplus by upstream's ranking, and writes its status
through `/status` when it changed.  Expectations keep a sync from acting
again before the pod informer has seen the previous sync's writes.

Level-triggered: informer handlers only enqueue `<rc|rs>/<namespace>/<name>`;
workers sync one key at a time, re-reading the caches, and requeue with
back-off on errors.  Decisions are pure (`plan.py`,
`status.py`); the pod writes and Events in
`podcontrol.py`; expectations in `expectations.py`.
Deleting an owner's pods is the garbage collector's work (ownerReferences).
The Deployment controller's ReplicaSets are synced here like any other.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from datetime import datetime, timezone
from typing import Any, Callable

from apimachinery import meta
from apimachinery.client import Client, StatusError
from apimachinery.informer import Informer
from apimachinery.labels import Selector, SelectorError
from apimachinery.workqueue import WorkQueue, work
from apimachinery.apigroups import ALL, APIGroups
from master.controllers.replication import plan
from master.controllers.replication.expectations import Expectations
from master.controllers.replication.plan import OwnerKind, served_kinds
from master.controllers.replication.podcontrol import ERRORS, PODS, PodControl
from master.controllers.replication.status import compute_status, recheck_after, status_changed

__all__ = ["ReplicationEngine", "served_kinds"]
log = logging.getLogger("coracle.replication")
Obj = dict[str, Any]


class ReplicationEngine:
    def __init__(self, client: Client, apis: APIGroups = ALL, *, workers: int = 5,
                 burst: int = plan.BURST_REPLICAS, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 clock: Callable[[], float] = time.monotonic):
        assert PODS is not None
        self.client, self.workers, self.burst, self.now = client, workers, burst, now
        self.pods_api = PodControl(client)
        self.kinds = {k.tag: k for k in served_kinds(apis)}
        self.queue = WorkQueue()
        self.expectations = Expectations(clock)
        self.pods = Informer(client, PODS)
        self.pods.add_handlers(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)
        self.owners: dict[str, Informer] = {}
        for tag, kind in self.kinds.items():
            inf = Informer(client, kind.res)
            inf.add_handlers(on_add=functools.partial(self._enqueue_owner, tag),
                             on_update=functools.partial(self._owner_updated, tag),
                             on_delete=functools.partial(self._owner_deleted, tag))
            self.owners[tag] = inf
        self._by_ns: dict[str, set[str]] = {}  # namespace -> pod cache keys
        self._selectors: dict[str, tuple[str, Selector]] = {}  # owner uid -> (resourceVersion, selector)

    # -- handlers: they only enqueue (and count expectations) -------------------------
    def _enqueue_owner(self, tag: str, owner: Obj) -> None:
        self.queue.add(f"{tag}/{meta.key(owner)}")

    def _owner_updated(self, tag: str, _old: Obj, owner: Obj) -> None:
        self._enqueue_owner(tag, owner)

    def _owner_deleted(self, tag: str, owner: Obj) -> None:
        key = f"{tag}/{meta.key(owner)}"
        self.expectations.forget(key)
        self._selectors.pop(meta.uid(owner), None)
        self.queue.add(key)

    def _owner_key(self, pod: Obj, ref: Obj) -> str | None:
        """The queue key of the owner a controller reference names, if it is one of ours in the cache."""
        for tag, kind in self.kinds.items():
            if kind.controls(ref):
                owner = self.owners[tag].get(f"{meta.namespace(pod)}/{ref.get('name', '')}")
                if owner is not None and meta.uid(owner) == ref.get("uid"):
                    return f"{tag}/{meta.key(owner)}"
        return None

    def _selector(self, kind: OwnerKind, owner: Obj) -> Selector:
        """The owner's parsed selector, kept per uid until the owner changes (orphan pod events
        test every owner of a namespace)."""
        uid, rv = meta.uid(owner), meta.resource_version(owner)
        hit = self._selectors.get(uid)
        if hit is None or hit[0] != rv:
            hit = self._selectors[uid] = (rv, kind.selector(owner))
        return hit[1]

    def _matching_owners(self, pod: Obj) -> list[str]:
        out = []
        for tag, inf in self.owners.items():
            for owner in inf.list():
                if meta.namespace(owner) != meta.namespace(pod):
                    continue
                try:
                    if self._selector(self.kinds[tag], owner).matches(meta.labels(pod)):
                        out.append(f"{tag}/{meta.key(owner)}")
                except SelectorError:
                    continue
        return out

    def _pod_added(self, pod: Obj) -> None:
        self._by_ns.setdefault(meta.namespace(pod), set()).add(meta.key(pod))
        if pod.get("metadata", {}).get("deletionTimestamp"):
            self._pod_deleted(pod)  # a restarted informer may see a pod already going
            return
        ref = plan.controller_ref(pod)
        if ref is not None:
            key = self._owner_key(pod, ref)
            if key is not None:
                self.expectations.creation_observed(key)
                self.queue.add(key)
            return
        for key in self._matching_owners(pod):
            self.queue.add(key)

    def _pod_updated(self, old: Obj, pod: Obj) -> None:
        if meta.resource_version(old) == meta.resource_version(pod):
            return  # a relist's unchanged pod
        labels_changed = meta.labels(old) != meta.labels(pod)
        if pod.get("metadata", {}).get("deletionTimestamp"):
            self._pod_deleted(pod, forget_index=False)
            if labels_changed:
                self._pod_deleted(old, forget_index=False)
            return
        old_ref, ref = plan.controller_ref(old), plan.controller_ref(pod)
        if old_ref is not None and (ref is None or old_ref.get("uid") != ref.get("uid")):
            key = self._owner_key(old, old_ref)
            if key is not None:
                self.queue.add(key)
        if ref is not None:
            key = self._owner_key(pod, ref)
            if key is not None:
                self.queue.add(key)
                owner = self._owner(key)
                min_ready = int(((owner or {}).get("spec") or {}).get("minReadySeconds") or 0)
                if min_ready > 0 and not plan.is_ready(old) and plan.is_ready(pod):
                    self.queue.add_after(key, float(min_ready))  # when it turns available
            return
        if labels_changed or old_ref is not None:
            for key in self._matching_owners(pod):
                self.queue.add(key)

    def _pod_deleted(self, pod: Obj, forget_index: bool = True) -> None:
        if forget_index and self.pods.get(meta.key(pod)) is None:
            self._by_ns.get(meta.namespace(pod), set()).discard(meta.key(pod))
        ref = plan.controller_ref(pod)
        if ref is None:
            return
        key = self._owner_key(pod, ref)
        if key is not None:
            self.expectations.deletion_observed(key, meta.key(pod))
            self.queue.add(key)

    def _owner(self, key: str) -> Obj | None:
        tag, _, nskey = key.partition("/")
        inf = self.owners.get(tag)
        return inf.get(nskey) if inf is not None else None

    # -- the loop -------------------------------------------------------------------------
    async def run(self) -> None:
        informers = [asyncio.create_task(i.run()) for i in (self.pods, *self.owners.values())]
        workers: list[asyncio.Task] = []
        try:
            await asyncio.gather(self.pods.synced.wait(), *(i.synced.wait() for i in self.owners.values()))
            workers = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
            await asyncio.gather(*workers)
        finally:
            for t in informers + workers:
                t.cancel()
            await asyncio.gather(*informers, *workers, return_exceptions=True)
            await self.pods_api.close()
            self.queue.shutdown()

    async def _worker(self) -> None:
        await work(self.queue, self.sync, "replication", log, ERRORS, lambda _e: logging.WARNING)

    async def sync(self, key: str) -> None:
        """One pass for one owner: claim, create or delete, write status.  Idempotent; raises
        (so the key is retried with back-off) when a write failed."""
        tag = key.partition("/")[0]
        kind, owner = self.kinds[tag], self._owner(key)
        if owner is None:
            self.expectations.forget(key)
            return
        needs_sync = self.expectations.satisfied(key)
        try:
            selector = self._selector(kind, owner)
        except SelectorError as e:
            log.error("replication %s: invalid selector, not syncing: %s", key, e)
            return
        ns = meta.namespace(owner)
        cached = (self.pods.get(k) for k in sorted(self._by_ns.get(ns, ())))
        active = [p for p in cached if p is not None and plan.is_active(p)]
        pods = await self._claim(kind, owner, selector, active)
        error: str | None = None
        if needs_sync and not owner.get("metadata", {}).get("deletionTimestamp"):
            error = await self._manage(kind, key, owner, pods)
        status = await self._write_status(kind, owner, pods, error)
        if error is not None:
            raise StatusError(500, {"message": error, "reason": "ReplicaFailure"})
        wait = recheck_after(owner, status)
        if wait is not None:
            self.queue.add_after(key, wait)

    async def _claim(self, kind: OwnerKind, owner: Obj, selector: Selector, active: list[Obj]) -> list[Obj]:
        c = plan.claim(owner, selector, active)
        owned = c.owned + await self.pods_api.adopt(kind, owner, c.adopt)
        await self.pods_api.release(owner, c.release)
        return owned

    async def _manage(self, kind: OwnerKind, key: str, owner: Obj, pods: list[Obj]) -> str | None:
        """Create or delete toward spec.replicas; returns what went wrong, if anything."""
        diff = plan.replica_diff(int(owner.get("spec", {}).get("replicas", 1)), len(pods), self.burst)
        if diff > 0:
            return await self._create(kind, key, owner, diff)
        if diff < 0:
            victims = plan.pods_to_delete(pods, self._related(kind, owner), -diff, self.now())
            return await self._delete(kind, key, owner, victims)
        return None

    async def _create(self, kind: OwnerKind, key: str, owner: Obj, count: int) -> str | None:
        self.expectations.expect_creations(key, count)
        made, error = await self.pods_api.create(kind, owner, count)
        for _ in range(count - made):  # never coming: do not wait for them
            self.expectations.creation_observed(key)
        return None if error is None else str(error)

    async def _delete(self, kind: OwnerKind, key: str, owner: Obj, victims: list[Obj]) -> str | None:
        self.expectations.expect_deletions(key, [meta.key(p) for p in victims])
        results = await self.pods_api.delete(kind, owner, victims)
        for pod, error in zip(victims, results):
            if error is not None:
                self.expectations.deletion_observed(key, meta.key(pod))
        return next((str(e) for e in results if e is not None), None)

    def _related(self, kind: OwnerKind, owner: Obj) -> list[Obj]:
        """Active pods of this owner and of its siblings (owners with the same controller, as a
        Deployment's ReplicaSets): the deletion ranking spreads what stays across nodes.  An owner
        without a controller has none, as upstream (every pod then ranks alike on that rule)."""
        parent = plan.controller_ref(owner)
        if parent is None:
            return []
        siblings = {meta.uid(o) for o in self.owners[kind.tag].list()
                    if meta.namespace(o) == meta.namespace(owner) and
                    (plan.controller_ref(o) or {}).get("uid") == parent.get("uid")}
        out = []
        for k in self._by_ns.get(meta.namespace(owner), ()):
            p = self.pods.get(k)
            if p is not None and plan.is_active(p) and (plan.controller_ref(p) or {}).get("uid") in siblings:
                out.append(p)
        return out

    async def _write_status(self, kind: OwnerKind, owner: Obj, pods: list[Obj], error: str | None) -> Obj:
        status = compute_status(owner, pods, error, self.now())
        if not status_changed(owner, status):
            return status
        ns, name = meta.namespace(owner), meta.name(owner)
        for attempt in (0, 1):  # upstream retries once on a fresh copy
            body = {**owner, "status": status}
            try:
                await self.client.update(kind.res, ns, body, subresource="status")
                return status
            except StatusError as e:
                if e.code == 404:
                    return status
                if e.code != 409 or attempt:
                    raise
            owner = await self.client.get(kind.res, ns, name)
            status = compute_status(owner, pods, error, self.now())
            if not status_changed(owner, status):
                return status
        return status
