"""OpenAPI v2 (`/openapi/v2`): the Swagger 2.0 form of what `openapi` serves
as v3, in JSON or in the protobuf encoding of gnostic's `openapi.v2.Document`.

kubectl asks for v2 only when it validates on the client side: a `kind: List`
file, or a kind missing from the v3 index (an unknown kind, a switched-off
group).  It sends `Accept: application/com.github.proto-openapi.spec.v2@v1.0+
protobuf`, decodes the answer as protobuf whatever its Content-Type, and
builds its models from `definitions`: every `$ref` must name a definition
(else the whole document is rejected), a `$ref` carries no type or
properties, and `x-kubernetes-group-version-kind` (a vendor extension, YAML
in an `Any`) ties a definition to its kind.  A kind absent from the
definitions is not validated at all, which is how an unknown kind gets as far
as kubectl's "no matches for kind" error.

The conversion from v3 (pure): `#/components/schemas/` refs become
`#/definitions/`, a one-element `allOf` around a `$ref` becomes the `$ref`
(description kept), a schema that preserves unknown fields loses its
properties (an open map, so nothing is flagged unknown), requestBody becomes
a body parameter and `consumes`, response content becomes `schema`.
Operation ids gain the group-version (`readCoreV1Pod` style) so they are
unique across the document.  Documents are built once per served set, with
an ETag (304 on `If-None-Match`).
"""
from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

import yaml
from aiohttp import web

from master.apiserver import openapi, schemas
from apimachinery.apigroups import ALL, APIGroups

PROTOBUF_ACCEPT = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
PROTOBUF_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"  # what upstream answers with
DEFS = "#/definitions/"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")  # PathItem fields 2..8
_ACTIONS = {"get": "read", "put": "replace", "patch": "patch", "delete": "delete", "list": "list", "post": "create"}
Obj = dict[str, Any]


