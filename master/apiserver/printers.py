"""Server-side Table printing (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`).

kubectl get asks the API server for a `meta.k8s.io/v1` Table and prints its
cells as they come, so the columns and cell formats here follow upstream's
printers (pkg/printers/internalversion). The REST list/get handlers call
`table_for` and fill `metadata.resourceVersion`/`continue` themselves.
To add a resource, add a `(columns, row function)` entry to PRINTERS.
The server always sends the wide (priority 1) columns; kubectl hides them
unless `-o wide`.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
RowFn = Callable[[Obj, dt.datetime], list[Any]]


def column(name: str, description: str, priority: int = 0, type: str = "string", format: str = "") -> Obj:
    return {"name": name, "type": type, "format": format, "description": description, "priority": priority}


NAME_COL = column("Name", "Name must be unique within a namespace. Cannot be updated.", format="name")
AGE_COL = column("Age", "CreationTimestamp is a timestamp representing the server time when this object was "
                 "created.")


# ---- time -------------------------------------------------------------------

def parse_time(value: Any) -> dt.datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value)  # 3.11 reads "Z" and fractions
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def human_duration(d: dt.timedelta) -> str:
    """upstream's duration.HumanDuration: `5s`, `2m3s`, `10m`, `3h4m`, `2d3h`, `45d`, `3y10d`."""
    seconds = int(d.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def since(value: Any, now: dt.datetime) -> str:
    t = parse_time(value)
    return "<unknown>" if t is None else human_duration(now - t)


def _age(obj: Obj, now: dt.datetime) -> str:
    return since((obj.get("metadata") or {}).get("creationTimestamp"), now)


def _name(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("name", "")


# ---- pods -------------------------------------------------------------------

def _later(a: dt.datetime | None, b: Any) -> dt.datetime | None:
    t = parse_time(b)
    return t if t is not None and (a is None or t > a) else a


def _terminated_reason(term: Obj, prefix: str) -> str:
    if term.get("reason"):
        return prefix + term["reason"]
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    if not term.get("exitCode"):
        return prefix + "Completed"  # upstream shows ExitCode:0; the kubelet always sets Completed
    return f"{prefix}ExitCode:{term['exitCode']}"


def _has_condition(status: Obj, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in status.get("conditions") or [])


def pod_row(pod: Obj, now: dt.datetime) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    sidecar = lambda name: (init_specs.get(name) or {}).get("restartPolicy") == "Always"
    total = len(spec.get("containers") or []) + sum(1 for n in init_specs if sidecar(n))
    ready = restarts = sidecar_restarts = 0
    last_restart: dt.datetime | None = None
    last_sidecar_restart: dt.datetime | None = None
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for c in status.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        state = cs.get("state") or {}
        restarts += int(cs.get("restartCount") or 0)
        finished = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        last_restart = _later(last_restart, finished)
        if sidecar(cs.get("name")):
            sidecar_restarts += int(cs.get("restartCount") or 0)
            last_sidecar_restart = _later(last_sidecar_restart, finished)
        term, waiting = state.get("terminated"), state.get("waiting")
        if term is not None and not term.get("exitCode"):
            continue
        if sidecar(cs.get("name")) and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        if term is not None:
            reason = _terminated_reason(term, "Init:")
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _has_condition(status, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            state = cs.get("state") or {}
            restarts += int(cs.get("restartCount") or 0)
            last_restart = _later(last_restart, ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif term is not None:
                reason = _terminated_reason(term, "")
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_condition(status, "Ready") else "NotReady"

    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration(now - last_restart)} ago)"
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        true = sum(1 for g in gates if _has_condition(status, g.get("conditionType")))
        gates_cell = f"{true}/{len(gates)}"
    return [_name(pod), f"{ready}/{total}", reason, restarts_cell, _age(pod, now),
            status.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", gates_cell]


POD_COLUMNS = [
    NAME_COL,
    column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    column("Status", "The aggregate status of the containers in this pod."),
    column("Restarts", "The number of times the containers in this pod have been restarted and when the last "
           "container in this pod has restarted."),
    AGE_COL,
    column("IP", "IP address allocated to the pod. Routable at least within the cluster.", 1),
    column("Node", "NodeName is a request to schedule this pod onto a specific node.", 1),
    column("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the node.", 1),
    column("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness.", 1),
]


# ---- nodes ------------------------------------------------------------------

def node_roles(node: Obj) -> list[str]:
    roles = set()
    for k, v in ((node.get("metadata") or {}).get("labels") or {}).items():
        if k.startswith("node-role.kubernetes.io/") and k[len("node-role.kubernetes.io/"):]:
            roles.add(k[len("node-role.kubernetes.io/"):])
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return sorted(roles)


def node_row(node: Obj, now: dt.datetime) -> list[Any]:
    spec, status = node.get("spec") or {}, node.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    state = "Unknown" if ready is None else ("Ready" if ready.get("status") == "True" else "NotReady")
    if spec.get("unschedulable"):
        state += ",SchedulingDisabled"
    info = status.get("nodeInfo") or {}
    addrs = status.get("addresses") or []
    addr = lambda t: next((a.get("address") for a in addrs if a.get("type") == t), None) or "<none>"
    return [_name(node), state, ",".join(node_roles(node)) or "<none>", _age(node, now),
            info.get("kubeletVersion", ""), addr("InternalIP"), addr("ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


NODE_COLUMNS = [
    NAME_COL,
    column("Status", "The status of the node"),
    column("Roles", "The roles of the node"),
    AGE_COL,
    column("Version", "Kubelet Version reported by the node."),
    column("Internal-IP", "List of addresses reachable to the node. Queried from cloud provider, if available.", 1),
    column("External-IP", "List of addresses reachable to the node. Queried from cloud provider, if available.", 1),
    column("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1),
    column("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
    column("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API.", 1),
]


# ---- namespaces, events, everything else -------------------------------------

def namespace_row(ns: Obj, now: dt.datetime) -> list[Any]:
    return [_name(ns), (ns.get("status") or {}).get("phase", ""), _age(ns, now)]


NAMESPACE_COLUMNS = [NAME_COL, column("Status", "The status of the namespace"), AGE_COL]


def event_row(ev: Obj, now: dt.datetime) -> list[Any]:
    first = since(ev.get("firstTimestamp"), now) if ev.get("firstTimestamp") else since(ev.get("eventTime"), now)
    last = since(ev.get("lastTimestamp"), now) if ev.get("lastTimestamp") else first
    count = int(ev.get("count") or 0)
    series = ev.get("series")
    if series:
        last, count = since(series.get("lastObservedTime"), now), int(series.get("count") or 0)
    elif count == 0:
        count = 1
    inv = ev.get("involvedObject") or {}
    kind = (inv.get("kind") or "").lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    src = ev.get("source") or {}
    component = src.get("component") or ev.get("reportingComponent") or ""
    host = src.get("host") or ev.get("reportingInstance") or ""
    source = f"{component}, {host}" if host else component
    return [last, ev.get("type", ""), ev.get("reason", ""), target, inv.get("fieldPath", ""), source,
            (ev.get("message") or "").strip(), first, count, _name(ev)]


EVENT_COLUMNS = [
    column("Last Seen", "The last time this event was seen."),
    column("Type", "Type of this event (Normal, Warning), new types could be added in the future."),
    column("Reason", "This should be a short, machine understandable string that gives the reason for this "
           "event being generated."),
    column("Object", "The object that this event is about."),
    column("Subobject", "The subobject that this event is about (field path).", 1),
    column("Source", "The component reporting this event.", 1),
    column("Message", "A human-readable description of the status of this operation."),
    column("First Seen", "The first time this event was seen.", 1),
    column("Count", "The number of times this event has occurred.", 1, type="integer"),
    column("Name", "Name must be unique within a namespace.", 1, format="name"),
]


def default_row(obj: Obj, now: dt.datetime) -> list[Any]:
    return [_name(obj), _age(obj, now)]


DEFAULT_COLUMNS = [NAME_COL, AGE_COL]


# ---- shared cell formats ----------------------------------------------------

def _more(items: list[str], max_shown: int = 3, sep: str = ",") -> str:
    """upstream's "a,b,c + 2 more..." lists."""
    if len(items) > max_shown:
        return sep.join(items[:max_shown]) + f" + {len(items) - max_shown} more..."
    return sep.join(items)


def format_labels(labels: Any) -> str:
    """labels.FormatLabels: sorted `k=v` pairs, or <none>."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def format_label_selector(sel: Any) -> str:
    """metav1.FormatLabelSelector."""
    if not isinstance(sel, dict):
        return "<none>"
    reqs = [(k, f"{k}={v}") for k, v in (sel.get("matchLabels") or {}).items()]
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e.get("key", ""), e.get("operator", ""), ",".join(sorted(e.get("values") or []))
        text = {"In": f"{k} in ({vals})", "NotIn": f"{k} notin ({vals})", "Exists": k, "DoesNotExist": f"!{k}"}.get(op, k)
        reqs.append((k, text))
    return ",".join(t for _, t in sorted(reqs)) or "<none>"


def _created_at(obj: Obj, now: dt.datetime) -> str:
    t = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else "<unknown>"


def _int(v: Any) -> int:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0


def _template_cells(spec: Obj) -> list[str]:
    cs = (((spec.get("template") or {}).get("spec") or {}).get("containers")) or []
    return [",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)]


CREATED_AT_COL = column("Created At", "CreationTimestamp is a timestamp representing the server time when this "
                        "object was created.", type="date")
CONTAINERS_COL = column("Containers", "Names of each container in the template.", 1)
IMAGES_COL = column("Images", "Images referenced by each container in the template.", 1)
SELECTOR_COL = column("Selector", "Label selector for pods. Existing ReplicaSets whose pods are selected by this "
                      "will be the ones affected by this deployment.", 1)


# ---- services, endpoints, endpoint slices, ingresses --------------------------

def _service_external_ip(spec: Obj, status: Obj) -> str:
    stype = spec.get("type", "ClusterIP")
    external = list(spec.get("externalIPs") or [])
    if stype in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if stype == "ExternalName":
        return spec.get("externalName") or "<none>"
    if stype == "LoadBalancer":
        lb = [i.get("ip") or i.get("hostname") or "" for i in (status.get("loadBalancer") or {}).get("ingress") or []]
        return ",".join(lb + external) or "<pending>"
    return "<unknown>"


def service_row(svc: Obj, now: dt.datetime) -> list[Any]:
    spec, status = svc.get("spec") or {}, svc.get("status") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    ports = []
    for p in spec.get("ports") or []:
        proto = p.get("protocol", "TCP")
        ports.append(f"{p.get('port')}:{p['nodePort']}/{proto}" if p.get("nodePort") else f"{p.get('port')}/{proto}")
    return [_name(svc), spec.get("type", ""), ips[0] if ips else "<none>", _service_external_ip(spec, status),
            ",".join(ports) or "<none>", _age(svc, now), format_labels(spec.get("selector"))]


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
    return [_name(ep), _more(items) or "<none>", _age(ep, now)]


ENDPOINTS_COLUMNS = [NAME_COL, column("Endpoints", "Endpoints of the resource."), AGE_COL]


def endpointslice_row(es: Obj, now: dt.datetime) -> list[Any]:
    ports = es.get("ports")
    if ports is None or not ports:
        ports_cell = "<unset>" if ports is None else "<none>"
    else:
        ports_cell = _more([str(p["port"]) if p.get("port") is not None else "<unset>" for p in ports], 2)
    addrs = [a for ep in es.get("endpoints") or [] for a in ep.get("addresses") or []]
    return [_name(es), es.get("addressType", ""), ports_cell, _more(addrs) or "<unset>", _age(es, now)]


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
    lb = [i.get("ip") or i.get("hostname") or "" for i in (status.get("loadBalancer") or {}).get("ingress") or []]
    return [_name(ing), spec.get("ingressClassName") or "<none>", _more(hosts) or "*", ",".join(lb),
            "80, 443" if spec.get("tls") else "80", _age(ing, now)]


INGRESS_COLUMNS = [
    NAME_COL,
    column("Class", "The name of the IngressClass resource that should be used for this Ingress."),
    column("Hosts", "Hosts that incoming requests are matched against before the ingress rule"),
    column("Address", "Address is a list containing ingress points for the load-balancer"),
    column("Ports", "Ports of TLS configurations that open"),
    AGE_COL,
]


# ---- workloads ------------------------------------------------------------------

def deployment_row(d: Obj, now: dt.datetime) -> list[Any]:
    spec, status = d.get("spec") or {}, d.get("status") or {}
    return [_name(d), f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas'))}",
            _int(status.get("updatedReplicas")), _int(status.get("availableReplicas")), _age(d, now),
            *_template_cells(spec), format_label_selector(spec.get("selector"))]


DEPLOYMENT_COLUMNS = [
    NAME_COL,
    column("Ready", "Number of the pod with ready state"),
    column("Up-to-date", "Total number of non-terminated pods targeted by this deployment that have the desired "
           "template spec.", type="integer"),
    column("Available", "Total number of available pods (ready for at least minReadySeconds) targeted by this "
           "deployment.", type="integer"),
    AGE_COL, CONTAINERS_COL, IMAGES_COL, SELECTOR_COL,
]


def replicaset_row(rs: Obj, now: dt.datetime) -> list[Any]:
    spec, status = rs.get("spec") or {}, rs.get("status") or {}
    sel = spec.get("selector")
    selector = format_label_selector(sel) if rs.get("kind") != "ReplicationController" else format_labels(sel)
    return [_name(rs), _int(spec.get("replicas")), _int(status.get("replicas")), _int(status.get("readyReplicas")),
            _age(rs, now), *_template_cells(spec), selector]


REPLICASET_COLUMNS = [
    NAME_COL,
    column("Desired", "Replicas is the number of desired replicas.", type="integer"),
    column("Current", "Replicas is the most recently observed number of replicas.", type="integer"),
    column("Ready", "The number of ready replicas for this replica set.", type="integer"),
    AGE_COL, CONTAINERS_COL, IMAGES_COL,
    column("Selector", "Selector is a label query over pods that should match the replica count.", 1),
]


def _hpa_metric(m: Obj, current: Obj | None) -> str:
    t = m.get("type")
    key = {"Resource": "resource", "ContainerResource": "containerResource", "Pods": "pods", "Object": "object",
           "External": "external"}.get(t or "", "")
    spec = m.get(key) or {}
    cur = ((current or {}).get(key) or {}).get("current") or {}
    target = spec.get("target") or {}
    name = spec.get("name") or (spec.get("metric") or {}).get("name", "")
    if target.get("averageUtilization") is not None or (t in ("Resource", "ContainerResource") and target.get("type") == "Utilization"):
        now_cell = f"{cur['averageUtilization']}%" if cur.get("averageUtilization") is not None else "<unknown>"
        tgt = f"{target['averageUtilization']}%" if target.get("averageUtilization") is not None else "<auto>"
    else:
        val = target.get("averageValue") if target.get("averageValue") is not None else target.get("value")
        now_val = cur.get("averageValue") if cur.get("averageValue") is not None else cur.get("value")
        now_cell, tgt = (str(now_val) if now_val is not None else "<unknown>"), str(val)
    if t in ("Resource", "ContainerResource"):
        return f"{name}: {now_cell}/{tgt}"
    if t == "External" and target.get("averageValue") is not None:
        tgt += " (avg)"
    return f"{now_cell}/{tgt}"


def hpa_row(hpa: Obj, now: dt.datetime) -> list[Any]:
    if hpa.get("apiVersion") == "autoscaling/v1":
        from master.apiserver.resources.conversion import hpa_v1_to_v2
        hpa = hpa_v1_to_v2(hpa)
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    currents = status.get("currentMetrics") or []
    metrics = [_hpa_metric(m, currents[i] if i < len(currents) else None) for i, m in enumerate(spec.get("metrics") or [])]
    targets = ", ".join(metrics[:2]) + (f" + {len(metrics) - 2} more..." if len(metrics) > 2 else "") if metrics else "<none>"
    mn = spec.get("minReplicas")
    return [_name(hpa), f"{ref.get('kind', '')}/{ref.get('name', '')}", targets,
            str(mn) if mn is not None else "<unset>", _int(spec.get("maxReplicas")),
            _int(status.get("currentReplicas")), _age(hpa, now)]


HPA_COLUMNS = [
    NAME_COL,
    column("Reference", "Reference to the resource to be scaled"),
    column("Targets", "Current and target utilization of the resource"),
    column("MinPods", "Lower limit for the number of pods that can be set by the autoscaler, default 1."),
    column("MaxPods", "Upper limit for the number of pods that can be set by the autoscaler.", type="integer"),
    column("Replicas", "Current number of replicas of pods managed by this autoscaler.", type="integer"),
    AGE_COL,
]


# ---- configuration, policy, storage -------------------------------------------

def configmap_row(cm: Obj, now: dt.datetime) -> list[Any]:
    return [_name(cm), len(cm.get("data") or {}) + len(cm.get("binaryData") or {}), _age(cm, now)]


CONFIGMAP_COLUMNS = [NAME_COL, column("Data", "Number of data in the config map", type="integer"), AGE_COL]


def secret_row(sec: Obj, now: dt.datetime) -> list[Any]:
    return [_name(sec), sec.get("type", ""), len(sec.get("data") or {}), _age(sec, now)]


SECRET_COLUMNS = [NAME_COL, column("Type", "The type of the secret"),
                  column("Data", "The number of data in the secret", type="integer"), AGE_COL]


def serviceaccount_row(sa: Obj, now: dt.datetime) -> list[Any]:
    return [_name(sa), len(sa.get("secrets") or []), _age(sa, now)]


SERVICEACCOUNT_COLUMNS = [NAME_COL, column("Secrets", "Secrets is a list of the secrets in the same namespace "
                                           "that pods running using this ServiceAccount are allowed to use.",
                                           type="integer"), AGE_COL]


def resourcequota_row(q: Obj, now: dt.datetime) -> list[Any]:
    status = q.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    req: list[str] = []
    lim: list[str] = []
    for k in sorted(hard):
        cell = f"{k}: {used.get(k, '0')}/{hard[k]}"
        (lim if k.startswith("limits") else req).append(cell)
    return [_name(q), _age(q, now), ", ".join(req), ", ".join(lim)]


RESOURCEQUOTA_COLUMNS = [NAME_COL, AGE_COL,
                         column("Request", "Request represents a minimum amount of cpu/memory that a container may consume."),
                         column("Limit", "Limits control the maximum amount of cpu/memory that a container may use "
                                "independent of contention on the node.")]

_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}


def _modes(modes: Any) -> str:
    return ",".join(_MODES.get(m, m) for m in modes or [])


def pv_row(pv: Obj, now: dt.datetime) -> list[Any]:
    spec, status = pv.get("spec") or {}, pv.get("status") or {}
    ref = spec.get("claimRef") or {}
    claim = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""
    return [_name(pv), (spec.get("capacity") or {}).get("storage", ""), _modes(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy", ""), status.get("phase", ""), claim,
            spec.get("storageClassName", ""), spec.get("volumeAttributesClassName") or "<unset>",
            status.get("reason", ""), _age(pv, now), spec.get("volumeMode") or "<unset>"]


PV_COLUMNS = [
    NAME_COL,
    column("Capacity", "capacity is the description of the persistent volume's resources and capacity."),
    column("Access Modes", "accessModes contains all ways the volume can be mounted."),
    column("Reclaim Policy", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when "
           "released from its claim."),
    column("Status", "phase indicates if a volume is available, bound to a claim, or released by a claim."),
    column("Claim", "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim."),
    column("StorageClass", "storageClassName is the name of StorageClass to which this persistent volume belongs."),
    column("VolumeAttributesClass", "Name of VolumeAttributesClass to which this persistent volume belongs."),
    column("Reason", "reason is a brief CamelCase string that describes any failure and is meant for machine "
           "parsing and tidy display in the CLI."),
    AGE_COL,
    column("VolumeMode", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to "
           "remain in raw block state.", 1),
]


def pvc_row(pvc: Obj, now: dt.datetime) -> list[Any]:
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    bound = bool(spec.get("volumeName"))
    phase = "Terminating" if (pvc.get("metadata") or {}).get("deletionTimestamp") else status.get("phase", "")
    return [_name(pvc), phase, spec.get("volumeName", ""),
            (status.get("capacity") or {}).get("storage", "") if bound else "",
            _modes(status.get("accessModes")) if bound else "", spec.get("storageClassName", ""),
            spec.get("volumeAttributesClassName") or "<unset>", _age(pvc, now), spec.get("volumeMode") or "<unset>"]


PVC_COLUMNS = [
    NAME_COL,
    column("Status", "phase represents the current phase of PersistentVolumeClaim."),
    column("Volume", "volumeName is the binding reference to the PersistentVolume backing this claim."),
    column("Capacity", "capacity represents the actual resources of the underlying volume."),
    column("Access Modes", "accessModes contains the desired access modes the volume should have."),
    column("StorageClass", "storageClassName is the name of the StorageClass required by the claim."),
    column("VolumeAttributesClass", "volumeAttributesClassName may be used to set the VolumeAttributesClass used "
           "by this claim."),
    AGE_COL,
    column("VolumeMode", "volumeMode defines what type of volume is required by the claim.", 1),
]


# ---- access, coordination -------------------------------------------------------

def created_at_row(obj: Obj, now: dt.datetime) -> list[Any]:
    return [_name(obj), _created_at(obj, now)]


CREATED_AT_COLUMNS = [NAME_COL, CREATED_AT_COL]


def binding_row(b: Obj, now: dt.datetime) -> list[Any]:
    ref = b.get("roleRef") or {}
    users, groups, sas = [], [], []
    for s in b.get("subjects") or []:
        if s.get("kind") == "User":
            users.append(s.get("name", ""))
        elif s.get("kind") == "Group":
            groups.append(s.get("name", ""))
        elif s.get("kind") == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}:{s.get('name', '')}")
    return [_name(b), f"{ref.get('kind', '')}/{ref.get('name', '')}", _age(b, now),
            ", ".join(users), ", ".join(groups), ", ".join(sas)]


BINDING_COLUMNS = [
    NAME_COL,
    column("Role", "RoleRef is the role being bound."),
    AGE_COL,
    column("Users", "Users in the binding.", 1),
    column("Groups", "Groups in the binding.", 1),
    column("ServiceAccounts", "ServiceAccounts in the binding.", 1),
]


def lease_row(lease: Obj, now: dt.datetime) -> list[Any]:
    return [_name(lease), (lease.get("spec") or {}).get("holderIdentity") or "", _age(lease, now)]


LEASE_COLUMNS = [NAME_COL, column("Holder", "HolderIdentity contains the identity of the holder of a current lease."),
                 AGE_COL]


def _any_event_row(ev: Obj, now: dt.datetime) -> list[Any]:
    if ev.get("apiVersion") == "events.k8s.io/v1":
        from master.apiserver.resources.conversion import event_events_to_core
        ev = event_events_to_core(ev)
    return event_row(ev, now)


PRINTERS: dict[str, tuple[list[Obj], RowFn]] = {
    "pods": (POD_COLUMNS, pod_row),
    "nodes": (NODE_COLUMNS, node_row),
    "namespaces": (NAMESPACE_COLUMNS, namespace_row),
    "events": (EVENT_COLUMNS, _any_event_row),
    "services": (SERVICE_COLUMNS, service_row),
    "endpoints": (ENDPOINTS_COLUMNS, endpoints_row),
    "endpointslices": (ENDPOINTSLICE_COLUMNS, endpointslice_row),
    "ingresses": (INGRESS_COLUMNS, ingress_row),
    "deployments": (DEPLOYMENT_COLUMNS, deployment_row),
    "replicasets": (REPLICASET_COLUMNS, replicaset_row),
    "replicationcontrollers": (REPLICASET_COLUMNS, replicaset_row),
    "horizontalpodautoscalers": (HPA_COLUMNS, hpa_row),
    "configmaps": (CONFIGMAP_COLUMNS, configmap_row),
    "secrets": (SECRET_COLUMNS, secret_row),
    "serviceaccounts": (SERVICEACCOUNT_COLUMNS, serviceaccount_row),
    "resourcequotas": (RESOURCEQUOTA_COLUMNS, resourcequota_row),
    "limitranges": (CREATED_AT_COLUMNS, created_at_row),
    "persistentvolumes": (PV_COLUMNS, pv_row),
    "persistentvolumeclaims": (PVC_COLUMNS, pvc_row),
    "roles": (CREATED_AT_COLUMNS, created_at_row),
    "clusterroles": (CREATED_AT_COLUMNS, created_at_row),
    "rolebindings": (BINDING_COLUMNS, binding_row),
    "clusterrolebindings": (BINDING_COLUMNS, binding_row),
    "leases": (LEASE_COLUMNS, lease_row),
}


def row_object(obj: Obj, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def table_for(resource: str, objects: list[Obj], now: dt.datetime | None = None,
              include_object: str = "Metadata") -> Obj:
    """A meta.k8s.io/v1 Table of `objects` (plural resource name, e.g. "pods").

    include_object is the `includeObject` query parameter: None, Metadata or Object.
    """
    if include_object not in ("None", "Metadata", "Object"):
        raise ValueError(f"includeObject must be None, Metadata or Object, not {include_object!r}")
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    columns, row_fn = PRINTERS.get(resource, (DEFAULT_COLUMNS, default_row))
    rows = []
    for obj in objects:
        row: Obj = {"cells": row_fn(obj, now)}
        o = row_object(obj, include_object)
        if o is not None:
            row["object"] = o
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
            "columnDefinitions": [dict(c) for c in columns], "rows": rows}
