"""The `scale` subresource as pure functions: an object with `spec.replicas`
(ReplicationController, ReplicaSet, Deployment, any kind whose kinds-table
entry lists a `scale` subresource) seen as an autoscaling/v1 Scale, and a
Scale applied back.  The registry reads and writes; `app` routes.
"""
from __future__ import annotations

import copy
from typing import Any

from apimachinery.labels import Selector, SelectorError, selector_from_label_selector

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
