"""Pod start-up benchmark: create-to-Running latency beside the floor measured in the same run.

Run through `scripts/bench/pod-startup` (root).  It starts a private one-node
cluster (coracle.localcluster.LocalCluster in a temp dir: its own ports, bridge, cgroup
root and 10.247.0.0/16) and, beside it, the floor (scripts/bench/floor.py: the
agent's own drivers by hand, no agent, on bridge crtf<rand> and 10.247.250.0/24).
After a warm-up, N rounds one after another: one floor pod, then one busybox pod
through the API, so that both see the same machine load.  A pod's latency runs
from just before its POST to the watch event that shows phase Running with the
container running; the watch also stamps the POST's return and the binding
(spec.nodeName), splitting the latency into API, scheduler and agent; the agent's part is split
further by the start-up phases each pod's record keeps (nodeagent.pod.phases,
read from the agent's state dir as `coracle debug inspect` does), median per phase.
Everything is removed at the end, also on Ctrl-C, SIGTERM or an error.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import floor

from apimachinery import kinds
from apimachinery.client import Client
from coracle.localcluster import LocalCluster
from nodeagent.debug.view import startup_rows
from nodeagent.pod.phases import PHASES
from nodeagent.pod.record import RecordStore
from nodeagent.runtime.images import ImageStore

PODS = kinds.lookup("", "v1", "pods")
CLUSTER_CIDR = "10.247.0.0/16"
SERVICE_CIDR = "10.99.0.0/16"
FLOOR_SUBNET = "10.247.250.0/24"
NAMESPACE = "default"
Obj = dict[str, Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); with 20 samples p99 is the max."""
    s = sorted(xs)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def pod_manifest(name: str, run: str) -> Obj:
    # Limits as the floor's (floor.LIMITS); small requests so that many pods fit 2 cores.  Not
    # tiny CPU limits: runc init runs inside the container's cgroup, and with 10m (1 ms of CPU per
    # 100 ms) `runc create` alone takes ~1.5 s here.
    req, lim = {"cpu": "10m", "memory": "16Mi"}, {"cpu": "100m", "memory": "32Mi"}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"crt-bench": run}},
            "spec": {"terminationGracePeriodSeconds": 0, "restartPolicy": "Never",
                     "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                                     "resources": {"requests": req, "limits": lim}}]}}


def is_running(pod: Obj) -> bool:
    st = pod.get("status") or {}
    cs = st.get("containerStatuses") or []
    return st.get("phase") == "Running" and bool(cs) and all("running" in (c.get("state") or {}) for c in cs)


@dataclass
class Timeline:
    """perf_counter() seconds for one pod."""
    t_post: float
    t_created: float = 0.0
    t_bound: float = 0.0
    t_running: float = 0.0


@dataclass
class Watcher:
    """One watch on the run's pods; stamps the first binding and the first Running per pod name."""
    client: Client
    run: str
    pods: dict[str, Timeline] = field(default_factory=dict)
    running: dict[str, asyncio.Event] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def loop(self, rv: str) -> None:
        assert PODS is not None
        while True:
            try:
                async for _typ, pod in self.client.watch(PODS, NAMESPACE, resource_version=rv,
                                                         label_selector=f"crt-bench={self.run}"):
                    now = time.perf_counter()
                    rv = pod["metadata"].get("resourceVersion", rv)
                    tl = self.pods.get(pod["metadata"]["name"])
                    if tl is None:
                        continue
                    if not tl.t_bound and (pod.get("spec") or {}).get("nodeName"):
                        tl.t_bound = now
                    if not tl.t_running and is_running(pod):
                        tl.t_running = now
                        self.running[pod["metadata"]["name"]].set()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the watch ended or failed: resume from rv
                print(f"pod-startup: watch restarted: {e}", file=sys.stderr)
                await asyncio.sleep(0.1)

    def expect(self, name: str, t_post: float) -> None:
        self.pods[name] = Timeline(t_post)
        self.running[name] = asyncio.Event()


def agent_phases(state_dir: str, names: set[str]) -> list[dict[str, float]]:
    """Per pod of `names` still on the node: phase -> milliseconds (a phase of several containers: summed)."""
    out = []
    for rec in RecordStore(state_dir).load_all():
        if rec.name in names and rec.startup:
            ms: dict[str, float] = {}
            for r in startup_rows(rec):
                ms[r["phase"]] = ms.get(r["phase"], 0.0) + r["durationMs"]
            seen = [r for r in startup_rows(rec) if r["phase"] == "status"]
            if seen:
                ms["seen-to-status"] = seen[0]["sinceSeenMs"]
            out.append(ms)
    return out


async def run_pods(api_url: str, run: str, warmup: int, n: int, timeout: float, fl: floor.Floor,
                   state_dir: str) -> tuple[list[Timeline], list[dict[str, float]], list[dict[str, float]],
                                            list[dict[str, float]]]:
    """Warm-up pods, then n measured pods, one after another, each right after a floor pod
    (so both see the same machine load); deletes them all before returning."""
    assert PODS is not None
    client = Client(api_url, user_agent="coracle-bench")
    w = Watcher(client, run)
    names: list[str] = []
    task: asyncio.Task | None = None
    try:
        rv = (await client.list(PODS, NAMESPACE, label_selector=f"crt-bench={run}"))["metadata"]["resourceVersion"]
        task = asyncio.create_task(w.loop(rv))
        await asyncio.sleep(0.1)  # the watch is open before the first POST
        out: list[Timeline] = []
        builds: list[dict[str, float]] = []
        downs: list[dict[str, float]] = []
        for i in range(warmup + n):
            b, d = await asyncio.to_thread(fl.pod)
            if i >= warmup:
                builds.append(b)
                downs.append(d)
            name = f"crt-bench-{'w' if i < warmup else 'p'}{i:02d}"
            names.append(name)
            w.expect(name, time.perf_counter())
            await client.create(PODS, NAMESPACE, pod_manifest(name, run))
            w.pods[name].t_created = time.perf_counter()
            try:
                await asyncio.wait_for(w.running[name].wait(), timeout)
            except TimeoutError:
                pod = await client.get(PODS, NAMESPACE, name)
                raise TimeoutError(f"pod {name} not Running after {timeout}s; status: "
                                   f"{json.dumps(pod.get('status'))[:600]}") from None
            if i >= warmup:
                out.append(w.pods[name])
        # the "status" phase is saved just after the write the watch saw: wait (bounded) for it
        measured = set(names[warmup:])
        deadline = time.monotonic() + 5
        while True:
            phases = agent_phases(state_dir, measured)
            if time.monotonic() > deadline or sum("status" in p for p in phases) == len(measured):
                break
            await asyncio.sleep(0.05)
        return out, builds, downs, phases
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await delete_all(client, names)
        await client.close()


async def delete_all(client: Client, names: list[str], timeout: float = 60.0) -> None:
    """Delete with grace 0 and wait (bounded) until the agent has torn them down and they are gone."""
    assert PODS is not None
    for name in names:
        with contextlib.suppress(Exception):  # already gone; or down() cleans up
            await client.delete(PODS, NAMESPACE, name, grace_period=0)
    deadline = time.monotonic() + timeout
    while names and time.monotonic() < deadline:
        try:
            left = {p["metadata"]["name"] for p in (await client.list(PODS, NAMESPACE))["items"]}
        except Exception:  # noqa: BLE001
            break
        if not left & set(names):
            return
        await asyncio.sleep(0.2)


def summarise(floor_builds: list[dict[str, float]], floor_downs: list[dict[str, float]],
              pods: list[Timeline], phases: list[dict[str, float]] | None = None) -> Obj:
    """Everything printed, in milliseconds (pure)."""
    ms = 1000.0
    totals = [sum(b.values()) for b in floor_builds]
    lat = [(t.t_running - t.t_post) * ms for t in pods]
    split = {"post": [(t.t_created - t.t_post) * ms for t in pods],
             "schedule": [(t.t_bound - t.t_created) * ms for t in pods if t.t_bound],
             "agent": [(t.t_running - t.t_bound) * ms for t in pods if t.t_bound]}
    med = statistics.median
    return {
        "floor": {"n": len(floor_builds),
                  "steps_median_ms": {s: med(b[s] for b in floor_builds) for s in floor.STEPS},
                  "teardown_median_ms": {k: med(d[k] for d in floor_downs) for k in floor_downs[0]} if floor_downs else {},
                  "p50_ms": med(totals), "p99_ms": pct(totals, 99), "max_ms": max(totals)},
        "pods": {"n": len(lat), "p50_ms": med(lat), "p99_ms": pct(lat, 99), "max_ms": max(lat),
                 "split_median_ms": {k: med(v) for k, v in split.items() if v},
                 "latencies_ms": [round(x, 1) for x in lat],
                 "agent_phases_median_ms": {k: med(p[k] for p in phases or [] if k in p)
                                            for k in (*PHASES, "seen-to-status")
                                            if any(k in p for p in phases or [])},
                 "agent_phases_n": len(phases or [])},
        "ratio_p50": med(lat) / med(totals), "ratio_p99": pct(lat, 99) / pct(totals, 99),
    }


def table(r: Obj) -> str:
    f, p = r["floor"], r["pods"]
    lines = [f"floor: {f['n']} pods by hand (sandbox + veth + cgroup + runc /bin/true), median per step:"]
    lines += [f"  {s:<9} {v:7.1f} ms" for s, v in f["steps_median_ms"].items()]
    lines.append("  teardown (not in the floor): " + ", ".join(f"{k} {v:.1f}" for k, v in f["teardown_median_ms"].items()) + " ms")
    lines += ["",
              f"{'':<28} {'p50':>8} {'p99':>8} {'max':>8}",
              f"{'floor total':<28} {f['p50_ms']:8.1f} {f['p99_ms']:8.1f} {f['max_ms']:8.1f}  ms",
              f"{'pod create-to-Running':<28} {p['p50_ms']:8.1f} {p['p99_ms']:8.1f} {p['max_ms']:8.1f}  ms  (n={p['n']})",
              f"{'ratio pod/floor':<28} {r['ratio_p50']:8.1f}x {r['ratio_p99']:7.1f}x",
              "pod latency split (median): " + ", ".join(f"{k} {v:.1f}" for k, v in p["split_median_ms"].items()) + " ms"
              " (post = POST round trip; schedule = to spec.nodeName; agent = to Running in the watch)"]
    ph = p.get("agent_phases_median_ms") or {}
    if ph:
        lines += ["", f"agent start-up phases, median of {p['agent_phases_n']} pods (the pod records; "
                      "seen = first sync to record saved):"]
        lines += [f"  {k:<15} {v:7.1f} ms" for k, v in ph.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="pod-startup", description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=20, help="measured pods (default 20)")
    ap.add_argument("--warmup", type=int, default=2, help="unmeasured pods first (default 2)")
    ap.add_argument("--pod-timeout", type=float, default=60.0, help="seconds one pod may take to run")
    ap.add_argument("--json", action="store_true", help="print machine-readable JSON only")
    ap.add_argument("--keep-logs", metavar="DIR", help="copy master.log and agent.log here before purging")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("pod-startup: run as root (it builds namespaces, veths, cgroups and runc containers)", file=sys.stderr)
        return 2
    # SIGTERM unwinds like Ctrl-C, through every finally below
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    tag = secrets.token_hex(2)
    work = tempfile.mkdtemp(prefix="crt-bench-")
    log = (lambda *m: None) if a.json else (lambda *m: print(*m, file=sys.stderr, flush=True))
    problems: list[str] = []
    cluster: LocalCluster | None = None
    fl: floor.Floor | None = None
    try:
        image = ImageStore(os.path.join(work, "images")).import_busybox()
        # the floor's own bridge and subnet; its cluster CIDR is the subnet itself, so that
        # closing it never removes the cluster's `unreachable 10.247.0.0/16`
        fl = floor.Floor(work_dir=os.path.join(work, "floor"), image=image, bridge=f"crtf{tag}",
                         subnet=FLOOR_SUBNET, cluster_cidr=FLOOR_SUBNET, cgroup_root=f"coracle-bench-floor-{tag}")
        fl.network.ensure_node()
        cluster = LocalCluster(data_dir=os.path.join(work, "data"), log_dir=os.path.join(work, "log"),
                               run_dir=os.path.join(work, "run"), kubeconfig=os.path.join(work, "kubeconfig"),
                               api_port=free_port(), agent_port=free_port(), node_name="crt-bench",
                               cgroup_root=f"coracle-bench-{tag}", bridge=f"crtb{tag}",
                               cluster_cidr=CLUSTER_CIDR, service_cidr=SERVICE_CIDR)
        log(f"pod-startup: cluster up (API {cluster.api_url}, bridge crtb{tag}) ...")
        cluster.up(timeout=90)
        log(f"pod-startup: {a.warmup} warm-up + {a.pods} pods, one after another, each after a floor pod ...")
        pods, fb, fd, ph = asyncio.run(run_pods(cluster.api_url, tag, a.warmup, a.pods, a.pod_timeout, fl,
                                                cluster.data_dir))
        result = summarise(fb, fd, pods, ph)
    except KeyboardInterrupt:
        print("pod-startup: interrupted; cleaning up", file=sys.stderr)
        result = None
        problems.append("interrupted")
    except Exception as e:  # noqa: BLE001 - reported after the cleanup below
        result = None
        problems.append(f"failed: {type(e).__name__}: {e}")
    finally:
        if fl is not None:
            problems += [p if p.startswith("note:") else f"floor: {p}" for p in
                         fl.close() + [f"note: {n}" for n in fl.notes]]
        if cluster is not None:
            if a.keep_logs and os.path.isdir(cluster.log_dir):
                shutil.copytree(cluster.log_dir, a.keep_logs, dirs_exist_ok=True)
            problems += [f"down: {e}" for e in cluster.down(purge=True)]
            left = floor.sweep_cgroups(cluster.cgroup_root)
            if left:
                problems.append(f"note: coracle down left {len(left)} cgroup dirs under "
                                f"{cluster.cgroup_root} (unmanaged v1 hierarchies); swept")
        shutil.rmtree(work, ignore_errors=True)
    errors = [p for p in problems if not p.startswith("note:")]
    if result is not None:
        result["problems"] = problems
        print(json.dumps(result, indent=1) if a.json else table(result))
    for p in problems if not a.json else []:
        print(f"pod-startup: {p}", file=sys.stderr)
    return 1 if errors or result is None else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
