"""A Deployment's status and conditions, pure, as upstream's sync.go and
progress.go: counts summed over its ReplicaSets, Available
(MinimumReplicasAvailable / MinimumReplicasUnavailable), Progressing
(NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated,
NewReplicaSetAvailable, ProgressDeadlineExceeded, DeploymentPaused,
DeploymentResumed), ReplicaFailure copied from a ReplicaSet, and when a
rollout that shows no progress must be looked at again.

Times are RFC 3339 strings at second precision; `now` is always passed in.
Neighbours: model.py; controller.py writes what these return.
"""
from __future__ import annotations

import copy
import datetime as _dt

from collections.abc import Sequence
from apimachinery import meta
from master.controllers.deployment.model import (
    Obj, has_progress_deadline, max_unavailable, spec_replicas, status_int, sum_spec, sum_status)

PROGRESSING, AVAILABLE, REPLICA_FAILURE = "Progressing", "Available", "ReplicaFailure"
NEW_RS_CREATED, FOUND_NEW_RS, RS_UPDATED = "NewReplicaSetCreated", "FoundNewReplicaSet", "ReplicaSetUpdated"
NEW_RS_AVAILABLE, TIMED_OUT, FAILED_RS_CREATE = "NewReplicaSetAvailable", "ProgressDeadlineExceeded", "ReplicaSetCreateError"
PAUSED, RESUMED = "DeploymentPaused", "DeploymentResumed"
MIN_AVAILABLE, MIN_UNAVAILABLE = "MinimumReplicasAvailable", "MinimumReplicasUnavailable"


def stamp(now: _dt.datetime) -> str:
    return now.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(ctype: str, status: str, reason: str, message: str, now: _dt.datetime) -> Obj:
    t = stamp(now)
    return {"type": ctype, "status": status, "lastUpdateTime": t, "lastTransitionTime": t,
            "reason": reason, "message": message}


def get_condition(status: Obj, ctype: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == ctype), None)


def set_condition(status: Obj, cond: Obj) -> None:
    """Upstream's SetDeploymentCondition: same status and reason changes nothing; same status
    keeps lastTransitionTime; the condition goes last."""
    cur = get_condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] and cur.get("reason") == cond["reason"]:
        return
    if cur is not None and cur.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": cur.get("lastTransitionTime")}
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: Obj, ctype: str) -> None:
    left = [c for c in status.get("conditions") or [] if c.get("type") != ctype]
    if left:
        status["conditions"] = left
    else:
        status.pop("conditions", None)


