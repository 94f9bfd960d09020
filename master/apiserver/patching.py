"""PATCH for every kind: JSON patch, merge patch, strategic merge patch, and
server-side apply (which creates an absent object).  The patch functions are
apimachinery.patch's and ssa's; this module applies them to the stored object
and writes the result through the registry's update rules, re-reading when
another write lands first.

Neighbours: `Registry.patch` calls `patch`; `scalerest` uses `patched` for
patches of a Scale.
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from apimachinery.client import retry_on_conflict
from apimachinery.kinds import ResourceInfo
from apimachinery.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from master.apiserver import errors, ssa
from master.apiserver.body import MAX_DEPTH, too_deep
from master.apiserver.resources import Obj
from master.apiserver.schemas.structure import for_kind
from master.apiserver.schemas.types import object_type_error

if TYPE_CHECKING:
    from master.apiserver.registry import Registry

APPLY_PATCH = "application/apply-patch+yaml"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PATCH_TYPES = (JSON_PATCH, "application/merge-patch+json", STRATEGIC_PATCH, APPLY_PATCH)


class _CreatedMeanwhile(Exception):
    """An apply found no object, and another writer created it before our create: apply to it."""


def patched(old: Obj, content_type: str, body: Any, kind: str) -> Obj:
    """`old` (not changed) with a JSON, merge or strategic merge patch applied."""
    current = copy.deepcopy(old)
    try:
        if content_type == JSON_PATCH:
            new = json_patch(current, body)
        elif content_type == "application/merge-patch+json":
            new = merge_patch(current, body)
        else:  # strategic merge, and server-side apply approximated by it
            new = strategic_merge_patch(current, body, kind)
    except (PatchError, TypeError, AttributeError, KeyError, ValueError) as e:
        # the patch functions raise PatchError for what they check; a patch of the wrong shape
        # where they do not look (a JSON patch whose `from` is a number) is the client's error too
        raise errors.APIError(422 if content_type == JSON_PATCH else 400,
                              "Invalid" if content_type == JSON_PATCH else "BadRequest",
                              str(e) if isinstance(e, PatchError) else f"the patch cannot be applied: {e}") from None
    if not isinstance(new, dict):
        raise errors.bad_request("the patch did not produce an object")
    if too_deep(new):
        raise errors.bad_request(f"the patched object nests more than {MAX_DEPTH} levels deep")
    return new


def check_types(res: ResourceInfo, name: str, obj: Obj) -> None:
    """A patch whose result does not decode as the kind is a 422, as upstream's patcher says it."""
    err = object_type_error(res, obj)
    if err:
        raise errors.invalid(res, res.kind, name, [("patch", f"Invalid value: {err}")])


def applied(registry: Registry, res: ResourceInfo, ns: str | None, name: str, old: Obj | None, body: Any,
            manager: str | None, force: bool, subresource: str | None) -> Obj:
    """Server-side apply of `body` to `old` (None: absent), with ownership and conflicts."""
    if not manager:
        raise errors.APIError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                              "Required value: is required for apply patch")
    body = registry.check_body(res, ns, copy.deepcopy(body))
    md = body["metadata"]
    if md.get("name", name) != name:
        raise errors.bad_request(f'the name of the object ({md["name"]}) does not match the name on the URL ({name})')
    md["name"] = name
    try:
        new = ssa.apply(old, body, manager, for_kind(res.group, res.version, res.kind), registry.clock(), force,
                        subresource or "")
    except ssa.ApplyConflict as e:
        raise errors.APIError(409, "Conflict", str(e), {"causes": e.causes()}) from None
    except ssa.InvalidObject as e:
        raise errors.APIError(422, "Invalid", f"failed to create typed patch object: {e}") from None
    except ssa.InvalidManagedFields as e:
        raise errors.bad_request(f"metadata.managedFields: Invalid value: {e}") from None
    check_types(res, name, new)
    return new


def patch(registry: Registry, res: ResourceInfo, ns: str | None, name: str, content_type: str, body: Any,
          subresource: str | None = None, dry_run: bool = False, manager: str | None = None,
          force: bool = False) -> tuple[Obj, bool]:
    """Apply a patch; returns (object, created) — apply patches create absent objects.
    Apply patches are server-side apply by `manager` (409 on conflicts unless `force`); the other
    types are Update writes recorded under `manager`.  A write that came between our read and ours
    is retried on the newer object; a patch that named a resourceVersion itself keeps its 409."""
    apply = content_type == APPLY_PATCH
    if force and not apply:
        raise errors.APIError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: force: '
                              "Forbidden: may not be specified for non-apply patch")

    def attempt() -> tuple[Obj, bool]:
        try:
            old = registry.get(res, ns, name)
        except errors.APIError as e:
            if e.code == 404 and apply and subresource is None:
                new = applied(registry, res, ns, name, None, body, manager, force, None)
                try:
                    return registry.create(res, ns, new, dry_run), True
                except errors.APIError as e2:
                    if e2.reason == "AlreadyExists":
                        raise _CreatedMeanwhile() from None
                    raise
            raise
        if apply:
            new = applied(registry, res, ns, name, old, body, manager, force, subresource)
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        else:
            new = patched(old, content_type, body, res.kind)
            check_types(res, name, new)
            md = new.setdefault("metadata", {})
            md["resourceVersion"] = md.get("resourceVersion") or old["metadata"]["resourceVersion"]
        return registry.update(res, ns, name, new, subresource, dry_run, _old=old,
                               manager=None if apply else manager), False

    try:
        return retry_on_conflict(attempt, 16, retriable=lambda e: errors.is_stale_write(e)
                                 or isinstance(e, _CreatedMeanwhile))
    except _CreatedMeanwhile:
        raise errors.conflict(res, name, "too many concurrent writers; try again") from None
