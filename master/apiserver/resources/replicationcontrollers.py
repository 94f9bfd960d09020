"""ReplicationController rules (core/v1): replicas 1, the selector defaults to
the template's labels and the object's labels to the template's too (as
upstream), the template validated as a pod and matching the selector."""
from __future__ import annotations

from apimachinery.labels import Selector, parse_selector
from master.apiserver.resources import Causes, Obj, Strategy, register
from master.apiserver.resources.apps import default_template, validate_replicas, validate_template


def _default(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    default_template(spec)
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if labels and not spec.get("selector"):
        spec["selector"] = dict(labels)
    md = obj.setdefault("metadata", {})
    if labels and not md.get("labels"):
        md["labels"] = dict(labels)


def selector_of(spec: Obj) -> Selector:
    sel = spec.get("selector") or {}
    return parse_selector(",".join(f"{k}={v}" for k, v in sorted(sel.items())))


@register("replicationcontrollers")
class ReplicationControllerStrategy(Strategy):
    gc_policy = "Orphan"  # upstream keeps OrphanDependents for core/v1 RCs "for backwards compatibility"

    def prepare_create(self, obj: Obj) -> None:
        _default(obj)
        obj["status"] = {"replicas": 0}

    def prepare_update(self, new: Obj, old: Obj) -> None:
        super().prepare_update(new, old)
        _default(new)

    def validate(self, obj: Obj) -> Causes:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [("spec", "Required value")]
        causes = validate_replicas(spec)
        if not spec.get("selector"):
            causes.append(("spec.selector", "Required value"))
            return causes + validate_template(spec, None)
        try:
            sel = selector_of(spec)
        except ValueError as e:
            return causes + [("spec.selector", f"Invalid value: {e}")]
        return causes + validate_template(spec, sel)
