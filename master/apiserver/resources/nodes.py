"""Node rules: cluster-scoped; podCIDR may be set once and never changed."""
from __future__ import annotations

from master.apiserver.resources import Causes, Obj, Strategy, register


@register("nodes")
class NodeStrategy(Strategy):
    tracks_generation = False

    def prepare_create(self, obj: Obj) -> None:
        obj.setdefault("spec", {})
        obj.setdefault("status", {})

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        old_cidr = old.get("spec", {}).get("podCIDR")
        new_cidr = new.get("spec", {}).get("podCIDR")
        if old_cidr and new_cidr != old_cidr:
            return [("spec.podCIDR", "Forbidden: node updates may not change podCIDR except from \"\" to valid")]
        return []
