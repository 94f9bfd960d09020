"""Unit tests for cgroups/: v1 and v2 against temp trees laid out like /sys/fs/cgroup, and the fake."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import cgroups
from cgroups import CgroupBusy, Resources
from cgroups.fake import FakeCgroups
from cgroups.fs import clean_path
from cgroups.v1 import CgroupsV1, controller_dirs, memory_limit_value
from cgroups.v2 import CgroupsV2, cpu_max, parse_cpu_max, shares_to_weight

V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "pids")


def put(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def v1root(tmp_path: Path) -> Path:
    root = tmp_path / "v1"
    for c in V1_CONTROLLERS:
        (root / c).mkdir(parents=True)
    (root / "unified").mkdir()
    return root


@pytest.fixture
def v2root(tmp_path: Path) -> Path:
    root = tmp_path / "v2"
    put(root / "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc")
    put(root / "cgroup.subtree_control", "")
    return root


def test_detect_picks_version(v1root: Path, v2root: Path) -> None:
    assert cgroups.detect(str(v1root)).version == 1
    assert cgroups.detect(str(v2root)).version == 2


def test_clean_path_rejects_escapes() -> None:
    assert clean_path("/coracle//burstable/") == "coracle/burstable"
    for bad in ("../etc", "a/../../b", "a/./b"):
        with pytest.raises(ValueError):
            clean_path(bad)


def test_controller_dirs_separate_and_comounted() -> None:
    sep = controller_dirs(["cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "systemd"])
    assert sep == {"cpu": "cpu", "cpuacct": "cpuacct", "memory": "memory", "pids": "pids",
                   "freezer": "freezer"}
    co = controller_dirs(["cpu,cpuacct", "memory", "pids", "freezer", "net_cls,net_prio"])
    assert co["cpu"] == co["cpuacct"] == "cpu,cpuacct"
    # Exact names (systemd's symlinks) win over the co-mount entry.
    assert controller_dirs(["cpuacct,cpu", "cpu", "cpuacct"])["cpu"] == "cpu"


def test_v1_ensure_creates_every_managed_controller_but_not_cpuset(v1root: Path) -> None:
    cg = CgroupsV1(str(v1root))
    cg.ensure("coracle/burstable/podA", Resources(cpu_shares=512, cpu_quota_us=50_000,
                                                  memory_limit_bytes=64 << 20, pids_limit=100))
    for c in ("cpu", "cpuacct", "memory", "pids", "freezer"):
        assert (v1root / c / "coracle/burstable/podA").is_dir()
    assert not (v1root / "cpuset" / "coracle").exists()
    assert not (v1root / "devices" / "coracle").exists()
    pod = "coracle/burstable/podA"
    assert (v1root / "cpu" / pod / "cpu.shares").read_text() == "512"
    assert (v1root / "cpu" / pod / "cpu.cfs_quota_us").read_text() == "50000"
    assert (v1root / "cpu" / pod / "cpu.cfs_period_us").read_text() == "100000"
    assert (v1root / "memory" / pod / "memory.limit_in_bytes").read_text() == str(64 << 20)
    assert (v1root / "pids" / pod / "pids.max").read_text() == "100"
    cg.ensure(pod)  # idempotent, leaves limits alone
    assert (v1root / "pids" / pod / "pids.max").read_text() == "100"
    cg.set(pod, Resources())
    assert (v1root / "cpu" / pod / "cpu.cfs_quota_us").read_text() == "-1"
    assert (v1root / "memory" / pod / "memory.limit_in_bytes").read_text() == "-1"
    assert (v1root / "pids" / pod / "pids.max").read_text() == "max"
    assert (v1root / "cpu" / pod / "cpu.shares").read_text() == "512"  # None: untouched


def test_v1_comounted_cpu_cpuacct_made_once(tmp_path: Path) -> None:
    for d in ("cpu,cpuacct", "memory", "pids", "freezer"):
        (tmp_path / d).mkdir()
    os.symlink("cpu,cpuacct", tmp_path / "cpu")
    os.symlink("cpu,cpuacct", tmp_path / "cpuacct")
    cg = CgroupsV1(str(tmp_path))
    assert len(cg.hierarchies) == 4
    cg.ensure("coracle/p", Resources(cpu_quota_us=20_000))
    assert (tmp_path / "cpu,cpuacct/coracle/p/cpu.cfs_quota_us").read_text() == "20000"
    assert cg.fs_paths("coracle/p")["cpuacct"].endswith("coracle/p")
    cg.remove("coracle")
    assert not (tmp_path / "cpu,cpuacct/coracle").exists()


def test_v1_usage_oom_and_pids(v1root: Path) -> None:
    cg = CgroupsV1(str(v1root))
    pod = "coracle/podB"
    cg.ensure(pod + "/ctr")
    put(v1root / "memory" / pod / "memory.usage_in_bytes", "4096\n")
    put(v1root / "memory" / pod / "memory.limit_in_bytes", "9223372036854771712\n")
    put(v1root / "memory" / pod / "memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    put(v1root / "cpuacct" / pod / "cpuacct.usage", "123456789\n")
    put(v1root / "cpu" / pod / "cpu.cfs_quota_us", "-1\n")
    put(v1root / "cpu" / pod / "cpu.cfs_period_us", "100000\n")
    put(v1root / "pids" / pod / "pids.current", "2\n")
    put(v1root / "memory" / pod / "cgroup.procs", "10\n")
    put(v1root / "memory" / pod / "ctr" / "cgroup.procs", "11\n12\n")
    u = cg.usage(pod)
    assert (u.memory_bytes, u.memory_limit_bytes, u.cpu_usage_ns) == (4096, None, 123456789)
    assert (u.cpu_quota_us, u.cpu_period_us, u.pids, u.oom_kills) == (None, 100000, 2, 3)
    assert cg.oom_kill_count(pod) == 3
    assert cg.pids(pod) == [10, 11, 12]
    assert cg.children("coracle") == ["podB"]
    assert memory_limit_value(64 << 20) == 64 << 20


def test_v1_add_process_and_freeze(v1root: Path) -> None:
    cg = CgroupsV1(str(v1root))
    cg.ensure("coracle/p")
    cg.add_process("coracle/p", 4242)
    for c in ("cpu", "cpuacct", "memory", "pids", "freezer"):
        assert (v1root / c / "coracle/p/cgroup.procs").read_text() == "4242"
    cg.freeze("coracle/p")
    assert (v1root / "freezer/coracle/p/freezer.state").read_text() == "FROZEN"
    cg.thaw("coracle/p")
    assert (v1root / "freezer/coracle/p/freezer.state").read_text() == "THAWED"


def test_v1_remove_subtree_idempotent_and_busy(v1root: Path) -> None:
    cg = CgroupsV1(str(v1root))
    cg.ensure("coracle/besteffort/pod1/c1", Resources(pids_limit=5))
    cg.ensure("coracle/besteffort/pod2")
    cg.remove("coracle/besteffort/pod1")
    assert not cg.exists("coracle/besteffort/pod1")
    assert cg.exists("coracle/besteffort/pod2")
    for c in ("cpu", "memory", "pids", "freezer", "cpuacct"):
        assert not (v1root / c / "coracle/besteffort/pod1").exists()
    cg.remove("coracle/besteffort/pod1")  # already gone: success
    put(v1root / "memory/coracle/besteffort/pod2/cgroup.procs", "77\n")
    with pytest.raises(CgroupBusy, match="77"):
        cg.remove("coracle/besteffort/pod2")


def test_shares_to_weight_matches_runc() -> None:
    assert shares_to_weight(2) == 1
    assert shares_to_weight(1024) == 39
    assert shares_to_weight(262144) == 10000
    assert shares_to_weight(1) == 1  # clamped
    assert cpu_max(None, 100000) == "max 100000"
    assert parse_cpu_max("50000 100000") == (50000, 100000)
    assert parse_cpu_max("max 100000") == (None, 100000)


def test_v2_ensure_enables_controllers_and_sets_limits(v2root: Path) -> None:
    cg = CgroupsV2(str(v2root))
    pod = "coracle/guaranteed/podC"
    cg.ensure(pod, Resources(cpu_shares=1024, cpu_quota_us=50_000, memory_limit_bytes=1 << 20,
                             pids_limit=10))
    assert (v2root / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (v2root / "coracle/guaranteed/cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert not (v2root / pod / "cgroup.subtree_control").exists()  # leaf: no children yet
    assert (v2root / pod / "cpu.weight").read_text() == "39"
    assert (v2root / pod / "cpu.max").read_text() == "50000 100000"
    assert (v2root / pod / "memory.max").read_text() == str(1 << 20)
    assert (v2root / pod / "pids.max").read_text() == "10"
    cg.set(pod, Resources())
    assert (v2root / pod / "cpu.max").read_text() == "max 100000"
    assert (v2root / pod / "memory.max").read_text() == "max"
    assert cg.fs_paths(pod) == {"unified": str(v2root / pod)}


def test_v2_enables_only_available_and_missing(v2root: Path) -> None:
    put(v2root / "cgroup.controllers", "cpu io memory")  # no pids here
    put(v2root / "cgroup.subtree_control", "memory")
    cg = CgroupsV2(str(v2root))
    cg.ensure("a")
    assert (v2root / "cgroup.subtree_control").read_text() == "+cpu"  # only what is missing
    assert (v2root / "a").is_dir()


def test_v2_usage_freeze_remove(v2root: Path) -> None:
    cg = CgroupsV2(str(v2root))
    pod = "coracle/podD"
    cg.ensure(pod + "/c")
    put(v2root / pod / "memory.current", "8192")
    put(v2root / pod / "memory.max", "max")
    put(v2root / pod / "cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    put(v2root / pod / "cpu.max", "max 100000")
    put(v2root / pod / "pids.current", "1")
    put(v2root / pod / "memory.events", "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n")
    u = cg.usage(pod)
    assert (u.memory_bytes, u.memory_limit_bytes, u.cpu_usage_ns, u.oom_kills) == (8192, None, 1_500_000, 2)
    assert (u.cpu_quota_us, u.cpu_period_us, u.pids) == (None, 100000, 1)
    put(v2root / pod / "cgroup.events", "populated 0\nfrozen 1\n")
    cg.freeze(pod)
    assert (v2root / pod / "cgroup.freeze").read_text() == "1"
    put(v2root / pod / "c/cgroup.procs", "99")
    assert cg.pids(pod) == [99]
    with pytest.raises(CgroupBusy):
        cg.remove(pod)
    cg.ensure(pod + "/c")
    (v2root / pod / "c/cgroup.procs").write_text("")
    cg.remove("coracle")
    assert not (v2root / "coracle").exists()
    cg.remove("coracle")


def test_fake_records_and_enforces_busy() -> None:
    cg = FakeCgroups()
    cg.ensure("coracle/burstable/p1", Resources(memory_limit_bytes=100))
    cg.ensure("coracle/burstable/p2")
    assert cg.children("coracle/burstable") == ["p1", "p2"]
    assert cg.children("") == ["coracle"]
    cg.add_process("coracle/burstable/p1", 5)
    cg.add_process("coracle/burstable/p2", 5)  # a process lives in one cgroup
    assert cg.pids("coracle/burstable/p1") == []
    assert cg.pids("coracle") == [5]
    assert cg.usage("coracle/burstable/p1").memory_limit_bytes == 100
    with pytest.raises(CgroupBusy):
        cg.remove("coracle/burstable")
    cg.procs["coracle/burstable/p2"].clear()
    cg.remove("coracle/burstable")
    assert not cg.exists("coracle/burstable/p1") and cg.exists("coracle")
    cg.remove("coracle/burstable")
    assert FakeCgroups(version=2).fs_paths("a") == {"unified": "/fake/cgroup/a"}
