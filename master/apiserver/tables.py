"""Server-side Table printing as the handlers ask for it: whether a request wants
a Table (`Accept: ...;as=Table;...`), and the Table of some objects of a
resource, from the kind's printer (`printers`) or, for a custom resource, its
CRD version's additionalPrinterColumns (`customresources.printer`).
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from apimachinery.kinds import ResourceInfo
from master.apiserver import errors
from master.apiserver.customresources.printer import custom_table
from master.apiserver.printers import table_for

TABLE_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def table(res: ResourceInfo, objs: list[Any], include_object: str = "Metadata") -> dict[str, Any]:
    """The Table; a 400 for an includeObject other than None, Metadata, Object (or empty: Metadata)."""
    include_object = include_object or "Metadata"
    if include_object not in ("None", "Metadata", "Object"):
        raise errors.bad_request(f'includeObject: Invalid value: "{include_object}": must be \'Metadata\', '
                                 f"'Object', 'None', or empty")
    if res.custom is not None:  # the CRD version's additionalPrinterColumns
        return custom_table(res.custom.columns, objs, include_object=include_object)  # type: ignore[attr-defined]
    return table_for(res.plural, objs, include_object=include_object)
