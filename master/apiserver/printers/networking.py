"""Printers for traffic: services, endpoints, endpoint slices (discovery.k8s.io)
and ingresses (networking.k8s.io). Neighbours: cells.py (lists, labels), table.py.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from master.apiserver.printers.cells import format_labels, more
from master.apiserver.printers.table import AGE_COL, NAME_COL, Obj, column, obj_age, obj_name, register


def _lb_ingress(status: Obj) -> list[str]:
    return [i.get("ip") or i.get("hostname") or "" for i in (status.get("loadBalancer") or {}).get("ingress") or []]


def _service_external_ip(spec: Obj, status: Obj) -> str:
    stype = spec.get("type", "ClusterIP")
    external = list(spec.get("externalIPs") or [])
    if stype in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if stype == "ExternalName":
        return spec.get("externalName") or "<none>"
    if stype == "LoadBalancer":
        lb = _lb_ingress(status)
        return ",".join(lb + external) or "<pending>"
    return "<unknown>"


def service_row(svc: Obj, now: dt.datetime) -> list[Any]:
    spec, status = svc.get("spec") or {}, svc.get("status") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    ports = []
    for p in spec.get("ports") or []:
        proto = p.get("protocol", "TCP")
        ports.append(f"{p.get('port')}:{p['nodePort']}/{proto}" if p.get("nodePort") else f"{p.get('port')}/{proto}")
    return [obj_name(svc), spec.get("type", ""), ips[0] if ips else "<none>", _service_external_ip(spec, status),
            ",".join(ports) or "<none>", obj_age(svc, now), format_labels(spec.get("selector"))]


SERVICE_COLUMNS = [
    NAME_COL,
    column("Type", "The type of the service."),
    column("Cluster-IP", "The cluster IP of the service."),
    column("External-IP", "The external IP of the service."),
    column("Port(s)", "The ports of the service."),
    AGE_COL,
    column("Selector", "Route service traffic to pods with label keys and values matching this selector.", 1),
]


def endpoints_row(ep: Obj, now: dt.datetime) -> list[Any]:
    items: list[str] = []
    for s in ep.get("subsets") or []:
        addrs = s.get("addresses") or []
        ports = s.get("ports") or []
        if not ports:
            items += [a.get("ip", "") for a in addrs]
        for p in ports:
            items += [f"{a.get('ip', '')}:{p.get('port')}" for a in addrs]
    return [obj_name(ep), more(items) or "<none>", obj_age(ep, now)]


ENDPOINTS_COLUMNS = [NAME_COL, column("Endpoints", "Endpoints of the resource."), AGE_COL]


def endpointslice_row(es: Obj, now: dt.datetime) -> list[Any]:
    ports = es.get("ports")
    if ports is None or not ports:
        ports_cell = "<unset>" if ports is None else "<none>"
    else:
        ports_cell = more([str(p["port"]) if p.get("port") is not None else "<unset>" for p in ports], 2)
    addrs = [a for ep in es.get("endpoints") or [] for a in ep.get("addresses") or []]
    return [obj_name(es), es.get("addressType", ""), ports_cell, more(addrs) or "<unset>", obj_age(es, now)]


ENDPOINTSLICE_COLUMNS = [
    NAME_COL,
    column("AddressType", "The IP protocol for this slice"),
    column("Ports", "The ports of the slice"),
    column("Endpoints", "The endpoints of the slice"),
    AGE_COL,
]


def ingress_row(ing: Obj, now: dt.datetime) -> list[Any]:
    spec, status = ing.get("spec") or {}, ing.get("status") or {}
    hosts = [r["host"] for r in spec.get("rules") or [] if r.get("host")]
    lb = _lb_ingress(status)
    return [obj_name(ing), spec.get("ingressClassName") or "<none>", more(hosts) or "*", ",".join(lb),
            "80, 443" if spec.get("tls") else "80", obj_age(ing, now)]


INGRESS_COLUMNS = [
    NAME_COL,
    column("Class", "The name of the IngressClass resource that should be used for this Ingress."),
    column("Hosts", "Hosts that incoming requests are matched against before the ingress rule"),
    column("Address", "Address is a list containing ingress points for the load-balancer"),
    column("Ports", "Ports of TLS configurations that open"),
    AGE_COL,
]


register({
    "services": (SERVICE_COLUMNS, service_row),
    "endpoints": (ENDPOINTS_COLUMNS, endpoints_row),
    "endpointslices": (ENDPOINTSLICE_COLUMNS, endpointslice_row),
    "ingresses": (INGRESS_COLUMNS, ingress_row),
})
