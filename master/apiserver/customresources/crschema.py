"""A CRD version's `openAPIV3Schema` applied to a custom resource (pure):
pruning of fields the schema does not declare, then validation of the
basics (type, nullable, required, enum, minimum/maximum, length and item
bounds, pattern, properties, additionalProperties, items,
`x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`).

Messages follow upstream's field errors (`spec.replicas: Invalid value: ...`)
so kubectl prints what a user of a real cluster sees.  The root's
apiVersion, kind and metadata are the API server's: never pruned, not
checked here.  The strategy in `customresource` calls both.
"""
from __future__ import annotations

import json
import re
from typing import Any

Obj = dict[str, Any]
Causes = list[tuple[str, str]]
ROOT_FIELDS = ("apiVersion", "kind", "metadata")
_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def prune(value: Any, schema: Obj, root: bool = False, path: str = "") -> list[str]:
    """Drop, in place, every object field `schema` does not declare (unless it preserves unknown
    fields); returns the JSON paths dropped (`.spec.bogus`), in body order."""
    dropped: list[str] = []
    if not isinstance(schema, dict):
        return dropped
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields") is True
        for key in list(value):
            if root and key in ROOT_FIELDS:
                continue
            here = f"{path}.{key}"
            if key in props:
                dropped += prune(value[key], props[key], path=here)
            elif isinstance(extra, dict):
                dropped += prune(value[key], extra, path=here)
            elif not keep_unknown and extra is not True:
                del value[key]
                dropped.append(here)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            dropped += prune(item, schema["items"], path=f"{path}[{i}]")
    return dropped


def _show(value: Any) -> str:
    """A value as upstream's field errors quote it: strings in quotes, the rest as JSON."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (dict, list)):
        return "{...}" if isinstance(value, dict) else "[...]"
    return json.dumps(value)


def _type_ok(value: Any, typ: str) -> bool:
    if typ == "integer":
        return isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and value.is_integer()
    if typ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    expected = _TYPES.get(typ)
    return expected is None or isinstance(value, expected)


def _bounds(value: Any, schema: Obj, path: str) -> Causes:
    causes: Causes = []
    shown = _show(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None:
            if schema.get("exclusiveMinimum") and value <= low:
                causes.append((path, f"Invalid value: {shown}: {path} in body should be greater than {low}"))
            elif value < low:
                causes.append((path, f"Invalid value: {shown}: {path} in body should be greater than or equal to "
                                     f"{low}"))
        if high is not None:
            if schema.get("exclusiveMaximum") and value >= high:
                causes.append((path, f"Invalid value: {shown}: {path} in body should be less than {high}"))
            elif value > high:
                causes.append((path, f"Invalid value: {shown}: {path} in body should be less than or equal to "
                                     f"{high}"))
    if isinstance(value, str):
        if schema.get("minLength") is not None and len(value) < schema["minLength"]:
            causes.append((path, f"Invalid value: {shown}: {path} in body should be at least "
                                 f"{schema['minLength']} chars long"))
        if schema.get("maxLength") is not None and len(value) > schema["maxLength"]:
            causes.append((path, f"Too long: may not be longer than {schema['maxLength']}"))
        pattern = schema.get("pattern")
        if pattern and re.search(pattern, value) is None:
            causes.append((path, f"Invalid value: {shown}: {path} in body should match '{pattern}'"))
    if isinstance(value, list):
        if schema.get("minItems") is not None and len(value) < schema["minItems"]:
            causes.append((path, f"Invalid value: {len(value)}: {path} in body should have at least "
                                 f"{schema['minItems']} items"))
        if schema.get("maxItems") is not None and len(value) > schema["maxItems"]:
            causes.append((path, f"Too many: {len(value)}: must have at most {schema['maxItems']} items"))
    enum = schema.get("enum")
    if enum and value not in enum:
        causes.append((path, f"Unsupported value: {shown}: supported values: "
                             + ", ".join(_show(e) for e in enum)))
    return causes


def validate(value: Any, schema: Obj, path: str = "") -> Causes:
    """The causes (field path, message) `value` breaks at `path` ("" for the root object)."""
    if not isinstance(schema, dict):
        return []
    where = path or "<root>"
    if value is None:
        return [] if schema.get("nullable") or not schema.get("type") else [
            (where, f'Invalid value: "null": {where} in body must be of type {schema["type"]}: "null"')]
    typ = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if not _type_ok(value, "integer") and not isinstance(value, str):
            return [(where, f"Invalid value: {_show(value)}: {where} in body must be of type integer,string: "
                            f"{_show(value)}")]
    elif typ and not _type_ok(value, typ):
        return [(where, f'Invalid value: "{_json_type(value)}": {where} in body must be of type {typ}: '
                        f'"{_json_type(value)}"')]
    causes = _bounds(value, schema, where)
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in value and not (not path and name in ROOT_FIELDS):
                causes.append((f"{path}.{name}" if path else name, "Required value"))
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if not path and key in ROOT_FIELDS:
                continue
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                causes += validate(item, sub, f"{path}.{key}" if path else key)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            causes += validate(item, schema["items"], f"{where}[{i}]")
    return causes


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"
