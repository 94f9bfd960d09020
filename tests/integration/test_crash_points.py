"""Restart safety of the pod's kernel side (nodeagent.pod.host), crash point by crash point (root only).

For every build step (namespaces, network, cgroup, etc, rootfs, bundle, runc-create, runc-start) a
child process builds a real pod with CORACLE_CRASH_AT=<step> and dies there with os._exit(137), as
a SIGKILL would; a fresh process then either finishes the build (the pod must run exactly once:
one runc container, one process in the pod cgroup, in the pinned netns) or, as if the pod had been
deleted meanwhile, tears it down.  Each teardown step is crashed the same way and teardown rerun.
After every case nothing of the pod may be left: veth, IPAM file, netns pin, overlay mount,
cgroup, runc container, pod dir.  Real drivers: Sandbox, BridgeNetwork (bridge crt-bc<rand>, subnet
10.248.201.0/24, no host routes beyond the bridge's own), cgroups v1 under coracle-t-<rand>, runc.

Run as a script, this file is the child: `python test_crash_points.py CONFIG.json build|teardown`.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from nodeagent.pod.host import BUILD_STEPS, TEARDOWN_STEPS

SUBNET = "10.248.201.0/24"
UID = "c0ffee00-0000-4000-8000-00000000c4a5"


def make_host(cfg: dict):
    """The real drivers, as nodeagent.agent.make_host, without node-level routes."""
    import cgroups
    from nodeagent.runtime import oci
    from nodeagent.runtime.images import ImageStore
    from nodeagent.pod.network import BridgeNetwork
    from nodeagent.pod.host import PodHost
    from nodeagent.pod.record import RecordStore
    from nodeagent.runtime.runc import Runc
    from nodeagent.pod.sandbox import Sandbox
    net = BridgeNetwork(SUBNET, SUBNET, cfg["bridge"], os.path.join(cfg["state"], "cni"))
    return PodHost(records=RecordStore(cfg["state"]), sandbox=Sandbox(cfg["run"]), network=net,
                   cgroups=cgroups.detect(), runtime=Runc(root=os.path.join(cfg["run"], "runc")),
                   images=ImageStore(cfg["images"]), cgroup_root=cfg["cgroup_root"], node_name="crt-node",
                   host_ip="127.0.0.1", limits=oci.AgentLimits.current())


def pod() -> dict:
    return {"metadata": {"name": "crt-crash", "namespace": "default", "uid": UID},
            "spec": {"restartPolicy": "Always", "containers": [
                {"name": "main", "image": "busybox", "command": ["sleep", "3600"],
                 "resources": {"limits": {"cpu": "200m", "memory": "32Mi"}}}]},
            "status": {"qosClass": "Guaranteed"}}


def child(cfg_path: str, verb: str) -> int:
    from nodeagent.pod.record import PodRecord
    with open(cfg_path) as f:
        cfg = json.load(f)
    host = make_host(cfg)
    p = pod()
    rec = host.records.load(UID)
    if verb == "build":
        if rec is None:
            rec = PodRecord(uid=UID, namespace="default", name="crt-crash")
            host.records.save(rec)
        host.ensure_sandbox(p, rec)
        host.start_container(p, rec, p["spec"]["containers"][0])
        return 0 if rec.containers["main"].pid else 1
    errs = host.teardown(UID, rec, keep_record=False)
    for e in errs:
        print(e, file=sys.stderr)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(child(sys.argv[1], sys.argv[2]))


pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="needs root and runc")]


@pytest.fixture(scope="module")
def images() -> Iterator[str]:
    from nodeagent.runtime.images import ImageStore
    d = tempfile.mkdtemp(prefix="coracle-t-img-")
    try:
        ImageStore(os.path.join(d, "images")).import_busybox()
        yield os.path.join(d, "images")
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def cfg(images: str) -> Iterator[dict]:
    tag = secrets.token_hex(2)
    d = tempfile.mkdtemp(prefix="coracle-t-crash-")
    c = {"state": f"{d}/state", "run": f"{d}/run", "images": images, "cgroup_root": f"coracle-t-{tag}",
         "bridge": f"crt-bc{tag}", "dir": d}
    with open(f"{d}/cfg.json", "w") as f:
        json.dump(c, f)
    try:
        yield c
    finally:
        _run(c, "teardown", check=False)
        from cni import bridge
        from pyroute2 import IPRoute
        with IPRoute() as ipr:
            bridge.remove_bridge(ipr, c["bridge"])
        for ctrl in os.listdir("/sys/fs/cgroup"):
            root = Path("/sys/fs/cgroup", ctrl, c["cgroup_root"])
            for sub in sorted(root.rglob("*"), key=lambda p: -len(p.parts)) if root.is_dir() else []:
                if sub.is_dir():
                    sub.rmdir()
            if root.is_dir():
                root.rmdir()
        run_ns = os.path.realpath(f"{c['run']}/ns")
        subprocess.run(["umount", "-l", run_ns], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def _run(c: dict, verb: str, crash: str = "", check: bool = True) -> int:
    env = dict(os.environ, CORACLE_CRASH_AT=crash)
    p = subprocess.run([sys.executable, __file__, f"{c['dir']}/cfg.json", verb], env=env, capture_output=True,
                       text=True, timeout=60)
    if check and crash:
        assert p.returncode == 137, f"expected a crash at {crash}: rc={p.returncode}\n{p.stderr}"
    elif check:
        assert p.returncode == 0, f"{verb} failed rc={p.returncode}\n{p.stderr}"
    return p.returncode


def _runc_ids(c: dict) -> list[str]:
    root = f"{c['run']}/runc"
    if not os.path.isdir(root):
        return []
    out = subprocess.run(["runc", "--root", root, "list", "-q"], capture_output=True, text=True).stdout
    return out.split()


def _pod_cgroups(c: dict) -> list[str]:
    return [str(p) for ctrl in os.listdir("/sys/fs/cgroup")
            for p in Path("/sys/fs/cgroup", ctrl, c["cgroup_root"]).rglob(f"pod{UID}")]


def leftovers(c: dict) -> list[str]:
    from cni import veth
    left = []
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    if veth.host_veth_name(UID) + "@" in links:
        left.append("veth")
    cni = Path(c["state"], "cni")
    left += [f"ipam {p.name}" for p in cni.rglob("*") if p.is_file() and UID in p.read_text(errors="replace")] \
        if cni.is_dir() else []
    with open("/proc/self/mountinfo") as f:
        left += [f"mount {ln.split()[4]}" for ln in f if ln.split()[4].startswith(c["dir"])
                 and not ln.split()[4].endswith("/run/ns")]
    left += [f"cgroup {p}" for p in _pod_cgroups(c)]
    left += [f"runc {i}" for i in _runc_ids(c)]
    if os.path.exists(f"{c['state']}/pods/{UID}"):
        left.append("pod dir")
    return left


def assert_running_once(c: dict) -> None:
    ids = _runc_ids(c)
    assert ids == [f"{UID}-main"], ids
    rec = json.loads(Path(c["state"], "pods", UID, "record.json").read_text())
    pid = rec["containers"]["main"]["pid"]
    assert rec["containers"]["main"]["state"] == "running" and rec["containers"]["main"]["attempt"] == 0
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(rec["netns"]).st_ino
    procs = Path("/sys/fs/cgroup/pids", c["cgroup_root"], f"pod{UID}", "main", "cgroup.procs").read_text().split()
    assert procs == [str(pid)]
    sleeps = [p for p in Path("/sys/fs/cgroup/pids", c["cgroup_root"], f"pod{UID}").rglob("cgroup.procs")
              for x in p.read_text().split()]
    assert len(sleeps) == 1
    links = subprocess.run(["ip", "-o", "link", "show", "master", c["bridge"]], capture_output=True, text=True).stdout
    assert len(links.splitlines()) == 1


@pytest.mark.parametrize("step", BUILD_STEPS)
def test_crash_during_build_then_restart_runs_once(cfg, step):
    _run(cfg, "build", crash=step)
    _run(cfg, "build")
    assert_running_once(cfg)
    _run(cfg, "build")            # a second sync of a running pod changes nothing
    assert_running_once(cfg)
    _run(cfg, "teardown")
    assert leftovers(cfg) == []


@pytest.mark.parametrize("step", BUILD_STEPS)
def test_crash_during_build_then_deleted_leaves_nothing(cfg, step):
    _run(cfg, "build", crash=step)
    _run(cfg, "teardown")
    assert leftovers(cfg) == []


@pytest.mark.parametrize("step", TEARDOWN_STEPS)
def test_crash_during_teardown_then_teardown_again(cfg, step):
    _run(cfg, "build")
    assert_running_once(cfg)
    _run(cfg, "teardown", crash=step)
    _run(cfg, "teardown")
    assert leftovers(cfg) == []
