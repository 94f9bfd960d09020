"""Host routes that keep Coracle's ranges on this machine (the safety rule).

The cluster CIDR gets an `unreachable` route so no pod address ever follows
the default route out; the node's own subnet has its (more specific) device
route on the bridge; other nodes' pod subnets get host-gw routes via their
node address.  Everything Coracle adds carries protocol RTPROT_CORACLE, so
pruning touches only our routes.  Called by the agent's network driver.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from cni.bridge import link_index
from cni.errors import INTERNAL, CNIError

RTPROT_CORACLE = 199
RTN_UNICAST, RTN_UNREACHABLE = 1, 7
RT_SCOPE_LINK = 253
ESRCH, ENOENT = 3, 2


def _gone(e: NetlinkError) -> bool:
    return e.code in (ESRCH, ENOENT)


def ensure_cluster_routes(ipr: IPRoute, cluster_cidr: str, node_subnet: str, bridge: str) -> None:
    """Idempotent: `unreachable cluster_cidr` plus `node_subnet dev bridge`."""
    ipr.route("replace", dst=cluster_cidr, type=RTN_UNREACHABLE, proto=RTPROT_CORACLE)
    idx = link_index(ipr, bridge)
    if idx is None:
        raise CNIError(INTERNAL, "bridge missing", f"make {bridge} before its routes")
    net = ipaddress.IPv4Network(node_subnet, strict=False)
    have = [r for r in ipr.route("dump", family=2, dst_len=net.prefixlen)
            if r.get("RTA_DST") == str(net.network_address) and r.get("RTA_TABLE", 254) == 254]
    if not any(r.get("RTA_OIF") == idx and r["type"] == RTN_UNICAST for r in have):
        ipr.route("replace", dst=str(net), oif=idx, scope=RT_SCOPE_LINK, proto=RTPROT_CORACLE)


def remove_cluster_routes(ipr: IPRoute, cluster_cidr: str, node_subnet: str) -> list[str]:
    """Idempotent; goes on past errors and returns them."""
    errors = []
    for dst, kw in ((node_subnet, {"proto": RTPROT_CORACLE}),
                    (cluster_cidr, {"type": RTN_UNREACHABLE})):
        try:
            ipr.route("del", dst=str(ipaddress.IPv4Network(dst, strict=False)), **kw)
        except NetlinkError as e:
            if not _gone(e):
                errors.append(f"{dst}: {e}")
    return errors


def ensure_unreachable(ipr: IPRoute, cidr: str) -> None:
    """Idempotent: `unreachable cidr`, for a range that must never leave the machine (the service CIDR)."""
    ipr.route("replace", dst=str(ipaddress.IPv4Network(cidr, strict=False)), type=RTN_UNREACHABLE,
              proto=RTPROT_CORACLE)


def remove_unreachable(ipr: IPRoute, cidr: str) -> list[str]:
    try:
        ipr.route("del", dst=str(ipaddress.IPv4Network(cidr, strict=False)), type=RTN_UNREACHABLE)
    except NetlinkError as e:
        if not _gone(e):
            return [f"{cidr}: {e}"]
    return []


def _ours(ipr: IPRoute) -> dict[str, str | None]:
    out = {}
    for r in ipr.route("dump", family=2, proto=RTPROT_CORACLE):
        if r["type"] == RTN_UNICAST and r.get("RTA_GATEWAY"):
            out[f"{r.get('RTA_DST')}/{r['dst_len']}"] = r.get("RTA_GATEWAY")
    return out


def ensure_peer_routes(ipr: IPRoute, routes: dict[str, str], prune_within: str | None = None) -> None:
    """Idempotent host-gw routes {pod subnet: node IP}; a stale via is replaced.
    With `prune_within`, our gateway routes inside that CIDR not in `routes` go."""
    want = {str(ipaddress.IPv4Network(d, strict=False)): via for d, via in routes.items()}
    have = _ours(ipr)
    for dst, via in want.items():
        if have.get(dst) != via:
            ipr.route("replace", dst=dst, gateway=via, proto=RTPROT_CORACLE)
    if prune_within is not None:
        scope = ipaddress.IPv4Network(prune_within, strict=False)
        stale = [d for d in have if d not in want and ipaddress.IPv4Network(d).subnet_of(scope)]
        remove_peer_routes(ipr, stale)


def remove_peer_routes(ipr: IPRoute, subnets: Iterable[str]) -> list[str]:
    """Idempotent; goes on past errors and returns them."""
    errors = []
    for dst in subnets:
        try:
            ipr.route("del", dst=str(ipaddress.IPv4Network(dst, strict=False)), proto=RTPROT_CORACLE)
        except NetlinkError as e:
            if not _gone(e):
                errors.append(f"{dst}: {e}")
    return errors
