"""The drivers the debug CLI (nodeagent/debug.py) reads through, and the one
factory that builds the real ones from the CLI's directories.

`Host` is what the CLI asks of the kernel beyond the agent's own drivers:
process liveness and namespace inodes from /proc, command lines (psutil),
the host veth's presence and bridge from /sys/class/net, and running a helper
command (`nsenter ... ip`).  `ProcHost` is real, `FakeHost` serves unit tests.
Sandbox (nodeagent.pod.sandbox), Cgroups (cgroups) and the runtime
(nodeagent.runtime.runc) are the agent's own drivers, read-only here.
All reads; nothing here changes the node.
"""
from __future__ import annotations

import argparse
import os
import subprocess
from dataclasses import dataclass, field
from typing import Any, Protocol

from nodeagent.debug.view import parse_ns_link
from nodeagent.pod.record import RecordStore
from nodeagent.pod.sandbox import SandboxPaths

NS_KINDS = ("net", "ipc", "uts", "pid", "mnt")


class Host(Protocol):
    def alive(self, pid: int) -> bool: ...

    def ns_inodes(self, pid: int) -> dict[str, int]:
        """kind -> inode of /proc/<pid>/ns/<kind> for NS_KINDS; {} if pid is gone."""

    def cmdline(self, pid: int) -> list[str] | None: ...

    def link(self, name: str) -> tuple[bool, str | None]:
        """(interface exists, bridge it is enslaved to or None)."""

    def run(self, argv: list[str]) -> tuple[int, str]:
        """Run a helper; (exit code, stdout+stderr).  A missing binary is code 127."""


class SandboxView(Protocol):
    def paths(self, uid: str) -> SandboxPaths: ...

    def inodes(self, uid: str) -> dict[str, int]: ...


class RuntimeView(Protocol):
    def state(self, id: str) -> dict | None: ...


class ProcHost:
    def __init__(self, proc: str = "/proc", sys_net: str = "/sys/class/net") -> None:
        self.proc, self.sys_net = proc, sys_net

    def alive(self, pid: int) -> bool:
        return pid > 0 and os.path.exists(f"{self.proc}/{pid}")

    def ns_inodes(self, pid: int) -> dict[str, int]:
        out: dict[str, int] = {}
        if pid <= 0:
            return out
        for k in NS_KINDS:
            try:
                ino = parse_ns_link(os.readlink(f"{self.proc}/{pid}/ns/{k}"))
            except OSError:
                continue
            if ino is not None:
                out[k] = ino
        return out

    def cmdline(self, pid: int) -> list[str] | None:
        import psutil  # type: ignore[import-untyped]
        try:
            return psutil.Process(pid).cmdline()
        except (psutil.Error, OSError):
            return None

    def link(self, name: str) -> tuple[bool, str | None]:
        if not name or "/" in name or not os.path.exists(f"{self.sys_net}/{name}"):
            return False, None
        try:
            return True, os.path.basename(os.readlink(f"{self.sys_net}/{name}/master"))
        except OSError:
            return True, None

    def run(self, argv: list[str]) -> tuple[int, str]:
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=10, check=False)
        except FileNotFoundError:
            return 127, f"{argv[0]}: not found"
        except subprocess.TimeoutExpired:
            return 124, f"{' '.join(argv)}: timed out"
        return p.returncode, (p.stdout + p.stderr).rstrip("\n")


@dataclass
class FakeHost:
    """Scripted Host for unit tests: fill the dicts; `runs` records run() calls."""

    procs: dict[int, list[str]] = field(default_factory=dict)
    namespaces: dict[int, dict[str, int]] = field(default_factory=dict)
    links: dict[str, str | None] = field(default_factory=dict)
    outputs: dict[str, tuple[int, str]] = field(default_factory=dict)  # last argv word -> result
    runs: list[list[str]] = field(default_factory=list)

    def alive(self, pid: int) -> bool:
        return pid in self.procs

    def ns_inodes(self, pid: int) -> dict[str, int]:
        return dict(self.namespaces.get(pid, {})) if pid in self.procs else {}

    def cmdline(self, pid: int) -> list[str] | None:
        return self.procs.get(pid)

    def link(self, name: str) -> tuple[bool, str | None]:
        return (name in self.links, self.links.get(name))

    def run(self, argv: list[str]) -> tuple[int, str]:
        self.runs.append(argv)
        return self.outputs.get(argv[-1], (127, f"{argv[0]}: not found"))


@dataclass
class Drivers:
    records: RecordStore
    sandbox: SandboxView
    cgroups: Any            # cgroups.Cgroups, or None when no cgroupfs is usable
    runtime: RuntimeView
    host: Host
    proc: str = "/proc"     # where `enter -c` finds a container's namespace files


def make_drivers(a: argparse.Namespace) -> Drivers:
    """The real drivers, built from `coracle debug`'s --state-dir/--run-dir."""
    from nodeagent.runtime.runc import Runc
    from nodeagent.pod.sandbox import Sandbox
    try:
        import cgroups
        cg: Any = cgroups.detect()
    except (OSError, ImportError):
        cg = None
    return Drivers(records=RecordStore(a.state_dir), sandbox=Sandbox(a.run_dir), cgroups=cg,
                   runtime=Runc(root=os.path.join(a.run_dir, "runc")), host=ProcHost())
