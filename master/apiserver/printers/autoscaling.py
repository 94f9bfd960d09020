"""The horizontal pod autoscaler printer (autoscaling/v1 objects are read through
the v2 conversion); TARGETS follows upstream's formatHPAMetrics.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from master.apiserver.printers.cells import int_cell, more
from master.apiserver.printers.table import AGE_COL, NAME_COL, Obj, column, obj_age, obj_name, register


def _hpa_metric(m: Obj, current: Obj | None) -> str:
    t = m.get("type")
    key = {"Resource": "resource", "ContainerResource": "containerResource", "Pods": "pods", "Object": "object",
           "External": "external"}.get(t or "", "")
    spec = m.get(key) or {}
    cur = ((current or {}).get(key) or {}).get("current") or {}
    target = spec.get("target") or {}
    name = spec.get("name") or (spec.get("metric") or {}).get("name", "")
    if target.get("averageUtilization") is not None or (t in ("Resource", "ContainerResource") and target.get("type") == "Utilization"):
        now_cell = f"{cur['averageUtilization']}%" if cur.get("averageUtilization") is not None else "<unknown>"
        tgt = f"{target['averageUtilization']}%" if target.get("averageUtilization") is not None else "<auto>"
    else:
        val = target.get("averageValue") if target.get("averageValue") is not None else target.get("value")
        now_val = cur.get("averageValue") if cur.get("averageValue") is not None else cur.get("value")
        now_cell, tgt = (str(now_val) if now_val is not None else "<unknown>"), str(val)
    if t in ("Resource", "ContainerResource"):
        return f"{name}: {now_cell}/{tgt}"
    if t == "External" and target.get("averageValue") is not None:
        tgt += " (avg)"
    return f"{now_cell}/{tgt}"


def hpa_row(hpa: Obj, now: dt.datetime) -> list[Any]:
    if hpa.get("apiVersion") == "autoscaling/v1":
        from master.apiserver.resources.conversion import hpa_v1_to_v2
        hpa = hpa_v1_to_v2(hpa)
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    currents = status.get("currentMetrics") or []
    metrics = [_hpa_metric(m, currents[i] if i < len(currents) else None) for i, m in enumerate(spec.get("metrics") or [])]
    targets = more(metrics, 2, ", ") or "<none>"
    mn = spec.get("minReplicas")
    return [obj_name(hpa), f"{ref.get('kind', '')}/{ref.get('name', '')}", targets,
            str(mn) if mn is not None else "<unset>", int_cell(spec.get("maxReplicas")),
            int_cell(status.get("currentReplicas")), obj_age(hpa, now)]


HPA_COLUMNS = [
    NAME_COL,
    column("Reference", "Reference to the resource to be scaled"),
    column("Targets", "Current and target utilization of the resource"),
    column("MinPods", "Lower limit for the number of pods that can be set by the autoscaler, default 1."),
    column("MaxPods", "Upper limit for the number of pods that can be set by the autoscaler.", type="integer"),
    column("Replicas", "Current number of replicas of pods managed by this autoscaler.", type="integer"),
    AGE_COL,
]


register({
    "horizontalpodautoscalers": (HPA_COLUMNS, hpa_row),
})
