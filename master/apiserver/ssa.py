"""Server-side apply and field ownership (`metadata.managedFields`), pure.

The registry (`registry.py`) calls `record_update` for every create, update
and non-apply patch, and `apply` for `application/apply-patch+yaml`; nothing
here touches the store.  Field paths, field sets and their FieldsV1 encoding
live in `fieldset.py`.  Conflicts are raised as `ApplyConflict`, which the
registry turns into upstream's 409 Status.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, replace
from typing import Any

from master.apiserver.fieldset import (
    MEMBER, MISSING, FieldSet, InvalidManagedFields, Path, decode_fields, encode_fields, field_set, field_values,
    is_key_field, list_mode, path_string, remove_path, value_at,
)

__all__ = ["APPLY", "UPDATE", "LAST_APPLIED", "Manager", "Conflict", "ApplyConflict", "InvalidManagedFields",
           "FieldSet", "Path", "field_set", "field_values", "value_at", "remove_path", "path_string",
           "encode_fields", "decode_fields", "read_managers", "write_managers", "record_update", "merge",
           "apply", "describe", "conflict_message", "MEMBER", "MISSING"]

APPLY, UPDATE = "Apply", "Update"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


@dataclass(frozen=True, slots=True)
class Manager:
    """One managedFields entry: who (manager, operation, apiVersion, subresource) owns which fields."""
    manager: str
    operation: str
    api_version: str
    fields: FieldSet
    time: str = ""
    subresource: str = ""

    def same_owner(self, other: Manager) -> bool:
        return (self.manager, self.operation, self.api_version, self.subresource) == \
            (other.manager, other.operation, other.api_version, other.subresource)


@dataclass(frozen=True, slots=True)
class Conflict:
    manager: Manager
    path: Path


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[Conflict]):
        self.conflicts = conflicts
        super().__init__(conflict_message(conflicts))

    def causes(self) -> list[dict[str, str]]:
        return [{"reason": "FieldManagerConflict", "message": f"conflict with {describe(c.manager)}",
                 "field": path_string(c.path)} for c in self.conflicts]


# -- managedFields entries ----------------------------------------------------
def read_managers(obj: Any) -> list[Manager]:
    entries = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    out = []
    for e in entries:
        if not isinstance(e, dict) or not e.get("manager"):
            continue
        out.append(Manager(str(e["manager"]), str(e.get("operation", UPDATE)), str(e.get("apiVersion", "")),
                           decode_fields(e.get("fieldsV1") or {}), str(e.get("time", "")), str(e.get("subresource", ""))))
    return out


def write_managers(obj: dict, managers: list[Manager]) -> None:
    md = obj.setdefault("metadata", {})
    entries = []
    for m in managers:
        if not m.fields:
            continue
        e: dict[str, Any] = {"manager": m.manager, "operation": m.operation, "apiVersion": m.api_version,
                             "time": m.time, "fieldsType": "FieldsV1", "fieldsV1": encode_fields(m.fields)}
        if m.subresource:
            e["subresource"] = m.subresource
        entries.append(e)
    if entries:
        md["managedFields"] = entries
    else:
        md.pop("managedFields", None)


def _scope(fields: FieldSet, subresource: str) -> FieldSet:
    """Main-resource writes do not own status; status writes own only status (upstream's reset fields)."""
    if subresource == "status":
        return frozenset(p for p in fields if p[:1] == ("f:status",))
    return frozenset(p for p in fields if p[:1] != ("f:status",))


def _put(managers: list[Manager], new: Manager, now: str) -> list[Manager]:
    """Replace (or append) `new`'s entry; its time moves only when its fields changed."""
    out, seen = [], False
    for m in managers:
        if m.same_owner(new):
            seen = True
            out.append(replace(new, time=m.time if m.fields == new.fields and m.time else now))
        else:
            out.append(m)
    if not seen:
        out.append(replace(new, time=now))
    return out


def user_reset(old: Any, new: dict) -> bool:
    """The client sent managedFields of its own (upstream takes them as given; `[{}]` clears them).
    Returns True when that happened and recording must be skipped."""
    sent = (new.get("metadata") or {}).get("managedFields")
    if sent is None or sent == ((old or {}).get("metadata") or {}).get("managedFields"):
        return False
    if not isinstance(sent, list):
        raise InvalidManagedFields("metadata.managedFields must be a list")
    write_managers(new, read_managers(new))  # normalises; entries without a manager ([{}]) vanish
    return True


def record_update(old: Any, new: dict, manager: str, kind: str, now: str, subresource: str = "") -> None:
    """An Update-type write by `manager`: it takes the fields it added or changed (from whoever owned
    them), fields it removed leave every set. Mutates new's metadata.managedFields."""
    if user_reset(old, new):
        return
    managers = read_managers(old)
    before, after = field_values(old or {}, kind), field_values(new, kind)
    changed = {p for p, v in after.items() if before.get(p, MISSING) is not v and before.get(p, MISSING) != v}
    removed = before.keys() - after.keys()
    taken = _scope(frozenset(changed), subresource)
    out = [replace(m, fields=m.fields - taken - removed) for m in managers]
    mine = Manager(manager, UPDATE, str(new.get("apiVersion", "")), frozenset(), subresource=subresource)
    prev = next((m.fields for m in out if m.same_owner(mine)), frozenset())
    out = _put(out, replace(mine, fields=(prev | taken) - removed), now)
    write_managers(new, [m for m in out if m.fields])


# -- apply ----------------------------------------------------------------------
def merge(live: Any, applied: Any, kind: str, names: tuple[str, ...] = ()) -> Any:
    """The applied configuration over the live object: maps merge, keyed lists merge by key, set lists
    union, everything else is replaced."""
    if not isinstance(applied, dict):
        return copy.deepcopy(applied)
    out = copy.deepcopy(live) if isinstance(live, dict) else {}
    for k, v in applied.items():
        if v is None:
            continue
        old = out.get(k)
        if isinstance(v, list) and isinstance(old, list):
            mode = list_mode(k, names, kind, v + old)
            if mode == "set":
                out[k] = old + [i for i in v if i not in old]
                continue
            if mode is not None:
                items = list(old)
                for item in v:
                    pos = next((n for n, o in enumerate(items) if o.get(mode) == item[mode]), None)
                    if pos is None:
                        items.append(merge({}, item, kind, names + (k,)))
                    else:
                        items[pos] = merge(items[pos], item, kind, names + (k,))
                out[k] = items
                continue
        out[k] = merge(old, v, kind, names + (k,)) if isinstance(v, dict) else copy.deepcopy(v)
    return out


def _leaf_conflicts(live: Any, applied: Any, paths: FieldSet, others: list[Manager]) -> list[Conflict]:
    out = []
    for p in sorted(paths):
        found, have = value_at(live, p)
        want = value_at(applied, p)[1]
        if not found or have == want or p[-1][:2] in ("k:", "v:") or (isinstance(want, dict) and want):
            continue  # equal values are shared; items and non-empty maps are judged by their fields
        out += [Conflict(m, p) for m in others if p in m.fields]
    return out


def _allowed_by_last_applied(live: Any, conflicts: list[Conflict], kind: str) -> bool:
    """Upstream's lastAppliedManager: an object applied client-side moves to server-side apply without
    --force-conflicts when every conflicting field is in the last-applied config with the live value."""
    text = ((live or {}).get("metadata") or {}).get("annotations", {}).get(LAST_APPLIED)
    if not text or not conflicts:
        return False
    try:
        last = json.loads(text)
    except ValueError:
        return False
    fields = field_set(last, kind)
    return all(c.path in fields and value_at(last, c.path) == value_at(live, c.path) for c in conflicts)


def apply(live: dict | None, applied: dict, manager: str, kind: str, now: str, force: bool = False,
          subresource: str = "") -> dict:
    """Server-side apply of `applied` by `manager` to `live` (None: the object is new). Returns the new
    object with its managedFields; raises ApplyConflict (unless force)."""
    mine = Manager(manager, APPLY, str(applied.get("apiVersion", "")), frozenset(), subresource=subresource)
    managers = read_managers(live)
    fields = _scope(frozenset(p for p, v in field_values(applied, kind).items() if v is not None), subresource)
    others = [m for m in managers if not m.same_owner(mine)]
    conflicts = _leaf_conflicts(live, applied, fields, others) if live is not None else []
    if conflicts and not force and not _allowed_by_last_applied(live, conflicts, kind):
        raise ApplyConflict(conflicts)
    lost = frozenset(c.path for c in conflicts)
    others = [replace(m, fields=m.fields - lost) for m in others]
    body = {k: v for k, v in applied.items() if k != "metadata"}
    body["metadata"] = {k: v for k, v in (applied.get("metadata") or {}).items() if k != "managedFields"}
    new = merge(live or {}, body, kind)
    prev = next((m.fields for m in managers if m.same_owner(mine)), frozenset())
    kept = frozenset().union(*(m.fields for m in others)) if others else frozenset()
    for p in sorted(prev - fields, key=len):  # items before their fields; a kept item keeps its key
        if not any(q[:len(p)] == p for q in kept | fields) and not is_key_field(p):
            remove_path(new, p)
    now_fields, rest = field_set(new, kind), iter(others)
    result = [m if m.same_owner(mine) else replace(o := next(rest), fields=o.fields & now_fields)
              for m in managers]
    result = _put(result, replace(mine, fields=fields), now)
    write_managers(new, [m for m in result if m.fields])
    if manager == "kubectl":
        _sync_last_applied(new, applied)
    return new


def _sync_last_applied(new: dict, applied: dict) -> None:
    """Upstream's lastAppliedUpdater: kubectl's server-side apply keeps an existing client-side
    last-applied annotation equal to the applied config, so a later client-side apply diffs right."""
    annotations = new.get("metadata", {}).get("annotations") or {}
    if LAST_APPLIED not in annotations:
        return
    last = copy.deepcopy(applied)
    md = last.setdefault("metadata", {})
    md.pop("managedFields", None)
    mine = {k: v for k, v in (md.get("annotations") or {}).items() if k != LAST_APPLIED}
    if mine:
        md["annotations"] = mine
    else:
        md.pop("annotations", None)
    annotations[LAST_APPLIED] = json.dumps(last, sort_keys=True, separators=(",", ":"))


def describe(m: Manager) -> str:
    """Upstream's printManager."""
    s = json.dumps(m.manager)
    if m.subresource:
        s += f" with subresource {json.dumps(m.subresource)}"
    if m.operation == UPDATE:
        s += f" using {m.api_version}" + (f" at {m.time}" if m.time else "")
    return s


def conflict_message(conflicts: list[Conflict]) -> str:
    if len(conflicts) == 1:
        c = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {describe(c.manager)}: {path_string(c.path)}"
    by: dict[str, list[str]] = {}
    for c in conflicts:
        by.setdefault(describe(c.manager), []).append(path_string(c.path))
    lines = []
    for who in sorted(by):
        lines.append(f"conflicts with {who}:")
        lines += [f"- {p}" for p in by[who]]
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
