"""The meta.k8s.io/v1 Table envelope and what every printer shares: the column
helper, NAME/AGE columns, upstream's HumanDuration, PartialObjectMetadata rows, and
PRINTERS, the registry each area module (pods.py, core.py, apps.py, ...) fills with
`register`. Unknown resources get NAME and AGE.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
RowFn = Callable[[Obj, dt.datetime], list[Any]]
Printer = tuple[list[Obj], RowFn]


def column(name: str, description: str, priority: int = 0, type: str = "string", format: str = "") -> Obj:
    return {"name": name, "type": type, "format": format, "description": description, "priority": priority}


NAME_COL = column("Name", "Name must be unique within a namespace. Cannot be updated.", format="name")
AGE_COL = column("Age", "CreationTimestamp is a timestamp representing the server time when this object was "
                 "created.")


def parse_time(value: Any) -> dt.datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value)  # 3.11 reads "Z" and fractions
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def human_duration(d: dt.timedelta) -> str:
    """upstream's duration.HumanDuration: `5s`, `2m3s`, `10m`, `3h4m`, `2d3h`, `45d`, `3y10d`."""
    seconds = int(d.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def since(value: Any, now: dt.datetime) -> str:
    t = parse_time(value)
    return "<unknown>" if t is None else human_duration(now - t)


def obj_age(obj: Obj, now: dt.datetime) -> str:
    return since((obj.get("metadata") or {}).get("creationTimestamp"), now)


def obj_name(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("name", "")


def default_row(obj: Obj, now: dt.datetime) -> list[Any]:
    return [obj_name(obj), obj_age(obj, now)]


DEFAULT_COLUMNS = [NAME_COL, AGE_COL]

PRINTERS: dict[str, Printer] = {}


def register(printers: dict[str, Printer]) -> None:
    """Add an area's `resource -> (columns, row function)` entries; a resource printed twice is a bug."""
    taken = PRINTERS.keys() & printers.keys()
    if taken:
        raise ValueError(f"printers registered twice: {sorted(taken)}")
    PRINTERS.update(printers)


def row_object(obj: Obj, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def table_for(resource: str, objects: list[Obj], now: dt.datetime | None = None,
              include_object: str = "Metadata") -> Obj:
    """A meta.k8s.io/v1 Table of `objects` (plural resource name, e.g. "pods").

    include_object is the `includeObject` query parameter: None, Metadata or Object.
    """
    if include_object not in ("None", "Metadata", "Object"):
        raise ValueError(f"includeObject must be None, Metadata or Object, not {include_object!r}")
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    columns, row_fn = PRINTERS.get(resource, (DEFAULT_COLUMNS, default_row))
    rows = []
    for obj in objects:
        row: Obj = {"cells": row_fn(obj, now)}
        o = row_object(obj, include_object)
        if o is not None:
            row["object"] = o
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
            "columnDefinitions": [dict(c) for c in columns], "rows": rows}
