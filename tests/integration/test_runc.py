"""Real runc + coracle-shim + overlay rootfs + busybox image (root only).

Each test gets a tmp dir (coracle-t-*), its own runc root, a cgroup parent
/coracle-t-<rand> and, where needed, a netns crt-<rand>; the `env` fixture
removes containers, mounts, cgroups, netns and dirs even when a test fails.
"""
from __future__ import annotations

import os
import pathlib
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import pytest

from csrc.build_shim import build
from nodeagent.runtime import crilog
from nodeagent.runtime import rootfs
from nodeagent.runtime.images import Image, ImageStore
from nodeagent.runtime.oci import ContainerConfig, build_spec
from nodeagent.runtime.runc import Runc, RuncError, write_bundle

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="needs root and runc")]

CGROUP_ROOT = "/sys/fs/cgroup"


@pytest.fixture(scope="module")
def image():
    d = tempfile.mkdtemp(prefix="coracle-t-img-")
    try:
        yield ImageStore(os.path.join(d, "images")).import_busybox()
    finally:
        shutil.rmtree(d, ignore_errors=True)


@dataclass
class Env:
    dir: str
    image: Image
    runc: Runc
    cgroup: str  # "/coracle-t-<rand>"
    ids: list[str] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)

    def container(self, name: str, args: list[str], **cfg) -> tuple[str, int]:
        """Overlay rootfs + bundle + runc create; returns (container dir, init pid)."""
        cdir = os.path.join(self.dir, name)
        rootfs.ensure(cdir, self.image)
        spec, _ = build_spec(ContainerConfig(args=args, env=self.image.config["Env"], **cfg))
        write_bundle(cdir, spec)
        cid = f"crt-{os.path.basename(self.dir)}-{name}"
        self.ids.append(cid)
        pid = self.runc.create(cid, cdir, log_path=f"{cdir}/log", exit_file=f"{cdir}/exit",
                               pid_file=f"{cdir}/pid")
        return cdir, pid

    def id(self, name: str) -> str:
        return f"crt-{os.path.basename(self.dir)}-{name}"

    def wait_exit(self, cdir: str, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.runc.exit_status(f"{cdir}/exit")
            if st is not None:
                return st
            time.sleep(0.01)
        raise AssertionError(f"no exit file in {cdir} after {timeout}s")


@pytest.fixture
def env(image, tmp_path_factory):
    d = tempfile.mkdtemp(prefix="coracle-t-")
    rand = os.path.basename(d).removeprefix("coracle-t-").lower()
    e = Env(dir=d, image=image, runc=Runc(root=os.path.join(d, "runc"), shim=build(d)),
            cgroup=f"/coracle-t-{rand}")
    errors: list[str] = []
    try:
        yield e
    finally:
        for cid in e.ids:
            try:
                e.runc.delete(cid, force=True)
            except Exception as exc:  # noqa: BLE001 - teardown goes on
                errors.append(f"delete {cid}: {exc}")
        for name in os.listdir(d):
            if os.path.isdir(os.path.join(d, name, "rootfs")):
                try:
                    rootfs.remove(os.path.join(d, name))
                except OSError as exc:
                    errors.append(f"rootfs {name}: {exc}")
        for ctrl in os.listdir(CGROUP_ROOT):
            base = os.path.join(CGROUP_ROOT, ctrl) + e.cgroup
            if not os.path.isdir(base):
                continue
            for sub, _, _ in sorted(os.walk(base), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(sub)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    errors.append(f"rmdir {sub}: {exc}")
        for ns in e.netns:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        shutil.rmtree(d, ignore_errors=True)
        assert not errors, errors


def _cg(env: Env, ctrl: str, name: str, knob: str) -> str:
    with open(f"{CGROUP_ROOT}/{ctrl}{env.cgroup}/{name}/{knob}") as f:
        return f.read().strip()


def test_run_logs_exit_code_limits_and_shim(env: Env) -> None:
    cdir, pid = env.container("c1", ["sh", "-c", "echo hello; echo err >&2; exit 3"],
                              cgroups_path=f"{env.cgroup}/c1", memory_limit_bytes=64 << 20,
                              cpu_quota_us=50000, cpu_period_us=100000, cpu_shares=512)
    assert env.runc.state(env.id("c1"))["status"] == "created"
    assert os.stat(f"/proc/{pid}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino
    assert os.stat(f"/proc/{pid}/ns/pid").st_ino != os.stat("/proc/self/ns/pid").st_ino
    assert _cg(env, "memory", "c1", "memory.limit_in_bytes") == str(64 << 20)
    assert _cg(env, "cpu", "c1", "cpu.cfs_quota_us") == "50000"
    assert _cg(env, "cpu", "c1", "cpu.cfs_period_us") == "100000"
    assert _cg(env, "cpu", "c1", "cpu.shares") == "512"
    assert str(pid) in _cg(env, "memory", "c1", "cgroup.procs").split()
    # the init's parent is the shim's monitor, holding nothing but stdio
    status = pathlib.Path(f"/proc/{pid}/status").read_text().splitlines()
    ppid = int(next(ln.split()[1] for ln in status if ln.startswith("PPid:")))
    assert pathlib.Path(f"/proc/{ppid}/comm").read_text().strip() == "coracle-shim"
    # stdio plus the read ends of the container's stdout/stderr pipes (it copies them to the log)
    fds = sorted(int(fd) for fd in os.listdir(f"/proc/{ppid}/fd"))
    assert fds[:3] == [0, 1, 2] and len(fds) == 5
    assert all(os.readlink(f"/proc/{ppid}/fd/{fd}").startswith("pipe:") for fd in fds[3:])
    assert os.readlink(f"/proc/{ppid}/fd/1") == f"{cdir}/log"
    assert env.runc.exit_status(f"{cdir}/exit") is None
    before = time.time_ns()
    env.runc.start(env.id("c1"))
    st = env.wait_exit(cdir)
    assert st.code == 3 and before <= st.finished_at_ns <= time.time_ns()
    raw = pathlib.Path(f"{cdir}/log").read_bytes()   # CRI lines: <time> stdout|stderr F <text>
    assert re.fullmatch(rb"\S+Z stdout F hello\n\S+Z stderr F err\n", raw), raw
    assert crilog.read_log(raw) == b"hello\nerr\n"
    assert env.runc.state(env.id("c1"))["status"] == "stopped"
    env.runc.delete(env.id("c1"))
    env.runc.delete(env.id("c1"))  # idempotent
    assert env.runc.state(env.id("c1")) is None
    assert env.id("c1") not in [c["id"] for c in env.runc.list()]


def test_join_netns_by_path(env: Env) -> None:
    ns = f"crt-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    env.netns.append(ns)
    path = f"/var/run/netns/{ns}"
    cdir, pid = env.container("c1", ["true"], netns=path)
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(path).st_ino
    env.runc.start(env.id("c1"))
    assert env.wait_exit(cdir).code == 0


def test_sigkill_reports_137(env: Env) -> None:
    cdir, _ = env.container("c1", ["sleep", "100"])
    env.runc.start(env.id("c1"))
    assert env.runc.state(env.id("c1"))["status"] == "running"
    env.runc.kill(env.id("c1"), signal.SIGKILL)
    assert env.wait_exit(cdir).code == 137
    env.runc.kill(env.id("c1"), signal.SIGKILL)  # stopped: no error
    env.runc.kill("crt-never-was", signal.SIGTERM)  # unknown: no error


def test_memory_hog_is_oom_killed(env: Env) -> None:
    # tail buffers /dev/zero's one endless line; as pid 1 it is the OOM victim
    cdir, _ = env.container("c1", ["tail", "/dev/zero"], cgroups_path=f"{env.cgroup}/c1",
                            memory_limit_bytes=16 << 20)
    env.runc.start(env.id("c1"))
    assert env.wait_exit(cdir, timeout=30).code == 137
    assert int(_cg(env, "memory", "c1", "memory.failcnt")) > 0


def test_bad_bundle_raises_runc_message(env: Env) -> None:
    with pytest.raises(RuncError) as e:
        env.container("c1", ["/no/such/binary"])
    assert "no such file or directory" in e.value.message.lower() and "/no/such/binary" in e.value.message
    assert env.runc.exit_status(os.path.join(env.dir, "c1", "exit")) is None
    assert pathlib.Path(env.dir, "c1", "log").read_text() == ""  # runc's error kept out of the log
    assert env.runc.state(env.id("c1")) is None
    os.makedirs(os.path.join(env.dir, "empty"))
    with pytest.raises(RuncError, match="config.json"):
        env.runc.create("crt-empty", os.path.join(env.dir, "empty"), log_path=f"{env.dir}/empty/log",
                        exit_file=f"{env.dir}/empty/exit", pid_file=f"{env.dir}/empty/pid")


def test_rootfs_overlay_is_private_and_idempotent(env: Env) -> None:
    cdir = os.path.join(env.dir, "c1")
    target = rootfs.ensure(cdir, env.image)
    assert rootfs.ensure(cdir, env.image) == target and rootfs.is_mounted(target)
    with open(os.path.join(target, "etc", "written"), "w") as f:
        f.write("x")
    assert os.path.exists(os.path.join(cdir, "upper", "etc", "written"))
    assert not os.path.exists(os.path.join(env.image.rootfs, "etc", "written"))
    rootfs.remove(cdir)
    assert not rootfs.is_mounted(target) and not os.path.exists(cdir)
    rootfs.remove(cdir)  # already gone
    # half-made: dirs without the mount are mounted again
    os.makedirs(os.path.join(cdir, "rootfs"))
    assert rootfs.is_mounted(rootfs.ensure(cdir, env.image))
    rootfs.remove(cdir)


def test_create_start_latency(env: Env) -> None:
    """runc create + start of /bin/true under the shim (printed with -s)."""
    times = []
    for i in range(15):
        name = f"t{i}"
        cdir = os.path.join(env.dir, name)
        rootfs.ensure(cdir, env.image)
        write_bundle(cdir, build_spec(ContainerConfig(args=["true"], env=env.image.config["Env"]))[0])
        env.ids.append(env.id(name))
        t0 = time.perf_counter()
        env.runc.create(env.id(name), cdir, log_path=f"{cdir}/log", exit_file=f"{cdir}/exit",
                        pid_file=f"{cdir}/pid")
        env.runc.start(env.id(name))
        times.append((time.perf_counter() - t0) * 1000)
        assert env.wait_exit(cdir).code == 0
        env.runc.delete(env.id(name))
        rootfs.remove(cdir)
    times.sort()
    print(f"\nrunc create+start /bin/true with shim: median {statistics.median(times):.1f} ms, "
          f"max {times[-1]:.1f} ms over {len(times)}")
