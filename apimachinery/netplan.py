"""The network plan's defaults, written out once: the cluster (pod) CIDR and
the per-node mask, the service CIDR and the addresses taken from it, the
node bridge, the cluster DNS domain, and the directories the agent and the
master keep their state in.  Pure values and the arithmetic on them.

Everything that needs one of these reads it here: the master (the node IPAM
controller, the ClusterIP allocator, the `kubernetes` Service, the service
account issuer), the agent (its config, the pod network, resolv.conf and
/etc/hosts), and the `coracle` command (its flags' defaults, LocalCluster).
cni/ may not import apimachinery: it gets these values from the network
config the agent writes (`cni.conf.make_conf`).  Flags and config fields
override them; this module is only where the defaults live.

Upstream's defaults where upstream has one: kubeadm's pod and service
subnets are 10.244.0.0/16 (flannel's) and 10.96.0.0/12 (we take a /16 of
it), the API server's Service holds the first address of the service range,
kube-dns the tenth, the domain is cluster.local, and each node gets a /24.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

CLUSTER_CIDR = "10.244.0.0/16"
NODE_MASK = 24
SERVICE_CIDR = "10.96.0.0/16"
BRIDGE = "coracle0"
CLUSTER_DOMAIN = "cluster.local"

STATE_DIR = "/var/lib/coracle"          # the agent's records, images and CNI state; the master's files
RUN_DIR = "/run/coracle"                # the agent's runtime state: namespaces, runc's root
CNI_DIR = f"{STATE_DIR}/cni"            # host-local IPAM's allocations (the network config's ipam.dataDir)
IMAGES_DIR = f"{STATE_DIR}/images"
MASTER_DIR = f"{STATE_DIR}/master"
RUNC_ROOT = f"{RUN_DIR}/runc"


def service_ip(service_cidr: str, n: int) -> str:
    """The n-th address of the service range (1: the API server, 10: the cluster DNS)."""
    net = ipaddress.ip_network(service_cidr, strict=False)
    if not 0 < n < net.num_addresses - 1:
        raise ValueError(f"the service range {service_cidr} has no address number {n}")
    return str(net.network_address + n)


def api_server_ip(service_cidr: str = SERVICE_CIDR) -> str:
    """The ClusterIP of the `default/kubernetes` Service."""
    return service_ip(service_cidr, 1)


def dns_ip(service_cidr: str = SERVICE_CIDR) -> str:
    """The cluster DNS Service's ClusterIP, which pods' resolv.conf names."""
    return service_ip(service_cidr, 10)


def first_node_subnet(cluster_cidr: str = CLUSTER_CIDR, mask: int = NODE_MASK) -> str:
    """The first per-node subnet of the cluster CIDR (a node's podCIDR before the master assigns one)."""
    net = ipaddress.ip_network(cluster_cidr, strict=False)
    return str(next(net.subnets(new_prefix=mask)))


def service_domain(cluster_domain: str = CLUSTER_DOMAIN) -> str:
    """`svc.cluster.local`: Services are `NAME.NAMESPACE.svc.<domain>`."""
    return f"svc.{cluster_domain}"


def api_server_host(cluster_domain: str = CLUSTER_DOMAIN) -> str:
    """The API server's name inside the cluster (the default service account issuer's host)."""
    return f"kubernetes.default.{service_domain(cluster_domain)}"


@dataclass(frozen=True, slots=True)
class NetworkPlan:
    """One cluster's plan; the defaults are the module's.  Built from flags by the command line."""
    cluster_cidr: str = CLUSTER_CIDR
    node_mask: int = NODE_MASK
    service_cidr: str = SERVICE_CIDR
    bridge: str = BRIDGE
    cluster_domain: str = CLUSTER_DOMAIN

    @property
    def api_server_ip(self) -> str:
        return api_server_ip(self.service_cidr)

    @property
    def dns_ip(self) -> str:
        return dns_ip(self.service_cidr)


DEFAULT = NetworkPlan()
