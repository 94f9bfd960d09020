"""ResourceQuota and LimitRange rules: quantities must parse; a LimitRange's
limits have a known type and default <= max, min <= max. Usage is filled in
by the quota controller (status starts empty)."""
from __future__ import annotations

from fractions import Fraction
from typing import Any

from apimachinery.quantity import QuantityError, parse_quantity
from master.apiserver.resources import Causes, Obj, Strategy, register

LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass", "CrossNamespacePodAffinity")


def quantities(values: Any, path: str, causes: Causes) -> dict[str, Fraction]:
    out: dict[str, Fraction] = {}
    if not isinstance(values, dict):
        if values is not None:
            causes.append((path, "Invalid value: must be a map of quantities"))
        return out
    for k, v in values.items():
        try:
            q = parse_quantity(v)
        except (QuantityError, ValueError, TypeError):
            causes.append((f"{path}[{k}]", f'Invalid value: "{v}": quantities must match the regular expression '
                                           "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
            continue
        if q < 0:
            causes.append((f"{path}[{k}]", f'Invalid value: "{v}": must be greater than or equal to 0'))
        out[k] = q
    return out


@register("resourcequotas")
class ResourceQuotaStrategy(Strategy):
    def prepare_create(self, obj: Obj) -> None:
        obj.setdefault("spec", {})
        obj["status"] = {}

    def validate(self, obj: Obj) -> Causes:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [("spec", "Required value")]
        causes: Causes = []
        quantities(spec.get("hard"), "spec.hard", causes)
        for i, s in enumerate(spec.get("scopes") or []):
            if s not in SCOPES:
                causes.append((f"spec.scopes[{i}]", f'Unsupported value: "{s}"'))
        return causes


@register("limitranges")
class LimitRangeStrategy(Strategy):
    has_status = False

    def validate(self, obj: Obj) -> Causes:
        spec = obj.get("spec")
        if not isinstance(spec, dict) or not spec.get("limits"):
            return [("spec.limits", "Required value")]
        causes: Causes = []
        for i, item in enumerate(spec["limits"]):
            path = f"spec.limits[{i}]"
            t = item.get("type")
            if t not in LIMIT_TYPES:
                causes.append((f"{path}.type", f'Unsupported value: "{t}": supported values: "Container", "PersistentVolumeClaim", "Pod"'))
            got = {f: quantities(item.get(f), f"{path}.{f}", causes)
                   for f in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")}
            if t == "Pod" and (item.get("default") or item.get("defaultRequest")):
                causes.append((f"{path}.default", "Forbidden: may not be specified when `type` is 'Pod'"))
            for r, hi in got["max"].items():
                for f in ("min", "default", "defaultRequest"):
                    v = got[f].get(r)
                    if v is not None and v > hi:
                        causes.append((f"{path}.{f}[{r}]", f"Invalid value: \"{item[f][r]}\": {f} value {item[f][r]} "
                                                           f"must be less than or equal to max value {item['max'][r]}"))
        return causes
