"""Endpoints (core/v1) and EndpointSlice (discovery.k8s.io/v1) rules: valid
addresses and ports; a slice's addressType is required and immutable."""
from __future__ import annotations

import ipaddress

from master.apiserver.resources import Causes, Obj, Strategy, register
from master.apiserver.resources.services import PROTOCOLS

ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")


def _ip_error(value: object) -> str | None:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return f'Invalid value: "{value}": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'
    return None


def _port_causes(ports: list[Obj], path: str, need_port: bool) -> Causes:
    causes: Causes = []
    for i, p in enumerate(ports):
        port = p.get("port")
        if (need_port or port is not None) and (not isinstance(port, int) or not 0 < port < 65536):
            causes.append((f"{path}[{i}].port", f"Invalid value: {port}: must be between 1 and 65535, inclusive"))
        proto = p.get("protocol", "TCP")
        if proto not in PROTOCOLS:
            causes.append((f"{path}[{i}].protocol", f'Unsupported value: "{proto}": supported values: "SCTP", "TCP", "UDP"'))
    return causes


@register("endpoints")
class EndpointsStrategy(Strategy):
    has_status = False
    tracks_generation = False

    def prepare_create(self, obj: Obj) -> None:
        for s in obj.get("subsets") or []:
            for p in s.get("ports") or []:
                p.setdefault("protocol", "TCP")

    def prepare_update(self, new: Obj, old: Obj) -> None:
        self.prepare_create(new)

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        for i, s in enumerate(obj.get("subsets") or []):
            for field in ("addresses", "notReadyAddresses"):
                for j, a in enumerate(s.get(field) or []):
                    err = _ip_error(a.get("ip"))
                    if err:
                        causes.append((f"subsets[{i}].{field}[{j}].ip", err))
            causes += _port_causes(s.get("ports") or [], f"subsets[{i}].ports", True)
        return causes


@register("endpointslices", "discovery.k8s.io")
class EndpointSliceStrategy(Strategy):
    has_status = False

    def prepare_create(self, obj: Obj) -> None:
        for p in obj.get("ports") or []:
            p.setdefault("protocol", "TCP")

    def prepare_update(self, new: Obj, old: Obj) -> None:
        self.prepare_create(new)

    def spec_changed(self, new: Obj, old: Obj) -> bool:
        return any(new.get(f) != old.get(f) for f in ("endpoints", "ports", "addressType"))

    def validate(self, obj: Obj) -> Causes:
        at = obj.get("addressType")
        if at not in ADDRESS_TYPES:
            if not at:
                return [("addressType", "Required value")]
            return [("addressType", f'Unsupported value: "{at}": supported values: "FQDN", "IPv4", "IPv6"')]
        causes: Causes = []
        for i, ep in enumerate(obj.get("endpoints") or []):
            addrs = ep.get("addresses") or []
            if not addrs:
                causes.append((f"endpoints[{i}].addresses", "Required value: must contain at least 1 address"))
            for j, a in enumerate(addrs):
                if at != "FQDN":
                    err = _ip_error(a)
                    ok = err is None and ipaddress.ip_address(a).version == (4 if at == "IPv4" else 6)
                    if not ok:
                        causes.append((f"endpoints[{i}].addresses[{j}]", err or f'Invalid value: "{a}": must be an {at} address'))
        return causes + _port_causes(obj.get("ports") or [], "ports", False)

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        causes = self.validate(new)
        if new.get("addressType") != old.get("addressType"):
            causes.append(("addressType", f'Invalid value: "{new.get("addressType")}": field is immutable'))
        return causes
