"""The pod start-up floor: one pod built by hand with the agent's own drivers.

What `scripts/bench/pod-startup` prints beside the agent's create-to-Running
latency: per pod, the same kernel work the agent's PodHost does (model:
nodeagent/nodeagent/pod/host.py), without the API server, the scheduler, the agent's
informer, records or status writes:

    sandbox   Sandbox.ensure (net, ipc, uts namespaces pinned by bind mounts)
    network   BridgeNetwork.setup (veth, eth0, IP from host-local IPAM) on a bridge of its own
    cgroup    cgroups.detect().ensure of the pod cgroup with limits
    rootfs    the container's overlayfs over the busybox image
    bundle    oci.build_spec + write_bundle (joined to the pod's namespaces)
    create    Runc.create under coracle-shim (`runc create`)
    start     Runc.start
    exit      until the shim writes /bin/true's exit status

then a teardown (runc delete, rootfs, network, sandbox, cgroup) that is timed
but not part of the floor.  Everything lives under a work dir, a bridge, a
subnet and a cgroup root that the caller names; `Floor.close` removes the node
level objects and goes on past errors.  Root only; blocking (pyroute2).
"""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field

import cgroups
from cgroups import Resources
from nodeagent.runtime import oci
from nodeagent.runtime import rootfs
from nodeagent.runtime.images import Image
from nodeagent.pod.network import BridgeNetwork
from nodeagent.runtime.runc import Runc, write_bundle
from nodeagent.pod.sandbox import Sandbox

STEPS = ("sandbox", "network", "cgroup", "rootfs", "bundle", "create", "start", "exit")
LIMITS = Resources(cpu_shares=102, cpu_quota_us=10_000, memory_limit_bytes=32 << 20, pids_limit=4096)


