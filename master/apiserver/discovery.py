"""Discovery documents, built from the kinds table: legacy (`APIVersions`,
`APIGroupList`, `APIResourceList`) and aggregated (`apidiscovery.k8s.io/v2`),
which lets kubectl discover everything in two requests.  Every document
covers only what the `APIGroups` passed in serves (`--runtime-config`)."""
from __future__ import annotations

from typing import Any

from apimachinery.kinds import ResourceInfo
from apimachinery.apigroups import ALL, APIGroups

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> str | None:
    """The aggregated content type the client asked for, if any."""
    if "as=APIGroupDiscoveryList" not in accept:
        return None
    return AGGREGATED_V2 if "v=v2;" in accept.replace(" ", "") else AGGREGATED_V2BETA1


def api_versions(server_address: str, apis: APIGroups = ALL) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": apis.versions(""),
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _gv(group: str, version: str) -> dict[str, str]:
    return {"groupVersion": f"{group}/{version}", "version": version}


def api_group(group: str, versions: list[str]) -> dict[str, Any]:
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group,
            "versions": [_gv(group, v) for v in versions], "preferredVersion": _gv(group, versions[0])}


def api_group_list(apis: APIGroups = ALL) -> dict[str, Any]:
    groups = [api_group(g, vs) for g, vs in apis.groups().items() if g]
    for g in groups:
        del g["kind"], g["apiVersion"]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def resource_list(group: str, version: str, apis: APIGroups = ALL) -> dict[str, Any]:
    out = []
    for r in apis.in_group_version(group, version):
        out.append({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                    "verbs": list(r.verbs), **({"shortNames": list(r.short_names)} if r.short_names else {}),
                    **({"categories": list(r.categories)} if r.categories else {})})
        for s in r.subresources:
            other_gv = (s.group, s.version) != (r.group, r.version)  # e.g. deployments/scale: autoscaling/v1
            out.append({"name": f"{r.plural}/{s.name}", "singularName": "", "namespaced": r.namespaced,
                        **({"group": s.group, "version": s.version} if other_gv else {}),
                        "kind": s.kind, "verbs": list(s.verbs)})
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


def _aggregated_resource(r: ResourceInfo) -> dict[str, Any]:
    return {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
        **({"shortNames": list(r.short_names)} if r.short_names else {}),
        **({"categories": list(r.categories)} if r.categories else {}),
        "subresources": [{"subresource": s.name, "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                          "verbs": list(s.verbs)} for s in r.subresources],
    }


def aggregated(core: bool, content_type: str, apis: APIGroups = ALL) -> dict[str, Any]:
    """The aggregated list for /api (core=True) or /apis."""
    items = []
    for group, versions in apis.groups().items():
        if bool(group) == core:
            continue
        items.append({
            "metadata": {"name": group} if group else {},
            "versions": [{"version": v,  # upstream's APIVersionDiscovery order: freshness after resources
                          "resources": [_aggregated_resource(r) for r in apis.in_group_version(group, v)],
                          "freshness": "Current"}
                         for v in versions],
        })
    version = "v2" if content_type == AGGREGATED_V2 else "v2beta1"
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}", "metadata": {},
            "items": items}
