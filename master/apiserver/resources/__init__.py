"""Kind-specific rules: defaults, validation and which parts of an object each
endpoint may change.  The generic REST handlers call `strategy_for(res)`.

A strategy's methods are pure: they mutate only the object handed to them and
return validation causes as (field, message) pairs.
"""
from __future__ import annotations

import json
from typing import Any, Protocol

from apimachinery import meta
from apimachinery.kinds import ResourceInfo
from master.store import Store

Obj = dict[str, Any]
Causes = list[tuple[str, str]]


class Objects(Protocol):
    """What a kind's subresource (pods/binding, namespaces/finalize) needs of the registry: reads,
    whole-object updates through the generic rules, and a raw compare-and-swap."""

    def get(self, res: ResourceInfo, ns: str | None, name: str) -> Obj: ...

    def update(self, res: ResourceInfo, ns: str | None, name: str, obj: Any, subresource: str | None = None,
               dry_run: bool = False, _old: Obj | None = None, manager: str | None = None,
               _field_sub: str = "") -> Obj: ...

    def swap(self, res: ResourceInfo, ns: str | None, name: str, obj: Obj) -> Obj:
        """Write obj as it is over the version its metadata.resourceVersion names; errors.StaleWrite
        when another write came first.  Not retried."""
        ...


class Strategy:
    """Defaults for any kind; subclasses add their own rules."""

    has_status = True      # the main resource ignores status; /status changes only status
    # upstream's DefaultGarbageCollectionPolicy: what a DELETE without a policy does with dependents,
    # "Background" (DeleteDependents), "Orphan", or "Unsupported" (no GC finalizer whatever the options)
    gc_policy = "Background"
    tracks_generation = True
    name_check = staticmethod(meta.validate_dns1123_subdomain)

    def prepare_create(self, obj: Obj) -> None:
        pass

    def validate(self, obj: Obj) -> Causes:
        return []

    def prepare_update(self, new: Obj, old: Obj) -> None:
        if self.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        return self.validate(new)

    def prepare_status_update(self, new: Obj, old: Obj) -> None:
        """Only status (and nothing of metadata but labels/annotations upstream ignores) changes."""
        for k in list(new):
            if k not in ("status", "metadata", "apiVersion", "kind"):
                del new[k]
        for k, v in old.items():
            if k not in ("status", "metadata"):
                new[k] = v
        new["metadata"] = old["metadata"] | {"resourceVersion": new.get("metadata", {}).get("resourceVersion", "")}

    def allocate(self, store: Store, new: Obj, old: Obj | None) -> None:
        """Claim in the store what `new` needs and `old` (None on create) did not hold
        (ClusterIPs, NodePorts). Called after validation, right before the write;
        raises errors.APIError when a requested value is taken. Idempotent."""

    def release(self, store: Store, obj: Obj, keep: Obj | None) -> None:
        """Give back what `obj` holds and `keep` does not: after a delete (keep None),
        after an update (obj old, keep new), after a failed write (obj new, keep old).
        Idempotent; never raises for values already free."""

    def removed(self, store: Store, obj: Obj) -> None:
        """`obj` has just left the store: remove what exists only for it (a CRD's custom resources).
        Idempotent; objects already gone are no error."""

    # -- deletion (the registry's generic rules ask; see master.apiserver.deletion) --
    def deletion_grace(self, obj: Obj, options: Obj) -> int | None:
        """The grace period a DELETE with `options` gives `obj`: None or 0 removes it at once (when no
        finalizer holds it), N > 0 marks it and waits for its owner (the agent) to finish."""
        return None

    def finalizing(self, obj: Obj) -> bool:
        """Whether the kind's own finalizers (beyond metadata.finalizers) still hold a deleted obj."""
        return False

    def mark_deleting(self, obj: Obj) -> None:
        """Set what the kind shows while a deleted obj waits (a Namespace's phase Terminating)."""

    def spec_changed(self, new: Obj, old: Obj) -> bool:
        return json.dumps(new.get("spec"), sort_keys=True) != json.dumps(old.get("spec"), sort_keys=True)


_STRATEGIES: dict[str, Strategy] = {}


def register(plural: str, group: str = ""):
    def deco(cls: type[Strategy]) -> type[Strategy]:
        _STRATEGIES[f"{group}/{plural}"] = cls()
        return cls
    return deco


_DEFAULT = Strategy()


def strategy_for(res: ResourceInfo) -> Strategy:
    if res.custom is not None:  # a custom resource carries its own (customresources.customresource)
        return res.custom  # type: ignore[return-value]
    return _STRATEGIES.get(f"{res.group}/{res.plural}", _DEFAULT)


from master.apiserver.resources import (  # noqa: E402,F401  (registration)
    apiextensions, apps, configmaps, endpoints, events, hpa, ingresses, jobs, namespaces, nodes, pods, policy, rbac,
    replicationcontrollers, secrets, serviceaccounts, services, volumes,
)
