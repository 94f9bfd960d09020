"""What the EndpointSlice controller (`slices.py`) writes for one
Service: the pure part of upstream's EndpointSlice reconciler.

`reconcile(service, pods, slices, nodes)` returns a `Plan` of slices to
create, update and delete, per address type and per distinct port set:
existing slices keep the endpoints still wanted (updated in place when a
condition changed), slices left empty are deleted, new endpoints first fill
slices being updated anyway, then the unchanged slice they fit best, then new
slices of at most `max_per_slice` endpoints.  A Service with no endpoints
keeps one empty placeholder slice.  Creates that can reuse a slice marked for
deletion become updates of it.  No I/O; membership rules are in
`endpoints_membership`.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from apimachinery import meta
from master.controllers.endpoints import membership as em

Obj = dict[str, Any]
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "endpointslice-controller.k8s.io"
ZONE = "topology.kubernetes.io/zone"
MAX_PER_SLICE = 100
_RESERVED = (SERVICE_NAME, MANAGED_BY, em.HEADLESS)
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass
class Plan:
    create: list[Obj] = field(default_factory=list)
    update: list[Obj] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)
    missing_nodes: list[str] = field(default_factory=list)  # pods left out: their Node is unknown


# -- pieces ---------------------------------------------------------------------
def address_types(svc: Obj) -> list[str]:
    fams = (svc.get("spec") or {}).get("ipFamilies") or []
    return [str(f) for f in fams] or ["IPv4"]


def endpoint_ports(svc: Obj, pod: Obj) -> list[Obj]:
    """The slice ports for this pod (upstream's getEndpointPorts): name always present ("" when the
    Service port has none), so pods resolving a named port differently land in different slices."""
    out: list[Obj] = []
    if em.headless_without_ports(svc):
        return out
    for sp in (svc.get("spec") or {}).get("ports") or []:
        number = em.find_port(pod, sp)
        if number is None:
            continue
        p: Obj = {"name": sp.get("name", ""), "port": number, "protocol": sp.get("protocol", "TCP")}
        if sp.get("appProtocol"):
            p["appProtocol"] = sp["appProtocol"]
        out.append(p)
    return out


def port_key(ports: list[Obj] | None) -> tuple:
    """Identity of a port set, whatever its order (upstream's PortMapKey)."""
    return tuple(sorted((str(p.get("name", "")), int(p.get("port") or 0), str(p.get("protocol", "TCP")),
                         str(p.get("appProtocol", ""))) for p in ports or []))


def endpoint(svc: Obj, pod: Obj, node: Obj | None, address_type: str) -> Obj | None:
    """The pod as a slice endpoint (upstream's podToEndpoint), None without an address of that type.
    serving is the pod's readiness; ready is serving and not terminating, or publishNotReadyAddresses."""
    ip = em.ip_of_family(pod, address_type)
    if ip is None:
        return None
    serving, ending = em.is_ready(pod), em.terminating(pod)
    ep: Obj = {"addresses": [ip],
               "conditions": {"ready": em.publish_not_ready(svc) or (serving and not ending),
                              "serving": serving, "terminating": ending}}
    host = em.hostname_for(pod, svc)
    if host:
        ep["hostname"] = host
    ep["targetRef"] = em.target_ref(pod)
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        ep["nodeName"] = node_name
    zone = meta.labels(node).get(ZONE) if node else None
    if zone:
        ep["zone"] = zone
    return ep


def endpoint_key(ep: Obj) -> tuple[tuple[str, ...], str, str, str]:
    """Identity of an endpoint within a port set (upstream's hashEndpoint)."""
    ref = ep.get("targetRef") or {}
    return tuple(sorted(ep.get("addresses") or [])), ep.get("hostname", ""), ref.get("namespace", ""), ref.get("name", "")


def same_beyond_key(a: Obj, b: Obj) -> bool:
    """Upstream's EndpointsEqualBeyondHash (targetRef.resourceVersion ignored); hints count too, as
    hints we do not set are removed."""
    def ref(e: Obj) -> Obj:
        return {k: v for k, v in (e.get("targetRef") or {}).items() if k != "resourceVersion"}
    fields = ("nodeName", "zone", "hints")
    conds = ("ready", "serving", "terminating")
    return (all(a.get(f) == b.get(f) for f in fields) and ref(a) == ref(b)
            and all((a.get("conditions") or {}).get(c) == (b.get("conditions") or {}).get(c) for c in conds))


def labels_for(svc: Obj, slice_: Obj | None) -> tuple[dict[str, str], bool]:
    """(the slice's labels: the Service's own minus reserved keys, plus service-name, managed-by and
    the headless marker; whether a label the slice carries is missing from or differs on the Service)."""
    svc_labels = {k: v for k, v in meta.labels(svc).items() if k not in _RESERVED}
    cur = {k: v for k, v in meta.labels(slice_ or {}).items() if k not in _RESERVED}
    changed = any(svc_labels.get(k) != v for k, v in cur.items())
    if not em.ip_set(svc):
        svc_labels[em.HEADLESS] = ""
    svc_labels[SERVICE_NAME] = meta.name(svc)
    svc_labels[MANAGED_BY] = CONTROLLER
    return svc_labels, changed


def owned_by(slice_: Obj, svc: Obj) -> bool:
    return any(r.get("uid") == meta.uid(svc) and r.get("kind") == "Service" and r.get("apiVersion") == "v1"
               for r in slice_.get("metadata", {}).get("ownerReferences") or [])


def new_slice(svc: Obj, ports: list[Obj], address_type: str) -> Obj:
    prefix = f"{meta.name(svc)}-"
    if len(prefix) > 253 or not _NAME.match(prefix[:-1]):
        prefix = "endpointslice-"
    labels, _ = labels_for(svc, None)
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": prefix, "namespace": meta.namespace(svc), "labels": labels,
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": meta.name(svc),
                                              "uid": meta.uid(svc), "controller": True, "blockOwnerDeletion": True}]},
            "addressType": address_type, "endpoints": [], "ports": copy.deepcopy(ports)}


