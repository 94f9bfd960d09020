"""Pure decisions and formatting for the debug CLI (nodeagent/debug.py): which
pod a user meant, a pod's phase from its record alone, human units, tables,
the namespaces `debug enter` joins.  No I/O: unit-tested alone
(tests/unit/test_debug.py).  Collection of live facts lives in cli.py,
host access in host.py, the fork+setns in enter.py.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

from nodeagent.pod import phases
from nodeagent.pod.record import ContainerRecord, ContainerState, PodRecord

DASH = "-"
# Namespaces `enter -c` joins, in setns order: mnt last, because after it the
# host's /proc (and the other ns files) may no longer be visible.
CONTAINER_NS = ("pid", "net", "ipc", "uts", "mnt")
POD_NS = ("net", "ipc", "uts")


class DebugError(Exception):
    """A user-facing error: the message says what was wrong and what to do."""


def resolve_pod(records: Sequence[PodRecord], ref: str) -> PodRecord:
    """POD as `namespace/name`, `name` (any namespace) or a uid prefix.

    Exactly one match or DebugError (not found / ambiguous, listing candidates)."""
    if not ref:
        raise DebugError("empty POD: give a name, namespace/name or a uid prefix")
    exact = [r for r in records if r.uid == ref]
    if exact:
        return exact[0]
    if "/" in ref:
        ns, _, name = ref.partition("/")
        found = [r for r in records if r.namespace == ns and r.name == name]
    else:
        found = [r for r in records if r.name == ref or r.uid.startswith(ref)]
    if not found:
        raise DebugError(f"no pod {ref!r} on this node; `coracle debug pods` lists them")
    if len(found) > 1:
        names = ", ".join(f"{r.namespace}/{r.name} ({r.uid[:8]})" for r in found)
        raise DebugError(f"pod {ref!r} is ambiguous: {names}; use namespace/name or a longer uid prefix")
    return found[0]


def record_phase(rec: PodRecord) -> str:
    """Running if any container runs; Succeeded/Failed from exit codes once all
    exited (or the agent marked the pod finished); Pending before any start."""
    cs = list(rec.containers.values())
    if any(c.state is ContainerState.RUNNING for c in cs):
        return "Running"
    exited = [c for c in cs if c.state is ContainerState.EXITED]
    if cs and (rec.finished or len(exited) == len(cs)):
        return "Succeeded" if all((c.exit_code or 0) == 0 for c in exited) else "Failed"
    if not cs or all(c.attempt == 0 and not c.started_at for c in cs):
        return "Pending"
    return "Running"  # between restarts (back-off): kube still says Running


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def startup_rows(rec: PodRecord) -> list[dict]:
    """The pod's start-up phases in the order they began: phase, container (or None), start (RFC 3339,
    milliseconds), durationMs, and sinceSeenMs (from the agent first seeing the pod to the phase's end)."""
    items = sorted(rec.startup.items(), key=lambda kv: (kv[1][0], phases.PHASES.index(phases.split(kv[0])[0])
                                                       if phases.split(kv[0])[0] in phases.PHASES else 99))
    seen = rec.startup.get("seen", [items[0][1][0] if items else 0.0])[0]
    rows = []
    for key, (start, secs) in items:
        name, container = phases.split(key)
        rows.append({"phase": name, "container": container or None, "start": _stamp(start),
                     "durationMs": round(secs * 1000, 3), "sinceSeenMs": round((start + secs - seen) * 1000, 3)})
    return rows


def format_startup(rows: Sequence[dict]) -> str:
    return format_table(("PHASE", "CONTAINER", "START", "DURATION", "SINCE SEEN"),
                        [[r["phase"], r["container"] or "", r["start"], f"{r['durationMs']:.1f}ms",
                          f"{r['sinceSeenMs']:.1f}ms"] for r in rows])


def _cell(v: object) -> str:
    return DASH if v is None or v == "" else str(v)


def format_inspect(out: dict) -> str:
    """`debug inspect -o table`: the pod's summary, its containers, its start-up phases."""
    lines = [f"{k + ':':<11} {_cell(out.get(k))}" for k in
             ("namespace", "name", "uid", "phase", "ip", "hostVeth", "netns", "cgroupPath", "memory", "cpuQuota")]
    lines += ["containers:", format_table(("NAME", "STATE", "ATTEMPT", "PID", "REASON", "RUNTIME ID"), [
        [c["name"], c["state"], str(c["attempt"]), _cell(c["pid"]), _cell(c["reason"]), _cell(c["runtimeId"])]
        for c in out["containers"]])]
    lines += ["start-up phases:", format_startup(out["startup"]) if out["startup"] else DASH]
    return "\n".join(lines)


def human_bytes(n: int | None) -> str:
    if n is None:
        return "max"
    v = float(n)
    for unit in ("", "Ki", "Mi", "Gi"):  # noqa: B007 - read after the loop
        if v < 1024:
            break
        v /= 1024
    else:
        unit = "Ti"
    return f"{int(v)}{unit}" if v == int(v) else f"{v:.1f}{unit}"


def mem_str(used: int | None, limit: int | None, known: bool) -> str:
    return f"{human_bytes(used)}/{human_bytes(limit)}" if known else DASH


def cpu_quota_str(quota_us: int | None, period_us: int | None, known: bool) -> str:
    if not known:
        return DASH
    return "max" if quota_us is None else f"{quota_us}/{period_us}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """kubectl-style columns: left-aligned, three spaces apart, empty cells as '-'."""
    cells = [[str(c) if str(c) != "" else DASH for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["   ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip()
             for row in [list(headers), *cells]]
    return "\n".join(lines)


def pick_container(rec: PodRecord, name: str | None) -> ContainerRecord:
    if name:
        if name not in rec.containers:
            raise DebugError(f"pod {rec.namespace}/{rec.name} has no container {name!r}; "
                             f"it has: {', '.join(rec.containers) or 'none'}")
        return rec.containers[name]
    if len(rec.containers) == 1:
        return next(iter(rec.containers.values()))
    raise DebugError(f"pod {rec.namespace}/{rec.name} has containers {', '.join(rec.containers) or '(none)'}; "
                     "choose one with -c")


def log_attempt(c: ContainerRecord, previous: bool) -> int:
    if not previous:
        return c.attempt
    if c.attempt == 0:
        raise DebugError(f"container {c.name} has no previous instance (it never restarted)")
    return c.attempt - 1


def tail(data: bytes, n: int | None) -> bytes:
    """The last n lines of data (all of it for None; nothing for 0)."""
    if n is None:
        return data
    if n <= 0:
        return b""
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-n:])


def default_gateway(route_output: str) -> str:
    """`ip -o route` output -> the default route's next hop, or '-'."""
    for line in route_output.splitlines():
        words = line.split()
        if words[:1] == ["default"] and "via" in words:
            return words[words.index("via") + 1]
    return DASH


def parse_ns_link(target: str) -> int | None:
    """readlink of /proc/<pid>/ns/<kind> ("net:[4026531840]") -> the inode."""
    if target.endswith("]") and ":[" in target:
        try:
            return int(target[target.index(":[") + 2:-1])
        except ValueError:
            return None
    return None


def enter_targets(pid: int | None, pod_paths: dict[str, str], container: str | None,
                  proc: str = "/proc") -> list[tuple[str, str]]:
    """(kind, ns file) pairs `enter` joins, in order.  With a container: all of
    its init's namespaces from /proc (mnt last); without: the pod's pinned ones."""
    if container is not None:
        if not pid:
            raise DebugError(f"container {container} is not running (no init pid); "
                             "enter the pod without -c to use its network namespace")
        return [(k, f"{proc}/{pid}/ns/{k}") for k in CONTAINER_NS]
    missing = [k for k in POD_NS if not pod_paths.get(k)]
    if missing:
        raise DebugError(f"the pod's {', '.join(missing)} namespace(s) are gone (sandbox removed?)")
    return [(k, pod_paths[k]) for k in POD_NS]
