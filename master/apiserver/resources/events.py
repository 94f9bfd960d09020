"""Event rules (core/v1 and events.k8s.io/v1, one stored form: see
`resources.conversion`) and Lease rules: no status, no generation."""
from __future__ import annotations

from master.apiserver.resources import Causes, Obj, Strategy, register


@register("events")
class EventStrategy(Strategy):
    has_status = False
    tracks_generation = False
    gc_policy = "Unsupported"

    def validate(self, obj: Obj) -> Causes:
        if not obj.get("involvedObject"):
            return [("involvedObject", "Required value")]
        return []


@register("events", "events.k8s.io")
class EventsV1Strategy(Strategy):
    """events.k8s.io/v1 requires what the new-style recorders always send."""
    has_status = False
    tracks_generation = False
    gc_policy = "Unsupported"

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        for f in ("eventTime", "reportingController", "reportingInstance", "action", "reason"):
            if not obj.get(f):
                causes.append((f, "Required value"))
        if obj.get("type") not in (None, "Normal", "Warning"):
            causes.append(("type", f'Unsupported value: "{obj.get("type")}": supported values: "Normal", "Warning"'))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        return []  # upstream lets series updates through without the create-time checks


@register("leases", "coordination.k8s.io")
class LeaseStrategy(Strategy):
    has_status = False
    tracks_generation = False

    def validate(self, obj: Obj) -> Causes:
        spec = obj.get("spec") or {}
        causes: Causes = []
        for f in ("leaseDurationSeconds", "leaseTransitions"):
            v = spec.get(f)
            if v is not None and (not isinstance(v, int) or v < 0 or (f == "leaseDurationSeconds" and v == 0)):
                causes.append((f"spec.{f}", f"Invalid value: {v}: must be greater than {'0' if f == 'leaseDurationSeconds' else 'or equal to 0'}"))
        return causes
