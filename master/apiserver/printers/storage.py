"""Printers for persistent volumes and claims (access modes in upstream's RWO/ROX/RWX/RWOP short form).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from master.apiserver.printers.table import AGE_COL, NAME_COL, Obj, column, obj_age, obj_name, register


_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}


def _modes(modes: Any) -> str:
    return ",".join(_MODES.get(m, m) for m in modes or [])


def pv_row(pv: Obj, now: dt.datetime) -> list[Any]:
    spec, status = pv.get("spec") or {}, pv.get("status") or {}
    ref = spec.get("claimRef") or {}
    claim = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""
    return [obj_name(pv), (spec.get("capacity") or {}).get("storage", ""), _modes(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy", ""), status.get("phase", ""), claim,
            spec.get("storageClassName", ""), spec.get("volumeAttributesClassName") or "<unset>",
            status.get("reason", ""), obj_age(pv, now), spec.get("volumeMode") or "<unset>"]


PV_COLUMNS = [
    NAME_COL,
    column("Capacity", "capacity is the description of the persistent volume's resources and capacity."),
    column("Access Modes", "accessModes contains all ways the volume can be mounted."),
    column("Reclaim Policy", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when "
           "released from its claim."),
    column("Status", "phase indicates if a volume is available, bound to a claim, or released by a claim."),
    column("Claim", "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim."),
    column("StorageClass", "storageClassName is the name of StorageClass to which this persistent volume belongs."),
    column("VolumeAttributesClass", "Name of VolumeAttributesClass to which this persistent volume belongs."),
    column("Reason", "reason is a brief CamelCase string that describes any failure and is meant for machine "
           "parsing and tidy display in the CLI."),
    AGE_COL,
    column("VolumeMode", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to "
           "remain in raw block state.", 1),
]


def pvc_row(pvc: Obj, now: dt.datetime) -> list[Any]:
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    bound = bool(spec.get("volumeName"))
    phase = "Terminating" if (pvc.get("metadata") or {}).get("deletionTimestamp") else status.get("phase", "")
    return [obj_name(pvc), phase, spec.get("volumeName", ""),
            (status.get("capacity") or {}).get("storage", "") if bound else "",
            _modes(status.get("accessModes")) if bound else "", spec.get("storageClassName", ""),
            spec.get("volumeAttributesClassName") or "<unset>", obj_age(pvc, now), spec.get("volumeMode") or "<unset>"]


PVC_COLUMNS = [
    NAME_COL,
    column("Status", "phase represents the current phase of PersistentVolumeClaim."),
    column("Volume", "volumeName is the binding reference to the PersistentVolume backing this claim."),
    column("Capacity", "capacity represents the actual resources of the underlying volume."),
    column("Access Modes", "accessModes contains the desired access modes the volume should have."),
    column("StorageClass", "storageClassName is the name of the StorageClass required by the claim."),
    column("VolumeAttributesClass", "volumeAttributesClassName may be used to set the VolumeAttributesClass used "
           "by this claim."),
    AGE_COL,
    column("VolumeMode", "volumeMode defines what type of volume is required by the claim.", 1),
]


register({
    "persistentvolumes": (PV_COLUMNS, pv_row),
    "persistentvolumeclaims": (PVC_COLUMNS, pvc_row),
})
