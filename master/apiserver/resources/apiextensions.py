"""CustomResourceDefinitions (apiextensions.k8s.io/v1): stored, listed,
watched and validated like any cluster-scoped kind.

A stored CRD's served versions are served at once (master.apiserver.customresources.customapis
follows the store; resources.customresource holds their rules), so the
status says so on every write: `NamesAccepted` and `Established` True,
`acceptedNames` the spec's names, `storedVersions` the storage version
(versions stored before stay listed until a user removes them, as upstream).

Deleting a CRD deletes its custom resources right after the CRD leaves the
store (`removed`).  Upstream instead holds the CRD with the
`customresourcecleanup.apiextensions.k8s.io` finalizer until a controller has
emptied it; the end state is the same: nothing of it stays stored or served.

Validation is the basic shape upstream's ValidateCustomResourceDefinition
checks (name = plural.group, group with a dot, scope, names, exactly one
storage version, a structural root schema of type object); defaults are
upstream's (singular, listKind, conversion strategy None).
"""
from __future__ import annotations

import re

from apimachinery import kinds, meta
from master.apiserver.resources import Causes, Obj, Strategy, register
from master.store import Conflict, KeyNotFound, Store

SCOPES = ("Cluster", "Namespaced")
NAMES_ACCEPTED = "no conflicts found"
ESTABLISHED = "the initial names have been accepted"
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")


