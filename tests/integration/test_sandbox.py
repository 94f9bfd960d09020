"""Integration tests for nodeagent/sandbox.py: real namespaces pinned in a temp run dir (root)."""
from __future__ import annotations

import os
import secrets
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import csrc
from nodeagent.pod.sandbox import Sandbox, SandboxError, mount_points

pytestmark = pytest.mark.root


def mounts_under(d: str) -> list[str]:
    return [m for m in mount_points() if m == d or m.startswith(d + "/")]


@pytest.fixture
def run_dir() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    d = f"/tmp/coracle-t-{secrets.token_hex(4)}"
    os.makedirs(d)
    try:
        yield d
    finally:
        for m in sorted(mounts_under(d), key=len, reverse=True):
            for _ in range(8):
                try:
                    csrc.umount2(m, csrc.MNT_DETACH)
                except OSError:
                    break
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def sandbox(run_dir: str) -> Iterator[Sandbox]:
    sb = Sandbox(run_dir)
    try:
        yield sb
    finally:
        errors = []
        for uid in sb.list():
            try:
                sb.remove(uid)
            except SandboxError as e:
                errors.append(e)
        sb.close(force=True)
        assert not errors


def nsenter(flag: str, path: str, *cmd: str) -> str:
    return subprocess.run(["nsenter", f"{flag}={path}", *cmd], check=True,
                          capture_output=True, text=True).stdout


def test_sandbox_namespaces_are_new_pinned_and_reused(sandbox: Sandbox, run_dir: str) -> None:
    host = {k: os.stat(f"/proc/self/ns/{k}").st_ino for k in ("net", "ipc", "uts")}
    a = sandbox.ensure("crt-a", "crt-pod-a")
    b = sandbox.ensure("crt-b", "crt-pod-b")
    ia, ib = sandbox.inodes("crt-a"), sandbox.inodes("crt-b")
    assert sorted(ia) == ["ipc", "net", "uts"]
    for k, ino in host.items():
        assert ia[k] != ino and ib[k] != ino and ia[k] != ib[k]
    # The caller's thread never entered them.
    assert {k: os.stat(f"/proc/thread-self/ns/{k}").st_ino for k in host} == host
    links = nsenter("--net", a.net, "ip", "-o", "link").splitlines()
    assert len(links) == 1 and links[0].split(":")[1].strip() == "lo"
    assert "state DOWN" in links[0]  # loopback is the network plugin's job
    assert nsenter("--uts", a.uts, "hostname").strip() == "crt-pod-a"
    assert nsenter("--uts", b.uts, "hostname").strip() == "crt-pod-b"
    assert os.uname().nodename not in ("crt-pod-a", "crt-pod-b")
    assert sandbox.ensure("crt-a", "crt-pod-a") == a and sandbox.inodes("crt-a") == ia
    assert sandbox.list() == ["crt-a", "crt-b"] and sandbox.exists("crt-a")

    ns_dir = os.path.join(run_dir, "ns")
    mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    line = next(m for m in mountinfo if m.split()[4] == ns_dir)
    assert "shared:" in line  # like /run/netns: unmounts propagate to later mount namespaces

    sandbox.remove("crt-a")
    sandbox.remove("crt-a")
    assert not os.path.exists(os.path.dirname(a.net)) and not sandbox.exists("crt-a")
    assert mounts_under(os.path.dirname(a.net)) == []
    assert sandbox.inodes("crt-b") == ib
    sandbox.remove("crt-b")
    assert mounts_under(ns_dir) == [ns_dir] and sandbox.list() == []
    sandbox.close()
    assert mounts_under(run_dir) == []


def test_partial_sandbox_is_redone(sandbox: Sandbox) -> None:
    p = sandbox.paths("crt-half")
    os.makedirs(os.path.dirname(p.net))
    sandbox.ensure("crt-other", "x")  # makes the ns dir mount
    open(p.net, "w").close()  # a crash after creating one file
    assert sandbox.inodes("crt-half") == {}
    sandbox.ensure("crt-half", "crt-half")
    assert len(set(sandbox.inodes("crt-half").values())) == 3
    assert nsenter("--uts", p.uts, "hostname").strip() == "crt-half"


def test_failure_propagates_and_leaves_nothing(sandbox: Sandbox, run_dir: str) -> None:
    with pytest.raises(SandboxError, match="crt-bad"):
        sandbox.ensure("crt-bad", "h" * 100)  # longer than HOST_NAME_MAX: EINVAL
    assert not sandbox.exists("crt-bad")
    assert mounts_under(os.path.join(run_dir, "ns", "crt-bad")) == []


def test_ensure_remove_latency(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    times = []
    for i in range(50):
        t = time.perf_counter()
        sandbox.ensure(f"crt-bench{i}", "bench")
        sandbox.remove(f"crt-bench{i}")
        times.append(time.perf_counter() - t)
    median = statistics.median(times) * 1000
    with capsys.disabled():
        print(f"\nsandbox ensure+remove: median {median:.2f} ms, max {max(times) * 1000:.2f} ms")
    assert sandbox.list() == []
    assert median < 50  # a generous bound; the figure is printed for the README
