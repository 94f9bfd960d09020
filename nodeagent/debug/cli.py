"""`coracle debug ...`: the node agent's debug CLI, from LOCAL state only.

It reads the agent's pod records (nodeagent.pod.record) and the node's kernel
objects through the agent's own drivers, read-only: the sandbox's pinned
namespaces (nodeagent.pod.sandbox), cgroups (cgroups), runc state (nodeagent.runtime.runc),
plus /proc, /sys/class/net and `nsenter ... ip` (nodeagent.debug.host).  So it
works with the master and the agent down.  Verbs: pods, inspect, logs,
cgroups, net, enter (nodeagent.debug.enter).  Pure decisions and formatting
live in nodeagent.debug.view.  Anything missing shows as '-' / null, never a crash.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from nodeagent.runtime import crilog
from nodeagent.debug import enter as debug_enter
from nodeagent.debug.host import Drivers, make_drivers
from nodeagent.debug.view import (
    DASH,
    DebugError,
    cpu_quota_str,
    default_gateway,
    enter_targets,
    format_inspect,
    format_table,
    log_attempt,
    mem_str,
    pick_container,
    record_phase,
    resolve_pod,
    startup_rows,
    tail,
)
from nodeagent.pod.record import ContainerRecord, ContainerState, PodRecord

Obj = dict[str, Any]
POD_COLUMNS = ("NAMESPACE", "NAME", "UID", "PHASE", "IP", "VETH", "NETNS", "CGROUP", "MEM",
               "CPU QUOTA", "PIDS")
KEY_FILES = {
    "memory": ("memory.limit_in_bytes", "memory.usage_in_bytes", "memory.max_usage_in_bytes",
               "memory.oom_control"),
    "cpu": ("cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"),
    "cpuacct": ("cpuacct.usage",),
    "pids": ("pids.max", "pids.current"),
    "freezer": ("freezer.state",),
    "unified": ("memory.max", "memory.current", "memory.events", "cpu.max", "cpu.weight",
                "pids.max", "pids.current", "cgroup.freeze"),
}

# -- collection: live facts, each one allowed to be missing ---------------------


def _usage(d: Drivers, path: str) -> Obj | None:
    if d.cgroups is None or not path:
        return None
    try:
        return dataclasses.asdict(d.cgroups.usage(path))
    except Exception:  # noqa: BLE001 - a gone cgroup (OSError, KeyError, CgroupError) reads as unknown
        return None


def _runc_state(d: Drivers, c: ContainerRecord) -> Obj | None:
    if not c.runtime_id:
        return None
    try:
        return d.runtime.state(c.runtime_id)
    except Exception as e:  # noqa: BLE001 - runc missing or failing: show why
        return {"error": str(e)}


def _init_pid(d: Drivers, c: ContainerRecord, st: Obj | None) -> int | None:
    if st and st.get("status") in ("created", "running", "paused") and st.get("pid"):
        pid = int(st["pid"])
        return pid if d.host.alive(pid) else None
    if c.state is ContainerState.RUNNING and c.pid and d.host.alive(c.pid):
        return c.pid
    return None


def _pod_ns(d: Drivers, rec: PodRecord) -> tuple[dict[str, str], dict[str, int]]:
    """The pod's pinned namespace files (only those still pinned) and their inodes."""
    try:
        p = d.sandbox.paths(rec.uid)
        inodes = d.sandbox.inodes(rec.uid)
    except (OSError, ValueError):
        return {}, {}
    paths = {"net": rec.netns or p.net, "ipc": rec.ipcns or p.ipc, "uts": rec.utsns or p.uts}
    return {k: v for k, v in paths.items() if k in inodes}, inodes


def summary(d: Drivers, rec: PodRecord, states: dict[str, Obj | None] | None = None) -> Obj:
    """One pod's row (the `pods` verb); `states`: runc state per container, if read."""
    ns_paths, _ = _pod_ns(d, rec)
    u = _usage(d, rec.cgroup)
    pids = [p for c in rec.containers.values()
            if (p := _init_pid(d, c, (states or {}).get(c.name))) is not None]
    return {"namespace": rec.namespace, "name": rec.name, "uid": rec.uid, "phase": record_phase(rec),
            "ip": rec.ip or None, "hostVeth": rec.host_veth or None, "netns": ns_paths.get("net"),
            "cgroup": rec.cgroup if u is not None else None, "usage": u,
            "memory": mem_str(u["memory_bytes"], u["memory_limit_bytes"], True) if u else DASH,
            "cpuQuota": cpu_quota_str(u["cpu_quota_us"], u["cpu_period_us"], True) if u else DASH,
            "pids": pids}


