"""Server-side Table printing (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`).

kubectl get asks the API server for a `meta.k8s.io/v1` Table and prints its
cells as they come, so the columns and cell formats here follow upstream's
printers (pkg/printers/internalversion). The REST list/get handlers call
`table_for` and fill `metadata.resourceVersion`/`continue` themselves.
To add a resource, add a `(columns, row function)` entry to PRINTERS.
The server always sends the wide (priority 1) columns; kubectl hides them
unless `-o wide`.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
RowFn = Callable[[Obj, dt.datetime], list[Any]]


def column(name: str, description: str, priority: int = 0, type: str = "string", format: str = "") -> Obj:
    return {"name": name, "type": type, "format": format, "description": description, "priority": priority}


NAME_COL = column("Name", "Name must be unique within a namespace. Cannot be updated.", format="name")
AGE_COL = column("Age", "CreationTimestamp is a timestamp representing the server time when this object was "
                 "created.")


# ---- time -------------------------------------------------------------------

def parse_time(value: Any) -> dt.datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value)  # 3.11 reads "Z" and fractions
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def human_duration(d: dt.timedelta) -> str:
    """upstream's duration.HumanDuration: `5s`, `2m3s`, `10m`, `3h4m`, `2d3h`, `45d`, `3y10d`."""
    seconds = int(d.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def since(value: Any, now: dt.datetime) -> str:
    t = parse_time(value)
    return "<unknown>" if t is None else human_duration(now - t)


def _age(obj: Obj, now: dt.datetime) -> str:
    return since((obj.get("metadata") or {}).get("creationTimestamp"), now)


def _name(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("name", "")


# ---- pods -------------------------------------------------------------------

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
    return [_name(pod), f"{ready}/{total}", reason, restarts_cell, _age(pod, now),
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


# ---- nodes ------------------------------------------------------------------

def node_roles(node: Obj) -> list[str]:
    roles = set()
    for k, v in ((node.get("metadata") or {}).get("labels") or {}).items():
        if k.startswith("node-role.kubernetes.io/") and k[len("node-role.kubernetes.io/"):]:
            roles.add(k[len("node-role.kubernetes.io/"):])
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return sorted(roles)


def node_row(node: Obj, now: dt.datetime) -> list[Any]:
    spec, status = node.get("spec") or {}, node.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    state = "Unknown" if ready is None else ("Ready" if ready.get("status") == "True" else "NotReady")
    if spec.get("unschedulable"):
        state += ",SchedulingDisabled"
    info = status.get("nodeInfo") or {}
    addrs = status.get("addresses") or []
    addr = lambda t: next((a.get("address") for a in addrs if a.get("type") == t), None) or "<none>"
    return [_name(node), state, ",".join(node_roles(node)) or "<none>", _age(node, now),
            info.get("kubeletVersion", ""), addr("InternalIP"), addr("ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


NODE_COLUMNS = [
    NAME_COL,
    column("Status", "The status of the node"),
    column("Roles", "The roles of the node"),
    AGE_COL,
    column("Version", "Kubelet Version reported by the node."),
    column("Internal-IP", "List of addresses reachable to the node. Queried from cloud provider, if available.", 1),
    column("External-IP", "List of addresses reachable to the node. Queried from cloud provider, if available.", 1),
    column("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1),
    column("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
    column("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API.", 1),
]


# ---- namespaces, events, everything else -------------------------------------

def namespace_row(ns: Obj, now: dt.datetime) -> list[Any]:
    return [_name(ns), (ns.get("status") or {}).get("phase", ""), _age(ns, now)]


NAMESPACE_COLUMNS = [NAME_COL, column("Status", "The status of the namespace"), AGE_COL]


def event_row(ev: Obj, now: dt.datetime) -> list[Any]:
    first = since(ev.get("firstTimestamp"), now) if ev.get("firstTimestamp") else since(ev.get("eventTime"), now)
    last = since(ev.get("lastTimestamp"), now) if ev.get("lastTimestamp") else first
    count = int(ev.get("count") or 0)
    series = ev.get("series")
    if series:
        last, count = since(series.get("lastObservedTime"), now), int(series.get("count") or 0)
    elif count == 0:
        count = 1
    inv = ev.get("involvedObject") or {}
    kind = (inv.get("kind") or "").lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    src = ev.get("source") or {}
    component = src.get("component") or ev.get("reportingComponent") or ""
    host = src.get("host") or ev.get("reportingInstance") or ""
    source = f"{component}, {host}" if host else component
    return [last, ev.get("type", ""), ev.get("reason", ""), target, inv.get("fieldPath", ""), source,
            (ev.get("message") or "").strip(), first, count, _name(ev)]


EVENT_COLUMNS = [
    column("Last Seen", "The last time this event was seen."),
    column("Type", "Type of this event (Normal, Warning), new types could be added in the future."),
    column("Reason", "This should be a short, machine understandable string that gives the reason for this "
           "event being generated."),
    column("Object", "The object that this event is about."),
    column("Subobject", "The subobject that this event is about (field path).", 1),
    column("Source", "The component reporting this event.", 1),
    column("Message", "A human-readable description of the status of this operation."),
    column("First Seen", "The first time this event was seen.", 1),
    column("Count", "The number of times this event has occurred.", 1, type="integer"),
    column("Name", "Name must be unique within a namespace.", 1, format="name"),
]


def default_row(obj: Obj, now: dt.datetime) -> list[Any]:
    return [_name(obj), _age(obj, now)]


DEFAULT_COLUMNS = [NAME_COL, AGE_COL]

PRINTERS: dict[str, tuple[list[Obj], RowFn]] = {
    "pods": (POD_COLUMNS, pod_row),
    "nodes": (NODE_COLUMNS, node_row),
    "namespaces": (NAMESPACE_COLUMNS, namespace_row),
    "events": (EVENT_COLUMNS, event_row),
}


def row_object(obj: Obj, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def table_for(resource: str, objects: list[Obj], now: dt.datetime | None = None,
              include_object: str = "Metadata") -> Obj:
    """A meta.k8s.io/v1 Table of `objects` (plural resource name, e.g. "pods").

    include_object is the `includeObject` query parameter: None, Metadata or Object.
    """
    if include_object not in ("None", "Metadata", "Object"):
        raise ValueError(f"includeObject must be None, Metadata or Object, not {include_object!r}")
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    columns, row_fn = PRINTERS.get(resource, (DEFAULT_COLUMNS, default_row))
    rows = []
    for obj in objects:
        row: Obj = {"cells": row_fn(obj, now)}
        o = row_object(obj, include_object)
        if o is not None:
            row["object"] = o
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
            "columnDefinitions": [dict(c) for c in columns], "rows": rows}
