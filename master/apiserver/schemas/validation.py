"""Field validation of request bodies against the kind schemas: which fields
the schema does not know, and what `fieldValidation=Strict|Warn|Ignore` makes
of them (upstream's server-side field validation, GA since 1.27).

    unknown_fields(group, version, kind, obj) -> [".spec.containers[0].imagee", ...]
    check(res, query_value, body, patch=False) -> warnings   (raises 400 on Strict, and on a
                                                              wrong type in a whole object: schemas.types)

Pure; the app calls `check` for create, update and patch, and sends each
warning as a `Warning: 299 - "..."` header.  An object with
`additionalProperties` or `x-kubernetes-preserve-unknown-fields` allows any
key.  Patch bodies are checked as the partial objects they are, skipping
strategic-merge directives (`$patch`, `$setElementOrder/...`); JSON patches
(a list of operations) are not checked.
"""
from __future__ import annotations

import copy
import enum
from typing import Any

from aiohttp import web

from apimachinery.kinds import ResourceInfo
from master.apiserver import errors
from master.apiserver.schemas import Schema, kind_schema, resolve
from master.apiserver.schemas.types import object_type_error


# where the app keeps a request's warnings until the response is built
WARNINGS: web.RequestKey[list[str]] = web.RequestKey("coracle.warnings", list)


class FieldValidation(enum.StrEnum):
    IGNORE = "Ignore"
    WARN = "Warn"  # upstream's default when the parameter is absent
    STRICT = "Strict"


def directive(value: str | None) -> FieldValidation:
    if not value:
        return FieldValidation.WARN
    try:
        return FieldValidation(value)
    except ValueError:
        raise errors.bad_request(f'fieldValidation: Unsupported value: "{value}": supported values: '
                                 f'"Ignore", "Strict", "Warn"') from None


def unknown_fields(group: str, version: str, kind: str, obj: Any, patch: bool = False,
                   drop: bool = False) -> list[str]:
    """JSON paths (`.spec.containers[0].imagee`) of fields the kind's schema does not define, in body order.

    With drop=True they are also deleted from obj, as upstream's decoder drops them.
    """
    out: list[str] = []
    _walk(kind_schema(group, version, kind), obj, "", out, patch, drop)
    return out


def _walk(schema: Schema, value: Any, path: str, out: list[str], patch: bool, drop: bool) -> None:
    schema = resolve(schema)
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        open_ = schema.get("x-kubernetes-preserve-unknown-fields") or extra is True or (not props and not extra)
        unknown = []
        for key, v in value.items():
            if patch and isinstance(key, str) and key.startswith("$"):
                continue
            here = f"{path}.{key}"
            if key in props:
                _walk(props[key], v, here, out, patch, drop)
            elif isinstance(extra, dict):
                _walk(extra, v, here, out, patch, drop)
            elif not open_:
                out.append(here)
                unknown.append(key)
        for key in unknown if drop else ():
            del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            _walk(schema["items"], v, f"{path}[{i}]", out, patch, drop)


def _message(paths: list[str]) -> str:
    return "strict decoding error: " + ", ".join(f'unknown field "{p.lstrip(".")}"' for p in paths)


def check(res: ResourceInfo, value: str | None, body: Any, patch: bool = False) -> list[str]:
    """Apply the fieldValidation directive to a request body of `res`'s kind.

    Unknown fields are dropped from `body` (Warn, Ignore) or refused with a
    400 BadRequest carrying upstream's message (Strict).  Returns the
    warnings to send: one per unknown field for Warn, none otherwise.
    """
    mode = directive(value)
    if not isinstance(body, dict):
        return []
    if not patch:
        err = object_type_error(res, body)
        if err:
            raise errors.bad_request(f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: {err}')
    if res.custom is not None:  # the CRD version's schema: what pruning would drop (customresources)
        paths = res.custom.unknown_fields(body if mode is not FieldValidation.STRICT else copy.deepcopy(body))  # type: ignore[attr-defined]
    else:
        paths = unknown_fields(res.group, res.version, res.kind, body, patch, drop=mode is not FieldValidation.STRICT)
    if not paths or mode is FieldValidation.IGNORE:
        return []
    if mode is FieldValidation.STRICT:
        msg = _message(paths)
        if not patch:
            msg = f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: {msg}'
        raise errors.bad_request(msg)
    return [f'unknown field "{p.lstrip(".")}"' for p in paths]


def warning_header(text: str) -> str:
    """RFC 7234 warn-value as upstream sends it: code 299, agent "-", quoted text."""
    return '299 - "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