def inspect(d: Drivers, rec: PodRecord) -> Obj:
    states = {n: _runc_state(d, c) for n, c in rec.containers.items()}
    out = summary(d, rec, states)
    ns_paths, pod_inodes = _pod_ns(d, rec)
    exists, master = d.host.link(rec.host_veth) if rec.host_veth else (False, None)
    out["veth"] = {"name": rec.host_veth or None, "exists": exists, "master": master}
    out["sandbox"] = {"paths": ns_paths, "inodes": pod_inodes}
    out["cgroupPath"] = rec.cgroup or None
    out["containers"] = []
    for name, c in rec.containers.items():
        st = states[name]
        pid = _init_pid(d, c, st)
        inodes = d.host.ns_inodes(pid) if pid else {}
        cg = f"{rec.cgroup}/{name}" if rec.cgroup else ""
        out["containers"].append({
            "name": name, "state": str(c.state), "attempt": c.attempt, "runtimeId": c.runtime_id or None,
            "image": c.image or None, "pid": pid, "startedAt": c.started_at or None,
            "finishedAt": c.finished_at or None, "reason": c.reason or None,
            "exitCode": c.exit_code if c.state is ContainerState.EXITED else None,
            "logPath": d.records.log_path(rec.uid, name, c.attempt),
            "runc": ({k: st.get(k) for k in ("status", "pid", "bundle")} if st and "error" not in st
                     else st),
            "cgroup": cg or None, "usage": _usage(d, cg),
            "namespaces": inodes,
            "sharesPodNamespace": {k: inodes.get(k) == v for k, v in pod_inodes.items()} if inodes else {}})
    out["processes"] = [{"pid": p, "cmdline": d.host.cmdline(p)} for p in _cgroup_pids(d, rec.cgroup)]
    out["startup"] = startup_rows(rec)
    return out


def _cgroup_pids(d: Drivers, path: str) -> list[int]:
    if d.cgroups is None or not path:
        return []
    try:
        return list(d.cgroups.pids(path))
    except Exception:  # noqa: BLE001 - gone cgroup: no processes to show
        return []


def cgroup_report(d: Drivers, path: str) -> Obj:
    dirs: dict[str, str] = {}
    if d.cgroups is not None and path:
        try:
            dirs = d.cgroups.fs_paths(path)
        except Exception:  # noqa: BLE001
            dirs = {}
    values: dict[str, dict[str, str]] = {}
    for ctrl, dirpath in dirs.items():
        for f in KEY_FILES.get(ctrl, ()):
            try:
                with open(os.path.join(dirpath, f)) as fh:
                    values.setdefault(ctrl, {})[f] = "; ".join(fh.read().split("\n")).strip("; ")
            except OSError:
                continue
    return {"path": path or None, "exists": any(os.path.isdir(p) for p in dirs.values()),
            "dirs": dirs, "values": values, "usage": _usage(d, path)}


def net_report(d: Drivers, rec: PodRecord) -> Obj:
    ns_paths, inodes = _pod_ns(d, rec)
    exists, master = d.host.link(rec.host_veth) if rec.host_veth else (False, None)
    out: Obj = {"ip": rec.ip or None, "gateway": None, "hostVeth": rec.host_veth or None,
                "vethExists": exists, "bridge": master, "netns": ns_paths.get("net"),
                "netnsInode": inodes.get("net"), "addr": None, "route": None}
    if "net" in ns_paths:
        for key, argv in (("addr", ["ip", "-o", "addr"]), ("route", ["ip", "-o", "route"])):
            code, text = d.host.run(["nsenter", f"--net={ns_paths['net']}", *argv])
            out[key] = text if code == 0 else f"error (exit {code}): {text}"
        gw = default_gateway(out["route"] or "")
        out["gateway"] = None if gw == DASH else gw
    return out

# -- verbs -----------------------------------------------------------------------


def _dump(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))


def _cell(v: Any) -> str:
    if v is None or v == [] or v == "":
        return DASH
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def cmd_pods(d: Drivers, a: argparse.Namespace) -> int:
    rows = [summary(d, r) for r in d.records.load_all()]
    if a.output == "json":
        _dump(rows)
        return 0
    print(format_table(POD_COLUMNS, [[_cell(r[k]) if k != "uid" else r[k][:8] for k in
                                      ("namespace", "name", "uid", "phase", "ip", "hostVeth", "netns",
                                       "cgroup", "memory", "cpuQuota", "pids")] for r in rows]))
    return 0


def _pod(d: Drivers, ref: str) -> PodRecord:
    return resolve_pod(d.records.load_all(), ref)


def cmd_inspect(d: Drivers, a: argparse.Namespace) -> int:
    out = inspect(d, _pod(d, a.pod))
    if a.output != "table":
        _dump(out)
        return 0
    print(format_inspect(out))
    return 0


def cmd_logs(d: Drivers, a: argparse.Namespace) -> int:
    rec = _pod(d, a.pod)
    c = pick_container(rec, a.container)
    path = d.records.log_path(rec.uid, c.name, log_attempt(c, a.previous))
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DebugError(f"no log file {path} (has container {c.name} started?)") from None
    sys.stdout.buffer.write(tail(crilog.read_log(data), a.tail))  # CRI lines -> the container's own output
    sys.stdout.flush()
    return 0


