"""OpenAPI v3: the index and one document per group-version.

kubectl's `apply -f` and `create -f` send `fieldValidation=Strict` only after
finding, in the group-version's document, a PATCH operation for the kind that
carries `x-kubernetes-group-version-kind` and a `fieldValidation` parameter
(../shared/kubectl-wire.md, 1.6).  `kubectl explain` and kubectl's
strategic-merge-patch builder read `components.schemas` (from `schemas`): the
kind's schema found by its `x-kubernetes-group-version-kind`, descriptions,
`$ref`s wrapped in `allOf`, patch merge keys.  A custom resource's kind
schema is its CRD version's (customresources.customresource).  Documents are built once per
group-version and served with an ETag (304 on `If-None-Match`).  The index
and the documents cover only what the `APIGroups` passed in serves
(`--runtime-config`); a switched-off group-version's document is a 404.
`/openapi/v2` is `openapi_v2`'s, converted from these documents (kubectl's
client-side validation reads it); this module does not import it.
"""
from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from aiohttp import web

from apimachinery import kinds
from apimachinery.kinds import ResourceInfo
from master.apiserver import errors, schemas
from apimachinery.apigroups import ALL, APIGroups
from master.apiserver.customresources import customresource

PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json")
_STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
_PATCH = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _param(name: str, desc: str, typ: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "description": desc, "schema": {"type": typ, "uniqueItems": True}}


_WRITE_PARAMS = [
    _param("dryRun", "When present, indicates that modifications should not be persisted. Valid value: All."),
    _param("fieldManager", "fieldManager is a name associated with the actor or entity that is making these "
           "changes."),
    _param("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request "
           "containing unknown or duplicate fields. Valid values are: Ignore, Warn (the default) and Strict."),
]
_FORCE = _param("force", "Force is going to \"force\" Apply requests.", "boolean")


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": schemas.REF + name}


def _body(name: str, types: tuple[str, ...] = ("*/*",)) -> dict[str, Any]:
    return {"content": {t: {"schema": _ref(name)} for t in types}, "required": True}


def _ok(name: str, code: str = "200") -> dict[str, Any]:
    return {code: {"description": "OK", "content": {"application/json": {"schema": _ref(name)}}}}


def _patch_types(r: ResourceInfo) -> tuple[str, ...]:
    """Strategic merge patch needs the kind's schema (merge keys): a kind without a generated one
    does not offer it, as upstream's custom resources do not, so kubectl falls back to a JSON merge
    patch instead of warning that its patch builder found no fields."""
    if schemas.has_schema(r.group, r.version, r.kind):
        return PATCH_TYPES
    return tuple(t for t in PATCH_TYPES if t != "application/strategic-merge-patch+json")


def _operations(r: ResourceInfo) -> dict[str, dict[str, Any]]:
    """The paths of one kind: item (get, put, patch, delete) and collection (list, post)."""
    name = customresource.schema_name(r) if r.custom is not None else schemas.schema_name(r.group, r.version, r.kind)
    gvk = {"group": r.group, "version": r.version, "kind": r.kind}
    base = "/" + _gv_path(r.group, r.version) + ("/namespaces/{namespace}" if r.namespaced else "")
    tag = {"x-kubernetes-group-version-kind": gvk}

    def op(action: str, desc: str, **extra: Any) -> dict[str, Any]:
        return {"description": desc, "operationId": f"{action}{r.kind}", **extra, **tag,
                "x-kubernetes-action": action}

    item: dict[str, Any] = {}
    coll: dict[str, Any] = {}
    if "get" in r.verbs:
        item["get"] = op("get", f"read the specified {r.kind}", responses=_ok(name))
    if "update" in r.verbs:
        item["put"] = op("put", f"replace the specified {r.kind}", parameters=_WRITE_PARAMS,
                         requestBody=_body(name), responses=_ok(name) | _ok(name, "201"))
    if "patch" in r.verbs:
        item["patch"] = op("patch", f"partially update the specified {r.kind}", parameters=[*_WRITE_PARAMS, _FORCE],
                           requestBody=_body(_PATCH, _patch_types(r)), responses=_ok(name) | _ok(name, "201"))
    if "delete" in r.verbs:
        item["delete"] = op("delete", f"delete a {r.kind}", responses=_ok(_STATUS))
    if "list" in r.verbs:
        lst = schemas.schema_name(r.group, r.version, r.kind + "List")
        coll["get"] = op("list", f"list or watch objects of kind {r.kind}",
                         responses=_ok(lst if schemas.has_schema(r.group, r.version, r.kind + "List") else name))
    if "create" in r.verbs:
        coll["post"] = op("post", f"create a {r.kind}", parameters=_WRITE_PARAMS, requestBody=_body(name),
                          responses=_ok(name) | _ok(name, "201"))
    ns = [{"name": "namespace", "in": "path", "required": True, "schema": {"type": "string", "uniqueItems": True}}]
    common = ns if r.namespaced else []
    out = {}
    if coll:
        out[f"{base}/{r.plural}"] = {**coll, "parameters": common}
    if item:
        named = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string", "uniqueItems": True}}]
        out[f"{base}/{r.plural}/{{name}}"] = {**item, "parameters": named + common}
    return out


