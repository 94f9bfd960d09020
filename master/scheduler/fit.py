"""Pure scheduling decisions: which nodes can take a pod and which is best.

`place(pod, nodes, pods_by_node)` returns the chosen node name, or None and
the reasons each node was rejected (for the PodScheduled=False message).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from apimachinery import meta
from apimachinery.quantity import cpu_millicores, parse_quantity, to_bytes

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Request:
    cpu_m: int
    memory: int


def pod_request(pod: Obj) -> Request:
    """Effective request: sum over app containers, at least the largest init container."""
    def one(c: Obj) -> Request:
        req = (c.get("resources") or {}).get("requests") or {}
        return Request(cpu_millicores(parse_quantity(req["cpu"])) if "cpu" in req else 0,
                       to_bytes(parse_quantity(req["memory"])) if "memory" in req else 0)
    spec = pod.get("spec", {})
    apps = [one(c) for c in spec.get("containers") or []]
    inits = [one(c) for c in spec.get("initContainers") or []]
    cpu = max([sum(r.cpu_m for r in apps)] + [r.cpu_m for r in inits])
    mem = max([sum(r.memory for r in apps)] + [r.memory for r in inits])
    return Request(cpu, mem)


def allocatable(node: Obj) -> tuple[int, int, int]:
    a = node.get("status", {}).get("allocatable") or node.get("status", {}).get("capacity") or {}
    cpu = cpu_millicores(parse_quantity(a.get("cpu", "0")))
    mem = to_bytes(parse_quantity(a.get("memory", "0")))
    pods = int(parse_quantity(a.get("pods", "110")))
    return cpu, mem, pods


def _ready(node: Obj) -> bool:
    cond = meta.get_condition(node, "Ready")
    return cond is not None and cond.get("status") == "True"


def _tolerates(pod: Obj, taint: Obj) -> bool:
    for t in pod.get("spec", {}).get("tolerations") or []:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator") == "Exists" and (not t.get("key") or t["key"] == taint.get("key")):
            return True
        if t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def reject_reason(pod: Obj, node: Obj, used: Request, count: int) -> str | None:
    """Why this node cannot run the pod, in upstream's words, or None if it can."""
    spec = node.get("spec", {})
    if not _ready(node):
        return "node(s) were not ready"
    if spec.get("unschedulable"):
        return "node(s) were unschedulable"
    for taint in spec.get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(pod, taint):
            return "node(s) had untolerated taint"
    labels = meta.labels(node)
    for k, v in (pod.get("spec", {}).get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return "node(s) didn't match Pod's node affinity/selector"
    cpu, mem, max_pods = allocatable(node)
    want = pod_request(pod)
    if count + 1 > max_pods:
        return "Too many pods"
    if used.cpu_m + want.cpu_m > cpu:
        return "Insufficient cpu"
    if used.memory + want.memory > mem:
        return "Insufficient memory"
    return None


def score(node: Obj, used: Request, pod: Obj) -> float:
    """Least allocated: the mean free fraction of cpu and memory after placing the pod."""
    cpu, mem, _ = allocatable(node)
    want = pod_request(pod)
    free_cpu = (cpu - used.cpu_m - want.cpu_m) / cpu if cpu else 0
    free_mem = (mem - used.memory - want.memory) / mem if mem else 0
    return (free_cpu + free_mem) / 2


def place(pod: Obj, nodes: list[Obj], usage: dict[str, tuple[Request, int]]) -> tuple[str | None, str]:
    """Pick a node. Returns (node name, "") or (None, upstream-style message)."""
    best: tuple[float, str] | None = None
    reasons: Counter[str] = Counter()
    for node in nodes:
        name = meta.name(node)
        used, count = usage.get(name, (Request(0, 0), 0))
        why = reject_reason(pod, node, used, count)
        if why:
            reasons[why] += 1
            continue
        s = score(node, used, pod)
        if best is None or (s, name) > best:
            best = (s, name)
    if best is not None:
        return best[1], ""
    detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
    return None, f"0/{len(nodes)} nodes are available" + (f": {detail}." if detail else ".")


def usage_by_node(pods: list[Obj]) -> dict[str, tuple[Request, int]]:
    out: dict[str, tuple[Request, int]] = {}
    for p in pods:
        node = p.get("spec", {}).get("nodeName")
        if not node or p.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        r = pod_request(p)
        used, n = out.get(node, (Request(0, 0), 0))
        out[node] = (Request(used.cpu_m + r.cpu_m, used.memory + r.memory), n + 1)
    return out
