"""HorizontalPodAutoscaler rules, for both served versions (autoscaling/v2,
stored, and autoscaling/v1, converted by `resources.conversion`): minReplicas
1 and a CPU target of 80% by default, a scale target, 1 <= min <= max."""
from __future__ import annotations

from master.apiserver.resources import Causes, Obj, Strategy, register
from master.apiserver.resources.conversion import HPA_METRICS

DEFAULT_CPU = 80


def default(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("minReplicas", 1)
    if obj.get("apiVersion") == "autoscaling/v1":
        if HPA_METRICS not in ((obj.get("metadata") or {}).get("annotations") or {}):
            spec.setdefault("targetCPUUtilizationPercentage", DEFAULT_CPU)
    elif not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU}}}]


@register("horizontalpodautoscalers", "autoscaling")
class HPAStrategy(Strategy):
    def prepare_create(self, obj: Obj) -> None:
        default(obj)
        obj["status"] = {"currentReplicas": 0, "desiredReplicas": 0}

    def prepare_update(self, new: Obj, old: Obj) -> None:
        super().prepare_update(new, old)
        default(new)

    def validate(self, obj: Obj) -> Causes:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [("spec", "Required value")]
        causes: Causes = []
        ref = spec.get("scaleTargetRef") or {}
        for f in ("kind", "name"):
            if not ref.get(f):
                causes.append((f"spec.scaleTargetRef.{f}", "Required value"))
        lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas")
        if not isinstance(hi, int) or hi < 1:
            causes.append(("spec.maxReplicas", f"Invalid value: {hi}: must be greater than or equal to 1"))
        if not isinstance(lo, int) or lo < 1:
            causes.append(("spec.minReplicas", f"Invalid value: {lo}: must be greater than or equal to 1"))
        elif isinstance(hi, int) and lo > hi:
            causes.append(("spec.minReplicas", f"Invalid value: {lo}: must be less than or equal to maxReplicas"))
        cpu = spec.get("targetCPUUtilizationPercentage")
        if cpu is not None and (not isinstance(cpu, int) or cpu < 1):
            causes.append(("spec.targetCPUUtilizationPercentage", f"Invalid value: {cpu}: must be greater than or equal to 1"))
        for i, m in enumerate(spec.get("metrics") or []):
            if m.get("type") not in ("Resource", "Pods", "Object", "External", "ContainerResource"):
                causes.append((f"spec.metrics[{i}].type", f'Unsupported value: "{m.get("type")}": supported values: '
                                                         '"ContainerResource", "External", "Object", "Pods", "Resource"'))
        return causes
