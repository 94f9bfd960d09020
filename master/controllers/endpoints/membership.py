"""Which pods are a Service's endpoints: the pure rules both the Endpoints
controller (`controller.py`) and the EndpointSlice controller
(`slices.py`) apply, as upstream's `k8s.io/endpointslice/util`, plus
the two small stateful pieces they share: a per-namespace index of the pod
informer's cache and the `last-change-trigger-time` tracker.

Everything here is pure except `PodIndex` (fed by informer handlers) and
`TriggerTimes` (a dict of what the last sync saw); neither does I/O.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable

from apimachinery import meta

Obj = dict[str, Any]
TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
HEADLESS = "service.kubernetes.io/headless"


# -- services -------------------------------------------------------------------
def selector(svc: Obj) -> dict[str, str] | None:
    """The Service's selector, None when it has none: upstream's nil selector (an empty map does not
    survive the API server's storage either) means "endpoints are managed by hand"."""
    sel = (svc.get("spec") or {}).get("selector")
    return dict(sel) if sel else None


def managed(svc: Obj) -> bool:
    """Gets endpoints from the controllers: has a selector and is not an ExternalName."""
    return (svc.get("spec") or {}).get("type") != "ExternalName" and selector(svc) is not None


def selects(svc: Obj, pod: Obj) -> bool:
    sel = selector(svc)
    if sel is None or meta.namespace(svc) != meta.namespace(pod):
        return False
    labels = meta.labels(pod)
    return all(labels.get(k) == v for k, v in sel.items())


def ip_set(svc: Obj) -> bool:
    """Upstream's IsServiceIPSet: a ClusterIP that is neither empty nor "None"."""
    ip = (svc.get("spec") or {}).get("clusterIP")
    return bool(ip) and ip != "None"


def headless_without_ports(svc: Obj) -> bool:
    spec = svc.get("spec") or {}
    return not spec.get("ports") and spec.get("clusterIP") == "None"


def publish_not_ready(svc: Obj) -> bool:
    return bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))


# -- pods -------------------------------------------------------------------------
def ready_condition(pod: Obj) -> Obj | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return None


def is_ready(pod: Obj) -> bool:
    c = ready_condition(pod)
    return c is not None and c.get("status") == "True"


def terminating(pod: Obj) -> bool:
    return bool(pod.get("metadata", {}).get("deletionTimestamp"))


def pod_ips(pod: Obj) -> list[str]:
    status = pod.get("status") or {}
    ips = [str(i["ip"]) for i in status.get("podIPs") or [] if i.get("ip")]
    if not ips and status.get("podIP"):
        ips = [str(status["podIP"])]
    return ips


def in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """Upstream's ShouldPodBeInEndpoints: not terminal (Succeeded/Failed), has an IP, and is not
    terminating unless terminating pods are asked for."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    if not pod_ips(pod):
        return False
    return include_terminating or not terminating(pod)


def service_family(svc: Obj, pod: Obj) -> str:
    """"IPv4" or "IPv6": the Service's first IP family; without one, that of its ClusterIP, else
    of the pod's IP (a headless Service from an old API server)."""
    spec = svc.get("spec") or {}
    if spec.get("ipFamilies"):
        return str(spec["ipFamilies"][0])
    probe = spec.get("clusterIP") if ip_set(svc) else (pod.get("status") or {}).get("podIP")
    return family(str(probe or "")) or "IPv4"


def family(ip: str) -> str | None:
    if ":" in ip:
        return "IPv6"
    if ip.count(".") == 3:  # the API server validated pod IPs; a full parse costs 10 µs a pod
        return "IPv4"
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return None


def ip_of_family(pod: Obj, fam: str) -> str | None:
    for ip in pod_ips(pod):
        if family(ip) == fam:
            return ip
    return None


def target_ref(pod: Obj) -> Obj:
    return {"kind": "Pod", "namespace": meta.namespace(pod), "name": meta.name(pod), "uid": meta.uid(pod)}


def hostname_for(pod: Obj, svc: Obj) -> str | None:
    """Upstream's ShouldSetHostname: the pod's hostname when its subdomain names this Service
    (in the same namespace). Upstream does not require the Service to be headless."""
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == meta.name(svc) and meta.namespace(svc) == meta.namespace(pod):
        return str(spec["hostname"])
    return None