def is_placeholder(slice_: Obj, svc: Obj, address_type: str) -> bool:
    """Upstream's placeholderSliceCompare: same namespace, labels and address type, no ports, no endpoints."""
    want, _ = labels_for(svc, None)
    return (meta.namespace(slice_) == meta.namespace(svc) and meta.labels(slice_) == want
            and slice_.get("addressType") == address_type and not slice_.get("ports") and not slice_.get("endpoints"))


def _fill(slice_: Obj, desired: dict, limit: int) -> None:
    if slice_.get("endpoints") is None:
        slice_["endpoints"] = []
    eps = slice_["endpoints"]
    while desired and len(eps) < limit:
        k = next(iter(desired))
        eps.append(desired.pop(k))


# -- the plan ---------------------------------------------------------------------
def reconcile(svc: Obj, pods: list[Obj], slices: list[Obj], nodes: dict[str, Obj],
              max_per_slice: int = MAX_PER_SLICE) -> Plan:
    """Slices to create, update, delete so `slices` (this Service's managed, not deleting ones) show
    `pods` (those it selects). Returned objects are copies; inputs are not changed."""
    plan = Plan()
    types = address_types(svc)
    by_type: dict[str, list[Obj]] = {}
    for s in slices:
        if s.get("addressType") in types:
            by_type.setdefault(str(s["addressType"]), []).append(s)
        else:
            plan.delete.append(s)
    for at in types:
        _by_address_type(svc, pods, by_type.get(at, []), nodes, at, max_per_slice, plan)
    _reuse_deleted(svc, plan)
    return plan


