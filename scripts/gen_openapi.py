"""Generate master/apiserver/schemas/definitions.json.gz: the OpenAPI v3
component schemas of the kinds Coracle serves and everything they reference.

Run once (`scripts/gen-openapi`) and commit the output; the API server only
reads it (master/apiserver/schemas).  The source is the installed official
`kubernetes` Python client: its model classes carry upstream's property
names, types, required flags and descriptions.  What the client loses is put
back from small tables here: schema names (upstream's `io.k8s.api.<pkg>.<v>`
packages), Quantity and IntOrString references, descriptions of `$ref`
properties, the strategic-merge-patch metadata kubectl reads from the
schemas (`x-kubernetes-patch-merge-key` / `-strategy`, as upstream's Go tags),
and the structural types server-side apply reads (`x-kubernetes-list-type`,
`-list-map-keys`, `-map-type`; tables in `openapi_structure.py`).
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from pathlib import Path
from typing import Any

from kubernetes.client import models

sys.path.insert(0, str(Path(__file__).resolve().parent))
from openapi_structure import check_keys, decorate_property, decorate_type  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "master/apiserver/schemas/definitions.json.gz"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
REF = "#/components/schemas/"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"

# (group, version, kind): the kinds issue 3 puts in scope, plus their lists.
ROOTS: tuple[tuple[str, str, str], ...] = (
    *(("", "v1", k) for k in ("Namespace", "Pod", "Service", "Endpoints", "Node", "ConfigMap", "Secret",
                              "ReplicationController", "ResourceQuota", "LimitRange", "PersistentVolume",
                              "PersistentVolumeClaim", "Event", "ServiceAccount", "Binding", "PodTemplate")),
    ("apps", "v1", "Deployment"), ("apps", "v1", "ReplicaSet"),
    ("autoscaling", "v1", "HorizontalPodAutoscaler"), ("autoscaling", "v1", "Scale"),
    ("autoscaling", "v2", "HorizontalPodAutoscaler"),
    ("networking.k8s.io", "v1", "Ingress"),
    *(("rbac.authorization.k8s.io", "v1", k) for k in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")),
    ("coordination.k8s.io", "v1", "Lease"),
    ("discovery.k8s.io", "v1", "EndpointSlice"),
    ("events.k8s.io", "v1", "Event"),
)
META_TYPES = {"ObjectMeta", "ListMeta", "LabelSelector", "LabelSelectorRequirement", "OwnerReference",
              "ManagedFieldsEntry", "Condition", "Status", "StatusDetails", "StatusCause", "DeleteOptions",
              "Preconditions"}
# (type, property) -> Quantity; the client types quantities as plain strings.
QUANTITY_PROPS = {
    ("ResourceRequirements", "limits"), ("ResourceRequirements", "requests"),
    ("VolumeResourceRequirements", "limits"), ("VolumeResourceRequirements", "requests"),
    ("ResourceQuotaSpec", "hard"), ("ResourceQuotaStatus", "hard"), ("ResourceQuotaStatus", "used"),
    ("NodeStatus", "capacity"), ("NodeStatus", "allocatable"), ("PodSpec", "overhead"),
    *(("LimitRangeItem", p) for p in ("default", "defaultRequest", "max", "min", "maxLimitRequestRatio")),
    ("PersistentVolumeSpec", "capacity"), ("PersistentVolumeClaimStatus", "capacity"),
    ("PersistentVolumeClaimStatus", "allocatedResources"), ("EmptyDirVolumeSource", "sizeLimit"),
    ("ResourceFieldSelector", "divisor"), ("MetricTarget", "averageValue"), ("MetricTarget", "value"),
    ("MetricValueStatus", "averageValue"), ("MetricValueStatus", "value"),
}
# (type, property) -> (x-kubernetes-patch-strategy, x-kubernetes-patch-merge-key); upstream's Go tags.
PATCH_META: dict[tuple[str, str], tuple[str, str | None]] = {
    **{("PodSpec", f): ("merge", "name") for f in ("containers", "initContainers", "ephemeralContainers",
                                                    "imagePullSecrets", "schedulingGates")},
    ("PodSpec", "volumes"): ("merge,retainKeys", "name"), ("PodSpec", "resourceClaims"): ("merge,retainKeys", "name"),
    ("PodSpec", "hostAliases"): ("merge", "ip"), ("PodSpec", "topologySpreadConstraints"): ("merge", "topologyKey"),
    **{(c, "ports"): ("merge", "containerPort") for c in ("Container", "EphemeralContainer")},
    **{(c, "env"): ("merge", "name") for c in ("Container", "EphemeralContainer")},
    **{(c, "volumeMounts"): ("merge", "mountPath") for c in ("Container", "EphemeralContainer")},
    **{(c, "volumeDevices"): ("merge", "devicePath") for c in ("Container", "EphemeralContainer")},
    ("ServiceSpec", "ports"): ("merge", "port"),
    ("ObjectMeta", "finalizers"): ("merge", None), ("ObjectMeta", "ownerReferences"): ("merge", "uid"),
    ("PodStatus", "podIPs"): ("merge", "ip"), ("PodStatus", "hostIPs"): ("merge", "ip"),
    ("NodeStatus", "addresses"): ("merge", "type"), ("NodeSpec", "podCIDRs"): ("merge", None),
    **{(s, "conditions"): ("merge", "type") for s in (
        "PodStatus", "NodeStatus", "NamespaceStatus", "DeploymentStatus", "ReplicaSetStatus",
        "ReplicationControllerStatus", "PersistentVolumeClaimStatus", "ServiceStatus")},
    ("ServiceAccount", "secrets"): ("merge", "name"), ("DeploymentSpec", "strategy"): ("retainKeys", None),
}
STANDARD_DESC = {
    "metadata": "Standard object's metadata. More info: "
                "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    "spec": "Spec defines the behavior of the object. More info: "
            "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status",
    "status": "Status represents the current state of the object. Populated by the system. Read-only. More info: "
              "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status",
}
_PREFIX = re.compile(r"^(?:[A-Z][a-z]+)?V\d+(?:(?:alpha|beta)\d+)?(?=[A-Z])")


def package(group: str) -> str:
    return "core" if not group else group.split(".")[0]


def base_name(cls_name: str) -> str:
    return _PREFIX.sub("", cls_name, count=1)


def client_class(group: str, version: str, kind: str) -> type | None:
    v = version[0].upper() + version[1:]
    for name in (f"{v}{kind}", f"{package(group).capitalize()}{v}{kind}"):
        cls = getattr(models, name, None)
        if cls is not None:
            return cls
    return None


def _description(cls: type) -> str:
    doc = (cls.__doc__ or "").split("Attributes:")[0]
    return " ".join(doc.split())


def _field(cls: Any, json_name: str) -> Any:
    for name, f in cls.model_fields.items():
        if (f.serialization_alias or name) == json_name:
            return f
    raise KeyError(f"{cls.__name__}.{json_name}")


def _is_int_or_string(annotation: Any) -> bool:
    text = str(annotation)
    return "int" in text and "str" in text and "Dict" not in text and "List" not in text


class Generator:
    def __init__(self) -> None:
        self.owner: dict[str, str] = {}  # client class name -> "<pkg>.<version>"
        self.defs: dict[str, dict[str, Any]] = {}

    def name_of(self, cls_name: str) -> str:
        base = base_name(cls_name)
        if base in META_TYPES:
            return META + base
        return f"io.k8s.api.{self.owner[cls_name]}.{base}"

    def claim(self, cls_name: str, owner: str) -> None:
        """Give every type reachable from cls_name the package of the first root that reaches it."""
        if cls_name in self.owner:
            return
        self.owner[cls_name] = owner
        for t in getattr(models, cls_name).openapi_types.values():
            for ref in re.findall(r"\b(?:[A-Z][a-z]+)?V\d\w*", t):
                self.claim(ref, owner)

    def prop_schema(self, cls_name: str, attr: str, json_name: str) -> dict[str, Any]:
        cls = getattr(models, cls_name)
        t = cls.openapi_types[attr]
        field = _field(cls, json_name)
        base = base_name(cls_name)
        if (base, json_name) in QUANTITY_PROPS:
            quantity: dict[str, Any] = {"allOf": [{"$ref": REF + QUANTITY}]}
            s: dict[str, Any] = {"type": "object", "additionalProperties": quantity} if t.startswith("Dict") else dict(quantity)
        else:
            s = self.type_schema(t, field.annotation)
            s.pop("default", None)  # a property is a pointer unless openapi_structure says it is a value
        desc = field.description
        ref_class = getattr(models, t, None) if re.fullmatch(r"\w+", t) else None
        if not desc and ref_class is not None:
            desc = STANDARD_DESC.get(json_name) or _description(ref_class)
        if desc:
            s["description"] = desc
        strategy, key = PATCH_META.get((base, json_name), (None, None))
        if strategy:
            s["x-kubernetes-patch-strategy"] = strategy
        if key:
            s["x-kubernetes-patch-merge-key"] = key
        attrs = set(cls.attribute_map.values())
        decorate_property(base, json_name, s, {"apiVersion", "kind", "metadata"} <= attrs)
        return s

    def type_schema(self, t: str, annotation: Any = None) -> dict[str, Any]:
        if t.startswith("List["):
            return {"type": "array", "items": self.type_schema(t[5:-1])}
        if t.startswith("Dict[str, "):
            return {"type": "object", "additionalProperties": self.type_schema(t[10:-1])}
        simple = {"str": {"type": "string"}, "int": {"type": "integer", "format": "int64"},
                  "bool": {"type": "boolean"}, "float": {"type": "number", "format": "double"},
                  "datetime": {"type": "string", "format": "date-time"}, "bytes": {"type": "string", "format": "byte"}}
        if t in simple:
            return dict(simple[t])
        if t == "object":
            if annotation is not None and _is_int_or_string(annotation):
                return {"allOf": [{"$ref": REF + INT_OR_STRING}]}
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        self.add(t)
        return {"allOf": [{"$ref": REF + self.name_of(t)}], "default": {}}

    def add(self, cls_name: str, gvk: dict[str, str] | None = None) -> str:
        name = self.name_of(cls_name)
        if name in self.defs:
            if gvk:
                self.defs[name].setdefault("x-kubernetes-group-version-kind", []).append(gvk)
            return name
        cls = getattr(models, cls_name)
        schema: dict[str, Any] = {"description": _description(cls), "type": "object", "properties": {}}
        self.defs[name] = schema
        required = []
        for attr, json_name in cls.attribute_map.items():
            schema["properties"][json_name] = self.prop_schema(cls_name, attr, json_name)
            if _field(cls, json_name).is_required():
                required.append(json_name)
        if required:
            schema["required"] = required
        decorate_type(base_name(cls_name), schema)
        if gvk:
            schema["x-kubernetes-group-version-kind"] = [gvk]
        return name

    def run(self) -> dict[str, dict[str, Any]]:
        found = [(g, v, k, client_class(g, v, k)) for g, v, k in ROOTS]
        missing = [f"{g}/{v}/{k}" for g, v, k, c in found if c is None]
        if missing:
            raise SystemExit(f"gen-openapi: no client model for {', '.join(missing)}")
        # core first: a type reachable from a core kind is core, whoever else uses it
        for g, v, k, cls in sorted(found, key=lambda f: f[0] != ""):
            assert cls is not None
            self.claim(cls.__name__, f"{package(g)}.{v}")
            lst = client_class(g, v, k + "List")
            if lst is not None:
                self.claim(lst.__name__, f"{package(g)}.{v}")
        for g, v, k, cls in found:
            assert cls is not None
            self.add(cls.__name__, {"group": g, "version": v, "kind": k})
            lst = client_class(g, v, k + "List")
            if lst is not None:
                self.add(lst.__name__, {"group": g, "version": v, "kind": k + "List"})
        for name in ("Status", "DeleteOptions"):
            self.claim(f"V1{name}", "meta.v1")
            self.add(f"V1{name}", {"group": "", "version": "v1", "kind": name})
        self.defs[QUANTITY] = {"type": "string", "description": (
            "Quantity is a fixed-point representation of a number, in serialized form such as `250m`, `1.5Gi` "
            "or `2`: a number with an optional SI (m, k, M, G, T, P, E) or binary (Ki, Mi, Gi, Ti, Pi, Ei) suffix.")}
        self.defs[INT_OR_STRING] = {"type": "string", "format": "int-or-string", "description": (
            "IntOrString is a type that can hold an int32 or a string.")}
        self.defs[META + "Patch"] = {"type": "object", "description": (
            "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.")}
        unknown = check_keys(self.defs, {})
        if unknown:
            raise SystemExit(f"gen-openapi: openapi_structure names fields no schema has: {', '.join(unknown)}")
        return self.defs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    defs = Generator().run()
    data = json.dumps({"source": "kubernetes Python client " + _client_version(), "schemas": defs},
                      sort_keys=True, separators=(",", ":")).encode()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    print(f"{args.out}: {len(defs)} schemas, {len(data)} bytes JSON, {args.out.stat().st_size} gzipped")
    return 0


def _client_version() -> str:
    import kubernetes
    return str(getattr(kubernetes, "__version__", "?"))


if __name__ == "__main__":
    sys.exit(main())
