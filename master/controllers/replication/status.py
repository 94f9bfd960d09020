"""The status of a ReplicationController or ReplicaSet, computed purely from
the owner and the active pods it claims (upstream's calculateStatus), and the
test for whether it changed (the engine writes `/status` only then).

Neighbours: `plan.py` (pod facts), `controller.py` (writes).
"""
from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

from apimachinery import meta
from apimachinery.labels import Selector

from master.controllers.replication.plan import is_available, is_ready

Obj = dict[str, Any]
REPLICA_FAILURE = "ReplicaFailure"
_COUNTS = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas")


def _rfc3339(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def compute_status(owner: Obj, pods: list[Obj], manage_error: str | None, now: datetime) -> Obj:
    """`pods`: the owner's claimed active pods as seen before this sync acted.
    `manage_error`: why creating or deleting failed this sync, if it did: a ReplicaFailure
    condition is added (FailedCreate/FailedDelete) and kept until a sync succeeds."""
    spec = owner.get("spec") or {}
    old = owner.get("status") or {}
    template_labels = Selector.from_map(((spec.get("template") or {}).get("metadata") or {}).get("labels"))
    min_ready = int(spec.get("minReadySeconds") or 0)
    status: Obj = {k: v for k, v in copy.deepcopy(old).items() if k not in _COUNTS}
    status["replicas"] = len(pods)
    status["fullyLabeledReplicas"] = sum(1 for p in pods if template_labels.matches(meta.labels(p)))
    status["readyReplicas"] = sum(1 for p in pods if is_ready(p))
    status["availableReplicas"] = sum(1 for p in pods if is_available(p, min_ready, now))
    status["observedGeneration"] = owner.get("metadata", {}).get("generation", 0)
    conditions = [c for c in old.get("conditions") or []]
    has_failure = any(c.get("type") == REPLICA_FAILURE for c in conditions)
    if manage_error is not None and not has_failure:
        diff = len(pods) - int(spec.get("replicas", 1))
        reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
        cond: Obj = {"type": REPLICA_FAILURE, "status": "True", "lastTransitionTime": _rfc3339(now)}
        if reason:
            cond["reason"] = reason
        cond["message"] = manage_error
        conditions.append(cond)
    elif manage_error is None and has_failure:
        conditions = [c for c in conditions if c.get("type") != REPLICA_FAILURE]
    status.pop("conditions", None)
    if conditions:
        status["conditions"] = conditions
    return wire_form(status)


def wire_form(status: Obj) -> Obj:
    """As upstream serialises it: every count omitted when zero except `replicas`."""
    out = {k: v for k, v in status.items() if not (k in _COUNTS[1:] or k == "observedGeneration") or v}
    out["replicas"] = int(status.get("replicas") or 0)
    return out


def status_changed(owner: Obj, new: Obj) -> bool:
    """Upstream's test: a count, the observed generation or the conditions differ."""
    old = owner.get("status") or {}
    if any(int(old.get(k) or 0) != int(new.get(k) or 0) for k in _COUNTS):
        return True
    if int(old.get("observedGeneration") or 0) != int(owner.get("metadata", {}).get("generation") or 0):
        return True
    return (old.get("conditions") or []) != (new.get("conditions") or [])


def recheck_after(owner: Obj, status: Obj) -> float | None:
    """Seconds until pods that are ready turn available (minReadySeconds), when a later sync
    must look again although no event will come; None when nothing waits."""
    spec = owner.get("spec") or {}
    min_ready, desired = int(spec.get("minReadySeconds") or 0), int(spec.get("replicas", 1))
    if min_ready > 0 and status.get("readyReplicas", 0) == desired and status.get("availableReplicas", 0) != desired:
        return float(min_ready)
    return None
