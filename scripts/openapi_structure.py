"""Upstream's structural tags of the kinds Coracle serves, as the OpenAPI
extensions server-side apply reads: `x-kubernetes-list-type` (atomic, set,
map) with `x-kubernetes-list-map-keys`, `x-kubernetes-map-type` (atomic,
granular), and the defaults of list-map keys.  Used by `gen_openapi.py`,
which writes them into the committed schemas; `master/apiserver/schemas/
structure.py` reads them back at run time.

The facts are upstream's Go tags (`+listType`, `+listMapKey`, `+mapType`,
`+structType`, `+default`) as structured-merge-diff sees them in the
schema of client-go's apply configurations; the Python client's models lose
them.  A list not named here is atomic, which is also upstream's rule for a
list without tags.
"""
from __future__ import annotations

from typing import Any

_CONDITIONS = ("DeploymentStatus", "ReplicaSetStatus", "ReplicationControllerStatus", "NamespaceStatus",
               "NodeStatus", "PodStatus", "PersistentVolumeClaimStatus", "ServiceStatus",
               "HorizontalPodAutoscalerStatus")
_CONTAINERS = ("Container", "EphemeralContainer")

# (type, property) -> the keys of a list of type map (`+listType=map`, `+listMapKey=...`)
MAP_LISTS: dict[tuple[str, str], tuple[str, ...]] = {
    **{(s, "conditions"): ("type",) for s in _CONDITIONS},
    **{(c, "env"): ("name",) for c in _CONTAINERS},
    **{(c, "ports"): ("containerPort", "protocol") for c in _CONTAINERS},
    **{(c, "volumeDevices"): ("devicePath",) for c in _CONTAINERS},
    **{(c, "volumeMounts"): ("mountPath",) for c in _CONTAINERS},
    ("ContainerStatus", "allocatedResourcesStatus"): ("name",),
    ("ContainerStatus", "volumeMounts"): ("mountPath",),
    ("NodeStatus", "addresses"): ("type",),
    **{("PodSpec", f): ("name",) for f in ("containers", "initContainers", "ephemeralContainers", "imagePullSecrets",
                                           "resourceClaims", "schedulingGates", "volumes")},
    ("PodSpec", "hostAliases"): ("ip",),
    ("PodSpec", "topologySpreadConstraints"): ("topologyKey", "whenUnsatisfiable"),
    ("PodStatus", "podIPs"): ("ip",),
    ("PodStatus", "resourceClaimStatuses"): ("name",),
    ("PodStatus", "volumeHealth"): ("name",),
    ("PodVolumeHealth", "healthConditions"): ("status", "reason"),
    ("VolumeHealthStatus", "healthConditions"): ("status", "reason"),
    ("ResourceRequirements", "claims"): ("name",),
    ("ResourceStatus", "resources"): ("resourceID",),
    ("ServiceAccount", "secrets"): ("name",),
    ("ServiceSpec", "ports"): ("port", "protocol"),
    ("ObjectMeta", "ownerReferences"): ("uid",),
}
# (type, property) of lists of type set (`+listType=set`): scalars, each value owned on its own
SET_LISTS: frozenset[tuple[str, str]] = frozenset({
    ("ObjectMeta", "finalizers"), ("NodeSpec", "podCIDRs"), ("Endpoint", "addresses"),
    ("NodeAllocatableResourceClaimStatus", "containers"), ("NodePodPreemptionPolicy", "disableResizePreemption"),
    ("ContainerRestartRuleOnExitCodes", "values"),
})
# types that are atomic as a whole (`+structType=atomic`, x-kubernetes-map-type on the definition)
ATOMIC_TYPES: frozenset[str] = frozenset({
    "LabelSelector", "OwnerReference", "ObjectReference", "LocalObjectReference", "TypedLocalObjectReference",
    "SecretReference", "ConfigMapKeySelector", "SecretKeySelector", "FileKeySelector", "ObjectFieldSelector",
    "ResourceFieldSelector", "NodeSelector", "NodeSelectorTerm", "TopologySelectorTerm", "ScopeSelector",
    "EndpointAddress", "EndpointPort",
})
# (type, property) -> x-kubernetes-map-type on the property: maps (`+mapType=atomic`) and refs that differ
# from their type's default
MAP_TYPES: dict[tuple[str, str], str] = {
    ("PodSpec", "nodeSelector"): "atomic", ("ServiceSpec", "selector"): "atomic",
    ("ReplicationControllerSpec", "selector"): "atomic", ("PersistentVolumeSpec", "claimRef"): "granular",
}
# (type, property) -> default of a list-map key that may be left out (`+default=...`)
KEY_DEFAULTS: dict[tuple[str, str], Any] = {("ContainerPort", "protocol"): "TCP", ("ServicePort", "protocol"): "TCP"}
# (type, property) of structs embedded by value (not pointers): present, empty, in a zero object, which
# upstream's OpenAPI marks with `default: {}`; a kind's metadata, spec and status are too
VALUE_STRUCTS: frozenset[tuple[str, str]] = frozenset({
    ("PodTemplateSpec", "metadata"), ("PodTemplateSpec", "spec"), ("PodTemplate", "template"),
    ("DeploymentSpec", "template"), ("DeploymentSpec", "strategy"), ("ReplicaSetSpec", "template"),
    ("Container", "resources"), ("EphemeralContainer", "resources"), ("ContainerStatus", "lastState"),
    ("ContainerStatus", "state"), ("NodeStatus", "daemonEndpoints"), ("NodeStatus", "nodeInfo"),
    ("NodeDaemonEndpoints", "kubeletEndpoint"), ("PersistentVolumeClaimSpec", "resources"),
    ("PersistentVolumeClaimTemplate", "metadata"), ("PersistentVolumeClaimTemplate", "spec"),
    ("PreferredSchedulingTerm", "preference"), ("WeightedPodAffinityTerm", "podAffinityTerm"),
    ("ServiceStatus", "loadBalancer"), ("IngressStatus", "loadBalancer"), ("Endpoint", "conditions"),
    ("RoleBinding", "roleRef"), ("ClusterRoleBinding", "roleRef"), ("Event", "involvedObject"),
    ("Event", "source"), ("Event", "regarding"), ("Event", "deprecatedSource"),
    ("HorizontalPodAutoscalerSpec", "scaleTargetRef"), ("HTTPIngressPath", "backend"),
})
_TOP = frozenset({"metadata", "spec", "status"})