def _dns1035(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    return None if _DNS1035.match(value) else _DNS1035_MSG


def storage_version(spec: Obj) -> str | None:
    stored = [v.get("name") for v in spec.get("versions") or [] if isinstance(v, dict) and v.get("storage")]
    return stored[0] if len(stored) == 1 else None


def _names_causes(names: Obj) -> Causes:
    causes: Causes = []
    for field in ("plural", "singular"):
        value = names.get(field)
        if not value:
            if field == "plural":
                causes.append(("spec.names.plural", "Required value"))
            continue
        err = _dns1035(str(value))
        if err:
            causes.append((f"spec.names.{field}", f'Invalid value: "{value}": {err}'))
    for field in ("kind", "listKind"):
        value = names.get(field)
        if not value:
            causes.append((f"spec.names.{field}", "Required value"))
        elif _dns1035(str(value).lower()):
            causes.append((f"spec.names.{field}", f'Invalid value: "{value}": may have mixed case, but should '
                                                   f"otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?"))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        causes.append(("spec.names.listKind", f'Invalid value: "{names["listKind"]}": kind and listKind may not '
                                              "be the same"))
    for i, short in enumerate(names.get("shortNames") or []):
        err = _dns1035(str(short))
        if err:
            causes.append((f"spec.names.shortNames[{i}]", f'Invalid value: "{short}": {err}'))
    return causes


def _versions_causes(versions: list[Obj]) -> Causes:
    causes: Causes = []
    seen: set[str] = set()
    for i, v in enumerate(versions):
        where = f"spec.versions[{i}]"
        name = str(v.get("name") or "")
        err = _dns1035(name) if name else None
        if not name:
            causes.append((f"{where}.name", "Required value"))
        elif err:
            causes.append((f"{where}.name", f'Invalid value: "{name}": {err}'))
        elif name in seen:
            causes.append((f"{where}.name", f'Duplicate value: "{name}"'))
        seen.add(name)
        root = (v.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(root, dict):
            causes.append((f"{where}.schema.openAPIV3Schema", "Required value: schemas are required"))
        elif not root.get("type"):
            causes.append((f"{where}.schema.openAPIV3Schema.type", "Required value: must not be empty at the root"))
        elif root["type"] != "object":
            causes.append((f"{where}.schema.openAPIV3Schema.type",
                           f'Invalid value: "{root["type"]}": must be object at the root'))
    if versions and sum(1 for v in versions if v.get("storage") is True) != 1:
        names = ", ".join(str(v.get("name", "")) for v in versions)
        causes.append(("spec.versions", f"Invalid value: [{names}]: must have exactly one version marked as "
                                        "storage version"))
    return causes


def _default(spec: Obj) -> None:
    """Upstream's defaults for a v1 CRD spec (as its decoder applies them on every write)."""
    names = spec.get("names")
    if isinstance(names, dict) and names.get("kind"):
        names.setdefault("singular", str(names["kind"]).lower())
        names.setdefault("listKind", f'{names["kind"]}List')
    spec.setdefault("conversion", {"strategy": "None"})
    for v in spec.get("versions") or []:
        if isinstance(v, dict):
            v.setdefault("served", False)
            v.setdefault("storage", False)


def _at(obj: object, *path: str) -> object:
    for p in path:
        obj = obj.get(p) if isinstance(obj, dict) else None
    return obj


def _condition(kind: str, reason: str, message: str, old: list[Obj]) -> Obj:
    """A True condition; its lastTransitionTime is kept when it was True already."""
    before = next((c for c in old if isinstance(c, dict) and c.get("type") == kind), None)
    when = before["lastTransitionTime"] if before and before.get("status") == "True" and \
        before.get("lastTransitionTime") else meta.now_rfc3339()
    return {"type": kind, "status": "True", "lastTransitionTime": when, "reason": reason, "message": message}


def served_status(spec: Obj, old: Obj | None = None) -> Obj:
    """The status of a CRD whose versions are served: names accepted, established, stored versions."""
    old = old or {}
    names = spec.get("names")
    names = names if isinstance(names, dict) else {}
    accepted = {k: v for k, v in names.items() if k in ("plural", "singular", "shortNames", "kind", "listKind",
                                                         "categories")}
    stored = [v for v in old.get("storedVersions") or [] if isinstance(v, str)]
    current = storage_version(spec)
    if current and current not in stored:
        stored.append(current)
    conditions = old.get("conditions") or []
    return {
        "acceptedNames": accepted,
        "conditions": [_condition("NamesAccepted", "NoConflicts", NAMES_ACCEPTED, conditions),
                       _condition("Established", "InitialNamesAccepted", ESTABLISHED, conditions)],
        "storedVersions": stored,
    }


@register("customresourcedefinitions", "apiextensions.k8s.io")
class CustomResourceDefinitionStrategy(Strategy):
    def prepare_create(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            _default(spec)
        obj["status"] = served_status(spec if isinstance(spec, dict) else {})

    def prepare_update(self, new: Obj, old: Obj) -> None:
        if isinstance(new.get("spec"), dict):
            _default(new["spec"])
        super().prepare_update(new, old)
        if isinstance(new.get("spec"), dict):
            new["status"] = served_status(new["spec"], old.get("status") or {})

    def removed(self, store: Store, obj: Obj) -> None:
        """Delete every custom resource of the CRD (its keys: storage.prefix of any of its versions)."""
        spec = obj.get("spec") or {}
        group, plural = spec.get("group"), (spec.get("names") or {}).get("plural")
        if not group or not plural or any(r.group == group and r.plural == plural for r in kinds.RESOURCES):
            return  # a CRD naming a built-in resource never served it: its objects are not the CRD's
        kvs, _rev, _more = store.list(f"/registry/{group}/{plural}/")
        for kv in kvs:
            try:
                store.delete(kv.key)
            except (KeyNotFound, Conflict):
                pass  # gone already

    def validate(self, obj: Obj) -> Causes:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [("spec", "Required value")]
        causes: Causes = []
        group = str(spec.get("group") or "")
        if not group:
            causes.append(("spec.group", "Required value"))
        elif meta.validate_dns1123_subdomain(group):
            causes.append(("spec.group", f'Invalid value: "{group}": {meta.validate_dns1123_subdomain(group)}'))
        elif "." not in group:
            causes.append(("spec.group", f'Invalid value: "{group}": should be a domain with at least one dot'))
        scope = spec.get("scope")
        if not scope:
            causes.append(("spec.scope", "Required value"))
        elif scope not in SCOPES:
            causes.append(("spec.scope", f'Unsupported value: "{scope}": supported values: "Cluster", "Namespaced"'))
        names = spec.get("names")
        if not isinstance(names, dict):
            causes.append(("spec.names", "Required value"))
            names = {}
        causes += _names_causes(names)
        name = obj.get("metadata", {}).get("name", "")
        if names.get("plural") and group and name != f'{names["plural"]}.{group}':
            causes.append(("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
        versions = spec.get("versions")
        if not versions or not isinstance(versions, list):
            causes.append(("spec.versions", "Required value: must have exactly one version marked as storage "
                                            "version"))
        else:
            causes += _versions_causes([v if isinstance(v, dict) else {} for v in versions])
        return causes

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        causes = self.validate(new)
        for path in (("group",), ("names", "plural")):  # they make the name: never changed
            after = _at(new, "spec", *path)
            if after != _at(old, "spec", *path):
                causes.append((f"spec.{'.'.join(path)}", f'Invalid value: "{after}": field is immutable'))
        return causes
