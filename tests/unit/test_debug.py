"""Unit tests for the debug CLI (nodeagent/debug*.py): records in a temp state
dir, FakeSandbox, FakeCgroups or a temp cgroupfs, FakeRuntime, FakeHost.  No root."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from cgroups.fake import FakeCgroups
from cgroups.interface import Resources, Usage
from cgroups.v1 import CgroupsV1
from nodeagent.debug import cli as debug
from nodeagent.debug.host import Drivers, FakeHost, ProcHost
from nodeagent.debug.view import (
    DebugError,
    default_gateway,
    enter_targets,
    format_table,
    human_bytes,
    record_phase,
    resolve_pod,
    tail,
)
from nodeagent.pod.record import ContainerRecord, ContainerState, PodRecord, RecordStore
from nodeagent.runtime.runc import FakeRuntime
from nodeagent.pod.sandbox import FakeSandbox

UID_WEB = "aaaa1111-0000-0000-0000-000000000001"
UID_DB = "bbbb2222-0000-0000-0000-000000000002"
UID_WEB2 = "aaaa3333-0000-0000-0000-000000000003"
MI = 1 << 20


def running(name: str, pid: int, rid: str = "") -> ContainerRecord:
    return ContainerRecord(name=name, state=ContainerState.RUNNING, pid=pid, runtime_id=rid or name,
                           started_at="2024-01-01T00:00:00Z")


def exited(name: str, code: int, attempt: int = 0) -> ContainerRecord:
    return ContainerRecord(name=name, state=ContainerState.EXITED, exit_code=code, attempt=attempt,
                           started_at="2024-01-01T00:00:00Z")


class World:
    def __init__(self, tmp: Path, cg: object | None = None) -> None:
        self.store = RecordStore(str(tmp / "state"))
        self.sandbox = FakeSandbox(str(tmp / "run"))
        self.cgroups = cg if cg is not None else FakeCgroups()
        self.runtime = FakeRuntime()
        self.host = FakeHost()
        self.drivers = Drivers(self.store, self.sandbox, self.cgroups, self.runtime, self.host)

    def run(self, *argv: str) -> int:
        ns = argparse.Namespace(state_dir="x", run_dir="y", cgroup_root="coracle", rest=list(argv))
        return debug.main(ns, factory=lambda a: self.drivers)


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    web = PodRecord(uid=UID_WEB, namespace="default", name="web", cgroup=f"coracle/burstable/pod{UID_WEB}",
                    ip="10.244.0.5", host_veth="cvaaaa", containers={"app": running("app", 4242, "rid-app")})
    w.store.save(web)
    # db: everything gone from the kernel (no sandbox, no cgroup, no veth, dead pid)
    w.store.save(PodRecord(uid=UID_DB, namespace="prod", name="db", cgroup=f"coracle/besteffort/pod{UID_DB}",
                           ip="10.244.0.6", host_veth="cvbbbb", finished=True,
                           containers={"pg": exited("pg", 3)}))
    w.sandbox.ensure(UID_WEB, "web")
    w.cgroups.ensure(web.cgroup, Resources(cpu_quota_us=50000, memory_limit_bytes=256 * MI))
    w.cgroups.ensure(web.cgroup + "/app")
    w.cgroups.usage_by_path[web.cgroup] = Usage(memory_bytes=12 * MI + MI // 2, memory_limit_bytes=256 * MI,
                                                cpu_usage_ns=2_500_000_000, cpu_quota_us=50000,
                                                cpu_period_us=100000, pids=2, oom_kills=0)
    w.cgroups.add_process(web.cgroup + "/app", 4242)
    w.cgroups.add_process(web.cgroup + "/app", 4250)
    w.host.procs.update({4242: ["/bin/sh", "-c", "sleep 1d"], 4250: ["sleep", "1d"]})
    inodes = w.sandbox.inodes(UID_WEB)
    w.host.namespaces[4242] = {**inodes, "pid": 77, "mnt": 88}
    w.host.links["cvaaaa"] = "coracle0"
    return w


# -- pure parts ------------------------------------------------------------------

def test_resolve_pod_by_name_ns_name_uid_prefix_and_errors() -> None:
    recs = [PodRecord(UID_WEB, "default", "web"), PodRecord(UID_DB, "prod", "db"),
            PodRecord(UID_WEB2, "other", "web")]
    assert resolve_pod(recs, "db").uid == UID_DB
    assert resolve_pod(recs, "other/web").uid == UID_WEB2
    assert resolve_pod(recs, "bbbb").uid == UID_DB
    assert resolve_pod(recs, UID_WEB).uid == UID_WEB
    with pytest.raises(DebugError, match="ambiguous.*default/web.*other/web"):
        resolve_pod(recs, "web")
    with pytest.raises(DebugError, match="ambiguous"):
        resolve_pod(recs, "aaaa")
    with pytest.raises(DebugError, match="no pod 'nope'"):
        resolve_pod(recs, "nope")
    with pytest.raises(DebugError, match="no pod"):
        resolve_pod(recs, "prod/web")


def test_record_phase() -> None:
    def pod(*cs: ContainerRecord, finished: bool = False) -> PodRecord:
        return PodRecord("u", "n", "p", finished=finished, containers={c.name: c for c in cs})
    assert record_phase(pod()) == "Pending"
    assert record_phase(pod(ContainerRecord("a"))) == "Pending"
    assert record_phase(pod(running("a", 1), exited("b", 1))) == "Running"
    assert record_phase(pod(exited("a", 0), exited("b", 0))) == "Succeeded"
    assert record_phase(pod(exited("a", 0), exited("b", 2))) == "Failed"
    assert record_phase(pod(ContainerRecord("a", attempt=3, started_at="t"))) == "Running"  # in back-off


def test_human_units_table_tail_gateway() -> None:
    assert [human_bytes(x) for x in (None, 0, 1023, 1024, 1536, 256 * MI, 5 << 40)] == \
        ["max", "0", "1023", "1Ki", "1.5Ki", "256Mi", "5Ti"]
    assert format_table(("A", "LONGER"), [["xyz", ""]]).splitlines() == ["A     LONGER", "xyz   -"]
    assert tail(b"1\n2\n3\n", 2) == b"2\n3\n" and tail(b"1\n2\n", None) == b"1\n2\n" and tail(b"1\n", 0) == b""
    routes = "10.244.0.0/24 dev eth0 proto kernel scope link src 10.244.0.5\ndefault via 10.244.0.1 dev eth0\n"
    assert default_gateway(routes) == "10.244.0.1" and default_gateway("") == "-"


def test_enter_targets_order_and_errors() -> None:
    pod = {"net": "/r/ns/u/net", "ipc": "/r/ns/u/ipc", "uts": "/r/ns/u/uts"}
    assert enter_targets(None, pod, None) == [("net", "/r/ns/u/net"), ("ipc", "/r/ns/u/ipc"),
                                              ("uts", "/r/ns/u/uts")]
    t = enter_targets(42, pod, "app")
    assert [k for k, _ in t] == ["pid", "net", "ipc", "uts", "mnt"] and t[-1] == ("mnt", "/proc/42/ns/mnt")
    with pytest.raises(DebugError, match="not running"):
        enter_targets(None, pod, "app")
    with pytest.raises(DebugError, match="net.*gone"):
        enter_targets(None, {"ipc": "/x", "uts": "/y"}, None)


def test_proc_host_reads_ns_links_and_veth_master(tmp_path: Path) -> None:
    (tmp_path / "proc/7/ns").mkdir(parents=True)
    (tmp_path / "proc/7/ns/net").symlink_to("net:[4026532001]")
    (tmp_path / "proc/7/ns/mnt").symlink_to("mnt:[4026532002]")
    (tmp_path / "net/cvx").mkdir(parents=True)
    (tmp_path / "net/cvy").mkdir()
    (tmp_path / "net/cvx/master").symlink_to("../coracle0")
    h = ProcHost(proc=str(tmp_path / "proc"), sys_net=str(tmp_path / "net"))
    assert h.ns_inodes(7) == {"net": 4026532001, "mnt": 4026532002}
    assert h.alive(7) and not h.alive(8) and h.ns_inodes(8) == {}
    assert h.link("cvx") == (True, "coracle0") and h.link("cvy") == (True, None) and h.link("cvz") == (False, None)
    assert h.run(["/nonexistent-binary-crt"])[0] == 127


# -- verbs through main ------------------------------------------------------------

def test_pods_table_shows_live_pod_and_dashes_for_gone_one(world: World, capsys: pytest.CaptureFixture) -> None:
    assert world.run("pods") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "UID", "PHASE", "IP", "VETH", "NETNS", "CGROUP", "MEM",
                                "CPU", "QUOTA", "PIDS"]
    web = next(line.split() for line in lines if " web " in line)
    assert web == ["default", "web", "aaaa1111", "Running", "10.244.0.5", "cvaaaa",
                   world.sandbox.paths(UID_WEB).net, f"coracle/burstable/pod{UID_WEB}", "12.5Mi/256Mi",
                   "50000/100000", "4242"]
    db = next(line.split() for line in lines if " db " in line)
    assert db == ["prod", "db", "bbbb2222", "Failed", "10.244.0.6", "cvbbbb", "-", "-", "-", "-", "-"]


def test_pods_json(world: World, capsys: pytest.CaptureFixture) -> None:
    assert world.run("pods", "-o", "json") == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["web"]["usage"]["memory_limit_bytes"] == 256 * MI and rows["web"]["pids"] == [4242]
    assert rows["db"]["netns"] is None and rows["db"]["usage"] is None and rows["db"]["phase"] == "Failed"


def test_inspect_compares_namespaces_and_lists_processes(world: World, capsys: pytest.CaptureFixture) -> None:
    world.runtime.create("rid-app", "/bundles/app", log_path="/l", exit_file="/e", pid_file="/p")
    world.runtime.start("rid-app")
    pid = world.runtime.state("rid-app")["pid"]  # FakeRuntime's pid: make it the live init
    world.host.procs[pid] = ["/bin/sh"]
    world.host.namespaces[pid] = {**world.sandbox.inodes(UID_WEB), "uts": 1, "pid": 77, "mnt": 88}
    assert world.run("inspect", "default/web") == 0
    out = json.loads(capsys.readouterr().out)
    c = out["containers"][0]
    assert c["runc"] == {"status": "running", "pid": pid, "bundle": "/bundles/app"}
    assert c["pid"] == pid and c["namespaces"]["mnt"] == 88
    assert c["sharesPodNamespace"] == {"net": True, "ipc": True, "uts": False}
    assert c["logPath"].endswith(f"pods/{UID_WEB}/logs/app/0.log")
    assert c["exitCode"] is None and c["cgroup"] == f"coracle/burstable/pod{UID_WEB}/app"
    assert c["usage"]["memory_bytes"] == 0 and c["usage"]["pids"] == 2
    assert out["veth"] == {"name": "cvaaaa", "exists": True, "master": "coracle0"}
    assert out["sandbox"]["inodes"] == world.sandbox.inodes(UID_WEB)
    assert out["processes"] == [{"pid": 4242, "cmdline": ["/bin/sh", "-c", "sleep 1d"]},
                                {"pid": 4250, "cmdline": ["sleep", "1d"]}]


def test_inspect_gone_pod_has_exit_code_and_nulls(world: World, capsys: pytest.CaptureFixture) -> None:
    assert world.run("inspect", "bbbb") == 0
    out = json.loads(capsys.readouterr().out)
    c = out["containers"][0]
    assert (c["exitCode"], c["pid"], c["runc"], c["usage"], c["namespaces"]) == (3, None, None, None, {})
    assert out["veth"]["exists"] is False and out["processes"] == [] and out["sandbox"]["inodes"] == {}


def test_unknown_and_ambiguous_pod_exit_1(world: World, capsys: pytest.CaptureFixture) -> None:
    world.store.save(PodRecord(uid=UID_WEB2, namespace="other", name="web"))
    assert world.run("inspect", "web") == 1
    assert "ambiguous" in capsys.readouterr().err
    assert world.run("net", "nothere") == 1
    assert "no pod 'nothere'" in capsys.readouterr().err


def test_logs_current_previous_tail(world: World, capsys: pytest.CaptureFixture) -> None:
    rec = world.store.load(UID_WEB)
    rec.containers["app"].attempt = 1
    world.store.save(rec)
    for attempt, text in ((0, b"old1\nold2\n"), (1, b"a\nb\nc\n")):
        p = Path(world.store.log_path(UID_WEB, "app", attempt))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text)
    assert world.run("logs", "web", "--tail", "2") == 0
    assert capsys.readouterr().out == "b\nc\n"
    assert world.run("logs", "default/web", "-c", "app", "--previous") == 0
    assert capsys.readouterr().out == "old1\nold2\n"
    assert world.run("logs", "web", "-c", "nope") == 1
    assert "no container 'nope'" in capsys.readouterr().err
    assert world.run("logs", "db") == 1  # never wrote a log
    assert "no log file" in capsys.readouterr().err


def test_cgroups_from_temp_cgroupfs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "cgroup"
    for c in ("cpu", "cpuacct", "memory", "pids", "freezer"):
        (root / c).mkdir(parents=True)
    cg = CgroupsV1(str(root))
    w = World(tmp_path, cg)
    path = f"coracle/burstable/pod{UID_WEB}"
    w.store.save(PodRecord(uid=UID_WEB, namespace="default", name="web", cgroup=path,
                           containers={"app": running("app", 1)}))
    cg.ensure(path, Resources(cpu_quota_us=20000, memory_limit_bytes=64 * MI, pids_limit=100))
    for name, value in (("memory.usage_in_bytes", MI), ("cpuacct.usage", 10**9), ("pids.current", 1)):
        (root / name.split(".")[0] / path / name).write_text(f"{value}\n")
    (root / "memory" / path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert w.run("cgroups", "web", "-o", "json") == 0
    r = json.loads(capsys.readouterr().out)
    pod = r["pod"]
    assert pod["exists"] and pod["dirs"]["memory"] == str(root / "memory" / path)
    assert pod["values"]["memory"]["memory.limit_in_bytes"] == str(64 * MI)
    assert pod["values"]["cpu"]["cpu.cfs_quota_us"] == "20000" and pod["values"]["pids"]["pids.max"] == "100"
    assert pod["usage"]["oom_kills"] == 2 and pod["usage"]["memory_bytes"] == MI
    assert r["containers"]["app"]["exists"] is False and r["containers"]["app"]["usage"] is None
    assert w.run("cgroups", "web") == 0
    text = capsys.readouterr().out
    assert "mem 1Mi/64Mi" in text and "quota 20000/100000" in text and "oom_kills 2" in text
    assert "container app: " in text and "(gone)" in text


def test_net_runs_ip_in_the_pod_netns(world: World, capsys: pytest.CaptureFixture) -> None:
    world.host.outputs["addr"] = (0, "1: lo    inet 127.0.0.1/8 scope host lo\n3: eth0    inet 10.244.0.5/24")
    world.host.outputs["route"] = (0, "default via 10.244.0.1 dev eth0\n10.244.0.0/24 dev eth0")
    assert world.run("net", "web", "-o", "json") == 0
    r = json.loads(capsys.readouterr().out)
    net = world.sandbox.paths(UID_WEB).net
    assert world.host.runs == [["nsenter", f"--net={net}", "ip", "-o", "addr"],
                               ["nsenter", f"--net={net}", "ip", "-o", "route"]]
    assert (r["gateway"], r["bridge"], r["netnsInode"]) == ("10.244.0.1", "coracle0",
                                                           world.sandbox.inodes(UID_WEB)["net"])
    assert "10.244.0.5/24" in r["addr"]
    world.host.runs.clear()
    assert world.run("net", "db") == 0  # no netns: nothing run, dashes shown
    text = capsys.readouterr().out
    fields = dict(line.split(None, 1) for line in text.splitlines() if not line.startswith(("ip -o", " ")))
    assert world.host.runs == [] and fields["netns:"] == "-" and fields["gateway:"] == "-"
    assert fields["ip:"] == "10.244.0.6" and fields["vethExists:"] == "False"


def test_enter_refuses_stopped_container_and_gone_sandbox(world: World, capsys: pytest.CaptureFixture) -> None:
    assert world.run("enter", "db", "-c", "pg", "--", "true") == 1
    assert "not running" in capsys.readouterr().err
    assert world.run("enter", "db") == 1
    assert "gone" in capsys.readouterr().err
    assert world.run("pods", "--", "x") == 2


T0 = 1_700_000_000.0
STARTUP = {"seen": [T0, 0.002], "sandbox": [T0 + 0.003, 0.0015], "network": [T0 + 0.005, 0.0153],
           "cgroup": [T0 + 0.021, 0.0006], "etc": [T0 + 0.022, 0.0002], "rootfs/app": [T0 + 0.023, 0.0015],
           "bundle/app": [T0 + 0.025, 0.0005], "runc-create/app": [T0 + 0.026, 0.0668],
           "runc-start/app": [T0 + 0.093, 0.0071], "status": [T0 + 0.101, 0.004]}


def _with_startup(world: World) -> None:
    rec = world.store.load(UID_WEB)
    assert rec is not None
    rec.startup = dict(reversed(list(STARTUP.items())))  # stored in any order: shown in the order they began
    world.store.save(rec)


def test_inspect_json_shows_startup_phases(world: World, capsys: pytest.CaptureFixture) -> None:
    _with_startup(world)
    assert world.run("inspect", "web", "-o", "json") == 0
    rows = json.loads(capsys.readouterr().out)["startup"]
    assert [(r["phase"], r["container"]) for r in rows] == [
        ("seen", None), ("sandbox", None), ("network", None), ("cgroup", None), ("etc", None), ("rootfs", "app"),
        ("bundle", "app"), ("runc-create", "app"), ("runc-start", "app"), ("status", None)]
    net = rows[2]
    assert net["start"] == "2023-11-14T22:13:20.005Z" and net["durationMs"] == 15.3
    assert rows[-1]["sinceSeenMs"] == 105.0   # seen to status written
    assert world.run("inspect", "db") == 0    # a record without phases (an older agent): an empty list
    assert json.loads(capsys.readouterr().out)["startup"] == []


def test_inspect_table_shows_startup_phases(world: World, capsys: pytest.CaptureFixture) -> None:
    _with_startup(world)
    assert world.run("inspect", "web", "-o", "table") == 0
    out = capsys.readouterr().out
    assert "name:       web" in out and "start-up phases:" in out
    lines = out[out.index("start-up phases:"):].splitlines()[1:]
    assert lines[0].split() == ["PHASE", "CONTAINER", "START", "DURATION", "SINCE", "SEEN"]
    assert lines[3].split() == ["network", "-", "2023-11-14T22:13:20.005Z", "15.3ms", "20.3ms"]
    assert lines[8].split()[:2] == ["runc-create", "app"] and lines[8].split()[3] == "66.8ms"
    assert lines[-1].split()[0] == "status"
