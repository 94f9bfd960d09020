"""Pure decisions of the replication engine (ReplicationControllers and
ReplicaSets): which pods an owner claims, adopts and releases (upstream's
ControllerRefManager), how many pods to create or which to delete (with
upstream's deletion ranking), the slow-start batches, and the pod built from
the template.  No I/O: `controller.py` carries the decisions out,
`status.py` computes the status.
"""
from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apimachinery import meta
from apimachinery.kinds import ResourceInfo
from apimachinery.labels import Selector, selector_from_label_selector
from apimachinery.apigroups import ALL, APIGroups

Obj = dict[str, Any]
BURST_REPLICAS = 500  # upstream's burstReplicas: creations or deletions per sync
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}  # any other phase ranks as Pending


# -- the two kinds of owner -------------------------------------------------------
@dataclass(frozen=True)
class OwnerKind:
    tag: str  # the work-queue key's prefix: rc or rs
    res: ResourceInfo
    component: str  # the Events' source, as upstream's controllers name themselves

    def selector(self, owner: Obj) -> Selector:
        """Raises SelectorError for a selector the API server should not have let in."""
        spec = owner.get("spec") or {}
        if self.tag == "rc":  # a map; the API server defaults it to the template's labels
            return Selector.from_map(spec.get("selector") or
                                     ((spec.get("template") or {}).get("metadata") or {}).get("labels"))
        return selector_from_label_selector(spec.get("selector"))

    def controls(self, ref: Obj) -> bool:
        """Upstream matches a controller reference by kind; the uid then names the object."""
        return ref.get("kind") == self.res.kind


def served_kinds(apis: APIGroups = ALL) -> list[OwnerKind]:
    """The owner kinds the API server serves (`--runtime-config` may switch either off)."""
    out = []
    rc, rs = apis.lookup("", "v1", "replicationcontrollers"), apis.lookup("apps", "v1", "replicasets")
    if rc is not None:
        out.append(OwnerKind("rc", rc, "replication-controller"))
    if rs is not None:
        out.append(OwnerKind("rs", rs, "replicaset-controller"))
    return out


# -- pod facts ------------------------------------------------------------------
def is_active(pod: Obj) -> bool:
    """Neither finished nor being deleted (upstream's IsPodActive)."""
    return pod.get("status", {}).get("phase") not in ("Succeeded", "Failed") and \
        not pod.get("metadata", {}).get("deletionTimestamp")


def ready_condition(pod: Obj) -> Obj | None:
    for c in pod.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return None


def is_ready(pod: Obj) -> bool:
    c = ready_condition(pod)
    return c is not None and c.get("status") == "True"


def ready_since(pod: Obj) -> datetime | None:
    c = ready_condition(pod)
    return meta.parse_time(c.get("lastTransitionTime")) if c else None


def is_available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    """Ready, and for longer than minReadySeconds (strictly, as upstream)."""
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    return since is not None and since.timestamp() + min_ready_seconds < now.timestamp()


def controller_ref(obj: Obj) -> Obj | None:
    for r in obj.get("metadata", {}).get("ownerReferences") or []:
        if r.get("controller"):
            return r
    return None


def owner_reference(owner: Obj, api_version: str, kind: str) -> Obj:
    """The controller reference the engine puts on what it creates or adopts."""
    return {"apiVersion": api_version, "kind": kind, "name": meta.name(owner), "uid": meta.uid(owner),
            "controller": True, "blockOwnerDeletion": True}


# -- claiming (upstream's ControllerRefManager.ClaimPods) -----------------------
@dataclass
class Claim:
    owned: list[Obj] = field(default_factory=list)  # already ours and matching
    adopt: list[Obj] = field(default_factory=list)  # orphans that match: ours once patched
    release: list[Obj] = field(default_factory=list)  # ours but no longer matching: to let go


def claim(owner: Obj, selector: Selector, pods: list[Obj]) -> Claim:
    """Sort a namespace's pods for one owner.  A pod controlled by another owner is left alone;
    an owner being deleted neither adopts nor releases; a pod being deleted is never adopted."""
    out = Claim()
    owner_uid, dying = meta.uid(owner), bool(owner.get("metadata", {}).get("deletionTimestamp"))
    for pod in pods:
        ref = controller_ref(pod)
        matches = selector.matches(meta.labels(pod))
        if ref is not None:
            if ref.get("uid") != owner_uid:
                continue
            if matches:
                out.owned.append(pod)
            elif not dying:
                out.release.append(pod)
            continue
        if dying or not matches or pod.get("metadata", {}).get("deletionTimestamp"):
            continue
        if meta.namespace(pod) != meta.namespace(owner):
            continue
        out.adopt.append(pod)
    return out


def adopt_patch(pod: Obj, ref: Obj) -> Obj:
    """Strategic merge patch adding the controller reference (ownerReferences merge on uid)."""
    return {"metadata": {"ownerReferences": [ref], "uid": meta.uid(pod)}}


def release_patch(pod: Obj, owner_uid: str) -> Obj:
    return {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}], "uid": meta.uid(pod)}}


# -- how many ----------------------------------------------------------------------
def replica_diff(desired: int, active: int, burst: int = BURST_REPLICAS) -> int:
    """Positive: pods to create; negative: pods to delete; at most `burst` either way."""
    diff = desired - active
    return max(-burst, min(burst, diff))


