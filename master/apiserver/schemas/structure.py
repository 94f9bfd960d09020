"""The structural type of each kind, compiled from its OpenAPI schema: what
server-side apply needs to know about every field (structured-merge-diff's
schema).  Pure; compiled once per kind and cached.

    for_kind(group, version, kind) -> Type

A `Type` is a struct (declared fields), a map (user keys, one value type), a
list (atomic, set, or map keyed by `keys`), a scalar, or untyped (a field no
schema describes: maps granular, lists atomic, as upstream's deduced type).
Structs and maps may be atomic (`x-kubernetes-map-type: atomic`): owned and
replaced as a whole.  `implicit` names the fields a zero object of the type
already has (value structs, `default: {}`, and required fields), which
upstream's Update bookkeeping compares against.  `fieldset.py` and `ssa.py`
walk objects with it; `scripts/openapi_structure.py` holds the facts.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Any

from master.apiserver.schemas import REF, Schema, _by_gvk, definitions, kind_schema

SCALAR, STRUCT, MAP, LIST, UNTYPED = "scalar", "struct", "map", "list", "untyped"
ATOMIC, SET, ASSOCIATIVE = "atomic", "set", "map"


@dataclass(eq=False, slots=True)
class Type:
    shape: str
    atomic: bool = False  # struct, map or list owned and replaced as a whole
    fields: dict[str, Type] = field(default_factory=dict)  # STRUCT
    elem: Type | None = None  # MAP values, LIST items
    list_type: str = ATOMIC  # LIST: atomic, set or map
    keys: tuple[str, ...] = ()  # LIST of type map: the item keys, in name order (upstream's FieldList.Sort)
    key_defaults: dict[str, Any] = field(default_factory=dict)
    implicit: frozenset[str] = frozenset()  # STRUCT: fields a zero object has
    value_structs: frozenset[str] = frozenset()  # STRUCT: of those, the ones that are structs ({} when zero)
    open: bool = False  # STRUCT: keys outside `fields` are allowed (untyped)

    def child(self, key: str) -> Type:
        """The type of `key`'s value in a struct or map (untyped when unknown)."""
        if self.shape == STRUCT:
            return self.fields.get(key, UNTYPED_TYPE)
        if self.shape == MAP and self.elem is not None:
            return self.elem
        return UNTYPED_TYPE

    @property
    def leaf(self) -> bool:
        """Owned as one field: scalars and atomic structs, maps and lists."""
        return self.shape == SCALAR or self.atomic


UNTYPED_TYPE = Type(UNTYPED)
UNTYPED_LIST = Type(LIST, atomic=True)
SCALAR_TYPE = Type(SCALAR)


def _ref_name(s: Schema) -> str | None:
    for _ in range(4):
        ref = s.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF):
            return ref[len(REF):]
        if len(s.get("allOf", ())) == 1 and "properties" not in s:
            s = s["allOf"][0]
        else:
            return None
    return None


class _Compiler:
    def __init__(self) -> None:
        self.named: dict[str, Type] = {}

    def named_type(self, name: str) -> Type:
        t = self.named.get(name)
        if t is None:
            s = definitions().get(name)
            if s is None:
                return UNTYPED_TYPE
            t = self.named[name] = Type(STRUCT)  # placeholder first: schemas may refer to themselves
            self.fill(t, s)
        return t

    def fill(self, t: Type, s: Schema) -> None:
        """Make `t` the type of schema `s` (a definition or an inline schema)."""
        props = s.get("properties")
        extra = s.get("additionalProperties")
        if s.get("type") == "array":
            self.fill_list(t, s)
        elif props:
            t.shape = STRUCT
            t.fields = {k: self.compile(v) for k, v in props.items()}
            value = {k for k, v in props.items() if v.get("default") == {} and t.fields[k].shape == STRUCT}
            t.implicit = frozenset(value | set(s.get("required", ())))
            t.value_structs = frozenset(value)
            t.open = bool(s.get("x-kubernetes-preserve-unknown-fields"))
            t.atomic = s.get("x-kubernetes-map-type") == ATOMIC
        elif isinstance(extra, dict):
            t.shape, t.elem = MAP, self.compile(extra)
            t.atomic = s.get("x-kubernetes-map-type") == ATOMIC
        elif s.get("type") == "object" or s.get("x-kubernetes-preserve-unknown-fields") or extra is True:
            t.shape = UNTYPED
        else:
            t.shape = SCALAR

    def fill_list(self, t: Type, s: Schema) -> None:
        t.shape = LIST
        items = s.get("items")
        t.elem = self.compile(items) if isinstance(items, dict) else UNTYPED_TYPE
        t.list_type = str(s.get("x-kubernetes-list-type") or ATOMIC)
        t.atomic = t.list_type == ATOMIC
        if t.list_type == ASSOCIATIVE:
            t.keys = tuple(sorted(s.get("x-kubernetes-list-map-keys") or ()))
            item_props = self._props(items if isinstance(items, dict) else {})
            t.key_defaults = {k: item_props[k]["default"] for k in t.keys
                              if "default" in item_props.get(k, {}) and item_props[k]["default"] != {}}
            if not t.keys:
                t.list_type, t.atomic = ATOMIC, True

    def _props(self, s: Schema) -> dict[str, Schema]:
        name = _ref_name(s)
        if name is not None:
            s = definitions().get(name, {})
        return dict(s.get("properties") or {})

    def compile(self, s: Schema) -> Type:
        name = _ref_name(s)
        if name is not None:
            base = self.named_type(name)
            override = s.get("x-kubernetes-map-type")
            if override is not None and (override == ATOMIC) != base.atomic:
                twin = Type(base.shape, override == ATOMIC, base.fields, base.elem, base.list_type, base.keys,
                            base.key_defaults, base.implicit, base.value_structs, base.open)
                return twin
            return base
        if s.get("type") in ("string", "integer", "number", "boolean") and "properties" not in s:
            return SCALAR_TYPE
        t = Type(SCALAR)
        self.fill(t, s)
        return t


_COMPILER = _Compiler()
_LOCK = threading.Lock()  # the registry runs on several threads; a type is shared once complete


@functools.cache
def for_kind(group: str, version: str, kind: str) -> Type:
    """The kind's root type; a kind without a generated schema is an open struct with typed metadata."""
    with _LOCK:
        return _COMPILER.compile(kind_schema(group, version, kind))


@functools.cache
def for_kind_name(kind: str) -> Type:
    """The root type of the first served kind called `kind` (tests and tools; the server uses `for_kind`)."""
    for (group, version, k) in _by_gvk():
        if k == kind:
            return for_kind(group, version, k)
    return for_kind("", "v1", kind)
