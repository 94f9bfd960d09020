"""The pods printer: READY, STATUS (upstream's reason ladder: init containers,
sidecars, waiting/terminated reasons, Terminating), RESTARTS with the last restart's age.
Registers into table.PRINTERS; neighbours: table.py (envelope, ages), core.py.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from master.apiserver.printers.table import (AGE_COL, NAME_COL, Obj, column, human_duration, obj_age,
                                             obj_name, parse_time, register)


def _later(a: dt.datetime | None, b: Any) -> dt.datetime | None:
    t = parse_time(b)
    return t if t is not None and (a is None or t > a) else a


def _terminated_reason(term: Obj, prefix: str) -> str:
    if term.get("reason"):
        return prefix + term["reason"]
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    if not term.get("exitCode"):
        return prefix + "Completed"  # upstream shows ExitCode:0; the kubelet always sets Completed
    return f"{prefix}ExitCode:{term['exitCode']}"


def _has_condition(status: Obj, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in status.get("conditions") or [])


def pod_row(pod: Obj, now: dt.datetime) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    sidecar = lambda name: (init_specs.get(name) or {}).get("restartPolicy") == "Always"
    total = len(spec.get("containers") or []) + sum(1 for n in init_specs if sidecar(n))
    ready = restarts = sidecar_restarts = 0
    last_restart: dt.datetime | None = None
    last_sidecar_restart: dt.datetime | None = None
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for c in status.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        state = cs.get("state") or {}
        restarts += int(cs.get("restartCount") or 0)
        finished = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        last_restart = _later(last_restart, finished)
        if sidecar(cs.get("name")):
            sidecar_restarts += int(cs.get("restartCount") or 0)
            last_sidecar_restart = _later(last_sidecar_restart, finished)
        term, waiting = state.get("terminated"), state.get("waiting")
        if term is not None and not term.get("exitCode"):
            continue
        if sidecar(cs.get("name")) and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        if term is not None:
            reason = _terminated_reason(term, "Init:")
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _has_condition(status, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            state = cs.get("state") or {}
            restarts += int(cs.get("restartCount") or 0)
            last_restart = _later(last_restart, ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif term is not None:
                reason = _terminated_reason(term, "")
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_condition(status, "Ready") else "NotReady"

    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration(now - last_restart)} ago)"
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        true = sum(1 for g in gates if _has_condition(status, g.get("conditionType")))
        gates_cell = f"{true}/{len(gates)}"
    return [obj_name(pod), f"{ready}/{total}", reason, restarts_cell, obj_age(pod, now),
            status.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", gates_cell]


POD_COLUMNS = [
    NAME_COL,
    column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    column("Status", "The aggregate status of the containers in this pod."),
    column("Restarts", "The number of times the containers in this pod have been restarted and when the last "
           "container in this pod has restarted."),
    AGE_COL,
    column("IP", "IP address allocated to the pod. Routable at least within the cluster.", 1),
    column("Node", "NodeName is a request to schedule this pod onto a specific node.", 1),
    column("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the node.", 1),
    column("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness.", 1),
]


register({
    "pods": (POD_COLUMNS, pod_row),
})
