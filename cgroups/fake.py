"""In-memory Cgroups for unit tests of the node agent and for hollow nodes.

Records the tree, the limits last set and the processes added; tests set
`usage_by_path` / `oom_kills` to script what usage() reports.  Same contract
as cgroups.interface.Cgroups, including CgroupBusy when processes remain.
"""
from __future__ import annotations

from cgroups.fs import CgroupBusy, clean_path
from cgroups.interface import DEFAULT_CPU_PERIOD_US, Resources, Usage


class FakeCgroups:
    def __init__(self, version: int = 1) -> None:
        self.version = version
        self.limits: dict[str, Resources | None] = {}
        self.procs: dict[str, set[int]] = {}
        self.frozen: set[str] = set()
        self.oom_kills: dict[str, int] = {}
        self.usage_by_path: dict[str, Usage] = {}

    def _subtree(self, path: str) -> list[str]:
        p = clean_path(path)
        return [k for k in self.limits if k == p or k.startswith(p + "/") or not p]

    def ensure(self, path: str, resources: Resources | None = None) -> None:
        parts = clean_path(path).split("/")
        for i in range(1, len(parts) + 1):
            self.limits.setdefault("/".join(parts[:i]), None)
            self.procs.setdefault("/".join(parts[:i]), set())
        if resources is not None:
            self.set(path, resources)

    def set(self, path: str, resources: Resources) -> None:
        p = clean_path(path)
        if p not in self.limits:
            raise FileNotFoundError(f"cgroup {p} does not exist")
        self.limits[p] = resources

    def exists(self, path: str) -> bool:
        return clean_path(path) in self.limits

    def children(self, path: str) -> list[str]:
        p = clean_path(path)
        prefix = p + "/" if p else ""
        return sorted({k[len(prefix):].split("/")[0] for k in self.limits
                       if k.startswith(prefix) and k != p})

    def add_process(self, path: str, pid: int) -> None:
        p = clean_path(path)
        if p not in self.limits:
            raise FileNotFoundError(f"cgroup {p} does not exist")
        for s in self.procs.values():
            s.discard(pid)
        self.procs[p].add(pid)

    def pids(self, path: str) -> list[int]:
        return sorted({pid for k in self._subtree(path) for pid in self.procs.get(k, ())})

    def oom_kill_count(self, path: str) -> int:
        return self.oom_kills.get(clean_path(path), 0)

    def usage(self, path: str) -> Usage:
        p = clean_path(path)
        if p in self.usage_by_path:
            return self.usage_by_path[p]
        r = self.limits[p] or Resources()
        return Usage(memory_bytes=0, memory_limit_bytes=r.memory_limit_bytes, cpu_usage_ns=0,
                     cpu_quota_us=r.cpu_quota_us,
                     cpu_period_us=r.cpu_period_us or DEFAULT_CPU_PERIOD_US,
                     pids=len(self.pids(p)), oom_kills=self.oom_kill_count(p))

    def freeze(self, path: str) -> None:
        self.frozen.update(self._subtree(path))

    def thaw(self, path: str) -> None:
        self.frozen.difference_update(self._subtree(path))

    def remove(self, path: str) -> None:
        left = self.pids(path)
        if left:
            raise CgroupBusy(f"cgroup {path} still has processes {left}")
        for k in self._subtree(path):
            self.limits.pop(k, None)
            self.procs.pop(k, None)
            self.frozen.discard(k)

    def fs_paths(self, path: str) -> dict[str, str]:
        p = clean_path(path)
        if self.version == 2:
            return {"unified": f"/fake/cgroup/{p}"}
        return {c: f"/fake/cgroup/{c}/{p}" for c in ("cpu", "cpuacct", "memory", "pids", "freezer")}
