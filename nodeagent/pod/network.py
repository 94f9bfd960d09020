"""The node agent's network driver: pod networking through the cni package in-process.

Pod workers call `Network.setup` after the sandbox made the pod netns and
`teardown` before (or after) it goes away; the agent calls `ensure_node` at
start and uses `allocated` to find orphan IPs.  `BridgeNetwork` is the real
driver (cni.plugin with a long-lived host netlink socket); `FakeNetwork`
serves unit tests and hollow nodes.  Blocking calls: run them off the event
loop (e.g. asyncio.to_thread); per pod they are serialised by the pod worker,
across pods they are safe to run concurrently (IPAM is flock'd).
"""
from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass
from typing import Protocol

from pyroute2 import IPRoute

from apimachinery import netplan
from cni import bridge, plugin, routes, veth
from cni.conf import make_conf, make_range, parse_conf
from cni.errors import CNIError
from cni.ipam import Allocator
from cni.ipam_store import DiskStore, MemoryStore

IFNAME = "eth0"


@dataclass(frozen=True, slots=True)
class PodNetwork:
    ip: str
    prefix: int
    gateway: str
    host_veth: str
    mac: str


class Network(Protocol):
    def setup(self, uid: str, netns_path: str) -> PodNetwork:
        """Idempotent: a second call for the same uid returns the same IP and veth."""
        ...

    def teardown(self, uid: str, netns_path: str | None, netns_going_away: bool = True) -> None:
        """Idempotent: release the IP, drop the host veth unless the netns is going away."""
        ...

    def status(self, uid: str) -> PodNetwork | None:
        """From the IPAM store and the host veth; None unless both exist."""
        ...

    def allocated(self) -> list[str]:
        """UIDs that hold an IP, for orphan cleanup."""
        ...


class BridgeNetwork:
    """The real driver: bridge + veth + host-local IPAM on this node's subnet."""

    def __init__(self, node_subnet: str, cluster_cidr: str = netplan.CLUSTER_CIDR,
                 bridge: str = netplan.BRIDGE, data_dir: str = netplan.CNI_DIR,
                 network_name: str = "coracle", keep_local: tuple[str, ...] = ()) -> None:
        self.keep_local = keep_local  # more ranges (the service CIDR) that get an `unreachable` host route
        self.node_subnet = str(ipaddress.IPv4Network(node_subnet, strict=False))
        self.cluster_cidr = cluster_cidr
        self.bridge = bridge
        self.conf = make_conf(self.node_subnet, bridge, data_dir, network_name)
        self._nc = parse_conf(self.conf)
        self._alloc = Allocator(self._nc.range, DiskStore(data_dir, network_name))
        self._ipr = IPRoute()

    def close(self) -> None:
        self._ipr.close()

    def ensure_node(self) -> None:
        """Idempotent: the bridge with the gateway address, and the host routes."""
        r = self._nc.range
        bridge.ensure_bridge(self._ipr, self.bridge, str(r.gateway), r.subnet.prefixlen)
        routes.ensure_cluster_routes(self._ipr, self.cluster_cidr, self.node_subnet, self.bridge)
        for cidr in self.keep_local:
            routes.ensure_unreachable(self._ipr, cidr)

    def remove_node(self) -> list[str]:
        """Idempotent; goes on past errors and returns them (routes, then bridge)."""
        errors = routes.remove_cluster_routes(self._ipr, self.cluster_cidr, self.node_subnet)
        for cidr in self.keep_local:
            errors += routes.remove_unreachable(self._ipr, cidr)
        try:
            bridge.remove_bridge(self._ipr, self.bridge)
        except Exception as e:  # noqa: BLE001 - teardown goes on and reports
            errors.append(f"bridge {self.bridge}: {e}")
        return errors

    def setup(self, uid: str, netns_path: str) -> PodNetwork:
        res = plugin.add(self.conf, uid, netns_path, IFNAME, ipr=self._ipr)
        ip, prefix = res["ips"][0]["address"].split("/")
        return PodNetwork(ip, int(prefix), res["ips"][0]["gateway"],
                          res["interfaces"][0]["name"], res["interfaces"][1]["mac"])

    def teardown(self, uid: str, netns_path: str | None, netns_going_away: bool = True) -> None:
        plugin.delete(self.conf, uid, netns_path, IFNAME, netns_going_away, ipr=self._ipr)

    def status(self, uid: str) -> PodNetwork | None:
        a = self._alloc.get(uid, IFNAME)
        if a is None or veth.host_veth(self._ipr, uid) is None:
            return None
        return PodNetwork(a.ip, a.prefix, a.gateway, veth.host_veth_name(uid), veth.pod_mac(a.ip))

    def allocated(self) -> list[str]:
        with self._alloc.store.lock():
            return sorted({cid for cid, _ in self._alloc.store.list().values()})


class FakeNetwork:
    """In memory: the real allocator over a MemoryStore, no kernel objects."""

    def __init__(self, node_subnet: str = netplan.first_node_subnet()) -> None:
        self._alloc = Allocator(make_range(node_subnet), MemoryStore())
        self._lock = threading.Lock()
        self.veths: set[str] = set()
        self.calls: list[tuple[str, str]] = []

    def setup(self, uid: str, netns_path: str) -> PodNetwork:
        with self._lock:
            self.calls.append(("setup", uid))
            if not netns_path:
                raise CNIError(3, "network namespace not found", netns_path)
            a = self._alloc.allocate(uid, IFNAME)
            self.veths.add(veth.host_veth_name(uid))
            return PodNetwork(a.ip, a.prefix, a.gateway, veth.host_veth_name(uid), veth.pod_mac(a.ip))

    def teardown(self, uid: str, netns_path: str | None, netns_going_away: bool = True) -> None:
        with self._lock:
            self.calls.append(("teardown", uid))
            self._alloc.release(uid, IFNAME)
            self.veths.discard(veth.host_veth_name(uid))

    def status(self, uid: str) -> PodNetwork | None:
        with self._lock:
            a = self._alloc.get(uid, IFNAME)
            if a is None or veth.host_veth_name(uid) not in self.veths:
                return None
            return PodNetwork(a.ip, a.prefix, a.gateway, veth.host_veth_name(uid), veth.pod_mac(a.ip))

    def allocated(self) -> list[str]:
        with self._lock:
            return sorted({cid for cid, _ in self._alloc.store.list().values()})
