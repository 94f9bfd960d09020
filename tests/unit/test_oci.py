"""nodeagent.runtime.oci: the pure OCI config builder."""
from __future__ import annotations

from nodeagent.runtime.oci import DEFAULT_CAPABILITIES, AgentLimits, ContainerConfig, build_spec

LIMITS = AgentLimits(nofile_hard=20000, oom_score_adj=0)


def _ns(spec: dict) -> dict[str, str | None]:
    return {n["type"]: n.get("path") for n in spec["linux"]["namespaces"]}


def test_basic_spec_shape() -> None:
    spec, warnings = build_spec(ContainerConfig(args=["sh"], env=["A=1"], cwd="/w", hostname="web",
                                                nofile_limit=1024), LIMITS)
    assert warnings == []
    assert spec["ociVersion"] == "1.0.2"
    p = spec["process"]
    assert p["args"] == ["sh"] and p["env"] == ["A=1"] and p["cwd"] == "/w"
    assert p["noNewPrivileges"] is True and p["terminal"] is False
    assert p["user"] == {"uid": 0, "gid": 0}
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    assert "oomScoreAdj" not in p
    for s in ("bounding", "effective", "permitted"):
        assert p["capabilities"][s] == list(DEFAULT_CAPABILITIES)
    assert "CAP_SYS_ADMIN" not in DEFAULT_CAPABILITIES and "CAP_NET_RAW" in DEFAULT_CAPABILITIES
    assert spec["root"] == {"path": "rootfs", "readonly": False}
    assert spec["hostname"] == "web"
    assert "/proc/kcore" in spec["linux"]["maskedPaths"]
    assert "/proc/sys" in spec["linux"]["readonlyPaths"]
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
    assert "ro" in spec["mounts"][5]["options"] and "ro" in spec["mounts"][6]["options"]
    assert "cgroupsPath" not in spec["linux"]


def test_new_namespaces_by_default_and_joined_by_path() -> None:
    spec, _ = build_spec(ContainerConfig(args=["x"], env=[]), LIMITS)
    assert _ns(spec) == {"pid": None, "mount": None, "network": None, "ipc": None, "uts": None}
    spec, _ = build_spec(ContainerConfig(args=["x"], env=[], netns="/run/n", ipcns="/run/i",
                                         utsns="/run/u", hostname="web"), LIMITS)
    assert _ns(spec) == {"pid": None, "mount": None, "network": "/run/n", "ipc": "/run/i", "uts": "/run/u"}
    assert "hostname" not in spec  # runc refuses a hostname in a joined UTS namespace


def test_resources_and_extra_mounts() -> None:
    vol = {"destination": "/data", "type": "bind", "source": "/v", "options": ["rbind", "rw"]}
    spec, _ = build_spec(ContainerConfig(args=["x"], env=[], cgroups_path="/coracle/pod1/c",
                                         cpu_shares=512, cpu_quota_us=50000, cpu_period_us=100000,
                                         memory_limit_bytes=1 << 24, pids_limit=100,
                                         mounts=(vol,), readonly_rootfs=True, uid=65534, gid=65534,
                                         tty=True), LIMITS)
    res = spec["linux"]["resources"]
    assert res["cpu"] == {"shares": 512, "quota": 50000, "period": 100000}
    assert res["memory"] == {"limit": 1 << 24}
    assert res["pids"] == {"limit": 100}
    assert res["devices"] == [{"allow": False, "access": "rwm"}]
    assert spec["linux"]["cgroupsPath"] == "/coracle/pod1/c"
    assert spec["mounts"][-1] == vol and spec["root"]["readonly"] is True
    assert spec["process"]["user"] == {"uid": 65534, "gid": 65534} and spec["process"]["terminal"]


def test_no_resources_means_no_limits() -> None:
    spec, _ = build_spec(ContainerConfig(args=["x"], env=[]), LIMITS)
    assert set(spec["linux"]["resources"]) == {"devices"}


def test_nofile_clamped_to_agent_hard_limit_and_max() -> None:
    spec, warnings = build_spec(ContainerConfig(args=["x"], env=[]), LIMITS)
    assert spec["process"]["rlimits"][0]["hard"] == 20000 and len(warnings) == 1
    assert "1048576" in warnings[0] and "20000" in warnings[0]
    spec, warnings = build_spec(ContainerConfig(args=["x"], env=[], max_nofile=4096), LIMITS)
    assert spec["process"]["rlimits"][0] == {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096}


def test_oom_score_adj_never_below_agent() -> None:
    limits = AgentLimits(nofile_hard=1 << 20, oom_score_adj=-500)
    spec, warnings = build_spec(ContainerConfig(args=["x"], env=[], oom_score_adj=-998), limits)
    assert spec["process"]["oomScoreAdj"] == -500
    assert len(warnings) == 1 and "-998" in warnings[0]
    spec, warnings = build_spec(ContainerConfig(args=["x"], env=[], oom_score_adj=1000), limits)
    assert spec["process"]["oomScoreAdj"] == 1000 and warnings == []


def test_spec_is_fresh_each_call() -> None:
    a, _ = build_spec(ContainerConfig(args=["x"], env=[]), LIMITS)
    a["mounts"][0]["options"].append("bogus")
    b, _ = build_spec(ContainerConfig(args=["x"], env=[]), LIMITS)
    assert "bogus" not in b["mounts"][0]["options"]


def test_agent_limits_current_reads_process() -> None:
    cur = AgentLimits.current()
    assert cur.nofile_hard > 0 and -1000 <= cur.oom_score_adj <= 1000