def find_port(pod: Obj, svc_port: Obj) -> int | None:
    """The pod's port for a Service port (upstream's FindPort): a numeric targetPort as is; a named
    one looked up by name and protocol among the containers' (and sidecar init containers') ports."""
    target = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(target, int):
        return target
    if not isinstance(target, str) or not target:
        return None
    proto = svc_port.get("protocol", "TCP")
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for c in list(spec.get("containers") or []) + sidecars:
        for p in c.get("ports") or []:
            if p.get("name") == target and p.get("protocol", "TCP") == proto:
                return int(p["containerPort"])
    return None


def endpoints_changed(old: Obj, new: Obj) -> tuple[bool, bool]:
    """(pod changed in a way its endpoints show, labels or hostname/subdomain changed): upstream's
    podEndpointsChanged."""
    ospec, nspec = old.get("spec") or {}, new.get("spec") or {}
    labels_changed = (meta.labels(old) != meta.labels(new) or ospec.get("hostname") != nspec.get("hostname")
                      or ospec.get("subdomain") != nspec.get("subdomain"))
    changed = (old.get("metadata", {}).get("deletionTimestamp") != new.get("metadata", {}).get("deletionTimestamp")
               or is_ready(old) != is_ready(new) or pod_ips(old) != pod_ips(new))
    return changed, labels_changed


def services_for(services: Iterable[Obj], pod: Obj) -> set[str]:
    return {meta.key(s) for s in services if selects(s, pod)}


def services_to_update(services: list[Obj], old: Obj, new: Obj) -> set[str]:
    """The Service keys to sync after a pod update (upstream's GetServicesToUpdateOnPodChange)."""
    if meta.resource_version(old) == meta.resource_version(new):
        return set()
    changed, labels_changed = endpoints_changed(old, new)
    if not changed and not labels_changed:
        return set()
    now = services_for(services, new)
    if not labels_changed:
        return now
    before = services_for(services, old)
    return now | before if changed else now ^ before


# -- shared state ---------------------------------------------------------------------
class PodIndex:
    """The pod informer's objects by namespace, kept current by its handlers, so a sync lists one
    namespace's pods instead of every pod in the cluster."""

    def __init__(self) -> None:
        self.by_ns: dict[str, dict[str, Obj]] = {}

    def put(self, pod: Obj) -> None:
        self.by_ns.setdefault(meta.namespace(pod), {})[meta.name(pod)] = pod

    def remove(self, pod: Obj) -> None:
        pods = self.by_ns.get(meta.namespace(pod))
        if pods is not None:
            pods.pop(meta.name(pod), None)
            if not pods:
                del self.by_ns[meta.namespace(pod)]

    def selected_by(self, svc: Obj) -> list[Obj]:
        """The pods the Service selects, by name."""
        pods = self.by_ns.get(meta.namespace(svc)) or {}
        return [p for _, p in sorted(pods.items()) if selects(svc, p)]


def _time(value: str | None) -> dt.datetime | None:
    try:
        return meta.parse_time(value)
    except ValueError:
        return None


def format_time(t: dt.datetime) -> str:
    """RFC 3339 with the fraction trimmed as Go's RFC3339Nano prints it."""
    t = t.astimezone(dt.timezone.utc)
    frac = f"{t.microsecond:06d}".rstrip("0")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


@dataclass
class _Seen:
    service: dt.datetime | None = None
    pods: dict[str, dt.datetime] = field(default_factory=dict)


class TriggerTimes:
    """Upstream's TriggerTimeTracker: the time of the earliest change (a pod's Ready transition, the
    Service's creation) not yet seen by a sync of that Service; None when nothing new was seen. A
    Service seen for the first time reports its creation time. Not safe for concurrent calls on the
    same key (the work queue never makes them)."""

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}

    def compute(self, svc: Obj, pods: list[Obj]) -> str | None:
        key = meta.key(svc)
        known = key in self._seen
        seen = self._seen.get(key) or _Seen()
        earliest: dt.datetime | None = None
        pod_times: dict[str, dt.datetime] = {}
        for pod in pods:
            t = _time((ready_condition(pod) or {}).get("lastTransitionTime"))
            if t is None:
                continue
            pod_times[meta.name(pod)] = t
            last = seen.pods.get(meta.name(pod))
            if last is None or t > last:
                earliest = t if earliest is None or t < earliest else earliest
        created = _time(svc.get("metadata", {}).get("creationTimestamp"))
        if created is not None and (seen.service is None or created > seen.service):
            earliest = created if earliest is None or created < earliest else earliest
        self._seen[key] = _Seen(created, pod_times)
        if not known:
            return format_time(created) if created is not None else None
        return format_time(earliest) if earliest is not None else None

    def forget(self, key: str) -> None:
        self._seen.pop(key, None)
