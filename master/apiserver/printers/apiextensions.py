"""The CustomResourceDefinition printer (apiextensions.k8s.io): upstream serves
CRDs with the default table convertor, NAME and CREATED AT (RFC 3339).
"""
from __future__ import annotations

from master.apiserver.printers.cells import CREATED_AT_COLUMNS, created_at_row
from master.apiserver.printers.table import register

CRD_COLUMNS = CREATED_AT_COLUMNS

register({
    "customresourcedefinitions": (CRD_COLUMNS, created_at_row),
})
