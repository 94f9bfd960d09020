"""Server-side apply and field ownership (`metadata.managedFields`), pure.

The registry (`registry.py`) calls `record_update` for every create, update
and non-apply patch, and `patching` calls `apply` for `application/apply-patch+yaml`; nothing
here touches the store.  Field paths, field sets and their FieldsV1 encoding
live in `fieldset.py`, the merge of a configuration into the live object in
`typedmerge.py`, the types of both in `schemas/structure.py`.  Conflicts are raised as `ApplyConflict`, which the
registry's `patching` and `scalerest` turn into upstream's 409 Status.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, replace
from typing import Any

from master.apiserver import typedmerge
from master.apiserver.fieldset import (
    MISSING, FieldSet, InvalidManagedFields, InvalidObject, Path, compare, decode_fields, encode_fields, is_key_field,
    path_string, remove_path, to_field_set, value_at,
)
from master.apiserver.schemas.structure import Type, for_kind_name

__all__ = ["APPLY", "UPDATE", "LAST_APPLIED", "Manager", "Conflict", "ApplyConflict", "InvalidManagedFields",
           "InvalidObject", "FieldSet", "Path", "field_set", "value_at", "remove_path", "path_string",
           "encode_fields", "decode_fields", "read_managers", "write_managers", "record_update", "merge",
           "apply", "describe", "conflict_message", "type_of", "MISSING"]

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
    entries = [_entry(m) for m in managers if m.fields]
    if entries:
        md["managedFields"] = entries
    else:
        md.pop("managedFields", None)


def _entry(m: Manager) -> dict[str, Any]:
    e: dict[str, Any] = {"manager": m.manager, "operation": m.operation, "apiVersion": m.api_version,
                         "time": m.time, "fieldsType": "FieldsV1", "fieldsV1": encode_fields(m.fields)}
    if m.subresource:
        e["subresource"] = m.subresource
    return e


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


def type_of(kind: Type | str) -> Type:
    """A kind's structural type; a name (tests, tools) is looked up among the served kinds."""
    return kind if isinstance(kind, Type) else for_kind_name(kind)


def field_set(obj: Any, kind: Type | str) -> FieldSet:
    """The fields an object sets, as an Apply of it would own them."""
    return to_field_set(obj, type_of(kind))


def record_update(old: Any, new: dict, manager: str, kind: Type | str, now: str, subresource: str = "") -> None:
    """An Update-type write by `manager` (old None: a create): it takes the fields it added or changed
    (from whoever owned them), fields it removed leave every set. Mutates new's metadata.managedFields.
    Entries that own none of the changed fields are carried over as they are, not decoded."""
    if user_reset(old, new):
        return
    cmp = compare(MISSING if old is None else old, new, type_of(kind))
    taken, removed = _scope(cmp.changed, subresource), cmp.removed
    hit = taken | removed
    mine = Manager(manager, UPDATE, str(new.get("apiVersion", "")), frozenset(), subresource=subresource)
    entries: list[dict[str, Any]] = []
    seen = False
    for e in ((old or {}).get("metadata") or {}).get("managedFields") or []:
        if not isinstance(e, dict) or not e.get("manager"):
            continue
        if _owner(e) == (mine.manager, mine.operation, mine.api_version, mine.subresource):
            seen = True
            prev = decode_fields(e.get("fieldsV1") or {})
            fields = (prev | taken) - removed
            if fields:
                entries.append(_entry(replace(mine, fields=fields, time=str(e.get("time", "")) if fields == prev
                                              and e.get("time") else now)))
        elif hit and _owns_any(e.get("fieldsV1"), hit):
            m = read_managers({"metadata": {"managedFields": [e]}})[0]
            if m.fields - hit:
                entries.append(_entry(replace(m, fields=m.fields - hit)))
        else:
            entries.append(e)
    if not seen and taken - removed:
        entries.append(_entry(replace(mine, fields=taken - removed, time=now)))
    md = new.setdefault("metadata", {})
    if entries:
        md["managedFields"] = entries
    else:
        md.pop("managedFields", None)


def _owner(e: dict[str, Any]) -> tuple[str, str, str, str]:
    return (str(e["manager"]), str(e.get("operation", UPDATE)), str(e.get("apiVersion", "")),
            str(e.get("subresource", "")))


def _owns_any(fv1: Any, paths: FieldSet) -> bool:
    """Whether a FieldsV1 tree holds one of `paths` (without decoding it; element spellings as ours)."""
    if not isinstance(fv1, dict):
        return True  # let decoding report it
    for p in paths:
        node: Any = fv1
        for el in p:
            node = node.get(el) if isinstance(node, dict) else None
            if node is None:
                break
        else:
            if node == {} or "." in node:
                return True
    return False


# -- apply ----------------------------------------------------------------------
def merge(live: Any, applied: Any, kind: Type | str) -> Any:
    """The applied configuration over the live object (`typedmerge`); inputs are not mutated."""
    return typedmerge.merge(live, applied, type_of(kind))


def _allowed_by_last_applied(live: Any, conflicts: list[Conflict], t: Type) -> bool:
    """Upstream's lastAppliedManager: an object applied client-side moves to server-side apply without
    --force-conflicts when every conflicting field is in the last-applied config with the live value."""
    text = ((live or {}).get("metadata") or {}).get("annotations", {}).get(LAST_APPLIED)
    if not text or not conflicts:
        return False
    try:
        last = json.loads(text)
    except ValueError:
        return False
    fields = to_field_set(last, t)
    return all(c.path in fields and value_at(last, c.path, t) == value_at(live, c.path, t) for c in conflicts)


def apply(live: dict | None, applied: dict, manager: str, kind: Type | str, now: str, force: bool = False,
          subresource: str = "") -> dict:
    """Server-side apply of `applied` by `manager` to `live` (None: the object is new). Returns the new
    object with its managedFields; raises ApplyConflict (unless force), InvalidObject for a configuration
    the types cannot place."""
    t = type_of(kind)
    mine = Manager(manager, APPLY, str(applied.get("apiVersion", "")), frozenset(), subresource=subresource)
    managers = read_managers(live)
    body = {k: v for k, v in applied.items() if k != "metadata"}
    body["metadata"] = {k: v for k, v in (applied.get("metadata") or {}).items() if k != "managedFields"}
    fields = _scope(to_field_set(body, t, strict=True), subresource)
    new = typedmerge.merge(live or {}, body, t)
    others = [m for m in managers if not m.same_owner(mine)]
    conflicts: list[Conflict] = []
    if live is not None:
        changed = compare(live, new, t).changed
        conflicts = [Conflict(m, p) for m in others for p in sorted(m.fields & changed)]
    if conflicts and not force and not _allowed_by_last_applied(live, conflicts, t):
        raise ApplyConflict(conflicts)
    lost = frozenset(c.path for c in conflicts)
    others = [replace(m, fields=m.fields - lost) for m in others]
    prev = next((m.fields for m in managers if m.same_owner(mine)), frozenset())
    kept = frozenset().union(*(m.fields for m in others)) if others else frozenset()
    for p in sorted(prev - fields, key=len):  # items before their fields; a kept item keeps its key
        if not any(q[:len(p)] == p for q in kept | fields) and not is_key_field(p):
            remove_path(new, p, t)
    rest = iter(others)
    result = [m if m.same_owner(mine) else next(rest) for m in managers]
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
