"""OpenAPI v3: the index and one document per group-version.

kubectl's `apply -f` and `create -f` send `fieldValidation=Strict` only after
finding, in the group-version's document, a PATCH operation for the kind that
carries `x-kubernetes-group-version-kind` and a `fieldValidation` parameter
(../shared/kubectl-wire.md, 1.6).  Full schemas (for `kubectl explain`) come
with the API completeness work.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from apimachinery import kinds


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def document(group: str, version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    params = [{"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
              for n in ("dryRun", "fieldManager", "fieldValidation")]
    for r in kinds.in_group_version(group, version):
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        path = "/" + _gv_path(group, version) + ("/namespaces/{namespace}" if r.namespaced else "") + f"/{r.plural}/{{name}}"
        op = {"parameters": params, "x-kubernetes-group-version-kind": gvk,
              "x-kubernetes-action": "patch", "responses": {"200": {"description": "OK"}}}
        paths[path] = {"patch": op, "put": op | {"x-kubernetes-action": "put"},
                       "get": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "get",
                               "responses": {"200": {"description": "OK"}}}}
        collection = path.rsplit("/", 1)[0]
        paths[collection] = {"post": op | {"x-kubernetes-action": "post"}}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": paths,
            "components": {"schemas": {}}}


def _hash(doc: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()


def index() -> dict[str, Any]:
    out = {}
    for group, versions in kinds.groups().items():
        for v in versions:
            p = _gv_path(group, v)
            out[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={_hash(document(group, v))}"}
    return {"paths": out}
