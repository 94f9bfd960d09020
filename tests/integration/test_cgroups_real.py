"""Integration tests for cgroups/ on this machine's real /sys/fs/cgroup (root)."""
from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import cgroups
from cgroups import CgroupBusy, Resources

pytestmark = pytest.mark.root
ROOT = "/sys/fs/cgroup"


def leftovers(name: str) -> list[str]:
    return [os.path.join(ROOT, c, name) for c in os.listdir(ROOT)
            if os.path.isdir(os.path.join(ROOT, c, name))]


@pytest.fixture
def base() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    name = f"coracle-t-{secrets.token_hex(4)}"
    try:
        yield name
    finally:
        for d in leftovers(name):  # kill anything left, then rmdir bottom-up
            for dirpath, _, files in os.walk(d):
                if "cgroup.procs" in files:
                    for pid in Path(dirpath, "cgroup.procs").read_text().split():
                        try:
                            os.kill(int(pid), 9)
                        except ProcessLookupError:
                            pass
        for d in leftovers(name):
            for dirpath, _, _ in sorted(os.walk(d), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass


def test_v1_pod_cgroup_lifecycle(base: str) -> None:
    cg = cgroups.detect(ROOT)
    if cg.version != 1:
        pytest.skip("this test reads v1 files")
    pod = f"{base}/pod1"
    cg.ensure(pod, Resources(cpu_shares=256, cpu_quota_us=50_000, cpu_period_us=100_000,
                             memory_limit_bytes=64 << 20, pids_limit=100))
    dirs = cg.fs_paths(pod)

    def read(c: str, f: str) -> str:
        return Path(dirs[c], f).read_text().strip()

    assert read("cpu", "cpu.cfs_quota_us") == "50000"
    assert read("cpu", "cpu.cfs_period_us") == "100000"
    assert read("cpu", "cpu.shares") == "256"
    assert read("memory", "memory.limit_in_bytes") == str(64 << 20)
    assert read("pids", "pids.max") == "100"
    assert not os.path.exists(os.path.join(ROOT, "cpuset", base))
    assert cg.children(base) == ["pod1"]

    # The shell is moved in while it waits on stdin, then does work charged to the pod.
    script = "read x; i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; exec sleep 60"
    p = subprocess.Popen(["sh", "-c", script], stdin=subprocess.PIPE)
    try:
        cg.add_process(pod, p.pid)
        assert p.stdin is not None
        p.stdin.write(b"go\n")
        p.stdin.flush()
        for c in ("cpu", "cpuacct", "memory", "pids", "freezer"):
            assert str(p.pid) in read(c, "cgroup.procs").split()
        assert cg.pids(base) == [p.pid]
        cg.freeze(pod)
        assert read("freezer", "freezer.state") == "FROZEN"
        cg.thaw(pod)
        # Wait for the loop to finish (sleep replaces the shell), so CPU time is charged.
        for _ in range(500):
            if Path(f"/proc/{p.pid}/comm").read_text().strip() == "sleep":
                break
            time.sleep(0.01)
        u = cg.usage(pod)
        assert u.memory_limit_bytes == 64 << 20 and u.cpu_quota_us == 50_000
        assert u.cpu_period_us == 100_000 and u.pids == 1 and u.oom_kills == 0
        assert u.cpu_usage_ns > 0 and u.memory_bytes > 0
        with pytest.raises(CgroupBusy):
            cg.remove(base)
        assert cg.exists(pod)
    finally:
        p.kill()
        p.wait()
    cg.remove(base)
    cg.remove(base)  # already gone: success
    assert not cg.exists(base)
    assert leftovers(base) == []
