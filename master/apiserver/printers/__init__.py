"""Server-side Table printing (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`).

kubectl get asks the API server for a `meta.k8s.io/v1` Table and prints its
cells as they come, so the columns and cell formats here follow upstream's
printers (pkg/printers/internalversion). The REST list/get handlers (app.py)
call `table_for` and fill `metadata.resourceVersion`/`continue` themselves.
table.py holds the envelope and the PRINTERS registry, cells.py the shared cell
formats, and one module per API area registers its printers on import; to add a
resource, `register` a `(columns, row function)` entry in its area's module.
The server always sends the wide (priority 1) columns; kubectl hides them
unless `-o wide`.
"""
from __future__ import annotations

from master.apiserver.printers.apiextensions import CRD_COLUMNS
from master.apiserver.printers.apps import (CONTAINERS_COL, DEPLOYMENT_COLUMNS, IMAGES_COL, REPLICASET_COLUMNS,
                                            SELECTOR_COL, deployment_row, replicaset_row)
from master.apiserver.printers.autoscaling import HPA_COLUMNS, hpa_row
from master.apiserver.printers.cells import (CREATED_AT_COL, CREATED_AT_COLUMNS, created_at_row,
                                             format_label_selector, format_labels)
from master.apiserver.printers.coordination import LEASE_COLUMNS, lease_row
from master.apiserver.printers.core import (CONFIGMAP_COLUMNS, EVENT_COLUMNS, NAMESPACE_COLUMNS, NODE_COLUMNS,
                                            RESOURCEQUOTA_COLUMNS, SECRET_COLUMNS, SERVICEACCOUNT_COLUMNS,
                                            configmap_row, event_row, namespace_row, node_roles, node_row,
                                            resourcequota_row, secret_row, serviceaccount_row)
from master.apiserver.printers.networking import (ENDPOINTS_COLUMNS, ENDPOINTSLICE_COLUMNS, INGRESS_COLUMNS,
                                                  SERVICE_COLUMNS, endpoints_row, endpointslice_row, ingress_row,
                                                  service_row)
from master.apiserver.printers.pods import POD_COLUMNS, pod_row
from master.apiserver.printers.rbac import BINDING_COLUMNS, binding_row
from master.apiserver.printers.storage import PV_COLUMNS, PVC_COLUMNS, pv_row, pvc_row
from master.apiserver.printers.table import (AGE_COL, DEFAULT_COLUMNS, NAME_COL, PRINTERS, Obj, RowFn, column,
                                             default_row, human_duration, parse_time, row_object, since, table_for)

__all__ = [
    "AGE_COL", "BINDING_COLUMNS", "CONFIGMAP_COLUMNS", "CONTAINERS_COL", "CREATED_AT_COL", "CREATED_AT_COLUMNS",
    "CRD_COLUMNS",
    "DEFAULT_COLUMNS", "DEPLOYMENT_COLUMNS", "ENDPOINTSLICE_COLUMNS", "ENDPOINTS_COLUMNS", "EVENT_COLUMNS",
    "HPA_COLUMNS", "IMAGES_COL", "INGRESS_COLUMNS", "LEASE_COLUMNS", "NAMESPACE_COLUMNS", "NAME_COL", "NODE_COLUMNS",
    "POD_COLUMNS", "PRINTERS", "PVC_COLUMNS", "PV_COLUMNS", "REPLICASET_COLUMNS", "RESOURCEQUOTA_COLUMNS",
    "SECRET_COLUMNS", "SELECTOR_COL", "SERVICEACCOUNT_COLUMNS", "SERVICE_COLUMNS", "Obj", "RowFn", "binding_row",
    "column", "configmap_row", "created_at_row", "default_row", "deployment_row", "endpoints_row",
    "endpointslice_row", "event_row", "format_label_selector", "format_labels", "hpa_row", "human_duration",
    "ingress_row", "lease_row", "namespace_row", "node_roles", "node_row", "parse_time", "pod_row", "pv_row",
    "pvc_row", "replicaset_row", "resourcequota_row", "row_object", "secret_row", "service_row",
    "serviceaccount_row", "since", "table_for",
]