def document(group: str, version: str) -> dict[str, Any]:
    return _built(group, version, tuple(kinds.in_group_version(group, version)))[0]


def built_document(group: str, version: str, apis: APIGroups = ALL) -> dict[str, Any]:
    """The (shared, cached: do not mutate) document of what `apis` serves in one group-version."""
    return _built(group, version, tuple(apis.in_group_version(group, version)))[0]


@functools.cache
def _built(group: str, version: str, resources: tuple[ResourceInfo, ...]) -> tuple[dict[str, Any], bytes, str]:
    """(document, its JSON, its hash), once per distinct set of resources in the group-version."""
    paths: dict[str, Any] = {}
    roots: dict[str, schemas.Schema] = {}
    for r in resources:
        paths.update(_operations(r))
        if r.custom is not None:
            roots[customresource.schema_name(r)] = customresource.openapi_schema(r)
            continue
        for k in (r.kind, r.kind + "List"):
            if k == r.kind or schemas.has_schema(r.group, r.version, k):
                roots[schemas.schema_name(r.group, r.version, k)] = schemas.kind_schema(r.group, r.version, k)
    for extra in (_STATUS, _PATCH):
        if extra in schemas.definitions():
            roots[extra] = schemas.definitions()[extra]
    doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": paths,
           "components": {"schemas": schemas.closure(roots)}}
    body = json.dumps(doc, separators=(",", ":")).encode()
    return doc, body, hashlib.sha512(body).hexdigest().upper()


def index(apis: APIGroups = ALL) -> dict[str, Any]:
    out = {}
    for group, versions in apis.groups().items():
        for v in versions:
            p = _gv_path(group, v)
            digest = _built(group, v, tuple(apis.in_group_version(group, v)))[2]
            out[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={digest}"}
    return {"paths": out}


def respond(path: str, if_none_match: str | None = None, apis: APIGroups = ALL) -> web.Response:
    """Serve `/openapi/v3` or `/openapi/v3/<gv path>`; 404 for a group-version we do not serve.
    (`/openapi/v2` is `openapi_v2.respond`: it builds on this module's documents, not the reverse.)"""
    if not path.startswith("/openapi/v3"):
        raise errors.path_not_found(path)
    if path == "/openapi/v3":
        return web.json_response(index(apis), dumps=lambda o: json.dumps(o, separators=(",", ":")))
    gv = path[len("/openapi/v3/"):].split("/")
    if len(gv) == 2 and gv[0] == "api":
        group, version = "", gv[1]
    elif len(gv) == 3 and gv[0] == "apis":
        group, version = gv[1], gv[2]
    else:
        raise errors.path_not_found(path)
    if not apis.serves_version(group, version):
        raise errors.path_not_found(path)
    _doc, body, digest = _built(group, version, tuple(apis.in_group_version(group, version)))
    etag = f'"{digest}"'
    headers = {"ETag": etag, "Vary": "Accept", "Cache-Control": "no-cache, private"}
    if if_none_match and etag in (t.strip() for t in if_none_match.split(",")):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers={**headers, "Content-Type": "application/json"})
