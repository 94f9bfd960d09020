"""The `scale` subresource's verbs: GET, PUT and PATCH (apply included) of an
object's autoscaling/v1 Scale, through the registry; only spec.replicas of the
object changes.  The conversions are `scale`'s (pure).

Neighbours: the app's subresource table routes `*/scale` here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apimachinery.client import retry_on_conflict
from apimachinery.kinds import ResourceInfo
from master.apiserver import errors, ssa
from master.apiserver.patching import APPLY_PATCH, patched
from master.apiserver.resources import Obj
from master.apiserver.scale import apply_scale, apply_to_scale, replicas_of, to_scale
from master.apiserver.schemas.types import named_type_error

if TYPE_CHECKING:
    from master.apiserver.registry import Registry

SCALE_SCHEMA = "io.k8s.api.autoscaling.v1.Scale"


def get_scale(registry: Registry, res: ResourceInfo, ns: str | None, name: str) -> Obj:
    return to_scale(registry.get(res, ns, name))


def update_scale(registry: Registry, res: ResourceInfo, ns: str | None, name: str, body: Any,
                 content_type: str | None = None, dry_run: bool = False, manager: str | None = None,
                 force: bool = False) -> Obj:
    """PUT (content_type None) or PATCH of the Scale. An apply patch is a server-side apply of the Scale
    whose spec.replicas ownership lands in the object's managedFields (subresource "scale"); 409 on
    another manager's replicas unless `force`.  Re-reads when another write lands first."""
    if content_type is None:
        err = named_type_error(SCALE_SCHEMA, body) if isinstance(body, dict) else "the request body must be a Scale object"
        if err:
            raise errors.bad_request(f'Scale in version "v1" cannot be handled as a Scale: {err}')

    def attempt() -> Obj:
        old = registry.get(res, ns, name)
        if content_type == APPLY_PATCH:
            new = _scale_applied(registry, res, name, old, body, manager, force)
            return to_scale(registry.update(res, ns, name, new, None, dry_run, _old=old))
        new_scale = body if content_type is None else patched(to_scale(old), content_type, body, "Scale")
        replicas = replicas_of(new_scale)
        if replicas is None:
            raise errors.invalid(res, "Scale", name, [("spec.replicas", "Invalid value: must be a non-negative integer")])
        want_rv = ((new_scale.get("metadata") or {}).get("resourceVersion") or "") if content_type is None else ""
        if want_rv and want_rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(res, name, errors.MODIFIED)
        return to_scale(registry.update(res, ns, name, apply_scale(old, replicas), None, dry_run, _old=old,
                                        manager=manager, _field_sub="scale"))
    return retry_on_conflict(attempt, 16, retriable=errors.is_stale_write)


def _scale_applied(registry: Registry, res: ResourceInfo, name: str, old: Obj, body: Any, manager: str | None,
                   force: bool) -> Obj:
    if not manager:
        raise errors.APIError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                              "Required value: is required for apply patch")
    if not isinstance(body, dict) or body.get("kind", "Scale") != "Scale":
        raise errors.bad_request("the body of an apply to the scale subresource must be a Scale")
    if not isinstance(body.get("metadata") or {}, dict) or (body.get("metadata") or {}).get("name", name) != name:
        raise errors.bad_request(f'the name of the object ({(body.get("metadata") or {}).get("name")}) does not '
                                 f'match the name on the URL ({name})')
    try:
        return apply_to_scale(old, body, manager, registry.clock(), force)
    except ssa.ApplyConflict as e:
        raise errors.APIError(409, "Conflict", str(e), {"causes": e.causes()}) from None
    except (ssa.InvalidObject, ValueError) as e:
        raise errors.invalid(res, "Scale", name, [("spec.replicas", f"Invalid value: {e}")]) from None
