"""Per-container root filesystem: an overlayfs over the image's unpacked rootfs.

    container_dir/upper    the container's writes
    container_dir/work     overlayfs's work dir
    container_dir/rootfs   the mount point runc's config.json names ("rootfs")

Images come from nodeagent.runtime.images; mounts go through the csrc bindings.  Both
verbs are idempotent and safe to re-run after a crash half-way through.
`FakeRootfs` (no mounts) stands in for unit tests of nodeagent.pod.host.
"""
from __future__ import annotations

import errno
import os
import shutil

import csrc
from nodeagent import mountinfo
from nodeagent.runtime.images import Image

MOUNTINFO = mountinfo.MOUNTINFO


def mount_points(text: str | bytes) -> list[str]:
    """Mount points in a mountinfo text, in mount order (pure; nodeagent.mountinfo parses)."""
    return [m.mount_point for m in mountinfo.parse(text)]


def is_mounted(path: str) -> bool:
    """True when something is mounted exactly at `path` in this mount namespace."""
    return mountinfo.is_mount_point(path, MOUNTINFO)


def overlay_options(lower: str, upper: str, work: str) -> str:
    for p in (lower, upper, work):
        if "," in p or ":" in p:
            raise ValueError(f"overlayfs cannot take a path with ',' or ':': {p!r}")
    return f"lowerdir={lower},upperdir={upper},workdir={work}"


def ensure(container_dir: str, image: Image) -> str:
    """Mount the container's overlay rootfs; return the mount point.  Idempotent.

    Already mounted: returned as is.  Half-made (dirs without a mount, or a
    work dir overlayfs refuses): the mount is redone, keeping upper/.
    """
    container_dir = os.path.realpath(container_dir)
    target = os.path.join(container_dir, "rootfs")
    if os.path.isdir(target) and is_mounted(target):
        return target
    upper, work = os.path.join(container_dir, "upper"), os.path.join(container_dir, "work")
    for d in (upper, work, target):
        os.makedirs(d, exist_ok=True)
    data = overlay_options(os.path.realpath(image.rootfs), upper, work)
    try:
        csrc.mount("overlay", target, "overlay", 0, data)
    except OSError as e:
        if e.errno not in (errno.EBUSY, errno.ESTALE, errno.EINVAL):
            raise
        shutil.rmtree(work, ignore_errors=True)  # a stale work dir from an earlier mount
        os.makedirs(work, exist_ok=True)
        csrc.mount("overlay", target, "overlay", 0, data)
    return target


def remove(container_dir: str) -> None:
    """Unmount the rootfs (lazily if busy) and delete the container dir.  Idempotent.

    Never deletes through a mount: if anything stays mounted under
    container_dir, raises OSError(EBUSY) and deletes nothing.
    """
    container_dir = os.path.realpath(container_dir)
    target = os.path.join(container_dir, "rootfs")
    for _ in range(8):  # mounts may be stacked
        if not (os.path.isdir(target) and is_mounted(target)):
            break
        try:
            csrc.umount2(target, 0)
        except OSError as e:
            if e.errno == errno.EBUSY:
                csrc.umount2(target, csrc.MNT_DETACH)
            elif e.errno != errno.EINVAL:  # EINVAL: not a mount point (any more)
                raise
    else:
        raise OSError(errno.EBUSY, f"rootfs still mounted after unmounting: {target}")
    busy = [m for m in mountinfo.mount_points(MOUNTINFO) if m == container_dir or m.startswith(container_dir + "/")]
    if busy:  # rmtree would delete through these
        raise OSError(errno.EBUSY, f"mounts left under {container_dir}: {', '.join(busy)}")
    if os.path.lexists(container_dir):
        shutil.rmtree(container_dir)


class FakeRootfs:
    """The same two verbs without mounts, for unit tests and hollow nodes:
    ensure makes container_dir/rootfs as a plain dir; remove deletes container_dir."""

    def __init__(self) -> None:
        self.ensured: list[str] = []

    def ensure(self, container_dir: str, image: Image) -> str:
        target = os.path.join(container_dir, "rootfs")
        os.makedirs(target, exist_ok=True)
        self.ensured.append(container_dir)
        return target

    def remove(self, container_dir: str) -> None:
        if os.path.lexists(container_dir):
            shutil.rmtree(container_dir)
