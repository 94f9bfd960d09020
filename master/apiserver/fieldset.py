"""Field paths and field sets of JSON objects, as upstream's structured-merge-diff
FieldsV1 encodes them; pure, used by `ssa.py` (server-side apply and managedFields).

A path is a tuple of elements: `f:<field>` for a map key, `k:{"name":"x"}` for a
list item keyed by its merge key (`apimachinery.patch` merge keys), `v:<json>` for
a value of a set list (finalizers). Scalars, atomic lists and empty maps are leaves;
keyed list items and maps of user keys (labels, data, ...) are members themselves
too (upstream's `.`). Server-owned metadata (name, uid, resourceVersion, ...) is
never part of a field set.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from apimachinery.patch import PRIMITIVE_MERGE_LISTS, _merge_key

Path = tuple[str, ...]
FieldSet = frozenset[Path]

# fields the server owns, never tracked (upstream's stripmeta)
_STRIPPED = {("f:apiVersion",), ("f:kind",)} | {("f:metadata", "f:" + f) for f in (
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "selfLink",
    "managedFields", "deletionTimestamp", "deletionGracePeriodSeconds")}
# fields that are maps of user keys (upstream's `map` types): the map itself is a member too (`.`)
_MAPS = frozenset({"labels", "annotations", "matchLabels", "nodeSelector", "data", "binaryData", "stringData",
                   "limits", "requests", "hard", "capacity", "allocatable"})


class InvalidManagedFields(ValueError):
    """A managedFields entry the server cannot read (400 to the client)."""


def _key_elem(key: str, value: Any) -> str:
    return "k:" + json.dumps({key: value}, separators=(",", ":"))


def _value_elem(value: Any) -> str:
    return "v:" + json.dumps(value, separators=(",", ":"))


def list_mode(field: str, names: tuple[str, ...], kind: str, items: list) -> str | None:
    """'set', a merge key, or None for an atomic list."""
    if field in PRIMITIVE_MERGE_LISTS:
        return "set"
    key = _merge_key(field, names, kind)
    if key and all(isinstance(i, dict) and key in i for i in items):
        return key
    return None


def field_set(obj: Any, kind: str) -> FieldSet:
    """The fields an object sets, as upstream's ToFieldSet (minus the server-owned metadata)."""
    return frozenset(field_values(obj, kind))


def field_values(obj: Any, kind: str) -> dict[Path, Any]:
    """Each field of `field_set` with its value (keyed items and set values map to a marker)."""
    out: dict[Path, Any] = {}
    _walk(obj, (), (), kind, out)
    for p in [p for p in out if p[0] in ("f:apiVersion", "f:kind", "f:metadata") and _stripped(p)]:
        del out[p]
    return out


def _stripped(p: Path) -> bool:
    return any(p[:len(s)] == s for s in _STRIPPED) or p == ("f:metadata",)


def _walk(v: Any, path: Path, names: tuple[str, ...], kind: str, out: dict[Path, Any]) -> None:
    if isinstance(v, dict) and v:
        for k, x in v.items():
            here = path + ("f:" + k,)
            if isinstance(x, list) and x:
                mode = list_mode(k, names, kind, x)
                if mode == "set":
                    out.update((here + (_value_elem(i),), MEMBER) for i in x)
                    continue
                if mode is not None:
                    for item in x:
                        ip = here + (_key_elem(mode, item[mode]),)
                        out[ip] = MEMBER
                        _walk(item, ip, names + (k,), kind, out)
                    continue
            if isinstance(x, dict) and x:
                if k in _MAPS or (k == "selector" and kind in ("Service", "ReplicationController")):
                    out[here] = MEMBER
                _walk(x, here, names + (k,), kind, out)
            else:
                out[here] = x


def value_at(obj: Any, path: Path) -> tuple[bool, Any]:
    """(found, value) at a path of `obj`."""
    cur = obj
    for el in path:
        tag, rest = el[:2], el[2:]
        if tag == "f:" and isinstance(cur, dict) and rest in cur:
            cur = cur[rest]
        elif tag == "k:" and isinstance(cur, list):
            (key, want), = json.loads(rest).items()
            cur = next((i for i in cur if isinstance(i, dict) and i.get(key) == want), MISSING)
            if cur is MISSING:
                return False, None
        elif tag == "v:" and isinstance(cur, list):
            val = json.loads(rest)
            if val not in cur:
                return False, None
            cur = val
        else:
            return False, None
    return True, cur


MISSING, MEMBER = object(), object()


def remove_path(obj: Any, path: Path) -> None:
    """Delete the field or item at `path` from `obj` in place; a missing path is success."""
    if not path:
        return
    found, parent = value_at(obj, path[:-1])
    if not found:
        return
    tag, rest = path[-1][:2], path[-1][2:]
    if tag == "f:" and isinstance(parent, dict):
        parent.pop(rest, None)
    elif tag == "k:" and isinstance(parent, list):
        (key, want), = json.loads(rest).items()
        parent[:] = [i for i in parent if not (isinstance(i, dict) and i.get(key) == want)]
    elif tag == "v:" and isinstance(parent, list):
        val = json.loads(rest)
        parent[:] = [i for i in parent if i != val]


def path_string(path: Path) -> str:
    """Upstream's fieldpath.Path.String(): `.spec.containers[name="web"].image`."""
    out = []
    for el in path:
        tag, rest = el[:2], el[2:]
        if tag == "f:":
            out.append("." + rest)
        elif tag == "k:":
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(rest).items()) + "]")
        else:
            out.append("[=" + rest + "]")
    return "".join(out)


def encode_fields(fields: Iterable[Path]) -> dict:
    """A field set as FieldsV1 JSON: members with children carry `.`."""
    root: dict = {}
    for p in sorted(fields):
        node = root
        for el in p:
            node = node.setdefault(el, {})
        node["."] = {}
    return _tidy(root)


def _tidy(node: dict) -> dict:
    kids = {k: _tidy(v) for k, v in node.items() if k != "."}
    if "." in node and kids:
        return {".": {}, **kids}
    return kids


def decode_fields(fv1: Any, prefix: Path = ()) -> FieldSet:
    if not isinstance(fv1, dict):
        raise InvalidManagedFields("fieldsV1 must be an object")
    out: set[Path] = set()
    for k, v in fv1.items():
        if k == ".":
            out.add(prefix)
            continue
        if not isinstance(k, str) or k[:2] not in ("f:", "k:", "v:", "i:"):
            raise InvalidManagedFields(f"invalid field element {k!r}")
        if v:
            out |= decode_fields(v, prefix + (k,))
        else:
            out.add(prefix + (k,))
    return frozenset(out)


def is_key_field(p: Path) -> bool:
    return len(p) >= 2 and p[-2][:2] == "k:" and p[-1][2:] in json.loads(p[-2][2:])
