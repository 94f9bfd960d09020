"""Node IPAM: give every Node a pod subnet (`spec.podCIDR`) from the cluster
CIDR, one subnet of the plan's mask each (apimachinery.netplan's defaults), as
kube-controller-manager's range allocator.

Level-triggered: every sync looks at the informer's nodes, marks the subnets
in use and fills in the ones missing.  A podCIDR is never changed once set.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging

from apimachinery import kinds, meta, netplan
from apimachinery.client import Client, StatusError
from apimachinery.informer import Informer

log = logging.getLogger("coracle.nodeipam")
NODES = kinds.lookup("", "v1", "nodes")


def next_free(cluster_cidr: str, mask: int, used: set[str]) -> str | None:
    for net in ipaddress.ip_network(cluster_cidr).subnets(new_prefix=mask):
        if str(net) not in used:
            return str(net)
    return None


class NodeIPAM:
    def __init__(self, client: Client, cluster_cidr: str = netplan.CLUSTER_CIDR, mask: int = netplan.NODE_MASK):
        assert NODES is not None
        self.client, self.cluster_cidr, self.mask = client, cluster_cidr, mask
        self.nodes = Informer(client, NODES)
        self._kick = asyncio.Event()
        self.nodes.add_handlers(on_add=lambda _n: self._kick.set(), on_update=lambda _o, _n: self._kick.set())

    async def run(self) -> None:
        informer = asyncio.create_task(self.nodes.run())
        try:
            await self.nodes.synced.wait()
            while True:
                try:
                    await self.sync()
                except (StatusError, OSError) as e:
                    log.warning("node IPAM sync failed: %s", e)
                    await asyncio.sleep(1)
                    continue
                await self._kick.wait()
                self._kick.clear()
        finally:
            informer.cancel()

    async def sync(self) -> None:
        assert NODES is not None
        used = {n.get("spec", {}).get("podCIDR") for n in self.nodes.list()} - {None}
        for node in self.nodes.list():
            if node.get("spec", {}).get("podCIDR"):
                continue
            cidr = next_free(self.cluster_cidr, self.mask, used)  # type: ignore[arg-type]
            if cidr is None:
                log.error("cluster CIDR %s is exhausted; node %s gets no pod subnet", self.cluster_cidr, meta.name(node))
                return
            await self.client.patch(NODES, None, meta.name(node), {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
            used.add(cidr)
            log.info("node %s: podCIDR %s", meta.name(node), cidr)
