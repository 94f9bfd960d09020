"""Pure computation of a pod's API status from its spec and the agent's
record, and the restart decision with back-off.  No I/O: unit-tested alone.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from apimachinery import meta
from nodeagent.podrecord import ContainerRecord, ContainerState, PodRecord

Obj = dict[str, Any]
BACKOFF_CAP = 300.0
BACKOFF_RESET_AFTER = 600.0


def _ts(ns: int | float) -> str:
    return dt.datetime.fromtimestamp(ns, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def backoff_delay(step: int, base: float) -> float:
    """Delay before restart number step+1: none for the first, then base doubling to the cap."""
    if step <= 0:
        return 0.0
    return min(base * (2 ** (step - 1)), BACKOFF_CAP)


def next_backoff_step(step: int, ran_seconds: float) -> int:
    """A container that ran cleanly for 10 minutes starts its back-off over."""
    return 1 if ran_seconds >= BACKOFF_RESET_AFTER else step + 1


def terminated_state(c: ContainerRecord) -> Obj:
    t: Obj = {"exitCode": c.exit_code if c.exit_code is not None else 0,
              "reason": c.reason or ("Completed" if c.exit_code == 0 else "Error"),
              "startedAt": c.started_at or None, "finishedAt": c.finished_at or None}
    if c.runtime_id:
        t["containerID"] = f"runc://{c.runtime_id}"
    if c.message:
        t["message"] = c.message
    return t


def container_status(spec_c: Obj, c: ContainerRecord | None, now: float, policy: str = "Always") -> Obj:
    """One containerStatus; an exited container shows CrashLoopBackOff only while a restart is pending."""
    out: Obj = {"name": spec_c["name"], "image": spec_c.get("image", ""), "imageID": "",
                "ready": False, "restartCount": 0, "started": False, "state": {}}
    if c is None:
        out["state"] = {"waiting": {"reason": "ContainerCreating"}}
        return out
    out["restartCount"] = c.attempt
    out["imageID"] = c.image_id
    if c.runtime_id:
        out["containerID"] = f"runc://{c.runtime_id}"
    if c.last_terminated:
        out["lastState"] = {"terminated": c.last_terminated}
    else:
        out["lastState"] = {}
    if c.state is ContainerState.RUNNING:
        out["state"] = {"running": {"startedAt": c.started_at}}
        out["ready"] = True
        out["started"] = True
    elif c.state is ContainerState.EXITED:
        if c.backoff_until > now and should_restart(policy, c.exit_code or 0):
            out["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                        "message": f"back-off {int(round(c.backoff_until - now))}s restarting failed "
                                                   f"container={c.name} pod={{}}"}}
            out["lastState"] = {"terminated": terminated_state(c)}
        else:
            out["state"] = {"terminated": terminated_state(c)}
    else:
        w: Obj = {"reason": c.reason or "ContainerCreating"}
        if c.message:
            w["message"] = c.message
        out["state"] = {"waiting": w}
    return out


def phase(pod: Obj, rec: PodRecord | None) -> str:
    spec = pod.get("spec", {})
    policy = spec.get("restartPolicy", "Always")
    containers = spec.get("containers") or []
    if rec is None or not rec.containers:
        return "Pending"
    states = [rec.containers.get(c["name"]) for c in containers]
    if any(s is None or (s.state is ContainerState.WAITING and s.attempt == 0 and not s.started_at) for s in states):
        return "Pending"  # as kubelet: a container that never started keeps the pod Pending
    if any(s.state is ContainerState.RUNNING for s in states):  # type: ignore[union-attr]
        return "Running"
    exited = [s for s in states if s and s.state is ContainerState.EXITED]
    if len(exited) == len(states):
        if all(not should_restart(policy, s.exit_code or 0) for s in exited):
            return "Succeeded" if all((s.exit_code or 0) == 0 for s in exited) else "Failed"
    return "Running"


def pod_status(pod: Obj, rec: PodRecord | None, host_ip: str, now: float, old: Obj | None = None) -> Obj:
    """The full status the agent writes; transition times kept from the old status when unchanged."""
    old = old or pod.get("status") or {}
    name = meta.name(pod)
    spec_cs = pod.get("spec", {}).get("containers") or []
    policy = pod.get("spec", {}).get("restartPolicy", "Always")
    statuses = [container_status(c, rec.containers.get(c["name"]) if rec else None, now, policy) for c in spec_cs]
    for s in statuses:
        w = s["state"].get("waiting")
        if w and "message" in w:
            w["message"] = w["message"].replace("pod={}", f"pod={name}_{meta.namespace(pod)}({meta.uid(pod)})")
    ph = phase(pod, rec)
    unready = [s["name"] for s in statuses if not s["ready"]]
    conds = list(old.get("conditions") or [])
    stamp = _ts(now)
    sandbox_ready = bool(rec and rec.ip and not rec.finished)  # a finished pod's sandbox is torn down
    conds = meta.set_condition(conds, "PodReadyToStartContainers", "True" if sandbox_ready else "False", now=stamp)
    conds = meta.set_condition(conds, "Initialized", "True", now=stamp)
    if ph in ("Succeeded", "Failed"):
        ready_reason = "PodCompleted"
    else:
        ready_reason = "ContainersNotReady" if unready else ""
    msg = f"containers with unready status: [{' '.join(unready)}]" if unready and ready_reason == "ContainersNotReady" else ""
    conds = meta.set_condition(conds, "ContainersReady", "False" if unready else "True", ready_reason, msg, now=stamp)
    conds = meta.set_condition(conds, "Ready", "False" if unready else "True", ready_reason, msg, now=stamp)
    conds = meta.set_condition(conds, "PodScheduled", "True", now=stamp)
    order = {"PodReadyToStartContainers": 0, "Initialized": 1, "Ready": 2, "ContainersReady": 3, "PodScheduled": 4}
    conds.sort(key=lambda c: order.get(c["type"], 9))
    status: Obj = {"phase": ph, "conditions": conds, "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
                   "containerStatuses": statuses, "qosClass": old.get("qosClass") or pod.get("status", {}).get("qosClass", "BestEffort"),
                   "startTime": (rec.started_at if rec and rec.started_at else old.get("startTime"))}
    if rec and rec.ip:
        status["podIP"] = rec.ip
        status["podIPs"] = [{"ip": rec.ip}]
    return status


def same_status(a: Obj, b: Obj) -> bool:
    """Equal but for condition probe times: the status manager skips writes that change nothing."""
    return a == b
