"""Unit tests for nodeagent/sandbox.py's pure parts and FakeSandbox (no root)."""
from __future__ import annotations

from pathlib import Path

import pytest

from nodeagent.pod.sandbox import FakeSandbox, Sandbox, SandboxPaths, mount_points


def test_paths_layout() -> None:
    assert Sandbox("/run/coracle").paths("abc-123") == SandboxPaths(
        net="/run/coracle/ns/abc-123/net", ipc="/run/coracle/ns/abc-123/ipc",
        uts="/run/coracle/ns/abc-123/uts")


@pytest.mark.parametrize("uid", ["", "..", ".", "a/b", "../x"])
def test_paths_reject_escaping_uids(uid: str) -> None:
    with pytest.raises(ValueError):
        Sandbox("/run/coracle").paths(uid)


def test_mount_points_unescapes(tmp_path: Path) -> None:
    mi = tmp_path / "mountinfo"
    mi.write_text("27 1 254:0 / / rw - ext4 /dev/vda rw\n"
                  "99 27 0:4 net:[4026532179] /run/my\\040dir/ns/u/net rw - nsfs nsfs rw\n")
    assert mount_points(str(mi)) == ["/", "/run/my dir/ns/u/net"]


def test_fake_sandbox_contract() -> None:
    sb = FakeSandbox("/r")
    assert sb.list() == [] and not sb.exists("u1")
    p = sb.ensure("u1", "web-0")
    assert p == Sandbox("/r").paths("u1")
    first = sb.inodes("u1")
    assert sorted(first) == ["ipc", "net", "uts"] and len(set(first.values())) == 3
    assert sb.ensure("u1", "web-0") == p and sb.inodes("u1") == first  # idempotent
    sb.ensure("u2", "web-1")
    assert set(sb.inodes("u2").values()).isdisjoint(first.values())
    assert sb.list() == ["u1", "u2"] and sb.hostnames["u2"] == "web-1"
    sb.remove("u1")
    sb.remove("u1")
    assert sb.list() == ["u2"] and sb.inodes("u1") == {}
    sb.close()
    assert sb.closed
