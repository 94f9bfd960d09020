"""Namespace rules: names are DNS-1123 labels, phase Active until deleted, then
Terminating until `spec.finalizers` is empty (the namespace controller empties it
through the `finalize` subresource, `finalize` here)."""
from __future__ import annotations

import copy
from typing import Any

from apimachinery import meta
from apimachinery.kinds import lookup
from master.apiserver import errors
from master.apiserver.resources import Objects, Obj, Strategy, register

NAMESPACES = lookup("", "v1", "namespaces")


@register("namespaces")
class NamespaceStrategy(Strategy):
    tracks_generation = False
    name_check = staticmethod(meta.validate_dns1123_label)

    def prepare_create(self, obj: Obj) -> None:
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}

    def finalizing(self, obj: Obj) -> bool:
        return bool((obj.get("spec") or {}).get("finalizers"))

    def mark_deleting(self, obj: Obj) -> None:
        obj.setdefault("status", {})["phase"] = "Terminating"


def finalize(objects: Objects, name: str, body: Any, dry_run: bool = False) -> Obj:
    """PUT namespaces/{name}/finalize: only spec.finalizers changes; a deleted namespace left with
    no finalizers vanishes."""
    assert NAMESPACES is not None
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be a Namespace")
    old = objects.get(NAMESPACES, None, name)
    new = copy.deepcopy(old)
    new.setdefault("spec", {})["finalizers"] = list((body.get("spec") or {}).get("finalizers") or [])
    rv = (body.get("metadata") or {}).get("resourceVersion")
    if rv:
        new["metadata"]["resourceVersion"] = rv
    return objects.update(NAMESPACES, None, name, new, None, dry_run, _old=old)
