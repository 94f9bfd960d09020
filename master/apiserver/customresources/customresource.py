"""Custom resources: the kinds-table entries and the strategy a
CustomResourceDefinition's served versions stand for (pure).

`resources_for(crd)` turns one CRD into a `ResourceInfo` per served version,
each carrying its `CustomResourceStrategy` in `ResourceInfo.custom` (so
`strategy_for` needs no registry of its own).  Every version shares the
CRD's store keys: the conversion strategy is None, so a version differs
only in its apiVersion.  The strategy prunes and validates against the
version's schema (`crschema`), keeps status apart when the CRD declares the
status subresource, and bumps generation as upstream does for custom
resources.  `customapis` keeps the set current.
"""
from __future__ import annotations

import copy
import json
import re

from apimachinery.kinds import ALL_VERBS, ResourceInfo, Subresource
from master.apiserver.resources import Causes, Obj, Strategy
from master.apiserver.customresources import crschema
from master.apiserver.schemas import OBJECT_META, REF

STATUS_VERBS = ("get", "patch", "update")


class CustomResourceStrategy(Strategy):
    """The rules of one served version of a CRD."""

    def __init__(self, version: Obj):
        subs = version.get("subresources") or {}
        self.has_status = "status" in subs
        self.scale = subs.get("scale")
        self.schema: Obj = ((version.get("schema") or {}).get("openAPIV3Schema")) or {}
        self.columns: list[Obj] = list(version.get("additionalPrinterColumns") or [])

    def _prune(self, obj: Obj) -> None:
        crschema.prune(obj, self.schema, root=True)

    def unknown_fields(self, obj: Obj) -> list[str]:
        """The paths the version's schema does not define, dropped from obj (schemas.validation asks)."""
        return crschema.prune(obj, self.schema, root=True)

    def prepare_create(self, obj: Obj) -> None:
        if self.has_status:
            obj.pop("status", None)  # status is written through /status only
        self._prune(obj)

    def prepare_update(self, new: Obj, old: Obj) -> None:
        super().prepare_update(new, old)
        self._prune(new)

    def prepare_status_update(self, new: Obj, old: Obj) -> None:
        super().prepare_status_update(new, old)
        self._prune(new)

    def validate(self, obj: Obj) -> Causes:
        return crschema.validate(obj, self.schema)

    def spec_changed(self, new: Obj, old: Obj) -> bool:
        """Upstream bumps a custom resource's generation on any change but metadata (and status, when
        that is a subresource)."""
        skip = ("metadata", "status") if self.has_status else ("metadata",)

        def body(o: Obj) -> str:
            return json.dumps({k: v for k, v in o.items() if k not in skip and k not in ("apiVersion", "kind")},
                              sort_keys=True)
        return body(new) != body(old)


def _subresources(kind: str, group: str, version: str, declared: Obj) -> tuple[Subresource, ...]:
    out = []
    if "status" in declared:
        out.append(Subresource("status", kind, STATUS_VERBS, group, version))
    if "scale" in declared:
        out.append(Subresource("scale", "Scale", STATUS_VERBS, "autoscaling", "v1"))
    return tuple(out)


def resources_for(crd: Obj) -> list[ResourceInfo]:
    """The served versions of `crd`, preferred first; [] for a CRD we cannot serve."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")
    if not (isinstance(group, str) and isinstance(plural, str) and isinstance(kind, str) and group and plural and kind):
        return []
    out = []
    for v in spec.get("versions") or []:
        if not isinstance(v, dict) or not v.get("served") or not isinstance(v.get("name"), str):
            continue
        res = ResourceInfo(group, v["name"], kind, plural, spec.get("scope") == "Namespaced",
                           tuple(names.get("shortNames") or ()), tuple(names.get("categories") or ()),
                           ALL_VERBS, _subresources(kind, group, v["name"], v.get("subresources") or {}),
                           custom=CustomResourceStrategy(copy.deepcopy(v)))
        out.append(res)
    return sorted(out, key=lambda r: version_priority(r.version))


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Upstream's order of versions in a group (v2, v1, v1beta2, v1beta1, v1alpha1, then other names)."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if m is None:
        return (3, 0, 0, version)
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (stage, -int(m.group(1)), -int(m.group(3) or 0), version)


def strategy(res: ResourceInfo) -> CustomResourceStrategy | None:
    return res.custom if isinstance(res.custom, CustomResourceStrategy) else None


def schema_name(res: ResourceInfo) -> str:
    """The OpenAPI component name upstream gives a custom kind: `com.example.crt.v1.Widget`."""
    return ".".join(reversed(res.group.split("."))) + f".{res.version}.{res.kind}"


def openapi_schema(res: ResourceInfo) -> Obj:
    """The kind's OpenAPI v3 schema, as upstream publishes a CRD's: its openAPIV3Schema with apiVersion,
    kind and metadata (ObjectMeta) filled in, tagged with its group-version-kind."""
    strat = strategy(res)
    out: Obj = copy.deepcopy(strat.schema) if strat is not None else {"type": "object"}
    props: Obj = out.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "description": "APIVersion defines the versioned schema of this "
                           "representation of an object."}
    props["kind"] = {"type": "string", "description": "Kind is a string value representing the REST resource "
                     "this object represents."}
    props["metadata"] = {"allOf": [{"$ref": REF + OBJECT_META}], "description": "Standard object's metadata."}
    out["x-kubernetes-group-version-kind"] = [{"group": res.group, "version": res.version, "kind": res.kind}]
    return out
