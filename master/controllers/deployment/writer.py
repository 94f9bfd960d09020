"""Every write the Deployment controller makes, each with a precondition
(resourceVersion or uid) so a stale cache fails with 409 instead of undoing
someone's change: claiming ReplicaSets (adopt, release), creating the new
ReplicaSet (with upstream's hash-collision handling), scaling, deleting old
revisions, the Deployment's revision annotation and status, and the
ScalingReplicaSet events.  Idempotent: what is already so is not written.

Neighbours: controller.py decides when (with rollout.py and
status.py deciding what); this module only carries it out.
"""
from __future__ import annotations

import copy
import datetime as _dt
import logging
from collections.abc import Callable

from apimachinery import kinds, meta
from apimachinery.client import Client, StatusError
from apimachinery.events import EventRecorder
from apimachinery.informer import Informer
from master.controllers.deployment import rollout as plan
from master.controllers.deployment import status as dstatus
from master.controllers.deployment.model import (
    REVISION, Obj, controller_ref, equal_ignore_hash, max_revision, max_surge, owner_ref, replicas_annotations_stale,
    set_new_rs_annotations, set_replicas_annotations, spec_replicas)

log = logging.getLogger("coracle.deployment")
DEPLOYMENTS = kinds.lookup("apps", "v1", "deployments")
REPLICASETS = kinds.lookup("apps", "v1", "replicasets")
NAME = "deployment-controller"