def slow_start_batches(count: int, initial: int = 1) -> list[int]:
    """Batch sizes for `count` creations: 1, 2, 4, ... (upstream's slowStartBatch), so a template
    that always fails costs one call, not hundreds.  A batch with an error stops the rest."""
    out, size, left = [], min(count, initial), count
    while size > 0:
        out.append(size)
        left -= size
        size = min(2 * size, left)
    return out


# -- which to delete -------------------------------------------------------------------
def _restarts(pod: Obj) -> tuple[int, int]:
    """(most restarts of a container, of a sidecar: an init container with restartPolicy Always)."""
    status = pod.get("status", {})
    regular = max((int(s.get("restartCount") or 0) for s in status.get("containerStatuses") or []), default=0)
    sidecars = {c.get("name") for c in pod.get("spec", {}).get("initContainers") or []
                if c.get("restartPolicy") == "Always"}
    sidecar = max((int(s.get("restartCount") or 0) for s in status.get("initContainerStatuses") or []
                   if s.get("name") in sidecars), default=0)
    return regular, sidecar


def _deletion_cost(pod: Obj) -> int:
    raw = (pod.get("metadata", {}).get("annotations") or {}).get(DELETION_COST)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def _log_rank(t: datetime | None, now: datetime) -> int:
    """log2 of the age in nanoseconds, -1 when none (upstream's LogarithmicScaleDown buckets)."""
    if t is None:
        return -1
    age_ns = (now - t).total_seconds() * 1e9
    return int(math.log2(age_ns)) if age_ns > 0 else -1


def _deletes_first(a: Obj, b: Obj, rank_a: int, rank_b: int, now: datetime) -> bool | None:
    """True when `a` goes before `b`, False when after, None when they tie (upstream's
    ActivePodsWithRanks.Less, with PodDeletionCost and LogarithmicScaleDown on, as in 1.32)."""
    na, nb = a.get("spec", {}).get("nodeName") or "", b.get("spec", {}).get("nodeName") or ""
    if na != nb and (not na or not nb):  # 1. unscheduled before scheduled
        return not na
    pa = _PHASE_ORDER.get(a.get("status", {}).get("phase", ""), 0)
    pb = _PHASE_ORDER.get(b.get("status", {}).get("phase", ""), 0)
    if pa != pb:  # 2. Pending < Unknown < Running
        return pa < pb
    if is_ready(a) != is_ready(b):  # 3. not ready before ready
        return not is_ready(a)
    ca, cb = _deletion_cost(a), _deletion_cost(b)
    if ca != cb:  # 4. lower pod-deletion-cost first
        return ca < cb
    if rank_a != rank_b:  # 5. doubled up on a node before alone
        return rank_a > rank_b
    if is_ready(a) and is_ready(b):  # 6. ready more recently first, in log2 buckets
        ta, tb = ready_since(a), ready_since(b)
        if ta != tb:
            diff = _log_rank(ta, now) - _log_rank(tb, now)
            return meta.uid(a) < meta.uid(b) if diff == 0 else diff < 0
    ra, rb = _restarts(a), _restarts(b)
    if ra != rb:  # 7. more restarts first (containers, then sidecars)
        return ra > rb
    ta, tb = meta.parse_time(a.get("metadata", {}).get("creationTimestamp")), \
        meta.parse_time(b.get("metadata", {}).get("creationTimestamp"))
    if ta != tb:  # 8. newer first, in log2 buckets
        diff = _log_rank(ta, now) - _log_rank(tb, now)
        return meta.uid(a) < meta.uid(b) if diff == 0 else diff < 0
    return None


def pods_to_delete(pods: list[Obj], related: list[Obj], count: int, now: datetime) -> list[Obj]:
    """The `count` pods to delete from an owner's active pods.  `related` are the active pods
    of the owner and its siblings (ReplicaSets of one Deployment): a pod sharing its node with
    more of them is deleted first, spreading what stays."""
    if count >= len(pods):
        return list(pods)
    on_node: dict[str, int] = {}
    for p in related:
        if is_active(p):
            node = p.get("spec", {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    ranked = [(p, on_node.get(p.get("spec", {}).get("nodeName") or "", 0)) for p in pods]

    def cmp(x: tuple[Obj, int], y: tuple[Obj, int]) -> int:
        first = _deletes_first(x[0], y[0], x[1], y[1], now)
        if first is None:
            return 0
        return -1 if first else 1
    ranked.sort(key=functools.cmp_to_key(cmp))
    return [p for p, _ in ranked[:count]]


# -- what to create ----------------------------------------------------------------------
def pod_prefix(owner_name: str) -> str:
    """generateName for an owner's pods: `<owner>-` (the API server appends 5 random characters)."""
    return f"{owner_name}-"


def pod_from_template(owner: Obj, ref: Obj) -> Obj:
    template = owner.get("spec", {}).get("template") or {}
    tmd = template.get("metadata") or {}
    md: Obj = {"generateName": pod_prefix(meta.name(owner)), "namespace": meta.namespace(owner),
               "ownerReferences": [ref]}
    for k in ("labels", "annotations", "finalizers"):
        if tmd.get(k):
            md[k] = copy.deepcopy(tmd[k])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": copy.deepcopy(template.get("spec") or {})}
