"""cgroups: one interface over cgroup v1 and v2 for the node agent.

detect() is the only place that picks a version.  Neighbours: interface.py
(the Protocol and value types), v1.py, v2.py, fs.py (all cgroupfs I/O), fake.py.
"""
from __future__ import annotations

import os

from cgroups.fs import CgroupBusy, CgroupError
from cgroups.interface import Cgroups, Resources, Usage

__all__ = ["CgroupBusy", "CgroupError", "Cgroups", "Resources", "Usage", "detect"]


def detect(root: str = "/sys/fs/cgroup") -> Cgroups:
    """v2 when root is a unified mount (root/cgroup.controllers exists), else v1."""
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        from cgroups.v2 import CgroupsV2
        return CgroupsV2(root)
    from cgroups.v1 import CgroupsV1
    return CgroupsV1(root)
