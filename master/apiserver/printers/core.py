"""Printers for the core/v1 odds and ends: nodes, namespaces, events (core and
events.k8s.io), configmaps, secrets, service accounts, resource quotas, limit ranges.
Pods are pods.py, services/endpoints networking.py, PV/PVC storage.py, RCs apps.py.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from master.apiserver.printers.cells import CREATED_AT_COLUMNS, created_at_row
from master.apiserver.printers.table import AGE_COL, NAME_COL, Obj, column, obj_age, obj_name, register, since


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
    return [obj_name(node), state, ",".join(node_roles(node)) or "<none>", obj_age(node, now),
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


def namespace_row(ns: Obj, now: dt.datetime) -> list[Any]:
    return [obj_name(ns), (ns.get("status") or {}).get("phase", ""), obj_age(ns, now)]


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
            (ev.get("message") or "").strip(), first, count, obj_name(ev)]


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


def configmap_row(cm: Obj, now: dt.datetime) -> list[Any]:
    return [obj_name(cm), len(cm.get("data") or {}) + len(cm.get("binaryData") or {}), obj_age(cm, now)]


CONFIGMAP_COLUMNS = [NAME_COL, column("Data", "Number of data in the config map", type="integer"), AGE_COL]


def secret_row(sec: Obj, now: dt.datetime) -> list[Any]:
    return [obj_name(sec), sec.get("type", ""), len(sec.get("data") or {}), obj_age(sec, now)]


SECRET_COLUMNS = [NAME_COL, column("Type", "The type of the secret"),
                  column("Data", "The number of data in the secret", type="integer"), AGE_COL]


def serviceaccount_row(sa: Obj, now: dt.datetime) -> list[Any]:
    return [obj_name(sa), len(sa.get("secrets") or []), obj_age(sa, now)]


SERVICEACCOUNT_COLUMNS = [NAME_COL, column("Secrets", "Secrets is a list of the secrets in the same namespace "
                                           "that pods running using this ServiceAccount are allowed to use.",
                                           type="integer"), AGE_COL]


def resourcequota_row(q: Obj, now: dt.datetime) -> list[Any]:
    status = q.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    req: list[str] = []
    lim: list[str] = []
    for k in sorted(hard):
        cell = f"{k}: {used.get(k, '0')}/{hard[k]}"
        (lim if k.startswith("limits") else req).append(cell)
    return [obj_name(q), obj_age(q, now), ", ".join(req), ", ".join(lim)]


RESOURCEQUOTA_COLUMNS = [NAME_COL, AGE_COL,
                         column("Request", "Request represents a minimum amount of cpu/memory that a container may consume."),
                         column("Limit", "Limits control the maximum amount of cpu/memory that a container may use "
                                "independent of contention on the node.")]


def _any_event_row(ev: Obj, now: dt.datetime) -> list[Any]:
    if ev.get("apiVersion") == "events.k8s.io/v1":
        from master.apiserver.resources.conversion import event_events_to_core
        ev = event_events_to_core(ev)
    return event_row(ev, now)


register({
    "nodes": (NODE_COLUMNS, node_row),
    "namespaces": (NAMESPACE_COLUMNS, namespace_row),
    "events": (EVENT_COLUMNS, _any_event_row),
    "configmaps": (CONFIGMAP_COLUMNS, configmap_row),
    "secrets": (SECRET_COLUMNS, secret_row),
    "serviceaccounts": (SERVICEACCOUNT_COLUMNS, serviceaccount_row),
    "resourcequotas": (RESOURCEQUOTA_COLUMNS, resourcequota_row),
    "limitranges": (CREATED_AT_COLUMNS, created_at_row),
})
