"""Network configuration: parse and validate the bridge plugin's JSON (pure).

The format is CNI's bridge plugin with host-local IPAM; `plugin` parses with
`parse_conf` and hands the NetConf to the drivers and to `ipam`.  The bridge
and the IPAM data directory have no defaults here: they are the network
plan's (apimachinery.netplan, which cni may not import), so a config names
them, as the one the agent writes with `make_conf` does.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from cni.errors import INCOMPATIBLE_VERSION, INVALID_CONFIG, UNSUPPORTED_FIELD, CNIError

SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0")


@dataclass(frozen=True, slots=True)
class IPRange:
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    start: ipaddress.IPv4Address
    end: ipaddress.IPv4Address


@dataclass(frozen=True, slots=True)
class NetConf:
    cni_version: str
    name: str
    bridge: str
    is_gateway: bool
    mtu: int
    range: IPRange
    data_dir: str


def make_range(subnet: str, gateway: str | None = None, start: str | None = None,
               end: str | None = None) -> IPRange:
    """Build a range; defaults as host-local: gateway .1, hosts from .1 to broadcast-1."""
    try:
        net = ipaddress.IPv4Network(subnet, strict=False)
        if net.prefixlen > 30:
            raise ValueError(f"subnet {subnet} is too small")
        gw = ipaddress.IPv4Address(gateway) if gateway else net.network_address + 1
        lo = ipaddress.IPv4Address(start) if start else net.network_address + 1
        hi = ipaddress.IPv4Address(end) if end else net.broadcast_address - 1
    except ValueError as e:
        raise CNIError(INVALID_CONFIG, "invalid IPAM range", str(e)) from None
    for ip in (gw, lo, hi):
        if ip not in net:
            raise CNIError(INVALID_CONFIG, "invalid IPAM range", f"{ip} is outside {net}")
    if lo > hi:
        raise CNIError(INVALID_CONFIG, "invalid IPAM range", f"rangeStart {lo} > rangeEnd {hi}")
    return IPRange(net, gw, lo, hi)


def _range_from_ipam(ipam: dict[str, Any]) -> IPRange:
    if ipam.get("type", "host-local") != "host-local":
        raise CNIError(UNSUPPORTED_FIELD, "unsupported IPAM type", str(ipam.get("type")))
    ranges = ipam.get("ranges")
    if ranges is None and "subnet" in ipam:  # the old single-range form
        ranges = [[{k: ipam[k] for k in ("subnet", "gateway", "rangeStart", "rangeEnd") if k in ipam}]]
    if not ranges or not isinstance(ranges, list) or not ranges[0] or not isinstance(ranges[0], list):
        raise CNIError(INVALID_CONFIG, "invalid network config", "ipam.ranges must hold one range set")
    if len(ranges) > 1 or len(ranges[0]) > 1:
        raise CNIError(UNSUPPORTED_FIELD, "unsupported IPAM config", "only one range is supported")
    r = ranges[0][0]
    if not isinstance(r, dict) or "subnet" not in r:
        raise CNIError(INVALID_CONFIG, "invalid network config", "a range needs a subnet")
    return make_range(r["subnet"], r.get("gateway"), r.get("rangeStart"), r.get("rangeEnd"))


def parse_conf(conf: dict[str, Any]) -> NetConf:
    """Validate a bridge network config; raises CNIError with a spec code."""
    if not isinstance(conf, dict):
        raise CNIError(INVALID_CONFIG, "invalid network config", "config must be a JSON object")
    version = conf.get("cniVersion", "1.0.0")
    if version not in SUPPORTED_VERSIONS:
        raise CNIError(INCOMPATIBLE_VERSION, "incompatible CNI version", str(version))
    name = conf.get("name")
    if not name or not isinstance(name, str) or "/" in name or name.startswith("."):
        raise CNIError(INVALID_CONFIG, "invalid network config", "name must be a plain string")
    if "bridge" not in conf:
        raise CNIError(INVALID_CONFIG, "invalid network config", 'the config must name its "bridge"')
    bridge = conf["bridge"]
    if not isinstance(bridge, str) or not 0 < len(bridge) <= 15:
        raise CNIError(INVALID_CONFIG, "invalid network config", "bridge name must be 1-15 chars")
    if conf.get("ipMasq"):
        raise CNIError(UNSUPPORTED_FIELD, "ipMasq is not supported",
                       "masquerade is done by the node's service proxy; set ipMasq to false")
    ipam = conf.get("ipam")
    if not isinstance(ipam, dict):
        raise CNIError(INVALID_CONFIG, "invalid network config", "ipam section missing")
    ip_range = _range_from_ipam(ipam)
    data_dir = ipam.get("dataDir")
    if not data_dir or not isinstance(data_dir, str):
        raise CNIError(INVALID_CONFIG, "invalid network config", 'ipam must name its "dataDir"')
    return NetConf(
        cni_version=version, name=name, bridge=bridge,
        is_gateway=bool(conf.get("isGateway", True)), mtu=int(conf.get("mtu", 1500)),
        range=ip_range, data_dir=data_dir,
    )


def make_conf(subnet: str, bridge: str, data_dir: str, name: str = "coracle") -> dict[str, Any]:
    """The JSON config the node agent uses for its own node subnet (bridge and data_dir from its plan)."""
    gw = str(ipaddress.IPv4Network(subnet, strict=False).network_address + 1)
    return {"cniVersion": "1.0.0", "name": name, "type": "coracle-bridge", "bridge": bridge,
            "isGateway": True, "ipMasq": False,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet, "gateway": gw}]],
                     "dataDir": data_dir}}
