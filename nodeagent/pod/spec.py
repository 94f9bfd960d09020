"""Pure translation of a pod spec into what the drivers need: the pod
cgroup's path and limits, each container's process (command/args against the
image's Entrypoint/Cmd, env with `$(VAR)` expansion), limits and mounts.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from apimachinery import netplan
from apimachinery.quantity import cpu_millicores, parse_quantity, to_bytes
from cgroups import Resources

Obj = dict[str, Any]
CPU_PERIOD_US = 100_000
MIN_SHARES = 2
DEFAULT_PIDS_LIMIT = 4096
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


@dataclass(frozen=True, slots=True)
class ContainerLimits:
    cpu_shares: int
    cpu_quota_us: int | None
    memory_limit_bytes: int | None


def qos_class(pod: Obj) -> str:
    """The API's qosClass when set, else upstream's rule over every (init) container's requests and limits."""
    if pod.get("status", {}).get("qosClass"):
        return pod["status"]["qosClass"]
    spec = pod.get("spec", {})
    cs = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    any_set, guaranteed = False, bool(cs)
    for c in cs:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        any_set = any_set or any(k in req or k in lim for k in ("cpu", "memory"))
        for k in ("cpu", "memory"):
            if k not in lim or parse_quantity(req.get(k, lim[k])) != parse_quantity(lim[k]):
                guaranteed = False
    return "Guaranteed" if guaranteed else ("Burstable" if any_set else "BestEffort")


def pod_cgroup(root: str, pod: Obj) -> str:
    """`coracle/pod<uid>` (Guaranteed), `coracle/burstable/pod<uid>`, `coracle/besteffort/pod<uid>`, as kubelet."""
    qos = qos_class(pod)
    uid = pod["metadata"]["uid"]
    parent = root if qos == "Guaranteed" else f"{root}/{qos.lower()}"
    return f"{parent}/pod{uid}"


