"""Where a proxy subresource request goes (`services/proxy`, `pods/proxy`,
`nodes/proxy`), decided from the objects as upstream's ResourceLocation
functions do: a ready endpoint address of the service that belongs to a pod
with that IP, the pod's IP, or the node agent's address.  Pure but for the
object reads, which go through `ObjectGetter` (the registry).

Neighbours: `httpproxy` forwards to the Location; `proxy` (pods/log, exec)
reads the agent's address with `agent_endpoint`.
"""
from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from apimachinery.kinds import ResourceInfo, lookup
from master.apiserver import errors, paths

Obj = dict[str, Any]
_RES = {p: lookup("", "v1", p) for p in ("services", "endpoints", "pods", "nodes")}


class ObjectGetter(Protocol):
    """`Registry.get`: raises the 404 APIError for a missing object."""
    def get(self, res: ResourceInfo, ns: str | None, name: str) -> Obj: ...


@dataclass(frozen=True, slots=True)
class Location:
    scheme: str  # http or https
    host: str    # ip:port ([ip]:port for IPv6), or a bare ip (the scheme's port)


def _res(plural: str) -> ResourceInfo:
    res = _RES[plural]
    assert res is not None
    return res


def join_host_port(ip: str, port: int | str) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def check_proxyable(ip: str) -> None:
    """Upstream's IsProxyableIP: only global unicast addresses (private ones included)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise errors.bad_request("address not allowed") from None
    if (addr.is_loopback or addr.is_link_local or addr.is_multicast or addr.is_unspecified
            or addr == ipaddress.ip_address("255.255.255.255")):
        raise errors.bad_request("address not allowed")


def _split(kind: str, id_: str) -> tuple[str, str, str]:
    parsed = paths.split_scheme_name_port(id_)
    if parsed is None:
        raise errors.bad_request(f'invalid {kind} request "{id_}"')
    return parsed


def pod_ip(pod: Obj) -> str:
    status = pod.get("status") or {}
    ips = status.get("podIPs") or []
    return str(ips[0].get("ip", "")) if ips else str(status.get("podIP") or "")


def service_location(objects: ObjectGetter, namespace: str, id_: str,
                     pick: Callable[[int], int] = random.randrange) -> Location:
    """A ready address of the service's Endpoints that belongs to a pod of the namespace with that IP;
    a numeric port is first turned into the service port's name (upstream's ResourceLocation)."""
    scheme, name, port = _split("service", id_)
    if port.isdigit():
        svc = objects.get(_res("services"), namespace, name)
        names = [p.get("name", "") for p in (svc.get("spec") or {}).get("ports") or [] if p.get("port") == int(port)]
        if not names:
            raise errors.APIError(503, "ServiceUnavailable", f'no service port {port} found for service "{name}"')
        port = names[0]
    eps = objects.get(_res("endpoints"), namespace, name)
    subsets = eps.get("subsets") or []
    if not subsets:
        raise errors.APIError(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')
    first = pick(len(subsets))
    for i in range(len(subsets)):
        ss = subsets[(first + i) % len(subsets)]
        addrs = ss.get("addresses") or []
        if not addrs:
            continue
        for p in ss.get("ports") or []:
            if p.get("name", "") != port:
                continue
            start = pick(len(addrs))
            for j in range(len(addrs)):
                addr = addrs[(start + j) % len(addrs)]
                if _pod_address(objects, namespace, addr):
                    return Location(scheme or "http", join_host_port(addr["ip"], p["port"]))
    raise errors.APIError(503, "ServiceUnavailable", f'no endpoints available for service "{id_}"')


def _pod_address(objects: ObjectGetter, namespace: str, addr: Obj) -> bool:
    """The address names (targetRef) a pod of this namespace that has that IP."""
    ref = addr.get("targetRef") or {}
    if ref.get("kind") != "Pod" or (ref.get("namespace") or namespace) != namespace or not ref.get("name"):
        return False
    try:
        pod = objects.get(_res("pods"), namespace, ref["name"])
    except errors.APIError:
        return False
    status = pod.get("status") or {}
    ips = {i.get("ip") for i in status.get("podIPs") or []} | {status.get("podIP")}
    return addr.get("ip") in ips


def pod_location(objects: ObjectGetter, namespace: str, id_: str) -> Location:
    """The pod's IP and the port asked for, else its first declared container port, else none."""
    scheme, name, port = _split("pod", id_)
    pod = objects.get(_res("pods"), namespace, name)
    if not port:
        declared = [p["containerPort"] for c in (pod.get("spec") or {}).get("containers") or []
                    for p in c.get("ports") or [] if p.get("containerPort")]
        port = str(declared[0]) if declared else ""
    ip = pod_ip(pod)
    check_proxyable(ip)
    return Location(scheme or "http", join_host_port(ip, port) if port else ip)


def agent_endpoint(node: Obj) -> tuple[str, int]:
    """The node agent's address: the Node's InternalIP and status.daemonEndpoints.kubeletEndpoint.Port."""
    status = node.get("status") or {}
    port = (status.get("daemonEndpoints") or {}).get("kubeletEndpoint", {}).get("Port")
    ip = next((a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), None)
    if not port or not ip:
        raise errors.bad_request(f"node {node['metadata']['name']} has no reachable agent endpoint")
    return ip, int(port)


def node_location(objects: ObjectGetter, id_: str) -> Location:
    """The agent (no port, or its port: plain HTTP, the node may sit on loopback in a one-host cluster),
    or another port of the node's address, which must then be proxyable."""
    scheme, name, port = _split("node", id_)
    if port and not port.isdigit():
        raise errors.bad_request(f'invalid node request "{id_}"')
    ip, agent_port = agent_endpoint(objects.get(_res("nodes"), None, name))
    if port in ("", str(agent_port)):
        return Location("http", join_host_port(ip, agent_port))
    check_proxyable(ip)
    return Location(scheme or "http", join_host_port(ip, port))


def locate(objects: ObjectGetter, t: paths.Target) -> Location:
    assert t.name is not None
    if t.res.plural == "services":
        return service_location(objects, t.namespace or "", t.name)
    if t.res.plural == "pods":
        return pod_location(objects, t.namespace or "", t.name)
    return node_location(objects, t.name)
