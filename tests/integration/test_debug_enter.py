"""Integration tests for `coracle debug enter` (nodeagent/debug_enter.py): real
pinned namespaces from Sandbox in a temp run dir, a pod record in a temp state
dir, the CLI in a fresh subprocess (root)."""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import pytest

import csrc
from nodeagent.pod.record import ContainerRecord, ContainerState, PodRecord, RecordStore
from nodeagent.pod.sandbox import Sandbox, mount_points

pytestmark = pytest.mark.root
HOSTNAME = "crt-host"


@dataclass
class Pod:
    run_dir: str
    state_dir: str
    uid: str
    sandbox: Sandbox


@pytest.fixture
def pod() -> Iterator[Pod]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    base = f"/tmp/coracle-t-debug-{secrets.token_hex(4)}"
    run_dir, state_dir = f"{base}/run", f"{base}/state"
    os.makedirs(run_dir)
    sb = Sandbox(run_dir)
    uid = f"crt-{secrets.token_hex(6)}"
    try:
        p = sb.ensure(uid, HOSTNAME)
        RecordStore(state_dir).save(PodRecord(uid=uid, namespace="crt", name="crt-pod", netns=p.net,
                                              ipcns=p.ipc, utsns=p.uts, ip="10.250.7.2"))
        yield Pod(run_dir, state_dir, uid, sb)
    finally:
        errors = []
        try:
            sb.remove(uid)
        except Exception as e:  # noqa: BLE001 - go on, report below
            errors.append(e)
        sb.close(force=True)
        for m in sorted((m for m in mount_points() if m.startswith(base + "/")), key=len, reverse=True):
            try:
                csrc.umount2(m, csrc.MNT_DETACH)
            except OSError as e:
                errors.append(e)
        shutil.rmtree(base, ignore_errors=True)
        assert not errors


def debug(p: Pod, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coracle.cli", "debug", "--run-dir", p.run_dir,
                           "--state-dir", p.state_dir, *argv], capture_output=True, text=True,
                          timeout=30, check=False)


def test_enter_pod_sees_its_hostname_and_only_lo(pod: Pod) -> None:
    r = debug(pod, "enter", "crt-pod", "--", "hostname")
    assert (r.returncode, r.stdout.strip()) == (0, HOSTNAME), r.stderr
    assert os.uname().nodename != HOSTNAME
    r = debug(pod, "enter", "crt/crt-pod", "--", "ip", "-o", "link")
    assert r.returncode == 0, r.stderr
    names = [line.split(":")[1].strip() for line in r.stdout.splitlines()]
    assert names == ["lo"]
    r = debug(pod, "enter", pod.uid[:10], "--", "sh", "-c", "exit 7")
    assert r.returncode == 7


@pytest.fixture
def container(pod: Pod) -> Iterator[int]:
    """A stand-in container: pod net/ipc/uts, its own pid and mount namespaces with a
    private tmpfs on /mnt holding a marker file; its init's host pid is recorded."""
    p = pod.sandbox.paths(pod.uid)
    script = "mount -t tmpfs crt-tmpfs /mnt && touch /mnt/crt-marker && exec sleep 60"
    proc = subprocess.Popen(["nsenter", f"--net={p.net}", f"--ipc={p.ipc}", f"--uts={p.uts}",
                             "unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
                             "sh", "-c", script], start_new_session=True)
    try:
        init = None
        for _ in range(200):
            kids = psutil.Process(proc.pid).children()
            if kids and kids[0].cmdline()[:1] == ["sleep"]:
                init = kids[0].pid
                break
            time.sleep(0.02)
        assert init, "the stand-in container did not start"
        store = RecordStore(pod.state_dir)
        rec = store.load(pod.uid)
        rec.containers["app"] = ContainerRecord(name="app", state=ContainerState.RUNNING, pid=init,
                                                runtime_id=f"crt-none-{secrets.token_hex(3)}")
        store.save(rec)
        yield init
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def test_enter_container_joins_its_mount_and_pid_namespaces(pod: Pod, container: int) -> None:
    assert not os.path.exists("/mnt/crt-marker")
    r = debug(pod, "enter", "crt-pod", "-c", "app", "--", "sh", "-c", "ls /mnt; echo pid=$$; hostname")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert "crt-marker" in lines and HOSTNAME in lines
    inner_pid = int(next(x for x in lines if x.startswith("pid="))[4:])
    assert inner_pid < 10  # numbered inside the container's pid namespace (its init is 1)
    r = debug(pod, "enter", "crt-pod", "--", "ls", "/mnt")  # pod only: the host filesystem
    assert r.returncode == 0 and "crt-marker" not in r.stdout


def test_inspect_and_net_with_real_drivers(pod: Pod, container: int) -> None:
    import json
    r = debug(pod, "inspect", "crt-pod")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    c = out["containers"][0]
    assert c["pid"] == container and c["runc"] is None  # runc does not know the stand-in
    assert c["sharesPodNamespace"] == {"net": True, "ipc": True, "uts": True}
    host_ns = {k: os.stat(f"/proc/self/ns/{k}").st_ino for k in ("pid", "mnt")}
    assert all(c["namespaces"][k] != v for k, v in host_ns.items())
    assert out["sandbox"]["inodes"]["net"] == os.stat(pod.sandbox.paths(pod.uid).net).st_ino
    assert out["veth"]["exists"] is False and out["cgroup"] is None and out["pids"] == [container]
    subprocess.run(["nsenter", f"--net={pod.sandbox.paths(pod.uid).net}", "ip", "link", "set", "lo", "up"],
                   check=True)
    r = debug(pod, "net", "crt-pod", "-o", "json")
    assert r.returncode == 0, r.stderr
    net = json.loads(r.stdout)
    assert net["netnsInode"] == out["sandbox"]["inodes"]["net"] and net["gateway"] is None
    assert "127.0.0.1/8" in net["addr"] and "eth0" not in net["addr"] and net["route"] == ""
    r = debug(pod, "pods")
    row = next(line.split() for line in r.stdout.splitlines() if "crt-pod" in line)
    assert row[3] == "Running" and row[-1] == str(container) and row[7:10] == ["-", "-", "-"]
