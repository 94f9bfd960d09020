"""cgroup v1: one hierarchy per controller under root/<controller> (cpu and cpuacct
may share one mount, named "cpu,cpuacct", often with symlinks cpu and cpuacct).

Implements cgroups.interface.Cgroups; all file access through cgroups.fs.CgroupFs.
cpuset is never created here: runc fills cpuset for its container cgroups.
"""
from __future__ import annotations

import os
import time

from cgroups.fs import CgroupError, CgroupFs, clean_path, remove_subtrees
from cgroups.interface import Resources, Usage

MANAGED = ("cpu", "cpuacct", "memory", "pids", "freezer")
# The kernel reports "no limit" as PAGE_COUNTER_MAX * PAGE_SIZE (~2**63).
UNLIMITED_THRESHOLD = 1 << 62


def controller_dirs(entries: list[str]) -> dict[str, str]:
    """Map each managed controller to the root entry holding it (pure).

    An entry named exactly after the controller wins; otherwise a co-mount
    like "cpu,cpuacct" is used."""
    out: dict[str, str] = {}
    for name in sorted(entries, key=lambda n: ("," in n, n)):
        for ctrl in name.split(","):
            if ctrl in MANAGED and ctrl not in out:
                out[ctrl] = name
    return out


def memory_limit_value(raw: int) -> int | None:
    return None if raw >= UNLIMITED_THRESHOLD or raw < 0 else raw


class CgroupsV1:
    version = 1

    def __init__(self, root: str = "/sys/fs/cgroup") -> None:
        self.root = root
        entries = [e for e in os.listdir(root) if os.path.isdir(os.path.join(root, e))]
        self.dirs = controller_dirs(entries)
        self.fs = {c: CgroupFs(os.path.join(root, d)) for c, d in self.dirs.items()}
        # One CgroupFs per distinct mount, so co-mounted controllers are done once.
        seen: dict[str, CgroupFs] = {}
        for fs in self.fs.values():
            seen.setdefault(os.path.realpath(fs.root), fs)
        self.hierarchies = list(seen.values())
        # runc also makes the container's parents in every other mount (cpuset, blkio, devices,
        # name=systemd, the hybrid cgroup2): remove() and exists() cover those too, or pods leak dirs.
        others = {os.path.realpath(os.path.join(root, e)): os.path.join(root, e) for e in sorted(entries)}
        self.others = [CgroupFs(d) for real, d in sorted(others.items()) if real not in seen]

    def _ctl(self, ctrl: str) -> CgroupFs:
        try:
            return self.fs[ctrl]
        except KeyError:
            raise CgroupError(f"cgroup v1 controller {ctrl!r} is not mounted under {self.root}") from None

    def ensure(self, path: str, resources: Resources | None = None) -> None:
        for fs in self.hierarchies:
            fs.mkdirs(path)
        if resources is not None:
            self.set(path, resources)

    def set(self, path: str, r: Resources) -> None:
        cpu = self._ctl("cpu")
        if r.cpu_shares is not None:
            cpu.write(path, "cpu.shares", r.cpu_shares)
        cpu.write(path, "cpu.cfs_period_us", r.cpu_period_us)
        cpu.write(path, "cpu.cfs_quota_us", -1 if r.cpu_quota_us is None else r.cpu_quota_us)
        mem = -1 if r.memory_limit_bytes is None else r.memory_limit_bytes
        self._ctl("memory").write(path, "memory.limit_in_bytes", mem)
        if "pids" in self.fs:
            self.fs["pids"].write(path, "pids.max", "max" if r.pids_limit is None else r.pids_limit)
        elif r.pids_limit is not None:
            self._ctl("pids")

    def exists(self, path: str) -> bool:
        return any(fs.exists(path) for fs in (*self.hierarchies, *self.others))

    def children(self, path: str) -> list[str]:
        return sorted({c for fs in self.hierarchies for c in fs.children(path)})

    def add_process(self, path: str, pid: int) -> None:
        for fs in self.hierarchies:
            fs.write(path, "cgroup.procs", pid)

    def pids(self, path: str) -> list[int]:
        return sorted({p for fs in self.hierarchies for rel in fs.walk_bottom_up(path)
                       for p in fs.procs(rel)})

    def oom_kill_count(self, path: str) -> int:
        return self._ctl("memory").read_keyed(path, "memory.oom_control").get("oom_kill", 0)

    def usage(self, path: str) -> Usage:
        mem, cpu = self._ctl("memory"), self._ctl("cpu")
        quota = int(cpu.read(path, "cpu.cfs_quota_us"))
        if "pids" in self.fs:
            npids = int(self.fs["pids"].read(path, "pids.current"))
        else:
            npids = len(self.pids(path))
        return Usage(
            memory_bytes=int(mem.read(path, "memory.usage_in_bytes")),
            memory_limit_bytes=memory_limit_value(int(mem.read(path, "memory.limit_in_bytes"))),
            cpu_usage_ns=int(self._ctl("cpuacct").read(path, "cpuacct.usage")),
            cpu_quota_us=None if quota < 0 else quota,
            cpu_period_us=int(cpu.read(path, "cpu.cfs_period_us")),
            pids=npids,
            oom_kills=self.oom_kill_count(path),
        )

    def _freezer(self, path: str, state: str, timeout: float = 5.0) -> None:
        fz = self._ctl("freezer")
        deadline = time.monotonic() + timeout
        while True:
            fz.write(path, "freezer.state", state)
            if fz.read(path, "freezer.state") == state:
                return
            if time.monotonic() > deadline:
                raise CgroupError(f"freezer {fz.dir(path)} did not reach {state}")
            time.sleep(0.001)  # FREEZING: tasks still on their way

    def freeze(self, path: str) -> None:
        self._freezer(path, "FROZEN")

    def thaw(self, path: str) -> None:
        self._freezer(path, "THAWED")

    def remove(self, path: str) -> None:
        clean_path(path)
        remove_subtrees([*self.hierarchies, *self.others], path, self.pids(path))

    def fs_paths(self, path: str) -> dict[str, str]:
        return {c: fs.dir(path) for c, fs in self.fs.items()}

