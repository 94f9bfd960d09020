"""Cell formats more than one API area prints: `a,b,c + 2 more...` lists, label
maps and selectors, integer cells, and the NAME + CREATED AT printer (limit ranges, roles).
Neighbours: table.py (names, ages, the envelope); the area modules use these.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from master.apiserver.printers.table import NAME_COL, Obj, column, obj_name, parse_time


def more(items: list[str], max_shown: int = 3, sep: str = ",") -> str:
    """upstream's "a,b,c + 2 more..." lists."""
    if len(items) > max_shown:
        return sep.join(items[:max_shown]) + f" + {len(items) - max_shown} more..."
    return sep.join(items)


def format_labels(labels: Any) -> str:
    """labels.FormatLabels: sorted `k=v` pairs, or <none>."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def format_label_selector(sel: Any) -> str:
    """metav1.FormatLabelSelector."""
    if not isinstance(sel, dict):
        return "<none>"
    reqs = [(k, f"{k}={v}") for k, v in (sel.get("matchLabels") or {}).items()]
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e.get("key", ""), e.get("operator", ""), ",".join(sorted(e.get("values") or []))
        text = {"In": f"{k} in ({vals})", "NotIn": f"{k} notin ({vals})", "Exists": k, "DoesNotExist": f"!{k}"}.get(op, k)
        reqs.append((k, text))
    return ",".join(t for _, t in sorted(reqs)) or "<none>"


def _created_at(obj: Obj, now: dt.datetime) -> str:
    t = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else "<unknown>"


def int_cell(v: Any) -> int:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0


CREATED_AT_COL = column("Created At", "CreationTimestamp is a timestamp representing the server time when this "
                        "object was created.", type="date")


def created_at_row(obj: Obj, now: dt.datetime) -> list[Any]:
    return [obj_name(obj), _created_at(obj, now)]


CREATED_AT_COLUMNS = [NAME_COL, CREATED_AT_COL]
