"""Parse a request path into what it addresses (pure).

    /api/v1/pods                              list across namespaces
    /api/v1/namespaces/default/pods/web/log   one pod's log subresource
    /apis/apps/v1/namespaces/ns/deployments   a namespaced collection
    /api/v1/namespaces/default                the namespace object itself
"""
from __future__ import annotations

from dataclasses import dataclass

from apimachinery.kinds import ResourceInfo
from master.apiserver.apigroups import ALL, APIGroups


@dataclass(frozen=True, slots=True)
class Target:
    res: ResourceInfo
    namespace: str | None
    name: str | None
    subresource: str | None


class UnknownPath(Exception):
    pass


def parse(path: str, apis: APIGroups = ALL) -> Target:
    """What `path` addresses among the resources `apis` serves; UnknownPath otherwise
    (a switched-off group-version is unknown, as upstream)."""
    lookup = apis.lookup
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise UnknownPath(path)
    if parts[0] == "api" and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise UnknownPath(path)
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        inner = lookup(group, version, rest[2])
        if inner is not None and inner.namespaced:
            namespace, rest = rest[1], rest[2:]
    res = lookup(group, version, rest[0])
    if res is None or len(rest) > 3:
        raise UnknownPath(path)
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) == 3 else None
    if sub is not None and not res.has_subresource(sub) and (res.plural, sub) != ("namespaces", "finalize"):
        raise UnknownPath(path)
    if namespace is not None and not res.namespaced:
        raise UnknownPath(path)
    return Target(res, namespace, name, sub)
