"""Parse a request path into what it addresses (pure).

    /api/v1/pods                              list across namespaces
    /api/v1/namespaces/default/pods/web/log   one pod's log subresource
    /apis/apps/v1/namespaces/ns/deployments   a namespaced collection
    /api/v1/namespaces/default                the namespace object itself
    /api/v1/namespaces/d/services/https:web:metrics/proxy/a/b
                                              the proxy subresource: name `https:web:metrics`,
                                              proxy_path `/a/b` (see split_scheme_name_port)
"""
from __future__ import annotations

from dataclasses import dataclass

from apimachinery.kinds import ResourceInfo
from apimachinery.apigroups import ALL, APIGroups

PROXY_SCHEMES = ("", "http", "https")


@dataclass(frozen=True, slots=True)
class Target:
    res: ResourceInfo
    namespace: str | None
    name: str | None
    subresource: str | None
    proxy_path: str = ""  # for `proxy`: what follows it, "" or "/a/b" (empty segments dropped)


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
    proxy_path = ""
    if res is not None and len(rest) > 3 and rest[2] == "proxy" and res.has_subresource("proxy"):
        proxy_path, rest = "/" + "/".join(rest[3:]), rest[:3]
    if res is None or len(rest) > 3:
        raise UnknownPath(path)
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) == 3 else None
    if sub is not None and not res.has_subresource(sub) and (res.plural, sub) != ("namespaces", "finalize"):
        raise UnknownPath(path)
    if namespace is not None and not res.namespaced:
        raise UnknownPath(path)
    return Target(res, namespace, name, sub, proxy_path)


def split_scheme_name_port(id_: str) -> tuple[str, str, str] | None:
    """`name`, `name:port` or `scheme:name:port` (scheme http or https, port a number or a port
    name, possibly empty) -> (scheme, name, port); None when malformed.  Upstream's
    SplitSchemeNamePort: `https:web` is the name `https` with port `web`."""
    parts = id_.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, name, port = "", parts[0], parts[1]
    elif len(parts) == 3:
        scheme, name, port = parts
    else:
        return None
    if not name or scheme not in PROXY_SCHEMES:
        return None
    return scheme, name, port
