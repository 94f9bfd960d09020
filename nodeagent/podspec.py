"""Pure translation of a pod spec into what the drivers need: the pod
cgroup's path and limits, each container's process (command/args against the
image's Entrypoint/Cmd, env with `$(VAR)` expansion), limits and mounts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

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
    return pod.get("status", {}).get("qosClass") or "BestEffort"


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
    """The pod cgroup: shares = sum of requests; quota and memory = sums of limits when every container has one."""
    containers = pod.get("spec", {}).get("containers") or []
    limits = [container_limits(c) for c in containers]
    shares = max(MIN_SHARES, sum(l.cpu_shares for l in limits))
    quota = sum(l.cpu_quota_us for l in limits) if limits and all(l.cpu_quota_us for l in limits) else None  # type: ignore[misc]
    mem = sum(l.memory_limit_bytes for l in limits) if limits and all(l.memory_limit_bytes for l in limits) else None  # type: ignore[misc]
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


def container_env(pod: Obj, c: Obj, image_env: list[str], node_name: str, host_ip: str, pod_ip: str) -> list[str]:
    env: dict[str, str] = {}
    for item in image_env:
        k, _, v = item.partition("=")
        env[k] = v
    declared: dict[str, str] = {}
    for e in c.get("env") or []:
        if "value" in e:
            declared[e["name"]] = expand(str(e.get("value", "")), declared)
        elif (e.get("valueFrom") or {}).get("fieldRef"):
            declared[e["name"]] = field_ref(pod, e["valueFrom"]["fieldRef"].get("fieldPath", ""), node_name, host_ip, pod_ip)
        else:
            declared[e["name"]] = ""
    env.update(declared)
    env.setdefault("HOSTNAME", (pod.get("spec", {}).get("hostname") or pod["metadata"]["name"])[:63])  # as the UTS name
    return [f"{k}={v}" for k, v in env.items()]


def container_args(c: Obj, image_config: Obj, env: list[str]) -> list[str]:
    """Upstream's rules: command replaces Entrypoint (and drops Cmd); args replace Cmd.
    `$(VAR)` expands only variables the container spec declares, not the image's."""
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