@dataclass
class Floor:
    """Builds and removes floor pods; `close()` removes the bridge, routes, mounts and cgroup root."""

    work_dir: str
    image: Image
    bridge: str
    subnet: str  # e.g. 10.247.250.0/24
    cluster_cidr: str  # the range that gets the `unreachable` host route
    cgroup_root: str  # e.g. coracle-bench-floor-<rand>
    timeout: float = 10.0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sandbox = Sandbox(os.path.join(self.work_dir, "run"))
        self.network = BridgeNetwork(self.subnet, self.cluster_cidr, self.bridge,
                                     os.path.join(self.work_dir, "cni"), network_name="crt-bench-floor")
        self.cg = cgroups.detect()
        self.runc = Runc(root=os.path.join(self.work_dir, "runc"))
        self.limits = oci.AgentLimits.current()

    def pod(self) -> tuple[dict[str, float], dict[str, float]]:
        """Build one pod, run /bin/true in it, tear it down.

        Returns (step -> ms, teardown step -> ms).  Raises on a failed build
        (after tearing down what was made)."""
        uid = str(uuid.uuid4())
        cdir = os.path.join(self.work_dir, "pods", uid, "c")
        cg_path = f"{self.cgroup_root}/pod{uid}"
        rid = f"crt-floor-{uid}"
        t: dict[str, float] = {}
        clock = time.perf_counter
        try:
            t0 = clock()
            paths = self.sandbox.ensure(uid, "crt-floor")
            t1 = clock(); t["sandbox"] = t1 - t0
            self.network.setup(uid, paths.net)
            t2 = clock(); t["network"] = t2 - t1
            self.cg.ensure(cg_path, LIMITS)
            t3 = clock(); t["cgroup"] = t3 - t2
            root = rootfs.ensure(cdir, self.image)
            t4 = clock(); t["rootfs"] = t4 - t3
            cfg = oci.ContainerConfig(
                args=["/bin/true"], env=list(self.image.config.get("Env") or []), rootfs=root,
                netns=paths.net, ipcns=paths.ipc, utsns=paths.uts, cgroups_path=f"/{cg_path}/c",
                cpu_shares=102, cpu_quota_us=10_000, memory_limit_bytes=32 << 20)
            write_bundle(cdir, oci.build_spec(cfg, self.limits)[0])
            t5 = clock(); t["bundle"] = t5 - t4
            exit_file = os.path.join(cdir, "exit")
            self.runc.create(rid, cdir, log_path=os.path.join(cdir, "log"), exit_file=exit_file,
                             pid_file=os.path.join(cdir, "pid"))
            t6 = clock(); t["create"] = t6 - t5
            self.runc.start(rid)
            t7 = clock(); t["start"] = t7 - t6
            while (st := self.runc.exit_status(exit_file)) is None:
                if clock() - t7 > self.timeout:
                    raise TimeoutError(f"/bin/true in floor pod {uid} did not exit in {self.timeout}s")
                time.sleep(0.0005)
            t["exit"] = clock() - t7
            if st.code != 0:
                raise RuntimeError(f"/bin/true in floor pod {uid} exited {st.code}")
        finally:
            down = self._teardown(uid, rid, cdir, cg_path)
        return {k: v * 1000 for k, v in t.items()}, down

    def _teardown(self, uid: str, rid: str, cdir: str, cg_path: str) -> dict[str, float]:
        """The pod's objects in the agent's order; goes on past errors (kept in self.errors)."""
        times: dict[str, float] = {}
        steps = (("runc delete", lambda: self.runc.delete(rid, force=True)),
                 ("rootfs", lambda: rootfs.remove(cdir)),
                 ("network", lambda: self.network.teardown(uid, self.sandbox.paths(uid).net, True)),
                 ("sandbox", lambda: self.sandbox.remove(uid)),
                 ("cgroup", lambda: self.cg.remove(cg_path)))
        for name, fn in steps:
            t0 = time.perf_counter()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - teardown goes on and reports
                self.errors.append(f"floor pod {uid}: {name}: {e}")
            times[name] = (time.perf_counter() - t0) * 1000
        try:
            os.rmdir(os.path.dirname(cdir))
        except OSError:
            pass
        return times

    def close(self) -> list[str]:
        """Remove bridge, routes, the cgroup root and the ns mount; returns every error seen."""
        self.errors += self.network.remove_node()
        self.network.close()
        try:
            if self.cg.exists(self.cgroup_root):
                self.cg.remove(self.cgroup_root)
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"cgroup {self.cgroup_root}: {e}")
        left = sweep_cgroups(self.cgroup_root)
        ctrls = sorted({d.split("/")[4] for d in left if d.count("/") > 5})
        if ctrls:
            self.notes.append(f"runc left {len(left)} pod-level cgroup dirs in {', '.join(ctrls)} "
                              "(hierarchies cgroups/ does not manage); swept")
        try:
            self.sandbox.close(force=True)
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"sandbox mount: {e}")
        return self.errors


def sweep_cgroups(name: str, root: str = "/sys/fs/cgroup") -> list[str]:
    """rmdir every leftover dir of the top-level cgroup `name` in every hierarchy, bottom-up.

    runc creates the container cgroup's parents in all v1 controllers (cpuset,
    devices, blkio, ...), not only those the cgroups package manages; returns
    the dirs found (so the caller can report them), whether or not removed."""
    found: list[str] = []
    if "/" in name or not name:
        raise ValueError(f"not a top-level cgroup name: {name!r}")
    for ctrl in sorted(os.listdir(root)):
        base = os.path.join(root, ctrl, name)
        if os.path.islink(os.path.join(root, ctrl)) or not os.path.isdir(base):
            continue
        for d, _, _ in sorted(os.walk(base), key=lambda w: -len(w[0])):
            found.append(d)
            try:
                os.rmdir(d)
            except OSError:
                pass
    return found


def measure(n: int, **kw: object) -> tuple[list[dict[str, float]], list[dict[str, float]], list[str]]:
    """n floor pods one after another; (build timings, teardown timings, errors and notes).

    Always cleans up."""
    floor = Floor(**kw)  # type: ignore[arg-type]
    builds: list[dict[str, float]] = []
    downs: list[dict[str, float]] = []
    try:
        floor.network.ensure_node()
        for _ in range(n):
            b, d = floor.pod()
            builds.append(b)
            downs.append(d)
    finally:
        errors = floor.close() + [f"note: {n}" for n in floor.notes]
    return builds, downs, errors
