"""apps/v1 Deployment and ReplicaSet rules: upstream's defaults (replicas 1;
for Deployments strategy RollingUpdate 25%/25%, revisionHistoryLimit 10,
progressDeadlineSeconds 600), a required selector that matches the
template's labels and never changes, and the pod template validated as a pod.
`replicationcontrollers` reuses the template helpers."""
from __future__ import annotations

import re
from typing import Any

from apimachinery.labels import SelectorError, selector_from_label_selector
from master.apiserver.resources import Causes, Obj, Strategy, register
from master.apiserver.resources.pods import PodStrategy

_POD = PodStrategy()
_PERCENT = re.compile(r"^[0-9]+%$")


def default_template(spec: Obj) -> None:
    tmpl = spec.get("template")
    if isinstance(tmpl, dict):
        tmpl.setdefault("metadata", {})
        _POD._default(tmpl)


def validate_template(spec: Obj, selector_labels: Any = None, match: bool = True) -> Causes:
    """The template as a pod (restartPolicy Always), and its labels matching the selector."""
    tmpl = spec.get("template")
    if not isinstance(tmpl, dict):
        return [("spec.template", "Required value")]
    causes = [(f"spec.template.{f}", m) for f, m in _POD.validate(tmpl)]
    rp = (tmpl.get("spec") or {}).get("restartPolicy") if isinstance(tmpl.get("spec"), dict) else None
    if rp and rp != "Always":
        causes.append(("spec.template.spec.restartPolicy", f'Unsupported value: "{rp}": supported values: "Always"'))
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    if match and selector_labels is not None and not selector_labels.matches(labels):
        shown = ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items()))
        causes.append(("spec.template.metadata.labels",
                       f"Invalid value: map[string]string{{{shown}}}: `selector` does not match template `labels`"))
    return causes


def validate_replicas(spec: Obj) -> Causes:
    r = spec.get("replicas")
    if not isinstance(r, int) or isinstance(r, bool) or r < 0:
        return [("spec.replicas", f"Invalid value: {r}: must be greater than or equal to 0")]
    return []


def validate_selector(spec: Obj) -> tuple[Causes, Any]:
    sel = spec.get("selector")
    if not sel:
        return [("spec.selector", "Required value")], None
    try:
        parsed = selector_from_label_selector(sel)
    except SelectorError as e:
        return [("spec.selector", f"Invalid value: {e}")], None
    if not (sel.get("matchLabels") or sel.get("matchExpressions")):
        return [("spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
                                  "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid "
                                  "for deployment")], None
    return [], parsed


def selector_immutable(new: Obj, old: Obj) -> Causes:
    a, b = (new.get("spec") or {}).get("selector"), (old.get("spec") or {}).get("selector")
    if a != b:
        return [("spec.selector", f"Invalid value: {a}: field is immutable")]
    return []


def _int_or_percent(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool) and v >= 0) or (isinstance(v, str) and bool(_PERCENT.match(v)))


class _Workload(Strategy):
    """Shared by ReplicaSet and Deployment: status starts empty, spec defaults on every write."""

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("replicas", 1)
            default_template(spec)

    def prepare_create(self, obj: Obj) -> None:
        self.default(obj)
        obj["status"] = {}

    def prepare_update(self, new: Obj, old: Obj) -> None:
        super().prepare_update(new, old)
        self.default(new)

    def validate(self, obj: Obj) -> Causes:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [("spec", "Required value")]
        causes, sel = validate_selector(spec)
        causes += validate_replicas(spec)
        return causes + validate_template(spec, sel)

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        return self.validate(new) + selector_immutable(new, old)


@register("replicasets", "apps")
class ReplicaSetStrategy(_Workload):
    def prepare_create(self, obj: Obj) -> None:
        super().prepare_create(obj)
        obj["status"] = {"replicas": 0}  # upstream's ReplicaSetStatus.replicas has no omitempty; typed clients need it


@register("deployments", "apps")
class DeploymentStrategy(_Workload):
    def default(self, obj: Obj) -> None:
        super().default(obj)
        spec = obj["spec"]
        if not isinstance(spec, dict):
            return
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            ru = strategy.setdefault("rollingUpdate", {})
            ru.setdefault("maxUnavailable", "25%")
            ru.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)

    def validate(self, obj: Obj) -> Causes:
        causes = super().validate(obj)
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return causes
        strategy = spec.get("strategy") or {}
        stype = strategy.get("type")
        if stype not in ("RollingUpdate", "Recreate"):
            causes.append(("spec.strategy.type", f'Unsupported value: "{stype}": supported values: "Recreate", "RollingUpdate"'))
        elif stype == "Recreate" and strategy.get("rollingUpdate"):
            causes.append(("spec.strategy.rollingUpdate", "Forbidden: may not be specified when strategy `type` is 'Recreate'"))
        elif stype == "RollingUpdate":
            ru = strategy.get("rollingUpdate") or {}
            for f in ("maxUnavailable", "maxSurge"):
                if not _int_or_percent(ru.get(f)):
                    causes.append((f"spec.strategy.rollingUpdate.{f}", f"Invalid value: {ru.get(f)!r}: must be an integer or percentage (e.g '5%')"))
            if ru.get("maxUnavailable") in (0, "0%") and ru.get("maxSurge") in (0, "0%"):
                causes.append(("spec.strategy.rollingUpdate.maxUnavailable", "Invalid value: 0: may not be 0 when `maxSurge` is 0"))
        for f in ("revisionHistoryLimit", "progressDeadlineSeconds", "minReadySeconds"):
            v = spec.get(f)
            if v is not None and (not isinstance(v, int) or v < 0):
                causes.append((f"spec.{f}", f"Invalid value: {v}: must be greater than or equal to 0"))
        return causes