def calculate(all_rss: Sequence[Obj | None], new: Obj | None, d: Obj, now: _dt.datetime) -> Obj:
    """Counts over every ReplicaSet, updatedReplicas from the new one, Available set. Zero counts are
    left out, as upstream's omitempty fields."""
    old = d.get("status") or {}
    available = sum_status(all_rss, "availableReplicas")
    values = {"observedGeneration": int(d.get("metadata", {}).get("generation") or 0),
              "replicas": sum_status(all_rss, "replicas"),
              "updatedReplicas": status_int(new, "replicas"),
              "readyReplicas": sum_status(all_rss, "readyReplicas"),
              "availableReplicas": available,
              "unavailableReplicas": max(sum_spec(all_rss) - available, 0)}
    status: Obj = {k: v for k, v in values.items() if v}
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = copy.deepcopy(old["conditions"])
    if available >= spec_replicas(d) - max_unavailable(d):
        set_condition(status, condition(AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability.", now))
    else:
        set_condition(status, condition(AVAILABLE, "False", MIN_UNAVAILABLE,
                                        "Deployment does not have minimum availability.", now))
    return status


def complete(d: Obj, status: Obj) -> bool:
    n = spec_replicas(d)
    return (status.get("updatedReplicas", 0) == n and status.get("replicas", 0) == n
            and status.get("availableReplicas", 0) == n
            and status.get("observedGeneration", 0) >= int(d.get("metadata", {}).get("generation") or 0))


def progressing(d: Obj, new_status: Obj) -> bool:
    old = d.get("status") or {}
    old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_old = new_status.get("replicas", 0) - new_status.get("updatedReplicas", 0)
    return (new_status.get("updatedReplicas", 0) > old.get("updatedReplicas", 0) or new_old < old_old
            or new_status.get("readyReplicas", 0) > old.get("readyReplicas", 0)
            or new_status.get("availableReplicas", 0) > old.get("availableReplicas", 0))


def timed_out(d: Obj, status: Obj, now: _dt.datetime) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = meta.parse_time(cond.get("lastUpdateTime"))
    return since is not None and since + _dt.timedelta(seconds=d["spec"]["progressDeadlineSeconds"]) < now


def rollout_status(all_rss: Sequence[Obj | None], new: Obj | None, d: Obj, now: _dt.datetime) -> Obj:
    """The status after a rollout step (upstream's syncRolloutStatus), Progressing included."""
    status = calculate(all_rss, new, d, now)
    if not has_progress_deadline(d):
        remove_condition(status, PROGRESSING)
    cur = get_condition(d.get("status") or {}, PROGRESSING)
    done = (status.get("replicas", 0) == status.get("updatedReplicas", 0) and cur is not None
            and cur.get("reason") == NEW_RS_AVAILABLE)
    if has_progress_deadline(d) and not done:
        if complete(d, status):
            msg = f'ReplicaSet "{meta.name(new)}" has successfully progressed.' if new is not None else ""
            set_condition(status, condition(PROGRESSING, "True", NEW_RS_AVAILABLE, msg, now))
        elif progressing(d, status):
            msg = (f'ReplicaSet "{meta.name(new)}" is progressing.' if new is not None
                   else f'Deployment "{meta.name(d)}" is progressing.')
            cond = condition(PROGRESSING, "True", RS_UPDATED, msg, now)
            if cur is not None:  # same reason again: lastUpdateTime moves, the transition stays
                if cur.get("status") == "True":
                    cond["lastTransitionTime"] = cur.get("lastTransitionTime")
                remove_condition(status, PROGRESSING)
            set_condition(status, cond)
        elif timed_out(d, status, now):
            msg = (f'ReplicaSet "{meta.name(new)}" has timed out progressing.' if new is not None
                   else f'Deployment "{meta.name(d)}" has timed out progressing.')
            set_condition(status, condition(PROGRESSING, "False", TIMED_OUT, msg, now))
    failure = replica_failure(all_rss, new, now)
    if failure is not None:
        set_condition(status, failure)
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def replica_failure(all_rss: Sequence[Obj | None], new: Obj | None, now: _dt.datetime) -> Obj | None:
    """The first ReplicaFailure=True of the new ReplicaSet, else of any other, as a Deployment condition."""
    for rs in [new, *all_rss]:
        for c in ((rs or {}).get("status") or {}).get("conditions") or []:
            if c.get("type") == REPLICA_FAILURE and c.get("status") == "True":
                t = c.get("lastTransitionTime") or stamp(now)
                return {"type": REPLICA_FAILURE, "status": "True", "lastUpdateTime": t, "lastTransitionTime": t,
                        "reason": c.get("reason", ""), "message": c.get("message", "")}
    return None


def recheck_after(d: Obj, new_status: Obj, now: _dt.datetime) -> float | None:
    """Seconds until a rollout without progress must be checked against its deadline; None when
    there is nothing to wait for (no deadline, complete or already timed out)."""
    cur = get_condition(d.get("status") or {}, PROGRESSING)
    if not has_progress_deadline(d) or cur is None:
        return None
    if complete(d, new_status) or cur.get("reason") == TIMED_OUT:
        return None
    since = meta.parse_time(cur.get("lastUpdateTime"))
    if since is None:
        return None
    left = (since + _dt.timedelta(seconds=d["spec"]["progressDeadlineSeconds"]) - now).total_seconds()
    return max(left, 0.0) + 0.5 if left >= 1 else 1.0


def paused_condition(d: Obj, now: _dt.datetime) -> Obj | None:
    """The status with Progressing=Unknown DeploymentPaused/DeploymentResumed when the pause flag
    and the condition disagree; None when nothing changes."""
    if not has_progress_deadline(d):
        return None
    status = copy.deepcopy(d.get("status") or {})
    cur = get_condition(status, PROGRESSING)
    paused = bool(d["spec"].get("paused"))
    if cur is not None and cur.get("reason") == TIMED_OUT:
        return None
    if paused and (cur is None or cur.get("reason") != PAUSED):
        set_condition(status, condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused", now))
        return status
    if not paused and cur is not None and cur.get("reason") == PAUSED:
        set_condition(status, condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", now))
        return status
    return None


def progress_on_new_rs(d: Obj, new_name: str, created: bool, now: _dt.datetime) -> Obj | None:
    """After creating (or first finding) the new ReplicaSet: Progressing=True NewReplicaSetCreated
    (FoundNewReplicaSet only when no Progressing condition exists yet). None when unchanged."""
    if not has_progress_deadline(d):
        return None
    status = copy.deepcopy(d.get("status") or {})
    if created:
        set_condition(status, condition(PROGRESSING, "True", NEW_RS_CREATED,
                                        f'Created new replica set "{new_name}"', now))
        return status
    if get_condition(status, PROGRESSING) is None:
        set_condition(status, condition(PROGRESSING, "True", FOUND_NEW_RS, f'Found new replica set "{new_name}"', now))
        return status
    return None
