"""The three PATCH types of the API server, pure functions on JSON dicts.

- `json_patch`: RFC 6902 (`application/json-patch+json`)
- `merge_patch`: RFC 7386 (`application/merge-patch+json`)
- `strategic_merge_patch`: Kubernetes strategic merge patch
  (`application/strategic-merge-patch+json`, what kubectl apply, patch,
  set image and rollout restart send), driven by the merge-key table below.

The API server's patch handler calls these and answers 422/400 on PatchError.
None of them mutates its arguments.
"""
from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """A patch that is malformed or cannot be applied to the document."""


# ---- RFC 6902 JSON patch --------------------------------------------------

def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise PatchError(f"JSON pointer must be a string, got {path!r}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list, token: str, path: str, allow_end: bool) -> int:
    if allow_end and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r} in {path!r}")
    i = int(token)
    if i > len(container) or (i == len(container) and not allow_end):
        raise PatchError(f"array index {i} out of range in {path!r}")
    return i


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    cur = doc
    for t in tokens[:-1]:
        if isinstance(cur, dict):
            if t not in cur:
                raise PatchError(f"path {path!r} does not exist: missing {t!r}")
            cur = cur[t]
        elif isinstance(cur, list):
            cur = cur[_index(cur, t, path, False)]
        else:
            raise PatchError(f"path {path!r} goes through a scalar at {t!r}")
    return cur


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens, path), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {path!r} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path, False)]
    raise PatchError(f"path {path!r} goes through a scalar")


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, path), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, True), value)
    else:
        raise PatchError(f"cannot add at {path!r}: parent is a scalar")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent, last = _parent(doc, tokens, path), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"cannot remove {path!r}: it does not exist")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, path, False))
    raise PatchError(f"cannot remove {path!r}: parent is a scalar")


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def json_patch(doc: Any, ops: list) -> Any:
    """Apply RFC 6902 operations to a copy of `doc`; all or nothing."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for n, op in enumerate(ops):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"operation {n}: must be an object with 'op' and 'path'")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {n} ({kind} {path}): missing 'value'")
        if kind in ("move", "copy") and "from" not in op:
            raise PatchError(f"operation {n} ({kind} {path}): missing 'from'")
        value = copy.deepcopy(op.get("value"))
        if kind == "add":
            doc = _add(doc, path, value)
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            if _pointer(path):
                doc, _ = _remove(doc, path)
            doc = _add(doc, path, value)
        elif kind == "move":
            src = op["from"]
            if path != src and path.startswith(src + "/"):
                raise PatchError(f"operation {n}: cannot move {src!r} into its own child {path!r}")
            doc, moved = _remove(doc, src)
            doc = _add(doc, path, moved)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        elif kind == "test":
            if not _json_equal(_get(doc, path), value):
                raise PatchError(f"operation {n}: test failed: value at {path!r} is not {value!r}")
        else:
            raise PatchError(f"operation {n}: unknown op {kind!r} (want add, remove, replace, move, copy, test)")
    return doc


# ---- RFC 7386 merge patch -------------------------------------------------

def merge_patch(doc: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch: null deletes, objects merge, the rest replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# ---- strategic merge patch ------------------------------------------------

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
# list field name -> merge key, for lists whose items are objects
MERGE_KEYS: dict[str, str] = {
    **{c: "name" for c in _CONTAINER_LISTS},
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "topologySpreadConstraints": "topologyKey",
    "ownerReferences": "uid",
    "taints": "key",
}
PRIMITIVE_MERGE_LISTS = frozenset({"finalizers"})  # set union, in order
_DIRECTIVE = "$patch"
_ORDER = "$setElementOrder/"
_DELETE_PRIM = "$deleteFromPrimitiveList/"
_RETAIN = "$retainKeys"


def _merge_key(field: str, path: tuple[str, ...], kind: str) -> str | None:
    if field == "ports":
        if path and path[-1] in _CONTAINER_LISTS:
            return "containerPort"
        if kind == "Service" and path == ("spec",):
            return "port"
        return None
    return MERGE_KEYS.get(field)


def strategic_merge_patch(doc: dict, patch: dict, kind: str) -> dict:
    """Apply a strategic merge patch for an object of `kind` to a copy of `doc`."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    out = _merge_map(doc if isinstance(doc, dict) else {}, patch, (), kind)
    return _strip(out) if out is not None else {}


