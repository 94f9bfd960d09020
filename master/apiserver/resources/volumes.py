"""PersistentVolume and PersistentVolumeClaim rules: upstream's defaults
(reclaim policy Retain, volumeMode Filesystem, phase Pending), required
capacity/requests and access modes, one volume source, and a claim's spec
frozen after creation but for its storage request and its binding."""
from __future__ import annotations

import copy

from master.apiserver.resources import Causes, Obj, Strategy, register
from master.apiserver.resources.policy import quantities

ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
SOURCES = ("hostPath", "local", "nfs", "csi", "iscsi", "fc", "cephfs", "rbd", "glusterfs")
RECLAIM = ("Retain", "Delete", "Recycle")


def _modes(spec: Obj) -> Causes:
    modes = spec.get("accessModes") or []
    if not modes:
        return [("spec.accessModes", "Required value")]
    return [("spec.accessModes", f'Unsupported value: "{m}": supported values: "ReadOnlyMany", "ReadWriteMany", '
                                 '"ReadWriteOnce", "ReadWriteOncePod"') for m in modes if m not in ACCESS_MODES]


@register("persistentvolumes")
class PersistentVolumeStrategy(Strategy):
    tracks_generation = False

    def prepare_create(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
            spec.setdefault("volumeMode", "Filesystem")
        obj["status"] = {"phase": "Pending"}

    def validate(self, obj: Obj) -> Causes:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [("spec", "Required value")]
        causes = _modes(spec)
        cap = quantities(spec.get("capacity"), "spec.capacity", causes)
        if "storage" not in cap and not any(c[0].startswith("spec.capacity[") for c in causes):
            causes.append(("spec.capacity", "Required value"))
        sources = [s for s in SOURCES if spec.get(s)]
        if not sources:
            causes.append(("spec", "Required value: must specify a volume type"))
        elif len(sources) > 1:
            causes.append((f"spec.{sources[1]}", "Forbidden: may not specify more than 1 volume type"))
        if spec.get("hostPath") and not str(spec["hostPath"].get("path", "")).startswith("/"):
            causes.append(("spec.hostPath.path", "Required value: must be an absolute path"))
        if spec.get("persistentVolumeReclaimPolicy") not in RECLAIM:
            causes.append(("spec.persistentVolumeReclaimPolicy", f'Unsupported value: "{spec.get("persistentVolumeReclaimPolicy")}"'))
        return causes


@register("persistentvolumeclaims")
class PersistentVolumeClaimStrategy(Strategy):
    tracks_generation = False

    def prepare_create(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("volumeMode", "Filesystem")
        obj["status"] = {"phase": "Pending"}

    def validate(self, obj: Obj) -> Causes:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [("spec", "Required value")]
        causes = _modes(spec)
        req = quantities((spec.get("resources") or {}).get("requests"), "spec.resources.requests", causes)
        if "storage" not in req and not any(c[0].startswith("spec.resources") for c in causes):
            causes.append(("spec.resources[storage]", "Required value"))
        elif "storage" in req and req["storage"] <= 0:
            causes.append(("spec.resources[storage]", "Invalid value: must be greater than zero"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        causes = self.validate(new)
        a, b = copy.deepcopy(new.get("spec") or {}), copy.deepcopy(old.get("spec") or {})
        for s in (a, b):
            s.get("resources", {}).pop("requests", None)
            s.pop("volumeAttributesClassName", None)
        if not b.get("volumeName"):
            a.pop("volumeName", None)
            b.pop("volumeName", None)
        if a != b:
            causes.append(("spec", "Forbidden: spec is immutable after creation except resources.requests and "
                                   "volumeAttributesClassName for bound claims"))
        return causes
