"""Mapping between API objects and store keys/values.

Keys are `/registry/<group or core>/<plural>/<namespace>/<name>` (cluster
objects have no namespace segment).  Values are the object's JSON without
`metadata.resourceVersion`: the store's mod revision *is* the
resourceVersion, set again on every read (as kine and etcd3 storage do).
"""
from __future__ import annotations

import json
from typing import Any

import orjson

from apimachinery.kinds import ResourceInfo, storage_resource, stored_resources
from master.apiserver import errors
from master.apiserver.resources.conversion import convert, to_storage

# etcd's default --max-request-bytes (1.5 MiB) bounds a write's whole request; keep a stored value
# under it with room for the key and the txn around it, on both backends alike.
MAX_OBJECT_BYTES = 1536 * 1024 - 8 * 1024

_BY_KEYPART = {(r.group or "core", r.plural): r for r in stored_resources()}


def prefix(res: ResourceInfo, namespace: str | None = None) -> str:
    res = storage_resource(res)  # versions of one resource share its keys
    base = f"/registry/{res.group or 'core'}/{res.plural}/"
    if res.namespaced and namespace:
        base += f"{namespace}/"
    return base


def object_key(res: ResourceInfo, namespace: str | None, name: str) -> str:
    return prefix(res, namespace if res.namespaced else None) + name


def resource_of_key(key: str) -> ResourceInfo | None:
    parts = key.split("/", 4)
    if len(parts) < 5:
        return None
    return _BY_KEYPART.get((parts[2], parts[3]))


def encode(obj: dict[str, Any]) -> bytes:
    """The stored value; errors.object_too_large (413) past MAX_OBJECT_BYTES."""
    value = _encode(obj)
    if len(value) > MAX_OBJECT_BYTES:
        raise errors.object_too_large()
    return value


def _encode(obj: dict[str, Any]) -> bytes:
    obj = to_storage(obj)  # the storage version (a copy when converted)
    md: dict[str, Any] = obj.get("metadata") or {}
    rv = md.pop("resourceVersion", None)
    try:
        try:
            return orjson.dumps(obj)  # several times faster than json on big objects (managedFields)
        except TypeError as e:  # an integer beyond 64 bits: json writes it, after a space that tells decode
            if "Recursion" in str(e):  # body.MAX_DEPTH keeps requests under it; never store what cannot be served
                raise errors.bad_request("the object nests too deeply to be stored") from None
            return b" " + json.dumps(obj, separators=(",", ":")).encode()
    finally:
        if rv is not None and md is obj.get("metadata"):
            md["resourceVersion"] = rv


def decode(value: bytes, revision: int, res: ResourceInfo | None = None) -> dict[str, Any]:
    """The stored object at `revision`, converted to `res`'s version when given."""
    # orjson would read an integer beyond 64 bits as a float: encode marked those values with a space
    obj = json.loads(value) if value[:1] == b" " else orjson.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return convert(obj, res) if res is not None else obj
