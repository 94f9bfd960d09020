"""Tables of custom resources: a CRD version's `additionalPrinterColumns`
(name, type, format, description, priority, jsonPath) after NAME, as
upstream's CRD table convertor prints them; AGE alone when none are declared.

A jsonPath is the simple form CRDs use: `.spec.replicas`, `.status.conditions[0].type`
(fields and list indexes).  A `date` column prints as an age, as kubectl does.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from master.apiserver.printers.table import AGE_COL, NAME_COL, Obj, column, obj_age, obj_name, row_object, since

_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


def json_path(obj: Any, path: str) -> Any:
    """The value at `path` in obj, or None when any step is missing."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    pos = 0
    for m in _STEP.finditer(path):
        if m.start() != pos:
            return None
        pos = m.end()
        if m.group(1) is not None:
            obj = obj.get(m.group(1)) if isinstance(obj, dict) else None
        else:
            i = int(m.group(2))
            obj = obj[i] if isinstance(obj, list) and i < len(obj) else None
        if obj is None:
            return None
    return obj if pos == len(path) else None


def _cell(value: Any, typ: str, now: dt.datetime) -> Any:
    if value is None:
        return None
    if typ == "date":
        return since(value, now)
    if typ in ("integer", "number", "boolean"):
        return value
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def custom_table(columns: list[Obj], objects: list[Obj], now: dt.datetime | None = None,
                 include_object: str = "Metadata") -> Obj:
    """A meta.k8s.io/v1 Table of custom resources with their CRD version's printer columns."""
    if include_object not in ("None", "Metadata", "Object"):
        raise ValueError(f"includeObject must be None, Metadata or Object, not {include_object!r}")
    now = now or dt.datetime.now(dt.UTC)
    if columns:
        defs = [NAME_COL] + [column(str(c.get("name", "")), str(c.get("description", "")), int(c.get("priority", 0)),
                                    str(c.get("type", "string")), str(c.get("format", ""))) for c in columns]
    else:
        defs = [NAME_COL, AGE_COL]
    rows = []
    for obj in objects:
        if columns:
            cells = [obj_name(obj)] + [_cell(json_path(obj, str(c.get("jsonPath", ""))), str(c.get("type", "")), now)
                                       for c in columns]
        else:
            cells = [obj_name(obj), obj_age(obj, now)]
        row: Obj = {"cells": cells}
        o = row_object(obj, include_object)
        if o is not None:
            row["object"] = o
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
            "columnDefinitions": [dict(c) for c in defs], "rows": rows}