# -- v3 -> v2 (pure) ----------------------------------------------------------
def convert_schema(node: Obj, names: frozenset[str]) -> Obj:
    """One schema in v2 form; a `$ref` to a name outside `names` becomes an arbitrary value."""
    ref = node.get("$ref")
    if ref is None and len(node.get("allOf") or ()) == 1 and "$ref" in node["allOf"][0]:
        ref = node["allOf"][0]["$ref"]
    if isinstance(ref, str):
        target = ref[len(schemas.REF):]
        out: Obj = {"$ref": DEFS + target} if target in names else {}
        if node.get("description"):
            out["description"] = node["description"]
        return out
    open_object = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    out = {}
    for key, value in node.items():
        if key == "properties":
            if not open_object:
                out[key] = {k: convert_schema(v, names) for k, v in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = convert_schema(value, names)
        elif key == "additionalProperties":
            out[key] = convert_schema(value, names) if isinstance(value, dict) else bool(value)
        elif key in ("description", "format", "title", "required", "enum", "default", "readOnly") \
                or (key == "type" and isinstance(value, str)) or key.startswith("x-"):
            out[key] = value
        # nullable, anyOf, oneOf, not and multi-element allOf have no v2 form kubectl reads
    if open_object and "properties" in node:
        out["type"] = "object"
        out.pop("required", None)
    return out


def _op_id(action: str, group: str, version: str, kind: str) -> str:
    words = (group.removesuffix(".k8s.io") if group else "core").replace("-", ".").split(".")
    return _ACTIONS.get(action, action) + "".join(w.capitalize() for w in words) + version.capitalize() + kind


def _param(p: Obj) -> Obj:
    out = {k: v for k, v in p.items() if k != "schema"}
    out.update({k: v for k, v in (p.get("schema") or {}).items() if k in ("type", "uniqueItems", "format")})
    if p.get("in") == "path":
        out["required"] = True
    return out


def _operation(op: Obj, names: frozenset[str], group: str, version: str) -> Obj:
    out: Obj = {"description": op.get("description", "")}
    gvk = op.get("x-kubernetes-group-version-kind") or {}
    action = op.get("x-kubernetes-action", "")
    if gvk and action:
        out["operationId"] = _op_id(action, group, version, gvk.get("kind", ""))
    params = [_param(p) for p in op.get("parameters") or ()]
    body = op.get("requestBody")
    if body:
        content: Obj = body.get("content") or {}
        out["consumes"] = list(content)
        media: Obj = next(iter(content.values()), {})
        schema: Obj = media.get("schema", {})
        params.insert(0, {"name": "body", "in": "body", "required": bool(body.get("required")),
                          "schema": convert_schema(schema, names)})
    out["produces"] = ["application/json"]
    if params:
        out["parameters"] = params
    responses: Obj = {}
    for code, r in (op.get("responses") or {}).items():
        resp: Obj = {"description": r.get("description", "")}
        content = r.get("content") or {}
        if content:
            resp["schema"] = convert_schema(next(iter(content.values())).get("schema", {}), names)
        responses[code] = resp
    out["responses"] = responses
    out.update({k: v for k, v in op.items() if k.startswith("x-")})
    return out


def document(apis: APIGroups = ALL) -> Obj:
    """The Swagger 2.0 document of everything `apis` serves."""
    return _built(apis.served)[0]


@functools.cache
def _built(served: tuple[Any, ...]) -> tuple[Obj, tuple[bytes, str], tuple[bytes, str]]:
    """(document, (its JSON, ETag), (its protobuf, ETag)), once per served set."""
    apis = APIGroups(served)
    v3: list[tuple[str, str, Obj]] = []
    components: dict[str, Obj] = {}
    for group, versions in apis.groups().items():
        for version in versions:
            doc = openapi.built_document(group, version, apis)
            v3.append((group, version, doc))
            components.update(doc["components"]["schemas"])
    names = frozenset(components)
    paths: Obj = {}
    for group, version, doc in v3:
        for path, item in doc["paths"].items():
            out: Obj = {m: _operation(item[m], names, group, version) for m in _METHODS if m in item}
            if item.get("parameters"):
                out["parameters"] = [_param(p) for p in item["parameters"]]
            paths[path] = out
    definitions = {name: convert_schema(s, names) for name, s in sorted(components.items())}
    doc = {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": paths,
           "definitions": definitions}
    raw, pb = json.dumps(doc, separators=(",", ":")).encode(), encode(doc)
    return doc, (raw, _etag(raw)), (pb, _etag(pb))


def _etag(body: bytes) -> str:
    return f'"{hashlib.sha512(body).hexdigest().upper()}"'


# -- gnostic protobuf (openapiv2/OpenAPIv2.proto field numbers) ----------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len(num: int, body: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(body)) + body


def _str(num: int, s: Any) -> bytes:
    return _len(num, str(s).encode()) if s not in (None, "") else b""


def _bool(num: int, v: Any) -> bytes:
    return _varint(num << 3) + b"\x01" if v else b""


def _any(num: int, value: Any) -> bytes:
    """An `Any` holding `value` as YAML (field 2), the way gnostic carries extensions and defaults."""
    text = yaml.safe_dump(value, default_flow_style=False, sort_keys=False)
    return _len(num, _str(2, text))


def _named(num: int, name: str, value: bytes) -> bytes:
    return _len(num, _str(1, name) + _len(2, value))


def _extensions(num: int, obj: Obj) -> bytes:
    return b"".join(_named(num, k, _str(2, yaml.safe_dump(v, default_flow_style=False, sort_keys=False)))
                    for k, v in obj.items() if k.startswith("x-"))


def _schema(s: Obj) -> bytes:
    out = [_str(1, s.get("$ref")), _str(2, s.get("format")), _str(3, s.get("title")),
           _str(4, s.get("description"))]
    if "default" in s:
        out.append(_any(5, s["default"]))
    out += [_str(19, r) for r in s.get("required") or ()]
    out += [_any(20, e) for e in s.get("enum") or ()]
    extra = s.get("additionalProperties")
    if isinstance(extra, dict):
        out.append(_len(21, _len(1, _schema(extra))))
    elif extra is not None:
        out.append(_len(21, _bool(2, extra) or b"\x10\x00"))  # boolean false is still a choice
    if s.get("type"):
        out.append(_len(22, _str(1, s["type"])))
    if isinstance(s.get("items"), dict):
        out.append(_len(23, _len(1, _schema(s["items"]))))
    if "properties" in s:
        out.append(_len(25, b"".join(_named(1, k, _schema(v)) for k, v in s["properties"].items())))
    out += [_bool(27, s.get("readOnly")), _extensions(31, s)]
    return b"".join(out)


def _parameter(p: Obj) -> bytes:
    """A ParametersItem: Parameter{body_parameter | non_body_parameter{header, form, query, path}}."""
    where = p.get("in", "")
    if where == "body":
        body = (_str(1, p.get("description")) + _str(2, p["name"]) + _str(3, where) + _bool(4, p.get("required"))
                + _len(5, _schema(p.get("schema") or {})) + _extensions(6, p))
        return _len(1, _len(1, body))
    head = _bool(1, p.get("required")) + _str(2, where) + _str(3, p.get("description")) + _str(4, p.get("name"))
    if where == "path":  # PathParameterSubSchema: 5 type, 6 format, 19 unique_items, 22 extensions
        sub = head + _str(5, p.get("type")) + _str(6, p.get("format")) + _bool(19, p.get("uniqueItems"))
        return _len(1, _len(2, _len(4, sub + _extensions(22, p))))
    if where == "header":  # HeaderParameterSubSchema: same numbering as path
        sub = head + _str(5, p.get("type")) + _str(6, p.get("format")) + _bool(19, p.get("uniqueItems"))
        return _len(1, _len(2, _len(1, sub + _extensions(22, p))))
    # QueryParameterSubSchema: 6 type, 7 format, 20 unique_items, 23 extensions
    sub = head + _str(6, p.get("type")) + _str(7, p.get("format")) + _bool(20, p.get("uniqueItems"))
    return _len(1, _len(2, _len(3, sub + _extensions(23, p))))


def _operation_pb(op: Obj) -> bytes:
    out = [_str(3, op.get("description")), _str(5, op.get("operationId"))]
    out += [_str(6, t) for t in op.get("produces") or ()]
    out += [_str(7, t) for t in op.get("consumes") or ()]
    out += [_len(8, _parameter(p)) for p in op.get("parameters") or ()]
    codes = b""
    for code, r in (op.get("responses") or {}).items():
        resp = _str(1, r.get("description")) + (_len(2, _len(1, _schema(r["schema"]))) if "schema" in r else b"")
        codes += _named(1, code, _len(1, resp))
    out += [_len(9, codes), _extensions(13, op)]
    return b"".join(out)


def encode(doc: Obj) -> bytes:
    """`doc` (Swagger 2.0 JSON) as a protobuf `openapi.v2.Document`."""
    info = doc.get("info") or {}
    paths = b""
    for path, item in doc.get("paths", {}).items():
        body = b"".join(_len(2 + i, _operation_pb(item[m])) for i, m in enumerate(_METHODS) if m in item)
        body += b"".join(_len(9, _parameter(p)) for p in item.get("parameters") or ())
        paths += _named(2, path, body)
    defs = b"".join(_named(1, name, _schema(s)) for name, s in doc.get("definitions", {}).items())
    return (_str(1, doc.get("swagger")) + _len(2, _str(1, info.get("title")) + _str(2, info.get("version")))
            + _len(8, paths) + _len(9, defs))


# -- HTTP ----------------------------------------------------------------------
def respond(accept: str, if_none_match: str | None = None, apis: APIGroups = ALL) -> web.Response:
    """`/openapi/v2`: protobuf when asked for by name, JSON otherwise (as upstream)."""
    _doc, as_json, as_pb = _built(apis.served)
    (body, etag), ctype = (as_pb, PROTOBUF_TYPE) if "com.github.proto-openapi.spec.v2" in accept else (as_json, "application/json")
    headers = {"ETag": etag, "Vary": "Accept", "Cache-Control": "no-cache, private"}
    if if_none_match and etag in (t.strip() for t in if_none_match.split(",")):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers={**headers, "Content-Type": ctype})
