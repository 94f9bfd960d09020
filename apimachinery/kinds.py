"""The kinds table: every resource Coracle serves, with its group, version,
kind, plural, scope, short names, verbs and subresources.

Discovery, OpenAPI, the REST handlers, the client and (later) RBAC all read
this one table; adding a resource starts here.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str = ""
    version: str = "v1"


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[Subresource, ...] = field(default=())
    stored_as: tuple[str, str] | None = None  # (group, version) this one is stored as; None: stored as itself
    # A custom resource's rules (master.apiserver.customresources.customresource: its strategy, built from the
    # CRD version): compared by identity, so a changed CRD makes a new, unequal entry.  None: built in.
    custom: object | None = None

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`pods`, `deployments.apps`: how Status messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def has_subresource(self, name: str) -> bool:
        return any(s.name == name for s in self.subresources)

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return base + (f"/{name}" if name else "")


_STATUS = lambda kind, group="", version="v1": Subresource("status", kind, ("get", "patch", "update"), group, version)  # noqa: E731
_SCALE = Subresource("scale", "Scale", ("get", "patch", "update"), "autoscaling", "v1")
_NS_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
_PROXY_VERBS = ("create", "delete", "get", "patch", "update")  # upstream's: HEAD and OPTIONS are served too

RESOURCES: tuple[ResourceInfo, ...] = (
    # core/v1
    ResourceInfo("", "v1", "Namespace", "namespaces", False, ("ns",), verbs=_NS_VERBS,
                 subresources=(_STATUS("Namespace"),)),
    ResourceInfo("", "v1", "Pod", "pods", True, ("po",), ("all",), subresources=(
        _STATUS("Pod"),
        Subresource("binding", "Binding", ("create",)),
        Subresource("log", "Pod", ("get",)),
        Subresource("exec", "PodExecOptions", ("create", "get")),
        Subresource("attach", "PodAttachOptions", ("create", "get")),
        Subresource("portforward", "PodPortForwardOptions", ("create", "get")),
        Subresource("proxy", "PodProxyOptions", _PROXY_VERBS),
    )),
    ResourceInfo("", "v1", "Node", "nodes", False, ("no",), subresources=(
        _STATUS("Node"),
        Subresource("proxy", "NodeProxyOptions", _PROXY_VERBS),
    )),
    ResourceInfo("", "v1", "Event", "events", True, ("ev",)),
    ResourceInfo("", "v1", "Service", "services", True, ("svc",), ("all",), subresources=(
        _STATUS("Service"), Subresource("proxy", "ServiceProxyOptions", _PROXY_VERBS))),
    ResourceInfo("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    ResourceInfo("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    ResourceInfo("", "v1", "Secret", "secrets", True),
    ResourceInfo("", "v1", "ReplicationController", "replicationcontrollers", True, ("rc",), ("all",),
                 subresources=(_SCALE, _STATUS("ReplicationController"))),
    ResourceInfo("", "v1", "ResourceQuota", "resourcequotas", True, ("quota",),
                 subresources=(_STATUS("ResourceQuota"),)),
    ResourceInfo("", "v1", "LimitRange", "limitranges", True, ("limits",)),
    ResourceInfo("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",),
                 subresources=(_STATUS("PersistentVolume"),)),
    ResourceInfo("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",),
                 subresources=(_STATUS("PersistentVolumeClaim"),)),
    ResourceInfo("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), subresources=(
        Subresource("token", "TokenRequest", ("create",), "authentication.k8s.io", "v1"),)),
    # apps/v1
    ResourceInfo("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("all",),
                 subresources=(_SCALE, _STATUS("Deployment", "apps"))),
    ResourceInfo("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("all",),
                 subresources=(_SCALE, _STATUS("ReplicaSet", "apps"))),
    # autoscaling: v2 is preferred and stored; v1 is converted on the way in and out
    ResourceInfo("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",),
                 ("all",), subresources=(_STATUS("HorizontalPodAutoscaler", "autoscaling", "v2"),)),
    ResourceInfo("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",),
                 ("all",), subresources=(_STATUS("HorizontalPodAutoscaler", "autoscaling", "v1"),),
                 stored_as=("autoscaling", "v2")),
    ResourceInfo("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",),
                 subresources=(_STATUS("Ingress", "networking.k8s.io"),)),
    ResourceInfo("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    ResourceInfo("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    ResourceInfo("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    ResourceInfo("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    ResourceInfo("coordination.k8s.io", "v1", "Lease", "leases", True),
    ResourceInfo("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    # events.k8s.io/v1 shares the core events' storage (as upstream) and is converted
    ResourceInfo("events.k8s.io", "v1", "Event", "events", True, ("ev",), stored_as=("", "v1")),
    # CRDs; the custom resources they define are served from master.apiserver.customresources
    ResourceInfo("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
                 ("crd", "crds"), ("api-extensions",),
                 subresources=(_STATUS("CustomResourceDefinition", "apiextensions.k8s.io"),)),
)

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND: dict[tuple[str, str], ResourceInfo] = {}
for _r in RESOURCES:  # the first (preferred) version of a group's kind wins
    _BY_KIND.setdefault((_r.group, _r.kind), _r)


def lookup(group: str, version: str, plural: str) -> ResourceInfo | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(group: str, kind: str) -> ResourceInfo | None:
    return _BY_KIND.get((group, kind))


def groups(resources: Iterable[ResourceInfo] | None = None) -> dict[str, list[str]]:
    """Group name -> its versions, preferred first; the core group is "".  `resources`: the served
    subset (apimachinery.apigroups) when some are switched off."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES if resources is None else resources:
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return out


def storage_resource(res: ResourceInfo) -> ResourceInfo:
    """The resource whose form the store holds for `res` (itself unless it is converted)."""
    if res.stored_as is None:
        return res
    group, version = res.stored_as
    stored = _BY_PATH.get((group, version, res.plural))
    assert stored is not None, f"{res.group_version} {res.plural}: no storage version {res.stored_as}"
    return stored


def stored_resources() -> list[ResourceInfo]:
    """One entry per storage location (store key prefix)."""
    return [r for r in RESOURCES if r.stored_as is None]


def same_storage(a: ResourceInfo, b: ResourceInfo) -> bool:
    """Custom resources: every version of one CRD shares its keys (conversion strategy None)."""
    if storage_resource(a) is storage_resource(b):
        return True
    return a.custom is not None and b.custom is not None and a.plural == b.plural and a.group == b.group


def in_group_version(group: str, version: str,
                     resources: Iterable[ResourceInfo] | None = None) -> list[ResourceInfo]:
    return [r for r in (RESOURCES if resources is None else resources) if r.group == group and r.version == version]


def for_object(api_version: str, kind: str) -> ResourceInfo | None:
    """The resource an object of this apiVersion and kind belongs to."""
    group, _, version = api_version.rpartition("/")
    for r in RESOURCES:
        if r.group == group and r.version == version and r.kind == kind:
            return r
    return None
