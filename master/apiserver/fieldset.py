"""Field paths and field sets of typed JSON objects, as upstream's
structured-merge-diff computes and FieldsV1 encodes them; pure, used by
`ssa.py` (server-side apply and managedFields).

A path is a tuple of elements: `f:<field>` for a struct or map key,
`k:{"containerPort":80,"protocol":"TCP"}` for an item of a list of type map
(its keys in name order, a key left out takes its schema default), `v:<json>`
for a value of a list of type set.  The types come from
`schemas.structure` (`x-kubernetes-list-type`, `-map-type`).

Two ways to turn objects into field sets, as upstream:
- `to_field_set` (what an Apply owns): scalars, atomic lists and maps, empty
  maps, list items, and keys of user maps; a struct field with members is
  not a member itself.
- `compare` (what an Update takes): every node added (with its subtree) or
  whose value changed, against the old object with the fields a zero object
  has (`Type.implicit`), so that a map the writer created is a member (`.`).
Server-owned metadata (name, uid, resourceVersion, ...) is never part of a set.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Iterable

from master.apiserver.schemas.structure import ASSOCIATIVE, LIST, MAP, SET, STRUCT, UNTYPED, Type

Path = tuple[str, ...]
FieldSet = frozenset[Path]
MISSING = object()

# fields the server owns, never tracked (upstream's stripmeta)
_STRIPPED_META = frozenset("f:" + f for f in (
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "selfLink",
    "managedFields", "deletionTimestamp", "deletionGracePeriodSeconds"))
_STRIPPED_TOP = frozenset({"f:apiVersion", "f:kind"})


class InvalidManagedFields(ValueError):
    """A managedFields entry the server cannot read (400 to the client)."""


class InvalidObject(ValueError):
    """An applied configuration the types cannot place (a list-map item without its keys): 422."""


def _json(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def item_elem(item: Any, lst: Type) -> str | None:
    """The path element of a list item: `k:{...}` (list of type map) or `v:...` (set); None when the item
    has no key (an item without one of the keys and no default for it)."""
    if lst.list_type == SET:
        return "v:" + _json(item)
    if not isinstance(item, dict):
        return None
    key = {}
    for k in lst.keys:
        v = item.get(k, lst.key_defaults.get(k, MISSING))
        if v is MISSING or v is None:
            return None
        key[k] = v
    return "k:" + _json(key)


def keyed_items(items: Any, lst: Type, strict: bool = False, where: Path = ()) -> list[tuple[str, Any]] | None:
    """(element, item) of a set or map list; None when it cannot be keyed (then it is treated as atomic),
    or InvalidObject with strict."""
    if not isinstance(items, list):
        return None
    out = []
    for n, item in enumerate(items):
        el = item_elem(item, lst)
        if el is None:
            if strict:
                raise InvalidObject(f"{path_string(where)}: element {n}: associative list with keys has an "
                                    f"element that omits key field(s) {', '.join(repr(k) for k in lst.keys)} "
                                    "(and doesn't have a default value)")
            return None
        out.append((el, item))
    return out


def _keyed(t: Type) -> bool:
    return t.shape == LIST and not t.atomic and t.list_type in (SET, ASSOCIATIVE)


def _strip(paths: Iterable[Path]) -> set[Path]:
    out = set()
    for p in paths:
        head = p[0]
        if head in _STRIPPED_TOP or (head == "f:metadata" and (len(p) == 1 or p[1] in _STRIPPED_META)):
            continue
        out.add(p)
    return out


# -- Apply: the fields a configuration sets ---------------------------------------
def to_field_set(obj: Any, t: Type, strict: bool = False) -> FieldSet:
    """The fields an object sets (upstream's ToFieldSet, minus server-owned metadata). Null fields are not
    set. strict: a list-map item without keys is an InvalidObject, not an atomic list."""
    out: set[Path] = set()
    _fs(obj, t, (), out, strict)
    return frozenset(_strip(out))


def _fs(v: Any, t: Type, path: Path, out: set[Path], strict: bool) -> None:
    if isinstance(v, dict) and v and not t.atomic and t.shape in (STRUCT, MAP, UNTYPED):
        for k, x in v.items():
            if x is None:
                continue
            p = path + ("f:" + k,)
            if t.shape != STRUCT or k not in t.fields:
                out.add(p)  # a key of a map (labels, data, ...) is a member even when it has members
            _fs(x, t.child(k), p, out, strict)
        return
    if isinstance(v, list) and _keyed(t):
        items = keyed_items(v, t, strict, path)
        if items is not None:
            assert t.elem is not None
            for el, item in items:
                p = path + (el,)
                out.add(p)
                if t.list_type == ASSOCIATIVE:
                    _fs(item, t.elem, p, out, strict)
            return
    if path:
        out.add(path)


# -- Update: what a write added or changed ------------------------------------------
@dataclass(frozen=True, slots=True)
class Comparison:
    changed: frozenset[Path]  # added or modified (upstream's Added | Modified)
    removed: frozenset[Path]


def compare(old: Any, new: Any, t: Type) -> Comparison:
    """What changed from `old` (MISSING: a create, compared with a zero object) to `new`."""
    changed: set[Path] = set()
    removed: set[Path] = set()
    _cmp({} if old is MISSING or old is None else old, new, t, (), changed, removed)
    return Comparison(frozenset(_strip(changed)), frozenset(_strip(removed)))


def _leafish(v: Any, t: Type) -> bool:
    if t.atomic or v is None:
        return True
    if isinstance(v, dict):
        return t.shape == LIST
    if isinstance(v, list):
        return not _keyed(t)
    return True


def _cmp(old: Any, new: Any, t: Type, path: Path, changed: set[Path], removed: set[Path]) -> None:
    if old is None and not _leafish(new, t):
        old = type(new)()  # a null that became a map or list: the node was there, its members are new
    if _leafish(new, t) or _leafish(old, t) or type(old) is not type(new):
        if old != new or type(old) is not type(new):
            changed.add(path)
        return
    if isinstance(new, list):
        olds, news = keyed_items(old, t), keyed_items(new, t)
        if olds is None or news is None:
            if old != new:
                changed.add(path)
            return
        assert t.elem is not None
        before = dict(olds)
        seen = set()
        for el, item in news:
            seen.add(el)
            if el not in before:
                _all(item, t.elem if t.list_type == ASSOCIATIVE else _SET_ITEM, path + (el,), changed)
            elif t.list_type == ASSOCIATIVE:
                _cmp(before[el], item, t.elem, path + (el,), changed, removed)
        for el, item in olds:
            if el not in seen:
                _all(item, t.elem if t.list_type == ASSOCIATIVE else _SET_ITEM, path + (el,), removed)
        return
    for k, x in new.items():
        p = path + ("f:" + k,)
        ct = t.child(k)
        if k in old:
            _cmp(old[k], x, ct, p, changed, removed)
        elif k in t.implicit:  # present in a zero object: {} for value structs, else a zero value
            _cmp({} if k in t.value_structs else None, x, ct, p, changed, removed)
        else:
            _all(x, ct, p, changed)
    for k in old.keys() - new.keys():
        _all(old[k], t.child(k), path + ("f:" + k,), removed)


_SET_ITEM = Type("scalar")


def _all(v: Any, t: Type, path: Path, out: set[Path]) -> None:
    """Every node of a subtree (an added or removed one)."""
    out.add(path)
    if isinstance(v, dict) and not t.atomic and t.shape in (STRUCT, MAP, UNTYPED):
        for k, x in v.items():
            _all(x, t.child(k), path + ("f:" + k,), out)
    elif isinstance(v, list) and _keyed(t):
        items = keyed_items(v, t)
        if items is not None:
            assert t.elem is not None
            for el, item in items:
                _all(item, t.elem if t.list_type == ASSOCIATIVE else _SET_ITEM, path + (el,), out)


# -- paths in objects -----------------------------------------------------------------
def _step(cur: Any, el: str, t: Type) -> tuple[Any, Type]:
    tag, rest = el[:2], el[2:]
    if tag == "f:" and isinstance(cur, dict) and rest in cur:
        return cur[rest], t.child(rest)
    if tag in ("k:", "v:") and isinstance(cur, list) and _keyed(t):
        for item in cur:
            if item_elem(item, t) == el:
                return item, (t.elem if t.elem is not None and tag == "k:" else _SET_ITEM)
    return MISSING, t


def value_at(obj: Any, path: Path, t: Type) -> tuple[bool, Any]:
    """(found, value) at a path of `obj`."""
    cur = obj
    for el in path:
        cur, t = _step(cur, el, t)
        if cur is MISSING:
            return False, None
    return True, cur


def remove_path(obj: Any, path: Path, t: Type) -> None:
    """Delete the field or item at `path` from `obj` in place; a missing path is success."""
    if not path:
        return
    parent, pt = obj, t
    for el in path[:-1]:
        parent, pt = _step(parent, el, pt)
        if parent is MISSING:
            return
    el = path[-1]
    if el[:2] == "f:" and isinstance(parent, dict):
        parent.pop(el[2:], None)
    elif el[:2] in ("k:", "v:") and isinstance(parent, list) and _keyed(pt):
        parent[:] = [i for i in parent if item_elem(i, pt) != el]


def is_key_field(p: Path) -> bool:
    """A key field of a list-map item (`...k:{"name":"x"}`, `f:name`): it goes with the item."""
    return len(p) >= 2 and p[-2][:2] == "k:" and p[-1][2:] in json.loads(p[-2][2:])


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


# -- FieldsV1 -----------------------------------------------------------------------
def encode_fields(fields: Iterable[Path]) -> dict:
    """A field set as FieldsV1 JSON: members with children carry `.` (first, as upstream writes it)."""
    root: dict = {}
    members: set[int] = set()
    for p in sorted(fields):  # a member sorts before its children
        node = root
        for el in p:
            nxt = node.get(el)
            if nxt is None:
                if not node and id(node) in members:
                    node["."] = {}
                nxt = node[el] = {}
            node = nxt
        members.add(id(node))
    return root


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
        if k[:2] in ("k:", "v:"):
            k = _canonical(k)
        if v:
            out |= decode_fields(v, prefix + (k,))
        else:
            out.add(prefix + (k,))
    return frozenset(out)


@functools.lru_cache(maxsize=4096)
def _canonical(el: str) -> str:
    """One spelling per `k:`/`v:` element, whoever wrote it."""
    try:
        return el[:2] + _json(json.loads(el[2:]))
    except ValueError:
        raise InvalidManagedFields(f"invalid field element {el!r}") from None