def _by_address_type(svc: Obj, pods: list[Obj], existing: list[Obj], nodes: dict[str, Obj], at: str,
                     limit: int, plan: Plan) -> None:
    create: list[Obj] = []
    update: list[Obj] = []
    delete: list[Obj] = []
    existing_by_ports: dict[tuple, list[Obj]] = {}
    for s in existing:
        if owned_by(s, svc):
            existing_by_ports.setdefault(port_key(s.get("ports")), []).append(s)
        else:
            delete.append(s)
    desired: dict[tuple, dict[tuple, Obj]] = {}
    ports_of: dict[tuple, list[Obj]] = {}
    for pod in pods:
        if not em.in_endpoints(pod, True):
            continue
        ports = endpoint_ports(svc, pod)
        pk = port_key(ports)
        desired.setdefault(pk, {})
        ports_of.setdefault(pk, ports)
        node_name = (pod.get("spec") or {}).get("nodeName", "")
        node = nodes.get(node_name)
        if node is None and not em.publish_not_ready(svc):
            plan.missing_nodes.append(f"{meta.name(pod)} (node {node_name or '<none>'})")
            continue
        ep = endpoint(svc, pod, node, at)
        if ep is not None:
            desired[pk][endpoint_key(ep)] = ep
    for pk, want in desired.items():
        c, u, d = _by_ports(svc, existing_by_ports.get(pk, []), want, ports_of[pk], at, limit)
        create += c
        update += u
        delete += d
    for pk, olds in existing_by_ports.items():
        if pk not in desired:
            delete += olds
    if len(existing) == len(delete) and not create:
        if len(delete) == 1 and is_placeholder(delete[0], svc, at):
            delete = []
        else:
            create.append(new_slice(svc, [], at))
    plan.create += create
    plan.update += update
    plan.delete += delete


def _by_ports(svc: Obj, existing: list[Obj], want: dict[tuple, Obj], ports: list[Obj], at: str,
              limit: int) -> tuple[list[Obj], list[Obj], list[Obj]]:
    """Upstream's reconcileByPortMapping for one port set."""
    want = dict(want)
    to_update: dict[str, Obj] = {}
    unchanged: dict[str, Obj] = {}
    to_delete: list[Obj] = []
    for s in existing:
        kept: list[Obj] = []
        changed = False
        for ep in s.get("endpoints") or []:
            got = want.pop(endpoint_key(ep), None)
            if got is not None:
                kept.append(got)
                changed = changed or not same_beyond_key(got, ep)
        labels, labels_changed = labels_for(svc, s)
        if changed or len(kept) != len(s.get("endpoints") or []):
            if not kept:
                to_delete.append(s)
            else:
                to_update[meta.name(s)] = copy.deepcopy(s) | {"endpoints": kept}
                to_update[meta.name(s)]["metadata"]["labels"] = labels
        elif labels_changed or meta.labels(s) != labels:
            to_update[meta.name(s)] = copy.deepcopy(s)
            to_update[meta.name(s)]["metadata"]["labels"] = labels
        else:
            unchanged[meta.name(s)] = s
    if want and to_update:
        for s in sorted(to_update.values(), key=lambda s: -len(s["endpoints"] or [])):
            _fill(s, want, limit)
    create: list[Obj] = []
    while want:
        target = None
        if len(want) < limit and unchanged:
            target = _best_fit(list(unchanged.values()), len(want), limit)
        if target is None:
            target = new_slice(svc, ports, at)
        else:
            target = copy.deepcopy(target)
        _fill(target, want, limit)
        name = meta.name(target)
        if name:
            to_update[name] = target
            unchanged.pop(name, None)
        else:
            create.append(target)
    return create, list(to_update.values()), to_delete


def _best_fit(slices: list[Obj], n: int, limit: int) -> Obj | None:
    """Upstream's getSliceToFill: the slice that the n endpoints fill most closely without overflow."""
    best, best_gap = None, limit
    for s in slices:
        gap = limit - (n + len(s.get("endpoints") or []))
        if 0 <= gap < best_gap:
            best, best_gap = s, gap
            if gap == 0:
                break
    return best


def _reuse_deleted(svc: Obj, plan: Plan) -> None:
    """Turn creates into updates of same-typed, owned slices about to be deleted (upstream's finalize)."""
    i = 0
    while i < len(plan.delete) and plan.create:
        old, new = plan.delete[i], plan.create[-1]
        if old.get("addressType") == new["addressType"] and owned_by(old, svc):
            new["metadata"] = copy.deepcopy(old["metadata"]) | {"labels": new["metadata"]["labels"]}
            new["metadata"].pop("generateName", None)
            plan.create.pop()
            plan.update.append(new)
            plan.delete.pop(i)
        else:
            i += 1
