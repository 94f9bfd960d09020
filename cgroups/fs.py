"""The one helper through which all cgroupfs I/O goes (used by cgroups/v1.py and v2.py).

Its root is a parameter, so unit tests point it at a temp directory laid out like
/sys/fs/cgroup.  It works on real cgroupfs and on plain directories alike: on
cgroupfs the control files are virtual and `rmdir` succeeds with them present;
in a plain tree they are regular files, and `rmdir` removes them first.
Kernel facts: `rmdir` of a cgroup with live processes or child cgroups is EBUSY.
"""
from __future__ import annotations

import errno
import os
import time


class CgroupError(Exception):
    """A cgroupfs operation failed; the message lists every failure."""


class CgroupBusy(CgroupError):
    """remove() found processes (or busy cgroups) left in the subtree."""


def clean_path(path: str) -> str:
    """Validate a cgroup path relative to a hierarchy root ("" is the root itself)."""
    parts = [p for p in path.strip("/").split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ValueError(f"cgroup path {path!r} must not contain '.' or '..'")
    return "/".join(parts)


class CgroupFs:
    """File access below `root` (one hierarchy mount, or the cgroup2 mount)."""

    __slots__ = ("root",)

    def __init__(self, root: str) -> None:
        self.root = root

    def dir(self, path: str) -> str:
        rel = clean_path(path)
        return os.path.join(self.root, rel) if rel else self.root

    def exists(self, path: str, name: str | None = None) -> bool:
        d = self.dir(path)
        return os.path.exists(os.path.join(d, name)) if name else os.path.isdir(d)

    def read(self, path: str, name: str) -> str:
        with open(os.path.join(self.dir(path), name)) as f:
            return f.read().strip()

    def read_keyed(self, path: str, name: str) -> dict[str, int]:
        """Parse "key value" lines (memory.stat, memory.events, cpu.stat, oom_control)."""
        out: dict[str, int] = {}
        for line in self.read(path, name).splitlines():
            key, _, value = line.partition(" ")
            if value.strip().lstrip("-").isdigit():
                out[key] = int(value)
        return out

    def write(self, path: str, name: str, value: str | int) -> None:
        target = os.path.join(self.dir(path), name)
        try:
            with open(target, "w") as f:
                f.write(str(value))
        except OSError as e:
            raise CgroupError(f"write {value!r} to {target}: {e.strerror}") from e

    def mkdirs(self, path: str) -> None:
        os.makedirs(self.dir(path), exist_ok=True)

    def children(self, path: str) -> list[str]:
        try:
            with os.scandir(self.dir(path)) as it:
                return sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []

    def walk_bottom_up(self, path: str) -> list[str]:
        """Relative paths of `path` and all cgroups below it, deepest first."""
        rel = clean_path(path)
        if not self.exists(rel):
            return []
        out: list[str] = []
        for child in self.children(rel):
            out.extend(self.walk_bottom_up(f"{rel}/{child}" if rel else child))
        out.append(rel)
        return out

    def procs(self, path: str) -> list[int]:
        try:
            text = self.read(path, "cgroup.procs")
        except FileNotFoundError:
            return []
        return [int(x) for x in text.split()]

    def rmdir(self, path: str) -> None:
        """Remove one cgroup directory; already gone is success; EBUSY raises OSError."""
        d = self.dir(path)
        try:
            os.rmdir(d)
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.ENOTEMPTY:
                raise
            # Only plain directories say ENOTEMPTY (cgroupfs says EBUSY): a test tree.
            with os.scandir(d) as it:
                for entry in it:
                    if entry.is_file(follow_symlinks=False):
                        os.unlink(entry.path)
            os.rmdir(d)


def remove_subtrees(hierarchies: list[CgroupFs], path: str, pids_left: list[int]) -> None:
    """Remove path's subtree bottom-up in every hierarchy, going on past errors.

    A process that has just exited may keep its cgroup EBUSY for a moment, so EBUSY
    is retried briefly when no process was listed.  Raises CgroupBusy if processes
    remain or a cgroup stayed busy, else CgroupError, each listing every failure."""
    errors: list[str] = []
    busy = False
    tries = 1 if pids_left else 20
    for fs in hierarchies:
        for rel in fs.walk_bottom_up(path):
            for attempt in range(tries):
                try:
                    fs.rmdir(rel)
                    break
                except OSError as e:
                    if e.errno == errno.EBUSY and attempt < tries - 1:
                        time.sleep(0.005)
                        continue
                    busy = busy or e.errno == errno.EBUSY
                    errors.append(f"rmdir {fs.dir(rel)}: {e.strerror}")
                    break
    if pids_left:
        raise CgroupBusy(f"cgroup {path} still has processes {pids_left}"
                         + "".join(f"; {e}" for e in errors))
    if errors:
        raise (CgroupBusy if busy else CgroupError)("; ".join(errors))
