"""Deployment controller, as kube-controller-manager's: one ReplicaSet per pod
template (`<deployment>-<pod-template-hash>`, the hash label on its selector,
template and so its pods), rolled out by RollingUpdate (maxSurge,
maxUnavailable) or Recreate, scaled in proportion when the Deployment's size
changes mid-rollout, revisions kept in `deployment.kubernetes.io/revision`
and trimmed to revisionHistoryLimit, paused, progressDeadlineSeconds, and
the Deployment's status.  `kubectl rollout undo` rolls back client-side by
copying an old ReplicaSet's template into the Deployment; the controller
then finds that ReplicaSet as the new one and gives it the next revision.

Level-triggered: informers on Deployments and ReplicaSets enqueue the
Deployment's key; a worker syncs one key at a time from the cache and
requeues with back-off on errors.  Decisions are the pure functions of
rollout.py and status.py; this module sequences them
as upstream's syncDeployment does and writer.py writes, with
preconditions, so running a sync twice changes nothing.  Recreate checks for old pods with a live list (no pod informer) and looks
again a second later while some still run.  The pods themselves are the
ReplicaSet controller's (../replication/controller.py).
"""
from __future__ import annotations

import asyncio
import copy
import datetime as _dt
import logging
from typing import Callable

import httpx

from apimachinery import kinds, meta
from apimachinery.client import Client, StatusError
from apimachinery.informer import Informer
from apimachinery.workqueue import WorkQueue, work
from master.controllers.deployment import rollout as plan
from master.controllers.deployment import status as dstatus
from master.controllers.deployment.model import Obj, controller_ref, selector_matches, spec_replicas, sum_status
from master.controllers.deployment.writer import DeploymentWriter

log = logging.getLogger("coracle.deployment")
DEPLOYMENTS = kinds.lookup("apps", "v1", "deployments")
REPLICASETS = kinds.lookup("apps", "v1", "replicasets")
PODS = kinds.lookup("", "v1", "pods")
RECREATE_POLL = 1.0  # seconds between looks at old pods a Recreate waits for


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


