"""Conversion between the versions of a resource served in more than one form
(autoscaling/v1 and v2 HPAs; core/v1 and events.k8s.io/v1 Events).

The store holds one form, the kinds table's storage version
(`ResourceInfo.stored_as`); `master.apiserver.storage` converts to it on
every write and the registry and watch cache convert back to the version a
client asked for. Conversions are pure and return a new dict; fields the
older form cannot say are kept in annotations, as upstream does, so a round
trip through the older version loses nothing.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Callable

from apimachinery.kinds import ResourceInfo, for_object

Obj = dict[str, Any]
HPA_METRICS = "autoscaling.alpha.kubernetes.io/metrics"
HPA_CURRENT = "autoscaling.alpha.kubernetes.io/current-metrics"
HPA_CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"
HPA_BEHAVIOR = "autoscaling.alpha.kubernetes.io/behavior"


def _is_cpu(m: Obj) -> bool:
    r = m.get("resource") or {}
    return m.get("type") == "Resource" and r.get("name") == "cpu" and (r.get("target") or {}).get("type") == "Utilization"


def hpa_v2_to_v1(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v1"
    spec, status = out.get("spec") or {}, out.get("status")
    ann = dict((out.setdefault("metadata", {}).get("annotations") or {}))
    metrics = spec.pop("metrics", None) or []
    other = [m for m in metrics if not _is_cpu(m)]
    for m in metrics:
        if _is_cpu(m):
            spec["targetCPUUtilizationPercentage"] = m["resource"]["target"].get("averageUtilization")
    if other:
        ann[HPA_METRICS] = json.dumps(other, separators=(",", ":"))
    behavior = spec.pop("behavior", None)
    if behavior:
        ann[HPA_BEHAVIOR] = json.dumps(behavior, separators=(",", ":"))
    if isinstance(status, dict):
        current = status.pop("currentMetrics", None) or []
        for m in current:
            r = m.get("resource") or {}
            if m.get("type") == "Resource" and r.get("name") == "cpu" and "averageUtilization" in (r.get("current") or {}):
                status["currentCPUUtilizationPercentage"] = r["current"]["averageUtilization"]
        rest = [m for m in current if not (m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu")]
        if rest:
            ann[HPA_CURRENT] = json.dumps(rest, separators=(",", ":"))
        conditions = status.pop("conditions", None)
        if conditions:
            ann[HPA_CONDITIONS] = json.dumps(conditions, separators=(",", ":"))
    if ann:
        out["metadata"]["annotations"] = ann
    return out


def _pop_json(ann: Obj, key: str) -> Any:
    raw = ann.pop(key, None)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return None


def hpa_v1_to_v2(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v2"
    md = out.setdefault("metadata", {})
    ann = dict(md.get("annotations") or {})
    spec, status = out.get("spec") or {}, out.get("status")
    metrics: list[Obj] = []
    cpu = spec.pop("targetCPUUtilizationPercentage", None)
    if cpu is not None:
        metrics.append({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                                    "averageUtilization": cpu}}})
    metrics += _pop_json(ann, HPA_METRICS) or []
    if metrics:
        spec["metrics"] = metrics
    behavior = _pop_json(ann, HPA_BEHAVIOR)
    if behavior:
        spec["behavior"] = behavior
    current = _pop_json(ann, HPA_CURRENT) or []
    conditions = _pop_json(ann, HPA_CONDITIONS)
    if isinstance(status, dict):
        cur = status.pop("currentCPUUtilizationPercentage", None)
        if cur is not None:
            current.insert(0, {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cur}}})
        if current:
            status["currentMetrics"] = current
        if conditions:
            status["conditions"] = conditions
    if ann:
        md["annotations"] = ann
    else:
        md.pop("annotations", None)
    return out


# core/v1 Event field <-> events.k8s.io/v1 Event field
_EVENT_RENAMES = (("involvedObject", "regarding"), ("message", "note"), ("reportingComponent", "reportingController"),
                  ("source", "deprecatedSource"), ("firstTimestamp", "deprecatedFirstTimestamp"),
                  ("lastTimestamp", "deprecatedLastTimestamp"), ("count", "deprecatedCount"))


def _rename(obj: Obj, api_version: str, pairs: tuple[tuple[str, str], ...]) -> Obj:
    out = copy.deepcopy(obj)
    out["apiVersion"] = api_version
    for a, b in pairs:
        if a in out:
            out[b] = out.pop(a)
    return out


def event_core_to_events(obj: Obj) -> Obj:
    return _rename(obj, "events.k8s.io/v1", _EVENT_RENAMES)


def event_events_to_core(obj: Obj) -> Obj:
    return _rename(obj, "v1", tuple((b, a) for a, b in _EVENT_RENAMES))


_CONVERTERS: dict[tuple[str, str, str], Callable[[Obj], Obj]] = {
    ("HorizontalPodAutoscaler", "autoscaling/v2", "autoscaling/v1"): hpa_v2_to_v1,
    ("HorizontalPodAutoscaler", "autoscaling/v1", "autoscaling/v2"): hpa_v1_to_v2,
    ("Event", "v1", "events.k8s.io/v1"): event_core_to_events,
    ("Event", "events.k8s.io/v1", "v1"): event_events_to_core,
}


def convert(obj: Obj, res: ResourceInfo) -> Obj:
    """obj in the form `res` serves; obj itself when it already is (or no conversion is known)."""
    have = obj.get("apiVersion", "")
    if not have or have == res.group_version:
        return obj
    if res.custom is not None:  # a CRD's versions: conversion strategy None, only apiVersion differs
        return {**obj, "apiVersion": res.group_version}
    fn = _CONVERTERS.get((obj.get("kind", res.kind), have, res.group_version))
    return fn(obj) if fn else obj


def to_storage(obj: Obj) -> Obj:
    """obj in the form the store holds for its resource."""
    res = for_object(obj.get("apiVersion", ""), obj.get("kind", ""))
    if res is None or res.stored_as is None:
        return obj
    group, version = res.stored_as
    fn = _CONVERTERS.get((res.kind, res.group_version, f"{group}/{version}" if group else version))
    return fn(obj) if fn else obj