class DeploymentWriter:
    def __init__(self, client: Client, replicasets: Informer, clock: Callable[[], _dt.datetime],
                 recorder: EventRecorder | None = None):
        self.client, self.replicasets, self.clock = client, replicasets, clock
        self.recorder = recorder if recorder is not None else EventRecorder(client, NAME)

    # -- ReplicaSets ------------------------------------------------------------------------
    async def claim(self, d: Obj) -> list[Obj]:
        """Upstream's ControllerRefManager (decisions in plan.claim): ours that match, plus matching
        orphans adopted after a live check that the Deployment is there and not being deleted;
        ours that no longer match are released."""
        assert DEPLOYMENTS is not None
        out, live_ok = [], None
        for rs in self.replicasets.list():
            if meta.namespace(rs) != meta.namespace(d):
                continue
            verdict = plan.claim(d, rs)
            if verdict is plan.Claim.OURS:
                out.append(rs)
            elif verdict is plan.Claim.RELEASE:
                await self.patch_owner(rs, {"$patch": "delete", "uid": meta.uid(d)})
            elif verdict is plan.Claim.ADOPT:
                if live_ok is None:
                    try:
                        fresh = await self.client.get(DEPLOYMENTS, meta.namespace(d), meta.name(d))
                        live_ok = meta.uid(fresh) == meta.uid(d) and not fresh["metadata"].get("deletionTimestamp")
                    except StatusError as e:
                        if e.code != 404:
                            raise
                        live_ok = False
                if live_ok and (adopted := await self.patch_owner(rs, owner_ref(d))) is not None:
                    log.info("deployment %s: adopted replica set %s", meta.key(d), meta.name(rs))
                    out.append(adopted)
        return out

    async def patch_owner(self, rs: Obj, ref: Obj) -> Obj | None:
        assert REPLICASETS is not None
        body = {"metadata": {"ownerReferences": [ref], "uid": meta.uid(rs)}}
        try:
            return await self.client.patch(REPLICASETS, meta.namespace(rs), meta.name(rs), body, "strategic")
        except StatusError as e:
            if e.code == 404:
                return None
            raise

    async def new_and_old(self, d: Obj, rss: list[Obj], create: bool) -> tuple[Obj, Obj | None, list[Obj]]:
        """Upstream's getAllReplicaSetsAndSyncRevision: the new ReplicaSet (made when `create`),
        its revision one past the old ones', the Deployment's revision annotation kept in step."""
        assert REPLICASETS is not None
        found = plan.find_new(d, rss)
        olds = plan.split_old(rss, found)
        revision = max_revision(olds) + 1
        ns = meta.namespace(d)
        if found is not None:
            rs = copy.deepcopy(found)
            annotated = set_new_rs_annotations(d, rs, revision, exists=True)
            if annotated or rs["spec"].get("minReadySeconds", 0) != d["spec"].get("minReadySeconds", 0):
                rs["spec"]["minReadySeconds"] = d["spec"].get("minReadySeconds", 0)
                rs = await self.client.update(REPLICASETS, ns, rs)
            d = await self.set_revision(d, rs["metadata"]["annotations"].get(REVISION, ""))
            if (st := dstatus.progress_on_new_rs(d, meta.name(rs), False, self.clock())) is not None:
                d = await self.write_status(d, st)
            return d, rs, olds
        if not create:
            return d, None, olds
        rs = plan.new_replicaset(d, olds, revision)
        try:
            created = await self.client.create(REPLICASETS, ns, rs)
        except StatusError as e:
            if e.code != 409:
                raise
            live = await self.client.get(REPLICASETS, ns, meta.name(rs))
            ref = controller_ref(live)
            if ref is None or ref.get("uid") != meta.uid(d) or \
                    not equal_ignore_hash(live["spec"].get("template"), d["spec"]["template"]):
                status = copy.deepcopy(d.get("status") or {})
                status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                await self.write_status(d, status)
                raise StatusError(409, {"reason": "AlreadyExists",
                                        "message": f"hash collision on replica set {meta.name(rs)}"}) from e
            return await self.set_revision(d, str(revision)), live, olds
        if spec_replicas(created):
            self.event(d, f"Scaled up replica set {meta.name(created)} from 0 to {spec_replicas(created)}")
        d = await self.set_revision(d, str(revision))
        if (st := dstatus.progress_on_new_rs(d, meta.name(created), True, self.clock())) is not None:
            d = await self.write_status(d, st)
        return d, created, olds

    async def apply(self, d: Obj, op: plan.Scale, new: Obj | None, olds: list[Obj]) -> tuple[Obj | None, list[Obj]]:
        """Upstream's scaleReplicaSet: size and desired/max-replicas annotations in one update."""
        assert REPLICASETS is not None
        rs = new if new is not None and meta.name(new) == op.name else \
            next(r for r in olds if meta.name(r) == op.name)
        desired = spec_replicas(d)
        old_size = spec_replicas(rs)
        stale = replicas_annotations_stale(rs, desired, desired + max_surge(d))
        if old_size == op.replicas and not (op.refresh and stale):
            return new, olds
        body = copy.deepcopy(rs)
        body["spec"]["replicas"] = op.replicas
        set_replicas_annotations(body, desired, desired + max_surge(d))
        got = await self.client.update(REPLICASETS, meta.namespace(rs), body)
        if old_size != op.replicas:
            way = "up" if op.replicas > old_size else "down"
            self.event(d, f"Scaled {way} replica set {op.name} from {old_size} to {op.replicas}")
        if rs is new:
            return got, olds
        return new, [got if meta.name(r) == op.name else r for r in olds]

    async def cleanup(self, d: Obj, olds: list[Obj]) -> None:
        assert REPLICASETS is not None
        for rs in plan.cleanup_victims(d, olds):
            try:
                await self.client.delete(REPLICASETS, meta.namespace(rs), meta.name(rs), uid=meta.uid(rs))
                log.info("deployment %s: deleted old replica set %s (revision history limit)", meta.key(d),
                         meta.name(rs))
            except StatusError as e:
                if e.code not in (404, 409):
                    raise

    # -- the Deployment ------------------------------------------------------------------------
    async def set_revision(self, d: Obj, revision: str) -> Obj:
        assert DEPLOYMENTS is not None
        if not revision or (d["metadata"].get("annotations") or {}).get(REVISION) == revision:
            return d
        body = {"metadata": {"annotations": {REVISION: revision}, "resourceVersion": meta.resource_version(d)}}
        return await self.client.patch(DEPLOYMENTS, meta.namespace(d), meta.name(d), body)

    async def write_status(self, d: Obj, status: Obj) -> Obj:
        """PUT the status unless it is what the Deployment already has; returns the Deployment."""
        assert DEPLOYMENTS is not None
        if status == (d.get("status") or {}):
            return d
        body = {**d, "status": status}
        return await self.client.update(DEPLOYMENTS, meta.namespace(d), body, "status")

    def event(self, d: Obj, message: str) -> None:
        """A ScalingReplicaSet event on the Deployment; best effort, in the background."""
        if d.get("kind") != "Deployment" or d.get("apiVersion") != "apps/v1":
            d = dict(d, kind="Deployment", apiVersion="apps/v1")
        self.recorder.event(d, "Normal", "ScalingReplicaSet", message)
