"""What the replication engine does to pods, through the API server (upstream's
PodControl and the I/O half of its ControllerRefManager): adopt and release,
create in slow-start batches, delete; each write records an Event on the
owner through the component's recorder (`apimachinery.events`: one per
controller name, replicaset-controller and replication-controller), best
effort, as upstream's recorder does.

Neighbours: `controller.py` decides when (and keeps the expectations),
`plan.py` decides what.  Every method is safe to call again
after a failure: adopting or releasing twice, or deleting a pod already gone,
is not an error.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from apimachinery import kinds, logs, meta
from apimachinery.client import Client, StatusError
from apimachinery.events import EventRecorder
from master.controllers.replication import plan
from master.controllers.replication.plan import OwnerKind

log = logging.getLogger("coracle.replication")
Obj = dict[str, Any]
PODS = kinds.lookup("", "v1", "pods")
ERRORS = (StatusError, httpx.HTTPError, OSError)


class PodControl:
    def __init__(self, client: Client):
        assert PODS is not None
        self.client = client
        self.recorders: dict[str, EventRecorder] = {}  # component -> its recorder

    async def adopt(self, kind: OwnerKind, owner: Obj, pods: list[Obj]) -> list[Obj]:
        """Put the owner's controller reference on matching orphans; returns the pods now ours.
        The owner is re-read first (upstream's canAdopt): a stale cache must not adopt for an
        owner that is gone, replaced or being deleted."""
        assert PODS is not None
        if not pods:
            return []
        ns, name = meta.namespace(owner), meta.name(owner)
        fresh = await self.client.get(kind.res, ns, name)
        if meta.uid(fresh) != meta.uid(owner) or fresh.get("metadata", {}).get("deletionTimestamp"):
            raise StatusError(409, {"reason": "Conflict",
                                    "message": f"{kind.res.kind} {ns}/{name} changed or is going; not adopting"})
        ref = plan.owner_reference(owner, kind.res.group_version, kind.res.kind)
        out = []
        for pod in pods:
            try:
                out.append(await self.client.patch(PODS, ns, meta.name(pod), plan.adopt_patch(pod, ref),
                                                   patch_type="strategic"))
                log.info("replication %s/%s: adopted pod %s", ns, name, meta.name(pod))
            except StatusError as e:
                if e.code != 404:
                    raise
        return out

    async def release(self, owner: Obj, pods: list[Obj]) -> None:
        """Take the owner's reference off pods that stopped matching its selector."""
        assert PODS is not None
        ns = meta.namespace(owner)
        for pod in pods:
            try:
                await self.client.patch(PODS, ns, meta.name(pod), plan.release_patch(pod, meta.uid(owner)),
                                        patch_type="strategic")
                log.info("replication %s/%s: released pod %s", ns, meta.name(owner), meta.name(pod))
            except StatusError as e:
                if e.code not in (404, 422):
                    raise

    async def create(self, kind: OwnerKind, owner: Obj, count: int) -> tuple[int, BaseException | None]:
        """Create `count` pods from the template in slow-start batches; a batch with a failure
        ends the run.  Returns how many were made and the first error (None when all were, or
        when the namespace is being deleted: nothing to do then, as upstream)."""
        assert PODS is not None
        ref = plan.owner_reference(owner, kind.res.group_version, kind.res.kind)
        made = 0
        for size in plan.slow_start_batches(count):
            results = await asyncio.gather(*(self.client.create(PODS, meta.namespace(owner),
                                                                plan.pod_from_template(owner, ref))
                                             for _ in range(size)), return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            for r in results:
                if isinstance(r, dict):
                    log.info("created for %s %s", kind.res.kind, meta.key(owner), extra=logs.obj_fields(dict(r, kind="Pod")))
                    self.event(kind, owner, "Normal", "SuccessfulCreate", f"Created pod: {meta.name(r)}")
            made += size - len(failed)
            if failed:
                if all(_namespace_terminating(e) for e in failed):
                    return made, None
                if not isinstance(failed[0], ERRORS):
                    raise failed[0]
                self.event(kind, owner, "Warning", "FailedCreate", f"Error creating: {failed[0]}")
                return made, failed[0]
        return made, None

    async def delete(self, kind: OwnerKind, owner: Obj, victims: list[Obj]) -> list[BaseException | None]:
        """Delete the pods at once; one result per pod (None: deleted or already gone)."""
        assert PODS is not None
        results = await asyncio.gather(*(self.client.delete(PODS, meta.namespace(p), meta.name(p))
                                         for p in victims), return_exceptions=True)
        out: list[BaseException | None] = []
        for pod, r in zip(victims, results):
            if not isinstance(r, BaseException):
                log.info("deleted for %s %s", kind.res.kind, meta.key(owner), extra=logs.obj_fields(dict(pod, kind="Pod")))
                self.event(kind, owner, "Normal", "SuccessfulDelete", f"Deleted pod: {meta.name(pod)}")
                out.append(None)
            elif isinstance(r, StatusError) and r.code == 404:
                out.append(None)
            elif not isinstance(r, ERRORS):
                raise r
            else:
                self.event(kind, owner, "Warning", "FailedDelete", f"Error deleting: {r}")
                out.append(r)
        return out

    def event(self, kind: OwnerKind, owner: Obj, etype: str, reason: str, message: str) -> None:
        """Record an Event on the owner in the background; a lost event is logged, never retried."""
        rec = self.recorders.get(kind.component)
        if rec is None:
            rec = self.recorders[kind.component] = EventRecorder(self.client, kind.component)
        if owner.get("kind") != kind.res.kind or owner.get("apiVersion") != kind.res.group_version:
            owner = dict(owner, kind=kind.res.kind, apiVersion=kind.res.group_version)
        rec.event(owner, etype, reason, message)

    async def close(self) -> None:
        """Let the events in flight go out briefly, then drop the rest."""
        await asyncio.gather(*(r.close() for r in self.recorders.values()))


def _namespace_terminating(e: BaseException) -> bool:
    """A create refused because the namespace is going (upstream's NamespaceTerminatingCause)."""
    if not isinstance(e, StatusError) or e.code != 403:
        return False
    causes = (e.status.get("details") or {}).get("causes") or []
    return any(c.get("reason") == "NamespaceTerminating" for c in causes) or "being terminated" in str(e)
