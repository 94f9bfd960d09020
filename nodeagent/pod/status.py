"""Pure computation of a pod's API status from its spec and the agent's
record, and the restart decision (the back-off itself: nodeagent.pod.backoff).  No I/O: unit-tested alone.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from apimachinery import meta
from nodeagent.pod.spec import qos_class
from nodeagent.pod.record import ContainerRecord, ContainerState, PodRecord
from nodeagent.pod.probes import ProbeView

Obj = dict[str, Any]


def _ts(ns: int | float) -> str:
    return dt.datetime.fromtimestamp(ns, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def init_policy(policy: str) -> str:
    """Init containers are retried on failure unless the pod's policy is Never."""
    return "Never" if policy == "Never" else "OnFailure"


def init_done(c: ContainerRecord | None) -> bool:
    return c is not None and c.state is ContainerState.EXITED and c.exit_code == 0


def init_failed(pod: Obj, rec: PodRecord | None) -> bool:
    """An init container failed for good (restartPolicy Never): the pod is Failed."""
    if pod.get("spec", {}).get("restartPolicy", "Always") != "Never" or rec is None:
        return False
    return any((s := rec.containers.get(c["name"])) is not None and s.state is ContainerState.EXITED
               and s.exit_code != 0 for c in pod["spec"].get("initContainers") or [])


def pending_inits(pod: Obj, rec: PodRecord | None) -> list[str]:
    """Names of init containers that have not completed, in order."""
    return [c["name"] for c in pod.get("spec", {}).get("initContainers") or []
            if not init_done(rec.containers.get(c["name"]) if rec else None)]


def terminated_state(c: ContainerRecord) -> Obj:
    t: Obj = {"exitCode": c.exit_code if c.exit_code is not None else 0,
              "reason": c.reason or ("Completed" if c.exit_code == 0 else "Error"),
              "startedAt": c.started_at or None, "finishedAt": c.finished_at or None}
    if c.runtime_id:
        t["containerID"] = f"runc://{c.runtime_id}"
    if c.message:
        t["message"] = c.message
    return t


def container_status(spec_c: Obj, c: ContainerRecord | None, now: float, policy: str = "Always",
                     view: ProbeView | None = None, init: bool = False, waiting: str = "ContainerCreating") -> Obj:
    """One containerStatus; an exited container shows CrashLoopBackOff only while a restart is pending.
    `view` is what the probes say of a running container; an init container is ready once it completed."""
    view = view or ProbeView()
    out: Obj = {"name": spec_c["name"], "image": spec_c.get("image", ""), "imageID": "",
                "ready": False, "restartCount": 0, "started": False, "state": {}}
    if c is None:
        out["state"] = {"waiting": {"reason": waiting}}
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
        out["ready"] = view.ready and not init
        out["started"] = view.started
    elif c.state is ContainerState.EXITED:
        out["ready"] = init and c.exit_code == 0
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
    if init_failed(pod, rec):
        return "Failed"
    if rec is None or not rec.containers or pending_inits(pod, rec):
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


def pod_status(pod: Obj, rec: PodRecord | None, host_ip: str, now: float, old: Obj | None = None,
               probes: Mapping[str, ProbeView] | None = None) -> Obj:
    """The full status the agent writes; transition times kept from the old status when unchanged.
    `probes` maps a running container's name to what its probes say (absent: no probes, ready)."""
    old = old or pod.get("status") or {}
    probes = probes or {}
    name = meta.name(pod)
    spec_cs = pod.get("spec", {}).get("containers") or []
    inits = pod.get("spec", {}).get("initContainers") or []
    policy = pod.get("spec", {}).get("restartPolicy", "Always")
    pending = pending_inits(pod, rec)
    waiting = "PodInitializing" if pending else "ContainerCreating"
    statuses = [container_status(c, rec.containers.get(c["name"]) if rec else None, now, policy,
                                 probes.get(c["name"]), waiting=waiting) for c in spec_cs]
    init_statuses = [container_status(c, rec.containers.get(c["name"]) if rec else None, now, init_policy(policy),
                                      init=True, waiting="PodInitializing" if i else "ContainerCreating")
                     for i, c in enumerate(inits)]
    for s in statuses + init_statuses:
        w = s["state"].get("waiting")
        if w and "message" in w:
            w["message"] = w["message"].replace("pod={}", f"pod={name}_{meta.namespace(pod)}({meta.uid(pod)})")
    ph = phase(pod, rec)
    unready = [s["name"] for s in statuses if not s["ready"]]
    conds = list(old.get("conditions") or [])
    stamp = _ts(now)
    sandbox_ready = bool(rec and rec.ip and not rec.finished)  # a finished pod's sandbox is torn down
    conds = meta.set_condition(conds, "PodReadyToStartContainers", "True" if sandbox_ready else "False", now=stamp)
    if pending:
        conds = meta.set_condition(conds, "Initialized", "False", "ContainersNotInitialized",
                                   f"containers with incomplete status: [{' '.join(pending)}]", now=stamp)
    else:
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
                   "containerStatuses": statuses, "qosClass": old.get("qosClass") or qos_class(pod),
                   "startTime": (rec.started_at if rec and rec.started_at else old.get("startTime"))}
    if inits:
        status["initContainerStatuses"] = init_statuses
    if rec and rec.ip:
        status["podIP"] = rec.ip
        status["podIPs"] = [{"ip": rec.ip}]
    return status


def same_status(a: Obj, b: Obj) -> bool:
    """Equal but for condition probe times: the status manager skips writes that change nothing."""
    return a == b
