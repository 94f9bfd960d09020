"""The `scale` subresource as pure functions: an object with `spec.replicas`
(ReplicationController, ReplicaSet, Deployment, any kind whose kinds-table
entry lists a `scale` subresource) seen as an autoscaling/v1 Scale, and a
Scale applied back, and a server-side apply of a Scale carried over to the
object (upstream's ScaleHandler: managedFields entries that own
`spec.replicas` are seen on the Scale, and the Scale's owners of
`spec.replicas` go back to the object's entries, subresource "scale").  The
`scalerest` reads and writes through the registry; `subresources` routes.
"""
from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from apimachinery.labels import Selector, SelectorError, selector_from_label_selector
from master.apiserver import ssa
from master.apiserver.schemas.structure import for_kind

Obj = dict[str, Any]


def selector_string(obj: Obj) -> str:
    """status.selector of the Scale: the label selector as a string (map selectors for RC)."""
    sel = obj.get("spec", {}).get("selector")
    if not sel:
        return ""
    try:
        if "matchLabels" in sel or "matchExpressions" in sel:
            return str(selector_from_label_selector(sel))
        return str(Selector.from_map(sel))
    except (SelectorError, AttributeError):
        return ""


def to_scale(obj: Obj) -> Obj:
    md = obj.get("metadata", {})
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in md},
            "spec": {"replicas": int(obj.get("spec", {}).get("replicas", 1) or 0)},
            "status": {"replicas": int(obj.get("status", {}).get("replicas", 0) or 0),
                       "selector": selector_string(obj)}}


def replicas_of(scale: Any) -> int | None:
    """spec.replicas of a Scale body, or None when it is missing or not a non-negative integer."""
    if not isinstance(scale, dict):
        return None
    n = (scale.get("spec") or {}).get("replicas")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        return None
    return n


def apply_scale(obj: Obj, replicas: int) -> Obj:
    """A copy of obj with spec.replicas set (what an update of the main resource receives)."""
    new = copy.deepcopy(obj)
    new.setdefault("spec", {})["replicas"] = replicas
    return new


REPLICAS = ("f:spec", "f:replicas")  # the same path on the object and on its Scale
SCALE_VERSION = "autoscaling/v1"


def apply_to_scale(obj: Obj, applied: Obj, manager: str, now: str, force: bool = False) -> Obj:
    """A copy of obj after `manager` applied the Scale `applied` (kind Scale, spec.replicas): its replicas
    and managedFields. Raises ssa.ApplyConflict when another manager owns a different spec.replicas
    (unless force), ValueError for a Scale without a valid spec.replicas."""
    if replicas_of(applied) is None:
        raise ValueError("spec.replicas must be a non-negative integer")
    parent = ssa.read_managers(obj)
    live = to_scale(obj)
    ssa.write_managers(live, [replace(m, api_version=SCALE_VERSION, fields=m.fields & {REPLICAS})
                              for m in parent if REPLICAS in m.fields])
    cfg = {**applied, "apiVersion": applied.get("apiVersion") or SCALE_VERSION, "kind": "Scale"}
    cfg["metadata"] = {k: v for k, v in (applied.get("metadata") or {}).items() if k in ("name", "namespace")}
    applied_scale = ssa.apply(live, cfg, manager, for_kind("autoscaling", "v1", "Scale"), now, force, "scale")
    owners = {(m.manager, m.operation, m.subresource): m for m in ssa.read_managers(applied_scale)
              if REPLICAS in m.fields}
    out = []
    for m in parent:
        again = owners.pop((m.manager, m.operation, m.subresource), None)
        fields = m.fields - {REPLICAS} | ({REPLICAS} if again is not None else frozenset())
        out.append(replace(m, fields=fields, time=again.time if again is not None else m.time))
    version = str(obj.get("apiVersion", ""))
    out += [replace(m, api_version=version, fields=frozenset({REPLICAS})) for m in owners.values()]
    new = apply_scale(obj, int(applied_scale["spec"]["replicas"]))
    ssa.write_managers(new, [m for m in out if m.fields])
    return new
