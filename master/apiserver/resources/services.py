"""Service rules: upstream's defaults and validation, an immutable clusterIP,
and ClusterIP/NodePort allocation through `resources.allocator` (claimed
right before the write, released on delete, on type changes and when a write
fails)."""
from __future__ import annotations

import re
from typing import Any

from apimachinery import kinds, meta, netplan
from apimachinery.labels import validate_labels
from master.apiserver import errors
from master.apiserver.resources import Causes, Obj, Strategy, allocator, register
from master.store import Store

TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
PROTOCOLS = ("TCP", "UDP", "SCTP")
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SERVICES = kinds.lookup("", "v1", "services")


def validate_dns1035_label(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _DNS1035.match(value):
        return ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
    return None


def needs_cluster_ip(spec: Obj) -> bool:
    return spec.get("type", "ClusterIP") != "ExternalName" and spec.get("clusterIP") != "None"


def needs_node_ports(spec: Obj) -> bool:
    return spec.get("type") == "NodePort" or (spec.get("type") == "LoadBalancer"
                                              and spec.get("allocateLoadBalancerNodePorts", True))


def held_ip(obj: Obj | None) -> int | None:
    spec = (obj or {}).get("spec") or {}
    ip = spec.get("clusterIP")
    if not ip or ip == "None" or not needs_cluster_ip(spec):
        return None
    try:
        value = allocator.parse(allocator.SERVICE_IPS, ip)
    except ValueError:
        return None
    return value if allocator.SERVICE_IPS.contains(value) else None


def held_ports(obj: Obj | None) -> set[int]:
    spec = (obj or {}).get("spec") or {}
    if not needs_node_ports(spec):
        return set()
    return {p["nodePort"] for p in spec.get("ports") or [] if isinstance(p, dict) and isinstance(p.get("nodePort"), int)}


def owner(obj: Obj) -> str:
    md = obj.get("metadata") or {}
    return f"{md.get('namespace', '')}/{md.get('name', '')}/{md.get('uid', '')}"


def default(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    stype = spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for p in spec.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
            if isinstance(p.get("port"), int) and p["port"] > 0:
                p.setdefault("targetPort", p["port"])
    if stype == "ExternalName":
        return
    spec.setdefault("internalTrafficPolicy", "Cluster")
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    if spec.get("clusterIP"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    if stype in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if stype == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)


def _validate_port(p: Any, i: int, stype: str, many: bool, names: set[str], node_ports: set[tuple[Any, Any]]) -> Causes:
    path = f"spec.ports[{i}]"
    if not isinstance(p, dict):
        return [(path, "Invalid value: must be an object")]
    causes: Causes = []
    name = p.get("name", "")
    if many and not name:
        causes.append((f"{path}.name", "Required value"))
    elif name:
        if not _PORT_NAME.match(name) or len(name) > 63:
            causes.append((f"{path}.name", f'Invalid value: "{name}": must be a DNS-1123 label'))
        elif name in names:
            causes.append((f"{path}.name", f'Duplicate value: "{name}"'))
        names.add(name)
    port = p.get("port")
    if not isinstance(port, int) or not 1 <= port <= 65535:
        causes.append((f"{path}.port", f"Invalid value: {port}: must be between 1 and 65535, inclusive"))
    if p.get("protocol") not in PROTOCOLS:
        causes.append((f"{path}.protocol", f'Unsupported value: "{p.get("protocol")}": supported values: "SCTP", "TCP", "UDP"'))
    tp = p.get("targetPort")
    if isinstance(tp, int) and not 1 <= tp <= 65535:
        causes.append((f"{path}.targetPort", f"Invalid value: {tp}: must be between 1 and 65535, inclusive"))
    elif isinstance(tp, str) and not (tp.isdigit() or (len(tp) <= 15 and _PORT_NAME.match(tp))):
        causes.append((f"{path}.targetPort", f'Invalid value: "{tp}": must be an IANA_SVC_NAME'))
    np = p.get("nodePort")
    if np:
        if stype == "ClusterIP":
            causes.append((f"{path}.nodePort", "Forbidden: may not be used when `type` is 'ClusterIP'"))
        elif not isinstance(np, int) or not allocator.NODE_PORTS.contains(np):
            causes.append((f"{path}.nodePort", f"Invalid value: {np}: provided port is not in the valid range. "
                                               f"The range of valid ports is 30000-32767"))
        elif (np, p.get("protocol")) in node_ports:
            causes.append((f"{path}.nodePort", f"Duplicate value: {np}"))
        node_ports.add((np, p.get("protocol")))
    return causes


@register("services")
class ServiceStrategy(Strategy):
    tracks_generation = False
    name_check = staticmethod(validate_dns1035_label)

    def prepare_create(self, obj: Obj) -> None:
        default(obj)
        obj["status"] = {"loadBalancer": {}}

    def prepare_update(self, new: Obj, old: Obj) -> None:
        super().prepare_update(new, old)
        spec, old_spec = new.setdefault("spec", {}), old.get("spec") or {}
        if not isinstance(spec, dict):
            return
        # upstream's patchAllocatedValues: an update that leaves allocated values out keeps them
        if needs_cluster_ip(spec) and not spec.get("clusterIP") and held_ip(old) is not None:
            spec["clusterIP"] = old_spec["clusterIP"]
        if needs_node_ports(spec):
            old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                         for p in old_spec.get("ports") or [] if isinstance(p, dict)}
            for p in spec.get("ports") or []:
                if isinstance(p, dict) and not p.get("nodePort"):
                    np = old_ports.get((p.get("port"), p.get("protocol", "TCP")))
                    if np:
                        p["nodePort"] = np
        default(new)

    def validate(self, obj: Obj) -> Causes:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [("spec", "Required value")]
        causes: Causes = []
        stype = spec.get("type")
        if stype not in TYPES:
            return [("spec.type", f'Unsupported value: "{stype}": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"')]
        ports = spec.get("ports") or []
        if stype == "ExternalName":
            ext = spec.get("externalName")
            if not ext:
                causes.append(("spec.externalName", "Required value"))
            elif meta.validate_dns1123_subdomain(ext.rstrip(".")):
                causes.append(("spec.externalName", f'Invalid value: "{ext}": must be a DNS-1123 subdomain'))
        elif not ports and spec.get("clusterIP") != "None":
            causes.append(("spec.ports", "Required value"))
        names: set[str] = set()
        node_ports: set[tuple[Any, Any]] = set()
        for i, p in enumerate(ports):
            causes += _validate_port(p, i, stype, len(ports) > 1, names, node_ports)
        ip = spec.get("clusterIP")
        if ip and ip != "None" and stype != "ExternalName":
            try:
                allocator.parse(allocator.SERVICE_IPS, ip)
            except ValueError:
                causes.append(("spec.clusterIPs[0]", f'Invalid value: "{ip}": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'))
        if spec.get("sessionAffinity") not in ("None", "ClientIP"):
            causes.append(("spec.sessionAffinity", f'Unsupported value: "{spec.get("sessionAffinity")}": supported values: "ClientIP", "None"'))
        for msg in validate_labels(spec.get("selector") or {}):
            causes.append(("spec.selector", f"Invalid value: {msg}"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        causes = self.validate(new)
        a, b = (new.get("spec") or {}).get("clusterIP"), (old.get("spec") or {}).get("clusterIP")
        types = ((new.get("spec") or {}).get("type"), (old.get("spec") or {}).get("type"))
        if b and a != b and "ExternalName" not in types:
            causes.append(("spec.clusterIP", f'Invalid value: "{a or ""}": field is immutable'))
        return causes

    def allocate(self, store: Store, new: Obj, old: Obj | None) -> None:
        assert SERVICES is not None
        spec, who, name = new.get("spec") or {}, owner(new), (new.get("metadata") or {}).get("name", "")
        claimed_ip: int | None = None
        claimed_ports: list[int] = []
        try:
            old_ip = held_ip(old)
            if needs_cluster_ip(spec) and (old_ip is None or spec.get("clusterIP") != (old or {})["spec"]["clusterIP"]):
                rng = allocator.SERVICE_IPS
                if spec.get("clusterIP"):
                    value = allocator.parse(rng, spec["clusterIP"])
                    if not rng.contains(value):
                        raise errors.invalid(SERVICES, "Service", name, [("spec.clusterIPs", (
                            f'Invalid value: []string{{"{spec["clusterIP"]}"}}: failed to allocate IP {spec["clusterIP"]}: the provided IP '
                            f"({spec['clusterIP']}) is not in the valid range. The range of valid IPs is {allocator.SERVICE_CIDR}"))])
                    try:
                        allocator.claim(store, rng, value, who)
                    except allocator.Taken:
                        raise errors.invalid(SERVICES, "Service", name, [("spec.clusterIPs", (
                            f'Invalid value: []string{{"{spec["clusterIP"]}"}}: failed to allocate IP {spec["clusterIP"]}: '
                            "provided IP is already allocated"))]) from None
                else:
                    try:
                        value = allocator.allocate(store, rng, who)
                    except allocator.RangeFull:
                        raise errors.internal("failed to allocate a serviceIP: range is full") from None
                    spec["clusterIP"] = rng.text(value)
                    spec["clusterIPs"] = [spec["clusterIP"]]
                claimed_ip = value
            if needs_node_ports(spec):
                before = held_ports(old)
                for i, p in enumerate(spec.get("ports") or []):
                    np = p.get("nodePort")
                    if np and np in before:
                        continue
                    if np:
                        try:
                            allocator.claim(store, allocator.NODE_PORTS, np, who)
                        except allocator.Taken:
                            raise errors.invalid(SERVICES, "Service", name, [(f"spec.ports[{i}].nodePort", (
                                f"Invalid value: {np}: provided port is already allocated"))]) from None
                    else:
                        try:
                            np = allocator.allocate(store, allocator.NODE_PORTS, who)
                        except allocator.RangeFull:
                            raise errors.internal("failed to allocate a nodePort: range is full") from None
                        p["nodePort"] = np
                    claimed_ports.append(np)
        except BaseException:
            if claimed_ip is not None:
                allocator.release(store, allocator.SERVICE_IPS, claimed_ip, who)
            for np in claimed_ports:
                allocator.release(store, allocator.NODE_PORTS, np, who)
            raise

    def release(self, store: Store, obj: Obj, keep: Obj | None) -> None:
        who = owner(obj)
        ip = held_ip(obj)
        if ip is not None and ip != held_ip(keep):
            allocator.release(store, allocator.SERVICE_IPS, ip, who)
        for np in held_ports(obj) - held_ports(keep):
            allocator.release(store, allocator.NODE_PORTS, np, who)


def repair_allocations(store: Store) -> list[str]:
    """Free ClusterIPs and NodePorts no stored Service holds (a crash between
    claim and write). Run at API server start; returns what was freed."""
    import json
    before = store.current_revision()
    ips: dict[int, str] = {}
    ports: dict[int, str] = {}
    for kv in store.list("/registry/core/services/")[0]:
        obj = json.loads(kv.value)
        ip = held_ip(obj)
        if ip is not None:
            ips[ip] = owner(obj)
        for np in held_ports(obj):
            ports[np] = owner(obj)
    freed = [allocator.SERVICE_IPS.text(v) for v in allocator.repair(store, allocator.SERVICE_IPS, ips, before)]
    return freed + [str(v) for v in allocator.repair(store, allocator.NODE_PORTS, ports, before)]


def ensure_default_service(registry: Any, advertise: str) -> None:
    """The `default/kubernetes` Service (the service range's first address, port 443) and its Endpoints and
    EndpointSlice pointing at the API server. Idempotent: existing objects are left alone."""
    assert SERVICES is not None
    host, _, port = advertise.rpartition(":")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    objs = [(SERVICES, {"metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                        "spec": {"clusterIP": netplan.api_server_ip(allocator.SERVICE_CIDR), "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                                                      "targetPort": int(port or 6443)}]}}),
            (kinds.lookup("", "v1", "endpoints"), {"metadata": {"name": "kubernetes", "labels": {
                "endpointslice.kubernetes.io/skip-mirror": "true"}}, "subsets": [{
                    "addresses": [{"ip": host}], "ports": [{"name": "https", "port": int(port or 6443), "protocol": "TCP"}]}]}),
            # upstream's API server keeps the slice beside the Endpoints (no controller manages either)
            (kinds.lookup("discovery.k8s.io", "v1", "endpointslices"), {
                "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes"}},
                "addressType": "IPv6" if ":" in host else "IPv4",
                "endpoints": [{"addresses": [host], "conditions": {"ready": True}}],
                "ports": [{"name": "https", "port": int(port or 6443), "protocol": "TCP"}]})]
    for res, obj in objs:
        try:
            registry.get(res, "default", "kubernetes")
        except errors.APIError as e:
            if e.code != 404:
                raise
            try:
                registry.create(res, "default", obj)
            except errors.APIError as e2:
                if e2.code != 409:  # another master made it first
                    raise
