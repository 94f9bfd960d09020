"""Event rules: no status subresource; involvedObject is required."""
from __future__ import annotations

from master.apiserver.resources import Causes, Obj, Strategy, register


@register("events")
class EventStrategy(Strategy):
    has_status = False
    tracks_generation = False

    def validate(self, obj: Obj) -> Causes:
        if not obj.get("involvedObject"):
            return [("involvedObject", "Required value")]
        return []


@register("leases", "coordination.k8s.io")
class LeaseStrategy(Strategy):
    has_status = False
    tracks_generation = False
