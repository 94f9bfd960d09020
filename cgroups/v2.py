"""cgroup v2: the unified hierarchy mounted at root (root/cgroup.controllers exists).

Implements cgroups.interface.Cgroups; all file access through cgroups.fs.CgroupFs.
Kernel facts: a controller's files appear in a child only once the parent lists it
in cgroup.subtree_control; freezing is cgroup.freeze (no controller), done when
cgroup.events says "frozen 1".
"""
from __future__ import annotations

import time

from cgroups.fs import CgroupError, CgroupFs, clean_path, remove_subtrees
from cgroups.interface import Resources, Usage

CONTROLLERS = ("cpu", "memory", "pids")


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) to cpu.weight (1..10000), as runc converts."""
    shares = max(2, min(262144, shares))
    return 1 + ((shares - 2) * 9999) // 262142


def cpu_max(quota_us: int | None, period_us: int) -> str:
    return f"{'max' if quota_us is None else quota_us} {period_us}"


def parse_cpu_max(text: str) -> tuple[int | None, int]:
    quota, _, period = text.partition(" ")
    return (None if quota == "max" else int(quota)), int(period or 100_000)


def parse_max(text: str) -> int | None:
    return None if text == "max" else int(text)


class CgroupsV2:
    version = 2

    def __init__(self, root: str = "/sys/fs/cgroup") -> None:
        self.root = root
        self.fs = CgroupFs(root)

    def _enable(self, parent: str) -> None:
        try:
            available = set(self.fs.read(parent, "cgroup.controllers").split())
        except FileNotFoundError:
            available = set(CONTROLLERS)
        try:
            enabled = set(self.fs.read(parent, "cgroup.subtree_control").split())
        except FileNotFoundError:
            enabled = set()
        wanted = [c for c in CONTROLLERS if c in available and c not in enabled]
        if wanted:
            self.fs.write(parent, "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))

    def ensure(self, path: str, resources: Resources | None = None) -> None:
        parts = clean_path(path).split("/")
        for i in range(len(parts)):
            self._enable("/".join(parts[:i]))
            self.fs.mkdirs("/".join(parts[: i + 1]))
        if resources is not None:
            self.set(path, resources)

    def set(self, path: str, r: Resources) -> None:
        if r.cpu_shares is not None:
            self.fs.write(path, "cpu.weight", shares_to_weight(r.cpu_shares))
        self.fs.write(path, "cpu.max", cpu_max(r.cpu_quota_us, r.cpu_period_us))
        mem = r.memory_limit_bytes
        self.fs.write(path, "memory.max", "max" if mem is None else mem)
        self.fs.write(path, "pids.max", "max" if r.pids_limit is None else r.pids_limit)

    def exists(self, path: str) -> bool:
        return self.fs.exists(path)

    def children(self, path: str) -> list[str]:
        return self.fs.children(path)

    def add_process(self, path: str, pid: int) -> None:
        self.fs.write(path, "cgroup.procs", pid)

    def pids(self, path: str) -> list[int]:
        return sorted({p for rel in self.fs.walk_bottom_up(path) for p in self.fs.procs(rel)})

    def oom_kill_count(self, path: str) -> int:
        return self.fs.read_keyed(path, "memory.events").get("oom_kill", 0)

    def usage(self, path: str) -> Usage:
        quota, period = parse_cpu_max(self.fs.read(path, "cpu.max"))
        return Usage(
            memory_bytes=int(self.fs.read(path, "memory.current")),
            memory_limit_bytes=parse_max(self.fs.read(path, "memory.max")),
            cpu_usage_ns=self.fs.read_keyed(path, "cpu.stat").get("usage_usec", 0) * 1000,
            cpu_quota_us=quota,
            cpu_period_us=period,
            pids=int(self.fs.read(path, "pids.current")),
            oom_kills=self.oom_kill_count(path),
        )

    def _freeze(self, path: str, value: int, timeout: float = 5.0) -> None:
        self.fs.write(path, "cgroup.freeze", value)
        deadline = time.monotonic() + timeout
        while True:
            try:
                frozen = self.fs.read_keyed(path, "cgroup.events").get("frozen")
            except FileNotFoundError:
                return  # a plain test tree has no cgroup.events
            if frozen == value:
                return
            if time.monotonic() > deadline:
                raise CgroupError(f"{self.fs.dir(path)} did not reach frozen={value}")
            time.sleep(0.001)

    def freeze(self, path: str) -> None:
        self._freeze(path, 1)

    def thaw(self, path: str) -> None:
        self._freeze(path, 0)

    def remove(self, path: str) -> None:
        clean_path(path)
        remove_subtrees([self.fs], path, self.pids(path))

    def fs_paths(self, path: str) -> dict[str, str]:
        return {"unified": self.fs.dir(path)}
