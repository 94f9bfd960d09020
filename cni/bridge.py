"""The node bridge: ensure it exists, carries the gateway address and is up.

Called by `plugin` on ADD and by the agent's network driver at node start.
Idempotent: an existing bridge and an existing address are success.
"""
from __future__ import annotations

import hashlib

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from cni.errors import INTERNAL, CNIError

EEXIST, ENODEV = 17, 19
IFF_UP = 1


def _get(ipr: IPRoute, name: str):  # -> ifinfmsg | None
    try:
        return ipr.link("get", ifname=name)[0]
    except NetlinkError as e:
        if e.code == ENODEV:
            return None
        raise


def link_index(ipr: IPRoute, name: str) -> int | None:
    link = _get(ipr, name)
    return None if link is None else int(link["index"])


def _kind(link: object) -> str | None:
    info = link.get("IFLA_LINKINFO")  # type: ignore[attr-defined]
    return info.get("IFLA_INFO_KIND") if info else None


def bridge_mac(name: str) -> str:
    """A fixed, locally administered MAC: without one the kernel gives the bridge
    the lowest port MAC, which changes as pods come and go (stale gateway ARP)."""
    return "02:" + ":".join(hashlib.sha256(b"bridge:" + name.encode()).hexdigest()[i:i + 2]
                            for i in range(0, 10, 2))


def ensure_bridge(ipr: IPRoute, name: str, gateway: str, prefix: int, mtu: int = 1500) -> int:
    """Make bridge `name` with `gateway/prefix` on it, up; returns its index.
    The common case (all in place) costs two netlink requests."""
    link = _get(ipr, name)
    if link is None:
        try:
            ipr.link("add", ifname=name, kind="bridge", mtu=mtu, address=bridge_mac(name))
        except NetlinkError as e:
            if e.code != EEXIST:
                raise
        link = _get(ipr, name)
        if link is None:
            raise CNIError(INTERNAL, "bridge vanished after creation", name)
    elif _kind(link) != "bridge":
        raise CNIError(INTERNAL, "bridge name is taken", f"{name} is a {_kind(link)} link, not a bridge")
    idx = int(link["index"])
    try:
        ipr.addr("add", index=idx, address=gateway, prefixlen=prefix)
    except NetlinkError as e:
        if e.code != EEXIST:
            raise
    if not link["flags"] & IFF_UP:
        ipr.link("set", index=idx, state="up")
    return idx


def remove_bridge(ipr: IPRoute, name: str) -> None:
    """Idempotent: a missing bridge is success.  Its device routes go with it."""
    idx = link_index(ipr, name)
    if idx is None:
        return
    try:
        ipr.link("del", index=idx)
    except NetlinkError as e:
        if e.code != ENODEV:
            raise
