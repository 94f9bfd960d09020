"""The CNI verbs on a parsed config: add, delete, check, version.

`__main__` wires these to the CNI executable protocol; the node agent's
network driver calls them in-process, passing its long-lived host IPRoute
(`ipr`) to save ~2 ms per call.  Every verb is idempotent; DEL succeeds when
the netns, the veth or the allocation is already gone.  A failed ADD undoes
what it did (IP and veth), so nothing leaks.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from cni import bridge, podside, veth
from cni.conf import SUPPORTED_VERSIONS, NetConf, parse_conf
from cni.errors import INTERNAL, INVALID_ENV, CNIError
from cni.ipam import Allocation, Allocator
from cni.ipam_store import DiskStore
from cni.netns import iproute_in, open_netns


@contextlib.contextmanager
def _host(ipr: IPRoute | None) -> Iterator[IPRoute]:
    if ipr is not None:
        yield ipr
        return
    own = IPRoute()
    try:
        yield own
    finally:
        own.close()


def allocator(nc: NetConf) -> Allocator:
    return Allocator(nc.range, DiskStore(nc.data_dir, nc.name))


def _need(container_id: str, ifname: str) -> None:
    if not container_id:
        raise CNIError(INVALID_ENV, "CNI_CONTAINERID is required")
    if not ifname or len(ifname) > 15:
        raise CNIError(INVALID_ENV, "CNI_IFNAME must be 1-15 characters", repr(ifname))


def result(nc: NetConf, alloc: Allocation, host_name: str, host_mac: str, ifname: str,
           mac: str, netns: str) -> dict[str, Any]:
    """The CNI 1.0.0 ADD result (pure)."""
    return {
        "cniVersion": nc.cni_version,
        "interfaces": [{"name": host_name, "mac": host_mac},
                       {"name": ifname, "mac": mac, "sandbox": netns}],
        "ips": [{"address": alloc.cidr, "gateway": alloc.gateway, "interface": 1}],
        "routes": [{"dst": "0.0.0.0/0", "gw": alloc.gateway}],
        "dns": {},
    }


_CRASH_AT = os.environ.get("CORACLE_CRASH_AT", "")


def _crash_point(step: str) -> None:
    """Test hook (the agent's crash-point matrix): die here, with no cleanup, when
    CORACLE_CRASH_AT names this step — between the IP reservation and the veth,
    and between the veth and the pod side."""
    if _CRASH_AT == step:
        os._exit(137)


def add(conf: dict[str, Any], container_id: str, netns: str, ifname: str = "eth0",
        ipr: IPRoute | None = None) -> dict[str, Any]:
    """ADD: IP, bridge, veth, pod side.  Idempotent (same IP and veth on repeat)."""
    nc = parse_conf(conf)
    _need(container_id, ifname)
    fd = open_netns(netns)
    alloc_ = allocator(nc)
    try:
        alloc = alloc_.allocate(container_id, ifname)
        _crash_point("ip")
        mac = veth.pod_mac(alloc.ip)
        with _host(ipr) as h:
            try:
                br = bridge.ensure_bridge(h, nc.bridge, alloc.gateway, alloc.prefix, nc.mtu)
                pod = iproute_in(fd)
                try:
                    _, host_mac = veth.ensure_veth(h, pod, container_id, fd, ifname, br, mac, nc.mtu)
                    _crash_point("veth")
                    podside.configure(pod, ifname, alloc.ip, alloc.prefix, alloc.gateway)
                finally:
                    pod.close()
            except BaseException as e:
                alloc_.release(container_id, ifname)
                with contextlib.suppress(Exception):
                    veth.remove_veth(h, container_id)
                if isinstance(e, NetlinkError):
                    raise CNIError(INTERNAL, "netlink request failed", str(e)) from e
                raise
        return result(nc, alloc, veth.host_veth_name(container_id), host_mac, ifname, mac, netns)
    finally:
        os.close(fd)


def delete(conf: dict[str, Any], container_id: str, netns: str | None, ifname: str = "eth0",
           netns_going_away: bool = False, ipr: IPRoute | None = None) -> None:
    """DEL: release the IP, delete the host veth.  Never fails on "already gone".
    With `netns_going_away` the ~30 ms veth delete is skipped: removing the
    netns frees the pair in the background."""
    nc = parse_conf(conf)
    _need(container_id, ifname)
    errors = []
    if not netns_going_away or not (netns and os.path.exists(netns)):
        try:
            with _host(ipr) as h:
                veth.remove_veth(h, container_id)
        except NetlinkError as e:
            errors.append(f"veth: {e}")
    allocator(nc).release(container_id, ifname)
    if errors:
        raise CNIError(INTERNAL, "DEL incomplete", "; ".join(errors))


def check(conf: dict[str, Any], container_id: str, netns: str, ifname: str = "eth0",
          ipr: IPRoute | None = None) -> None:
    """CHECK: the IP is held, the host veth is on the bridge, the pod side is as ADD left it."""
    nc = parse_conf(conf)
    _need(container_id, ifname)
    alloc = allocator(nc).get(container_id, ifname)
    if alloc is None:
        raise CNIError(INTERNAL, "no IP allocated", f"{container_id}/{ifname}")
    with _host(ipr) as h:
        host = veth.host_veth(h, container_id)
        br = bridge.link_index(h, nc.bridge)
    if host is None or br is None or host[2] != br:
        raise CNIError(INTERNAL, "host veth missing or not on the bridge",
                       veth.host_veth_name(container_id))
    fd = open_netns(netns)
    try:
        pod = iproute_in(fd)
        try:
            seen = podside.inspect(pod, ifname)
        finally:
            pod.close()
    finally:
        os.close(fd)
    if alloc.cidr not in seen.addresses or not seen.up or seen.default_gateway != alloc.gateway:
        raise CNIError(INTERNAL, "pod interface is not as configured",
                       f"want {alloc.cidr} via {alloc.gateway}, found {seen}")


def version(cni_version: str = "1.0.0") -> dict[str, Any]:
    return {"cniVersion": cni_version, "supportedVersions": list(SUPPORTED_VERSIONS)}
