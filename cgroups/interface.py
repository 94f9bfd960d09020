"""The cgroup manager interface the node agent uses, and its value types.

Implementations: cgroups/v1.py (one hierarchy per controller), cgroups/v2.py
(unified), cgroups/fake.py (in memory).  cgroups.detect() picks v1 or v2.
Paths are relative to the hierarchy root, like "coracle/burstable/pod<uid>".
No method is safe to call concurrently on the same path; different paths are fine.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

CPU_SHARES_MIN = 2
CPU_SHARES_MAX = 262144
DEFAULT_CPU_PERIOD_US = 100_000


@dataclass(frozen=True, slots=True)
class Resources:
    cpu_shares: int | None = None        # None: leave as is; v2 weight via shares_to_weight
    cpu_quota_us: int | None = None      # None = unlimited
    cpu_period_us: int = DEFAULT_CPU_PERIOD_US
    memory_limit_bytes: int | None = None  # None = unlimited
    pids_limit: int | None = None        # None = unlimited


@dataclass(frozen=True, slots=True)
class Usage:
    memory_bytes: int
    memory_limit_bytes: int | None
    cpu_usage_ns: int
    cpu_quota_us: int | None
    cpu_period_us: int
    pids: int
    oom_kills: int


def clamp_shares(shares: int) -> int:
    return max(CPU_SHARES_MIN, min(CPU_SHARES_MAX, shares))


class Cgroups(Protocol):
    version: int

    def ensure(self, path: str, resources: Resources | None = None) -> None:
        """Create path and its parents; set limits when given.  Idempotent."""

    def set(self, path: str, resources: Resources) -> None:
        """Write every limit in resources (None fields mean unlimited, shares: untouched)."""

    def exists(self, path: str) -> bool:
        """True if the cgroup exists in any managed hierarchy (a partial create counts)."""

    def children(self, path: str) -> list[str]:
        """Names of the immediate child cgroups, sorted; [] if path is missing."""

    def add_process(self, path: str, pid: int) -> None:
        """Move pid into path (in every hierarchy).  Idempotent."""

    def pids(self, path: str) -> list[int]:
        """All processes in the subtree, sorted."""

    def usage(self, path: str) -> Usage: ...

    def oom_kill_count(self, path: str) -> int: ...

    def freeze(self, path: str) -> None:
        """Freeze the subtree and wait until the kernel says frozen.  Idempotent."""

    def thaw(self, path: str) -> None: ...

    def remove(self, path: str) -> None:
        """Remove the subtree bottom-up everywhere; already gone is success.

        Goes on past errors; raises CgroupBusy if processes remain, else
        CgroupError listing every failure."""

    def fs_paths(self, path: str) -> dict[str, str]:
        """controller -> directory (v2: {"unified": dir}), for the debug CLI."""