def container_limits(c: Obj) -> ContainerLimits:
    res = c.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    cpu_req = cpu_millicores(parse_quantity(req["cpu"])) if "cpu" in req else 0
    shares = max(MIN_SHARES, cpu_req * 1024 // 1000) if cpu_req else MIN_SHARES
    quota = None
    if "cpu" in lim:
        quota = max(1000, cpu_millicores(parse_quantity(lim["cpu"])) * CPU_PERIOD_US // 1000)
    mem = to_bytes(parse_quantity(lim["memory"])) if "memory" in lim else None
    return ContainerLimits(shares, quota, mem)


def pod_resources(pod: Obj) -> Resources:
    """The pod cgroup: shares = sum of requests; quota and memory = sums of limits when every container has
    one; an init container (run alone) raises each to its own value when that is larger, as upstream."""
    containers = pod.get("spec", {}).get("containers") or []
    limits = [container_limits(c) for c in containers]
    inits = [container_limits(c) for c in pod.get("spec", {}).get("initContainers") or []]
    shares = max([MIN_SHARES, sum(l.cpu_shares for l in limits)] + [i.cpu_shares for i in inits])
    quota = sum(l.cpu_quota_us for l in limits) if limits and all(l.cpu_quota_us for l in limits) else None  # type: ignore[misc]
    mem = sum(l.memory_limit_bytes for l in limits) if limits and all(l.memory_limit_bytes for l in limits) else None  # type: ignore[misc]
    if quota is not None:
        quota = max([quota] + [i.cpu_quota_us or 0 for i in inits]) if all(i.cpu_quota_us for i in inits) else None
    if mem is not None:
        mem = max([mem] + [i.memory_limit_bytes or 0 for i in inits]) \
            if all(i.memory_limit_bytes for i in inits) else None
    return Resources(cpu_shares=shares, cpu_quota_us=quota, cpu_period_us=CPU_PERIOD_US,
                     memory_limit_bytes=mem, pids_limit=DEFAULT_PIDS_LIMIT)


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: unknown references stay as written, `$$` escapes."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _VAR.sub(sub, text)


def field_ref(pod: Obj, path: str, node_name: str, host_ip: str, pod_ip: str) -> str:
    md = pod.get("metadata", {})
    simple = {"metadata.name": md.get("name", ""), "metadata.namespace": md.get("namespace", ""),
              "metadata.uid": md.get("uid", ""), "spec.nodeName": node_name,
              "spec.serviceAccountName": pod.get("spec", {}).get("serviceAccountName", ""),
              "status.hostIP": host_ip, "status.podIP": pod_ip}
    if path in simple:
        return simple[path]
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return (md.get(m.group(1)) or {}).get(m.group(2), "")
    return ""


@dataclass(frozen=True, slots=True)
class NodeCapacity:
    """What resourceFieldRef reports for a limit the container does not set (the node's allocatable)."""
    cpu_millicores: int = 1000
    memory_bytes: int = 1 << 30


def resource_field(c: Obj, ref: Obj, node: NodeCapacity) -> str:
    """resourceFieldRef: limits/requests of cpu, memory, ephemeral-storage over `divisor`, rounded up."""
    what = ref.get("resource", "")
    kind, _, res = what.partition(".")
    r = c.get("resources") or {}
    vals = r.get(kind) or {}
    if res not in vals and kind == "requests":
        vals = r.get("limits") or {}
    if res == "cpu":
        milli = cpu_millicores(parse_quantity(vals["cpu"])) if "cpu" in vals else \
            (node.cpu_millicores if kind == "limits" else 0)
        div = cpu_millicores(parse_quantity(ref.get("divisor") or "1"))
        return str(max(1, math.ceil(milli / div)) if kind == "limits" or milli else 0)
    if res in ("memory", "ephemeral-storage"):
        n = to_bytes(parse_quantity(vals[res])) if res in vals else (node.memory_bytes if kind == "limits" else 0)
        return str(math.ceil(n / to_bytes(parse_quantity(ref.get("divisor") or "1"))))
    raise ValueError(f"unsupported resourceFieldRef {what!r}")


class ConfigError(Exception):
    """A container's configuration refers to something missing: CreateContainerConfigError."""


# (kind "configmaps"|"secrets", namespace, name) -> the object, or None when absent or not served
Lookup = Callable[[str, str, str], "Obj | None"]


def _source(lookup: Lookup | None, kind: str, ns: str, name: str, optional: bool) -> Obj | None:
    obj = lookup(kind, ns, name) if lookup else None
    if obj is None and not optional:
        raise ConfigError(f'{kind[:-1]} "{name}" not found')
    if obj is None:
        return None
    if kind == "secrets":
        import base64
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()} | \
            dict(obj.get("stringData") or {})
    return dict(obj.get("data") or {})


def container_env(pod: Obj, c: Obj, image_env: list[str], node_name: str, host_ip: str, pod_ip: str,
                  lookup: Lookup | None = None, node: NodeCapacity | None = None) -> list[str]:
    """The process env: image env, then envFrom, then env (later wins), `$(VAR)` expanded.
    Raises ConfigError for a missing non-optional configMap/secret or key."""
    return merge_env(pod, image_env, spec_env(pod, c, node_name, host_ip, pod_ip, lookup, node))


def merge_env(pod: Obj, image_env: list[str], declared: dict[str, str]) -> list[str]:
    """The image's env overlaid with the spec's (`spec_env`), plus HOSTNAME."""
    env: dict[str, str] = {}
    for item in image_env:
        k, _, v = item.partition("=")
        env[k] = v
    env.update(declared)
    env.setdefault("HOSTNAME", (pod.get("spec", {}).get("hostname") or pod["metadata"]["name"])[:63])  # as the UTS name
    return [f"{k}={v}" for k, v in env.items()]


def spec_env(pod: Obj, c: Obj, node_name: str, host_ip: str, pod_ip: str,
             lookup: Lookup | None = None, node: NodeCapacity | None = None) -> dict[str, str]:
    """What the container spec declares (envFrom, then env; later wins), `$(VAR)` expanded: also the
    variables `$(VAR)` in command and args may refer to (upstream: not the image's).
    Raises ConfigError for a missing non-optional configMap/secret or key."""
    ns = pod["metadata"].get("namespace", "default")
    declared: dict[str, str] = {}
    for src in c.get("envFrom") or []:
        kind, ref = ("configmaps", src["configMapRef"]) if "configMapRef" in src else ("secrets", src.get("secretRef") or {})
        data = _source(lookup, kind, ns, ref.get("name", ""), bool(ref.get("optional")))
        for k, v in (data or {}).items():
            declared[src.get("prefix", "") + k] = v
    for e in c.get("env") or []:
        vf = e.get("valueFrom") or {}
        if "value" in e:
            declared[e["name"]] = expand(str(e.get("value", "")), declared)
        elif vf.get("fieldRef"):
            declared[e["name"]] = field_ref(pod, vf["fieldRef"].get("fieldPath", ""), node_name, host_ip, pod_ip)
        elif vf.get("resourceFieldRef"):
            declared[e["name"]] = resource_field(c, vf["resourceFieldRef"], node or NodeCapacity())
        elif vf.get("configMapKeyRef") or vf.get("secretKeyRef"):
            kind, ref = ("configmaps", vf["configMapKeyRef"]) if vf.get("configMapKeyRef") else ("secrets", vf["secretKeyRef"])
            data = _source(lookup, kind, ns, ref.get("name", ""), bool(ref.get("optional")))
            if data is not None and ref.get("key") in data:
                declared[e["name"]] = data[ref["key"]]
            elif not ref.get("optional"):
                raise ConfigError(f'couldn\'t find key {ref.get("key")} in {kind[:-1]} {ns}/{ref.get("name")}')
        else:
            declared[e["name"]] = ""
    return declared


def hosts_file(pod: Obj, ip: str, cluster_domain: str = netplan.CLUSTER_DOMAIN) -> str:
    """/etc/hosts: localhost, and the pod's IP with its hostname (FQDN first when a subdomain is set)."""
    spec, md = pod.get("spec", {}), pod["metadata"]
    hostname = (spec.get("hostname") or md["name"])[:63]
    names = hostname
    if spec.get("subdomain"):
        svc = netplan.service_domain(cluster_domain)
        names = f"{hostname}.{spec['subdomain']}.{md.get('namespace', 'default')}.{svc}\t{hostname}"
    extra = "".join(f"{a['ip']}\t{' '.join(a.get('hostnames') or [])}\n" for a in spec.get("hostAliases") or [])
    return f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{ip}\t{names}\n{extra}"


def container_args(c: Obj, image_config: Obj, env: list[str], spec_vars: dict[str, str] | None = None) -> list[str]:
    """Upstream's rules: command replaces Entrypoint (and drops Cmd); args replace Cmd.
    `$(VAR)` expands only variables the container spec declares (`spec_vars`, from env and envFrom;
    without it, the names in `env:` looked up in `env`), not the image's."""
    if spec_vars is not None:
        vars_ = dict(spec_vars)
    else:
        declared = {e.get("name") for e in c.get("env") or []}
        vars_ = {k: v for k, v in (item.partition("=")[::2] for item in env) if k in declared}
    entry = image_config.get("Entrypoint") or []
    cmd = image_config.get("Cmd") or []
    if c.get("command"):
        argv = [expand(a, vars_) for a in c["command"]] + [expand(a, vars_) for a in c.get("args") or []]
    elif c.get("args"):
        argv = list(entry) + [expand(a, vars_) for a in c["args"]]
    else:
        argv = list(entry) + list(cmd)
    return argv


def cluster_dns(service_cidr: str = netplan.SERVICE_CIDR) -> str:
    """The cluster DNS service's address: the 10th of the service range (the network plan's)."""
    return netplan.dns_ip(service_cidr)


def resolv_conf(pod: Obj, dns_ip: str, host_resolv: str, cluster_domain: str = netplan.CLUSTER_DOMAIN) -> str:
    """/etc/resolv.conf by dnsPolicy as upstream: ClusterFirst (the default; a hostNetwork pod falls back
    to Default), ClusterFirstWithHostNet, Default (the node's file), None (dnsConfig alone); dnsConfig's
    nameservers (at most 3 in all), searches and options are added."""
    spec = pod.get("spec", {})
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"
    servers: list[str] = []
    search: list[str] = []
    opts: dict[str, str | None] = {}
    if policy == "Default":
        for ln in host_resolv.splitlines():
            f = ln.split()
            if len(f) >= 2 and f[0] == "nameserver":
                servers.append(f[1])
            elif f and f[0] in ("search", "domain"):
                search = f[1:]
            elif f and f[0] == "options":
                opts.update({k: (v if sep else None) for k, sep, v in (o.partition(":") for o in f[1:])})
    elif policy != "None":
        ns = pod.get("metadata", {}).get("namespace") or "default"
        svc = netplan.service_domain(cluster_domain)
        servers, search = [dns_ip], [f"{ns}.{svc}", svc, cluster_domain]
        opts = {"ndots": "5"}
    cfg = spec.get("dnsConfig") or {}
    servers = list(dict.fromkeys(servers + list(cfg.get("nameservers") or [])))[:3]
    search = list(dict.fromkeys(search + list(cfg.get("searches") or [])))
    for o in cfg.get("options") or []:
        opts[o["name"]] = o.get("value")
    lines = [f"nameserver {s}" for s in servers]
    if search:
        lines.append("search " + " ".join(search))
    if opts:
        lines.append("options " + " ".join(k if v is None else f"{k}:{v}" for k, v in opts.items()))
    return "".join(ln + "\n" for ln in lines)