def _usage_line(u: Obj | None) -> str:
    if u is None:
        return "usage: -"
    return (f"usage: mem {mem_str(u['memory_bytes'], u['memory_limit_bytes'], True)}"
            f"  cpu {u['cpu_usage_ns'] / 1e9:.2f}s quota {cpu_quota_str(u['cpu_quota_us'], u['cpu_period_us'], True)}"
            f"  pids {u['pids']}  oom_kills {u['oom_kills']}")


def cmd_cgroups(d: Drivers, a: argparse.Namespace) -> int:
    rec = _pod(d, a.pod)
    report = {"pod": cgroup_report(d, rec.cgroup),
              "containers": {n: cgroup_report(d, f"{rec.cgroup}/{n}" if rec.cgroup else "")
                             for n in rec.containers}}
    if a.output == "json":
        _dump(report)
        return 0
    for title, r in [(f"pod {rec.namespace}/{rec.name}", report["pod"]),
                     *((f"container {n}", r) for n, r in report["containers"].items())]:
        print(f"{title}: {r['path'] or DASH}{'' if r['exists'] else '  (gone)'}")
        print(f"  {_usage_line(r['usage'])}")
        for ctrl, dirpath in r["dirs"].items():
            vals = "  ".join(f"{k}={v}" for k, v in r["values"].get(ctrl, {}).items())
            print(f"  {ctrl:<8} {dirpath}  {vals}".rstrip())
    return 0


def cmd_net(d: Drivers, a: argparse.Namespace) -> int:
    r = net_report(d, _pod(d, a.pod))
    if a.output == "json":
        _dump(r)
        return 0
    for k in ("ip", "gateway", "hostVeth", "vethExists", "bridge", "netns", "netnsInode"):
        print(f"{k + ':':<12} {_cell(r[k])}")
    for k in ("addr", "route"):
        print(f"ip -o {k}:")
        for line in (r[k] or DASH).splitlines():
            print(f"  {line}")
    return 0


def cmd_enter(d: Drivers, a: argparse.Namespace) -> int:
    rec = _pod(d, a.pod)
    pid = None
    if a.container is not None:
        c = pick_container(rec, a.container)
        pid = _init_pid(d, c, _runc_state(d, c))
    ns_paths, _ = _pod_ns(d, rec)
    targets = enter_targets(pid, ns_paths, a.container, proc=d.proc)
    return debug_enter.enter(targets, a.cmd or ["/bin/sh"])


VERBS: dict[str, Callable[[Drivers, argparse.Namespace], int]] = {
    "pods": cmd_pods, "inspect": cmd_inspect, "logs": cmd_logs, "cgroups": cmd_cgroups,
    "net": cmd_net, "enter": cmd_enter}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coracle debug", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="verb", required=True)
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("-o", "--output", choices=("table", "json"), default="table")
    sub.add_parser("pods", parents=[out], help="the pods this node runs")
    ins = sub.add_parser("inspect", help="everything known about one pod, with its start-up phases (JSON)")
    ins.add_argument("pod")
    ins.add_argument("-o", "--output", choices=("json", "table"), default="json")
    lg = sub.add_parser("logs", help="a container's log")
    lg.add_argument("pod")
    lg.add_argument("-c", "--container")
    lg.add_argument("-p", "--previous", action="store_true")
    lg.add_argument("--tail", type=int)
    sub.add_parser("cgroups", parents=[out], help="cgroup dirs, limits, usage").add_argument("pod")
    sub.add_parser("net", parents=[out], help="IP, veth, bridge, addresses and routes").add_argument("pod")
    en = sub.add_parser("enter", help="run a command in the pod's namespaces: enter POD [-c C] [-- CMD...]")
    en.add_argument("pod")
    en.add_argument("-c", "--container")
    en.add_argument("cmd", nargs="*")
    return p


def main(a: argparse.Namespace, factory: Callable[[argparse.Namespace], Drivers] = make_drivers) -> int:
    rest = list(a.rest or [])
    cmd: list[str] = []
    if "--" in rest:  # everything after -- is the command for `enter`, untouched
        i = rest.index("--")
        rest, cmd = rest[:i], rest[i + 1:]
    try:
        args = parser().parse_args(rest)
    except SystemExit as e:
        return int(e.code or 0)
    if cmd:
        if args.verb != "enter":
            print(f"coracle debug {args.verb}: unexpected arguments after --", file=sys.stderr)
            return 2
        args.cmd = [*args.cmd, *cmd]
    try:
        return VERBS[args.verb](factory(a), args)
    except DebugError as e:
        print(f"coracle debug {args.verb}: {e}", file=sys.stderr)
        return 1
