"""Inside the pod netns: eth0's address, eth0 and lo up, default route via the gateway.

Runs over an IPRoute bound to the pod netns (`netns.iproute_in`); never
setns on the caller's thread.  Idempotent: an existing address is success
and the default route is replaced.  Used by `plugin` (ADD and CHECK).
"""
from __future__ import annotations

from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from cni.errors import INTERNAL, CNIError

EEXIST, ENODEV = 17, 19
IFF_UP = 1
LOOPBACK_IFINDEX = 1  # the kernel registers lo first in every netns


@dataclass(frozen=True, slots=True)
class PodSide:
    """What the kernel says about the pod's interface, for CHECK and debug."""
    mac: str
    up: bool
    lo_up: bool
    addresses: tuple[str, ...]
    default_gateway: str | None


def _index(ipr: IPRoute, name: str) -> int:
    try:
        return int(ipr.link("get", ifname=name)[0]["index"])
    except NetlinkError as e:
        if e.code == ENODEV:
            raise CNIError(INTERNAL, "pod interface missing", name) from None
        raise


def configure(ipr: IPRoute, ifname: str, ip: str, prefix: int, gateway: str) -> None:
    """Address, links up, default route; safe to repeat."""
    idx = _index(ipr, ifname)
    ipr.link("set", index=LOOPBACK_IFINDEX, state="up")
    try:
        ipr.addr("add", index=idx, address=ip, prefixlen=prefix)
    except NetlinkError as e:
        if e.code != EEXIST:
            raise
    ipr.link("set", index=idx, state="up")
    ipr.route("replace", dst="0.0.0.0/0", gateway=gateway, oif=idx)


def inspect(ipr: IPRoute, ifname: str) -> PodSide:
    idx = _index(ipr, ifname)
    link = ipr.link("get", index=idx)[0]
    lo = ipr.link("get", ifname="lo")[0]
    addrs = tuple(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}"
                  for a in ipr.addr("dump", index=idx) if a["family"] == 2)
    gw = None
    for r in ipr.route("dump", family=2):
        if r["dst_len"] == 0 and r.get("RTA_OIF") == idx and r.get("RTA_GATEWAY"):
            gw = r.get("RTA_GATEWAY")
    return PodSide(str(link.get("IFLA_ADDRESS")), bool(link["flags"] & IFF_UP),
                   bool(lo["flags"] & IFF_UP), addrs, gw)