def decorate_property(owner: str, prop: str, schema: dict[str, Any], is_kind: bool) -> None:
    """Add the structural extensions (and `default: {}` of value structs) to one property's schema."""
    if schema.get("type") == "array":
        keys = MAP_LISTS.get((owner, prop))
        if keys:
            schema["x-kubernetes-list-type"] = "map"
            schema["x-kubernetes-list-map-keys"] = list(keys)
        else:
            schema["x-kubernetes-list-type"] = "set" if (owner, prop) in SET_LISTS else "atomic"
    map_type = MAP_TYPES.get((owner, prop))
    if map_type:
        schema["x-kubernetes-map-type"] = map_type
    if (owner, prop) in KEY_DEFAULTS:
        schema["default"] = KEY_DEFAULTS[(owner, prop)]
    if "allOf" in schema and ((owner, prop) in VALUE_STRUCTS or (is_kind and prop in _TOP)):
        schema["default"] = {}


def decorate_type(name: str, schema: dict[str, Any]) -> None:
    if name in ATOMIC_TYPES:
        schema["x-kubernetes-map-type"] = "atomic"


def check_keys(defs: dict[str, dict[str, Any]], owner_of: dict[str, str]) -> list[str]:
    """Table entries that name no generated property (typos, fields upstream renamed)."""
    props = {(owner_of.get(n, n.rsplit(".", 1)[-1]), p) for n, s in defs.items() for p in s.get("properties", {})}
    wanted = set(MAP_LISTS) | set(SET_LISTS) | set(MAP_TYPES) | set(KEY_DEFAULTS)
    return sorted(f"{t}.{p}" for t, p in wanted - props)