def _strip(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _strip(x) for k, x in v.items() if not (isinstance(k, str) and k.startswith("$"))}
    if isinstance(v, list):
        return [_strip(x) for x in v if not (isinstance(x, dict) and set(x) == {_DIRECTIVE})]
    return v


def _merge_map(orig: dict, patch: dict, path: tuple[str, ...], kind: str) -> dict | None:
    directive = patch.get(_DIRECTIVE)
    if directive == "delete":
        return None
    if directive == "replace":
        return _strip(_merge_map({}, {k: v for k, v in patch.items() if k != _DIRECTIVE}, path, kind))
    if directive not in (None, "merge"):
        raise PatchError(f"unknown $patch directive {directive!r} at {'.'.join(path) or 'the top'}")
    out = copy.deepcopy(orig)
    retain = patch.get(_RETAIN)
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError(f"$retainKeys at {'.'.join(path) or 'the top'} must be a list")
        out = {k: v for k, v in out.items() if k in retain}
    orders: dict[str, list] = {}
    for key, value in patch.items():
        if key.startswith(_ORDER):
            if not isinstance(value, list):
                raise PatchError(f"{key} must be a list")
            orders[key[len(_ORDER):]] = value
        elif key.startswith(_DELETE_PRIM):
            field = key[len(_DELETE_PRIM):]
            if not isinstance(value, list):
                raise PatchError(f"{key} must be a list")
            if isinstance(out.get(field), list):
                out[field] = [x for x in out[field] if x not in value]
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            old = out.get(key)
            merged = _merge_map(old if isinstance(old, dict) else {}, value, path + (key,), kind)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(value, list):
            old = out.get(key)
            out[key] = _merge_list(old if isinstance(old, list) else [], value, key, path, kind)
        else:
            out[key] = value
    for field, order in orders.items():
        if isinstance(out.get(field), list):
            out[field] = _apply_order(out[field], order, _merge_key(field, path, kind))
    return out


def _merge_list(orig: list, patch: list, field: str, path: tuple[str, ...], kind: str) -> list:
    here = path + (field,)
    if field in PRIMITIVE_MERGE_LISTS:
        out = list(orig)
        for item in patch:
            if isinstance(item, (dict, list)):
                raise PatchError(f"{'.'.join(here)} is a list of strings; got {item!r}")
            if item not in out:
                out.append(item)
        return out
    key = _merge_key(field, path, kind)
    def list_directive(i: Any) -> bool:  # {"$patch": "replace"} as an item replaces the whole list
        return isinstance(i, dict) and i.get(_DIRECTIVE) == "replace" and (key is None or key not in i)
    if key is None or any(list_directive(i) for i in patch):
        items = [_merge_map({}, i, here, kind) if isinstance(i, dict) else copy.deepcopy(i)
                 for i in patch if not list_directive(i)]
        return [i for i in items if i is not None]
    out = [copy.deepcopy(i) for i in orig]
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"{'.'.join(here)}: items must be objects with merge key {key!r}, got {item!r}")
        if key not in item:
            raise PatchError(f"{'.'.join(here)}: item {item!r} does not contain the merge key {key!r}")
        pos = next((n for n, o in enumerate(out) if isinstance(o, dict) and o.get(key) == item[key]), None)
        if item.get(_DIRECTIVE) == "delete":
            out = [o for o in out if not (isinstance(o, dict) and o.get(key) == item[key])]
        elif pos is None:
            new = _merge_map({}, item, here, kind)
            if new is not None:
                out.append(new)
        else:
            merged = _merge_map(out[pos], item, here, kind)
            if merged is None:
                del out[pos]
            else:
                out[pos] = merged
    return out


def _apply_order(items: list, order: list, key: str | None) -> list:
    """Put the items named in `order` into that order, in the slots they occupy;
    items not named keep their places (server-only items stay where they were)."""
    def ident(x: Any) -> Any:
        if key is not None and isinstance(x, dict):
            return ("k", repr(x.get(key)))
        return ("v", repr(x))
    rank = {ident(o): n for n, o in enumerate(order)}
    slots = [n for n, it in enumerate(items) if ident(it) in rank]
    ordered = sorted((items[n] for n in slots), key=lambda it: rank[ident(it)])
    out = list(items)
    for n, it in zip(slots, ordered):
        out[n] = it
    return out
