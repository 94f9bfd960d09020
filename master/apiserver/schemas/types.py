"""Type checks of objects against the kind schemas, as upstream's typed decoding does them:
a number where the schema says string, an object where it says list, and so on, is refused
before any kind rule reads the object ("json: cannot unmarshal number into Go struct field
... of type string").  A JSON null decodes to Go's zero value: a null field is dropped, a null
list item becomes the item type's zero value.

    type_error(group, version, kind, obj) -> "cannot unmarshal ..." | None   (drops nulls in obj)
    named_type_error(schema_name, obj)       the same for a schema by name (DeleteOptions, Scale)
    object_type_error(res, obj)              the kind's, or a custom resource's TypeMeta and ObjectMeta

Pure.  `validation.check` runs it over create and update bodies (a 400); the registry over the
result of a patch (`patching`: a 422, as upstream's patcher).  Custom resources are checked against their
CRD's schema elsewhere (`customresources/crschema`).
"""
from __future__ import annotations

import base64
import binascii
from typing import Any

from apimachinery.kinds import ResourceInfo
from master.apiserver.schemas import OBJECT_META, REF, Schema, definitions, kind_schema, resolve

_INT64 = (-(2**63), 2**63 - 1)
_ZERO: dict[str, Any] = {"string": "", "integer": 0, "number": 0, "boolean": False}


def _quantity() -> Schema | None:
    return definitions().get("io.k8s.apimachinery.pkg.api.resource.Quantity")


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _go_type(schema: Schema) -> str:
    t = schema.get("type")
    if t == "array":
        return "[]" + str(resolve(schema.get("items") or {}).get("type") or "object")
    if t == "object":
        return "map" if schema.get("additionalProperties") else "struct"
    return {"integer": "int64", "boolean": "bool", "number": "float64"}.get(str(t), str(t))


def type_error(group: str, version: str, kind: str, obj: Any) -> str | None:
    """The first value of `obj` whose JSON type the kind's schema does not allow; None when all fit."""
    return _check(kind_schema(group, version, kind), obj, "", _quantity())


# what every custom resource decodes as upstream whatever its CRD's schema: TypeMeta and ObjectMeta
_CUSTOM: Schema = {"type": "object", "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                                    "metadata": {"$ref": REF + OBJECT_META}}}


def object_type_error(res: ResourceInfo, obj: Any) -> str | None:
    """type_error for an object of `res`: the kind's schema, or for a custom resource its TypeMeta and
    ObjectMeta (the rest is its CRD schema's, checked by customresources.crschema)."""
    if res.custom is not None:
        return _check(_CUSTOM, obj, "", _quantity())
    return type_error(res.group, res.version, res.kind, obj)


def named_type_error(schema_name: str, obj: Any) -> str | None:
    """As type_error, for a schema by its upstream name (`io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions`);
    None when no such schema was generated."""
    schema = definitions().get(schema_name)
    return _check(schema, obj, "", _quantity()) if schema is not None else None


def _mismatch(schema: Schema, value: Any, path: str) -> str:
    return (f"json: cannot unmarshal {json_type(value)} into Go struct field {path.lstrip('.') or '.'} "
            f"of type {_go_type(schema)}")


def _check(schema: Schema, value: Any, path: str, quantity: Schema | None) -> str | None:
    schema = resolve(schema)
    if schema is quantity:  # resource.Quantity takes a number as well as a string
        return None if isinstance(value, (str, int, float)) and not isinstance(value, bool) else \
            _mismatch(schema, value, path)
    t = schema.get("type")
    if t is None or (schema.get("x-kubernetes-preserve-unknown-fields") and not schema.get("properties")):
        return None  # any JSON (RawExtension and the like)
    if t == "object":
        if not isinstance(value, dict):
            return _mismatch(schema, value, path)
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        nulls = []
        for key, v in value.items():
            sub = props.get(key)
            if sub is None:
                sub = extra if isinstance(extra, dict) else None
                if sub is None:
                    continue  # unknown: validation's to report or drop
                if v is None:
                    value[key] = _zero(sub)
                    continue
            elif v is None:
                nulls.append(key)
                continue
            err = _check(sub, v, f"{path}.{key}", quantity)
            if err:
                return err
        for key in nulls:
            del value[key]
        return None
    if t == "array":
        if not isinstance(value, list):
            return _mismatch(schema, value, path)
        items = schema.get("items")
        if isinstance(items, dict):
            for i, v in enumerate(value):
                if v is None:
                    value[i] = _zero(items)
                    continue
                err = _check(items, v, f"{path}[{i}]", quantity)
                if err:
                    return err
        return None
    if t == "string":
        if schema.get("format") == "int-or-string":
            ok = isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
            return None if ok else _mismatch(schema, value, path)
        if not isinstance(value, str):
            return _mismatch(schema, value, path)
        if schema.get("format") == "byte":
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return f"illegal base64 data in {path.lstrip('.')}"
        return None
    if t == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool) and _INT64[0] <= value <= _INT64[1]
        return None if ok else _mismatch(schema, value, path)
    if t == "boolean":
        return None if isinstance(value, bool) else _mismatch(schema, value, path)
    if t == "number":
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else _mismatch(schema, value, path)
    return None


def _zero(schema: Schema) -> Any:
    schema = resolve(schema)
    t = schema.get("type")
    if t == "object":
        return {}
    if t == "array":
        return []
    return _ZERO.get(str(t))
