"""Printers for workload controllers: deployments, replica sets and (with the
same columns) replication controllers. Neighbours: cells.py, autoscaling.py.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from master.apiserver.printers.cells import format_label_selector, format_labels, int_cell
from master.apiserver.printers.table import AGE_COL, NAME_COL, Obj, column, obj_age, obj_name, register


def _template_cells(spec: Obj) -> list[str]:
    cs = (((spec.get("template") or {}).get("spec") or {}).get("containers")) or []
    return [",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)]


CONTAINERS_COL = column("Containers", "Names of each container in the template.", 1)
IMAGES_COL = column("Images", "Images referenced by each container in the template.", 1)
SELECTOR_COL = column("Selector", "Label selector for pods. Existing ReplicaSets whose pods are selected by this "
                      "will be the ones affected by this deployment.", 1)


def deployment_row(d: Obj, now: dt.datetime) -> list[Any]:
    spec, status = d.get("spec") or {}, d.get("status") or {}
    return [obj_name(d), f"{int_cell(status.get('readyReplicas'))}/{int_cell(spec.get('replicas'))}",
            int_cell(status.get("updatedReplicas")), int_cell(status.get("availableReplicas")), obj_age(d, now),
            *_template_cells(spec), format_label_selector(spec.get("selector"))]


DEPLOYMENT_COLUMNS = [
    NAME_COL,
    column("Ready", "Number of the pod with ready state"),
    column("Up-to-date", "Total number of non-terminated pods targeted by this deployment that have the desired "
           "template spec.", type="integer"),
    column("Available", "Total number of available pods (ready for at least minReadySeconds) targeted by this "
           "deployment.", type="integer"),
    AGE_COL, CONTAINERS_COL, IMAGES_COL, SELECTOR_COL,
]


def replicaset_row(rs: Obj, now: dt.datetime) -> list[Any]:
    spec, status = rs.get("spec") or {}, rs.get("status") or {}
    sel = spec.get("selector")
    selector = format_label_selector(sel) if rs.get("kind") != "ReplicationController" else format_labels(sel)
    return [obj_name(rs), int_cell(spec.get("replicas")), int_cell(status.get("replicas")), int_cell(status.get("readyReplicas")),
            obj_age(rs, now), *_template_cells(spec), selector]


REPLICASET_COLUMNS = [
    NAME_COL,
    column("Desired", "Replicas is the number of desired replicas.", type="integer"),
    column("Current", "Replicas is the most recently observed number of replicas.", type="integer"),
    column("Ready", "The number of ready replicas for this replica set.", type="integer"),
    AGE_COL, CONTAINERS_COL, IMAGES_COL,
    column("Selector", "Selector is a label query over pods that should match the replica count.", 1),
]


register({
    "deployments": (DEPLOYMENT_COLUMNS, deployment_row),
    "replicasets": (REPLICASET_COLUMNS, replicaset_row),
    "replicationcontrollers": (REPLICASET_COLUMNS, replicaset_row),
})
