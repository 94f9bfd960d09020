"""DELETE for every kind: preconditions, the propagation policy and the garbage
collector's finalizers, graceful deletion, and removal once nothing holds the
object.  Kind rules come from the strategies (`deletion_grace`, `finalizing`,
`mark_deleting`: pods' grace periods, namespaces' spec.finalizers).

Neighbours: `Registry.delete` calls `delete`; `Registry.update` calls `may_vanish`
when a write leaves a deleted object with nothing holding it.
"""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from apimachinery.client import retry_on_conflict
from apimachinery.kinds import ResourceInfo
from master.apiserver import errors, storage
from master.apiserver.resources import Obj, strategy_for
from master.store import Conflict, KeyNotFound

if TYPE_CHECKING:
    from master.apiserver.registry import Registry

FOREGROUND, ORPHAN = "foregroundDeletion", "orphan"  # the garbage collector's finalizers
POLICIES = ("Foreground", "Background", "Orphan")

def propagation_policy(options: Obj, res: ResourceInfo | None = None,
                       finalizers: list[str] | tuple[str, ...] = ()) -> str:
    """The policy a DELETE carries out, as upstream's generic store decides it: the options'
    propagationPolicy (or the legacy orphanDependents), else a GC finalizer the object already holds,
    else the kind's default (its strategy's gc_policy: Orphan for ReplicationControllers and Jobs,
    Background for the rest).  Kinds whose policy is Unsupported (events) always get Background
    (no finalizer).  An unknown policy is a 400."""
    policy = options.get("propagationPolicy")
    if policy is not None and policy not in POLICIES:
        raise errors.bad_request(f"propagationPolicy: Unsupported value: {policy!r}: supported values: "
                                 + ", ".join(f'"{p}"' for p in POLICIES))
    default = strategy_for(res).gc_policy if res is not None else "Background"
    if default == "Unsupported":
        return "Background"
    if policy is not None:
        return str(policy)
    if options.get("orphanDependents") is not None:
        return "Orphan" if options["orphanDependents"] is True else "Background"
    if ORPHAN in finalizers:
        return "Orphan"
    if FOREGROUND in finalizers:
        return "Foreground"
    return default


def may_vanish(res: ResourceInfo, obj: Obj) -> bool:
    """A deleted obj without metadata.finalizers goes once its kind's finalizers are done and no grace
    period is running (a pod waits for its agent to report the containers stopped)."""
    if strategy_for(res).finalizing(obj):
        return False
    return not obj["metadata"].get("deletionGracePeriodSeconds", 0) > 0


def _check_preconditions(res: ResourceInfo, name: str, md: Obj, options: Obj) -> None:
    pre = options.get("preconditions") or {}
    if pre.get("uid") and pre["uid"] != md.get("uid"):
        raise errors.conflict(res, name, f'Precondition failed: UID in precondition: {pre["uid"]}, UID in object meta: {md.get("uid")}')
    if pre.get("resourceVersion") and pre["resourceVersion"] != md.get("resourceVersion"):
        raise errors.conflict(res, name, f'Precondition failed: ResourceVersion in precondition: {pre["resourceVersion"]}, ResourceVersion in object meta: {md.get("resourceVersion")}')


def _gc_finalizers(res: ResourceInfo, md: Obj, options: Obj) -> bool:
    """Put the policy's GC finalizer in place of the other one (as upstream's generic store): the
    garbage collector deletes or orphans the dependents, then drops it; Background removes both.
    Returns whether the finalizers changed."""
    want = {"Foreground": FOREGROUND, "Orphan": ORPHAN}.get(propagation_policy(options, res, md.get("finalizers") or ()))
    current = list(md.get("finalizers") or [])
    kept = [f for f in current if f not in (FOREGROUND, ORPHAN) or f == want]
    if want and want not in kept:
        kept.append(want)
    if kept == current:
        return False
    if kept:
        md["finalizers"] = kept
    else:
        md.pop("finalizers", None)
    return True


def remove(registry: Registry, res: ResourceInfo, name: str, expected: int, obj: Obj) -> Obj:
    """Delete obj's key at revision `expected`, then give back what it held."""
    key = storage.object_key(res, obj["metadata"].get("namespace") if res.namespaced else None, name)
    try:
        rev, _kv = registry.store.delete(key, expected)
    except Conflict:
        raise errors.stale_write(res, name) from None
    except KeyNotFound:
        raise errors.not_found(res, name) from None
    strategy_for(res).release(registry.store, obj, None)
    strategy_for(res).removed(registry.store, obj)
    obj["metadata"]["resourceVersion"] = str(rev)
    return obj


def delete(registry: Registry, res: ResourceInfo, ns: str | None, name: str, options: Obj | None = None,
           dry_run: bool = False) -> tuple[Obj, bool]:
    """Delete, gracefully where the kind wants it. Returns (object, gone now).  Re-reads and tries again
    when another write lands first (errors.StaleWrite)."""
    opts = options or {}
    return retry_on_conflict(lambda: _delete_once(registry, res, ns, name, opts, dry_run), 16,
                             retriable=errors.is_stale_write)


def _delete_once(registry: Registry, res: ResourceInfo, ns: str | None, name: str, options: Obj,
                 dry_run: bool) -> tuple[Obj, bool]:
    strat = strategy_for(res)
    obj = registry.get(res, ns, name)
    md = obj["metadata"]
    _check_preconditions(res, name, md, options)
    grace = strat.deletion_grace(obj, options)
    added = _gc_finalizers(res, md, options)
    if not grace and not md.get("finalizers") and not strat.finalizing(obj):
        if dry_run:
            return obj, True
        return remove(registry, res, name, int(md["resourceVersion"]), obj), True
    # graceful: mark and let the owner (agent, controller) finish
    if md.get("deletionTimestamp") and (grace is None or grace >= md.get("deletionGracePeriodSeconds", 0)):
        if not added:
            return obj, False
        grace = md.get("deletionGracePeriodSeconds", 0)
    now = dt.datetime.now(dt.timezone.utc)
    try:
        md["deletionTimestamp"] = (now + dt.timedelta(seconds=grace or 0)).strftime("%Y-%m-%dT%H:%M:%SZ")
    except OverflowError:
        raise errors.bad_request(f"gracePeriodSeconds: Invalid value: {grace}: too large") from None
    md["deletionGracePeriodSeconds"] = grace or 0
    strat.mark_deleting(obj)
    if dry_run:
        return obj, False
    return registry.swap(res, ns, name, obj), False