class DeploymentController:
    def __init__(self, client: Client, workers: int = 2, clock: Callable[[], _dt.datetime] = _now):
        assert DEPLOYMENTS and REPLICASETS
        self.client, self.workers, self.clock = client, workers, clock
        self.deployments = Informer(client, DEPLOYMENTS)
        self.replicasets = Informer(client, REPLICASETS)
        self.queue = WorkQueue()
        self.writer = DeploymentWriter(client, self.replicasets, clock)
        self.deployments.add_handlers(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n),
                                      on_delete=self._enqueue)
        self.replicasets.add_handlers(on_add=self._rs_added, on_update=self._rs_updated,
                                      on_delete=self._rs_deleted)

    # -- handlers: they only enqueue --------------------------------------------------
    def _enqueue(self, d: Obj) -> None:
        self.queue.add(meta.key(d))

    def _owner(self, rs: Obj, ref: Obj | None) -> Obj | None:
        if ref is None or ref.get("kind") != "Deployment":
            return None
        d = self.deployments.get(f"{meta.namespace(rs)}/{ref.get('name')}")
        return d if d is not None and meta.uid(d) == ref.get("uid") else None

    def _matching(self, rs: Obj) -> list[Obj]:
        ns = meta.namespace(rs)
        return [d for d in self.deployments.list() if meta.namespace(d) == ns and selector_matches(d, meta.labels(rs))]

    def _rs_added(self, rs: Obj) -> None:
        d = self._owner(rs, controller_ref(rs))
        if d is not None:
            self._enqueue(d)
        elif controller_ref(rs) is None:
            for d in self._matching(rs):  # an orphan: whoever matches may adopt it
                self._enqueue(d)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref is not None and (new_ref is None or new_ref.get("uid") != old_ref.get("uid")):
            if (d := self._owner(old, old_ref)) is not None:
                self._enqueue(d)
        if new_ref is not None:
            if (d := self._owner(new, new_ref)) is not None:
                self._enqueue(d)
        elif meta.labels(old) != meta.labels(new) or old_ref is not None:
            for d in self._matching(new):
                self._enqueue(d)

    def _rs_deleted(self, rs: Obj) -> None:
        if (d := self._owner(rs, controller_ref(rs))) is not None:
            self._enqueue(d)

    # -- the loop ----------------------------------------------------------------------
    async def run(self) -> None:
        informers = [asyncio.create_task(i.run()) for i in (self.deployments, self.replicasets)]
        try:
            await self.deployments.synced.wait()
            await self.replicasets.synced.wait()
            await asyncio.gather(*(self._worker() for _ in range(self.workers)))
        finally:
            for t in informers:
                t.cancel()
            await asyncio.gather(*informers, return_exceptions=True)
            self.queue.shutdown()
            await self.writer.recorder.close()

    async def _worker(self) -> None:
        # a 409 is the cache lagging behind our own last write: expected, retried at once
        await work(self.queue, self.sync, "deployment", log, (StatusError, httpx.HTTPError, OSError, ValueError),
                   lambda e: logging.DEBUG if isinstance(e, StatusError) and e.code == 409 else logging.WARNING)

    # -- one sync ----------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        """Bring one Deployment's ReplicaSets a step towards its spec and write its status.
        Idempotent; raises StatusError (e.g. a 409 on a stale cache) for the caller to retry."""
        cached = self.deployments.get(key)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        rss = await self.writer.claim(d)
        if d["metadata"].get("deletionTimestamp"):
            new = plan.find_new(d, rss)
            await self.writer.write_status(d, dstatus.calculate(rss, new, d, self.clock()))
            return
        if (st := dstatus.paused_condition(d, self.clock())) is not None:
            d = await self.writer.write_status(d, st)
        if d["spec"].get("paused"):
            await self._sync_scale(d, rss)
            return
        new = plan.find_new(d, rss)
        if plan.is_scaling_event(d, new, plan.split_old(rss, new)):
            await self._sync_scale(d, rss)
        elif (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            await self._recreate(d, rss)
        else:
            await self._rolling(d, rss)

    async def _sync_scale(self, d: Obj, rss: list[Obj]) -> None:
        d, new, olds = await self.writer.new_and_old(d, rss, create=False)
        for op in plan.scale(d, new, olds):
            new, olds = await self.writer.apply(d, op, new, olds)
        if d["spec"].get("paused"):
            await self.writer.cleanup(d, olds)
        await self.writer.write_status(d, dstatus.calculate([*olds, new], new, d, self.clock()))

    async def _rolling(self, d: Obj, rss: list[Obj]) -> None:
        d, new, olds = await self.writer.new_and_old(d, rss, create=True)
        assert new is not None
        target = plan.reconcile_new(d, [*olds, new], new)
        if target is not None:
            new, olds = await self.writer.apply(d, plan.Scale(meta.name(new), target), new, olds)
            return await self._rollout_status(d, new, olds)
        ops = plan.reconcile_old(d, [*olds, new], olds, new)
        for op in ops:
            new, olds = await self.writer.apply(d, op, new, olds)
        if not ops and dstatus.complete(d, d.get("status") or {}):
            await self.writer.cleanup(d, olds)
        await self._rollout_status(d, new, olds)

    async def _recreate(self, d: Obj, rss: list[Obj]) -> None:
        d, new, olds = await self.writer.new_and_old(d, rss, create=False)
        ops = [plan.Scale(meta.name(rs), 0) for rs in plan.active(list(olds))]
        for op in ops:
            new, olds = await self.writer.apply(d, op, new, olds)
        if ops:
            return await self._rollout_status(d, new, olds)
        pods: list[Obj] = []
        if sum_status(list(olds), "replicas") == 0 and PODS is not None:
            sel = ",".join(f"{k}={v}" for k, v in (d["spec"]["selector"].get("matchLabels") or {}).items())
            pods = [p for p in (await self.client.list(PODS, meta.namespace(d), label_selector=sel)).get("items") or []
                    if selector_matches(d, meta.labels(p))]
        if plan.old_pods_running(new, olds, pods):
            self.queue.add_after(meta.key(d), RECREATE_POLL)
            return await self._rollout_status(d, new, olds)
        if new is None:
            d, new, olds = await self.writer.new_and_old(d, [*olds], create=True)
        assert new is not None
        new, olds = await self.writer.apply(d, plan.Scale(meta.name(new), spec_replicas(d)), new, olds)
        if dstatus.complete(d, d.get("status") or {}):
            await self.writer.cleanup(d, olds)
        await self._rollout_status(d, new, olds)

    async def _rollout_status(self, d: Obj, new: Obj | None, olds: list[Obj]) -> None:
        status = dstatus.rollout_status([*olds, new], new, d, self.clock())
        if status == (d.get("status") or {}):
            after = dstatus.recheck_after(d, status, self.clock())
            if after is not None:
                self.queue.add_after(meta.key(d), after)
            return
        await self.writer.write_status(d, status)
