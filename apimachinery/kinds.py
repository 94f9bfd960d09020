"""The kinds table: every resource Coracle serves, with its group, version,
kind, plural, scope, short names, verbs and subresources.

Discovery, OpenAPI, the REST handlers, the client and (later) RBAC all read
this one table; adding a resource starts here.
"""
from __future__ import annotations

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

RESOURCES: tuple[ResourceInfo, ...] = (
    ResourceInfo("", "v1", "Namespace", "namespaces", False, ("ns",),
                 verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
                 subresources=(_STATUS("Namespace"),)),
    ResourceInfo("", "v1", "Pod", "pods", True, ("po",), ("all",), subresources=(
        _STATUS("Pod"),
        Subresource("binding", "Binding", ("create",)),
        Subresource("log", "Pod", ("get",)),
        Subresource("exec", "PodExecOptions", ("create", "get")),
        Subresource("portforward", "PodPortForwardOptions", ("create", "get")),
    )),
    ResourceInfo("", "v1", "Node", "nodes", False, ("no",), subresources=(
        _STATUS("Node"),
        Subresource("proxy", "NodeProxyOptions", ("create", "delete", "get", "patch", "update")),
    )),
    ResourceInfo("", "v1", "Event", "events", True, ("ev",)),
    ResourceInfo("coordination.k8s.io", "v1", "Lease", "leases", True),
)

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {(r.group, r.kind): r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceInfo | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(group: str, kind: str) -> ResourceInfo | None:
    return _BY_KIND.get((group, kind))


def groups() -> dict[str, list[str]]:
    """Group name -> its versions, preferred first; the core group is ""."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return out


def in_group_version(group: str, version: str) -> list[ResourceInfo]:
    return [r for r in RESOURCES if r.group == group and r.version == version]
