"""The one parser of /proc/<pid>/mountinfo (proc(5)), for the sandbox
(nodeagent.pod.sandbox), the rootfs driver (nodeagent.runtime.rootfs) and
anyone else who asks what is mounted where.

Kernel facts: a line is `id parent major:minor root mountpoint options
[optional fields...] - fstype source superoptions`.  Paths are the raw bytes
of the path with only space, tab, newline and backslash escaped as `\\ooo`
(three octal digits, of the byte); everything else, UTF-8 included, is
written as is.  So the file is parsed as bytes, escapes are undone to bytes,
and the path is decoded as the OS does (os.fsdecode: UTF-8 with
surrogateescape), so every path round-trips, also one that is not UTF-8.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

MOUNTINFO = "/proc/self/mountinfo"
_ESCAPE = re.compile(rb"\\([0-7]{3})")


@dataclass(frozen=True, slots=True)
class Mount:
    mount_id: int
    parent_id: int
    root: str
    mount_point: str
    fstype: str
    source: str


def unescape(field: bytes) -> str:
    """One mountinfo field back to the path it names."""
    return os.fsdecode(_ESCAPE.sub(lambda m: bytes([int(m.group(1), 8) & 0xFF]), field))


def parse(data: bytes | str) -> list[Mount]:
    """Every mount in a mountinfo text, in mount order (pure).  Lines it cannot read are skipped."""
    if isinstance(data, str):
        data = os.fsencode(data)
    out = []
    for line in data.split(b"\n"):
        words = line.split(b" ")
        if len(words) < 7:
            continue
        try:
            sep = words.index(b"-", 6)
            mount_id, parent_id = int(words[0]), int(words[1])
        except ValueError:
            continue
        rest = words[sep + 1:]
        out.append(Mount(mount_id, parent_id, unescape(words[3]), unescape(words[4]),
                         os.fsdecode(rest[0]) if rest else "", unescape(rest[1]) if len(rest) > 1 else ""))
    return out


def read(path: str = MOUNTINFO) -> list[Mount]:
    with open(path, "rb") as f:
        return parse(f.read())


def mount_points(path: str = MOUNTINFO) -> list[str]:
    """The mount points listed in the mountinfo file at path, in mount order."""
    return [m.mount_point for m in read(path)]


def is_mount_point(target: str, path: str = MOUNTINFO) -> bool:
    """True when something is mounted exactly at target (resolved) in that mount namespace."""
    return os.path.realpath(target) in mount_points(path)
