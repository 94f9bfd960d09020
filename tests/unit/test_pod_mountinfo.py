"""nodeagent.mountinfo, the one mountinfo parser, and the two drivers that read mounts through it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from nodeagent import mountinfo
from nodeagent.pod import sandbox
from nodeagent.runtime import rootfs

# as the kernel writes them: raw bytes, only space, tab, newline and backslash escaped as \ooo
LINES = (b"27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
         b"99 27 0:4 net:[4026532179] /run/caf\xc3\xa9\\040dir/ns/u/net rw shared:5 - nsfs nsfs rw\n"
         b"100 27 0:50 / /var/lib/pods/\xe6\x97\xa5\xe6\x9c\xac/rootfs rw - overlay overlay rw,lowerdir=/x\n"
         b"101 27 0:51 / /tmp/back\\134slash\\011tab\\012nl rw master:2 - tmpfs my\\040src rw\n"
         b"102 27 0:52 / /mnt/latin1-\xe9 rw - tmpfs tmpfs rw\n")
WANT = ["/", "/run/café dir/ns/u/net", "/var/lib/pods/日本/rootfs", "/tmp/back\\slash\ttab\nnl",
        os.fsdecode(b"/mnt/latin1-\xe9")]


def test_parse_fields_and_round_trip():
    ms = mountinfo.parse(LINES)
    assert [m.mount_point for m in ms] == WANT
    assert ms[1].root == "net:[4026532179]" and ms[1].fstype == "nsfs"
    assert (ms[3].mount_id, ms[3].parent_id, ms[3].fstype, ms[3].source) == (101, 27, "tmpfs", "my src")
    assert os.fsencode(ms[4].mount_point) == b"/mnt/latin1-\xe9"  # not UTF-8: still the same bytes


def test_sandbox_reads_non_ascii_paths_with_spaces(tmp_path: Path):
    mi = tmp_path / "mountinfo"
    mi.write_bytes(LINES)
    assert sandbox.mount_points(str(mi)) == WANT


def test_rootfs_is_mounted_survives_a_path_that_is_not_utf8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    mi = tmp_path / "mountinfo"
    target = tmp_path / "ünï code"
    target.mkdir()
    mi.write_bytes(LINES + b"103 27 0:53 / " + os.fsencode(str(target)).replace(b" ", b"\\040") + b" rw - tmpfs t rw\n")
    monkeypatch.setattr(rootfs, "MOUNTINFO", str(mi))
    assert rootfs.is_mounted(str(target))
    assert not rootfs.is_mounted(str(tmp_path))


def test_short_or_foreign_lines_are_skipped():
    assert mountinfo.parse(b"\n garbage\n1 2 3\nx y 0:1 / /a rw - t s rw\n") == []
    assert mountinfo.parse("27 1 254:0 / /a\\040b rw - ext4 /dev/vda rw") == [
        mountinfo.Mount(27, 1, "/", "/a b", "ext4", "/dev/vda")]
