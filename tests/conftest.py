"""Session-wide guard: tests leave no trace of `ip netns` on the machine.

iproute2's `ip netns add` (used by a few integration tests to make test
namespaces) turns /run/netns into a shared bind mount of itself and never
undoes it; if the session made that mount, the session removes it.
"""
from __future__ import annotations

import os
import subprocess

import pytest


def _is_mount(path: str) -> bool:
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == path for line in f)
    except OSError:
        return False


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_netns_mount():
    before = _is_mount("/run/netns")
    yield
    if os.geteuid() == 0 and not before and _is_mount("/run/netns") and not os.listdir("/run/netns"):
        subprocess.run(["umount", "/run/netns"], check=False)
