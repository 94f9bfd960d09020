"""The pod sandbox driver: a pod's network, IPC and UTS namespaces, no pause process.

As `ip netns` does, each namespace is pinned by a bind mount of its nsfs file onto
a plain file under run_dir/ns/<uid>/{net,ipc,uts}; containers join them by path in
their OCI config (nodeagent runtime), the network plugin (cni/) sets up eth0 and lo.
run_dir/ns is a bind mount onto itself with shared propagation, so unmounting a pin
also reaches mount namespaces created later (runc's) instead of keeping the netns alive.

Kernel hazard: unshare(2) of these namespaces acts on the calling OS thread only;
it runs on a dedicated short-lived threading.Thread that exits afterwards, so no
shared thread is ever left in a pod's namespaces.  Uses csrc for the syscalls.
"""
from __future__ import annotations

import errno
import itertools
import os
import threading
from dataclasses import dataclass

import csrc
from nodeagent.mountinfo import mount_points  # also what tests read mounts with

KINDS = ("net", "ipc", "uts")
# Not exported by csrc (it predates this driver); the value from <sys/mount.h>.
MS_SHARED = 1 << 20


class SandboxError(Exception):
    """A sandbox operation failed; the message lists every failure."""


@dataclass(frozen=True, slots=True)
class SandboxPaths:
    net: str
    ipc: str
    uts: str


def check_uid(uid: str) -> str:
    if not uid or "/" in uid or uid in (".", "..") or "\0" in uid:
        raise ValueError(f"invalid pod uid {uid!r} for a sandbox directory")
    return uid


def sandbox_paths(ns_dir: str, uid: str) -> SandboxPaths:
    d = os.path.join(ns_dir, check_uid(uid))
    return SandboxPaths(net=f"{d}/net", ipc=f"{d}/ipc", uts=f"{d}/uts")


class Sandbox:
    """The real driver.  ensure/remove of different uids may run concurrently."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir
        self.ns_dir = os.path.join(run_dir, "ns")
        self._made_mount = False
        self._mount_checked = False
        self._lock = threading.Lock()

    def paths(self, uid: str) -> SandboxPaths:
        return sandbox_paths(self.ns_dir, uid)

    def _ensure_ns_mount(self) -> None:
        with self._lock:
            if self._mount_checked:
                return
            os.makedirs(self.ns_dir, exist_ok=True)
            real = os.path.realpath(self.ns_dir)
            if real not in mount_points():
                csrc.mount(real, real, None, csrc.MS_BIND | csrc.MS_REC)
                self._made_mount = True
            csrc.mount(None, real, None, MS_SHARED | csrc.MS_REC)
            self._mount_checked = True

    def _pinned(self, path: str) -> bool:
        """A pinned file lives on nsfs, so its device differs from the directory's."""
        try:
            return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
        except FileNotFoundError:
            return False

    def exists(self, uid: str) -> bool:
        return os.path.isdir(os.path.dirname(self.paths(uid).net))

    def ensure(self, uid: str, hostname: str) -> SandboxPaths:
        """Idempotent: reuses a fully pinned sandbox, redoes a partial one."""
        p = self.paths(uid)
        self._ensure_ns_mount()
        files = (p.net, p.ipc, p.uts)
        if all(self._pinned(f) for f in files):
            return p
        if self.exists(uid):
            self.remove(uid)  # a crash half-way: start again
        os.makedirs(os.path.dirname(p.net))
        for f in files:
            os.close(os.open(f, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o444))
        errors: list[Exception] = []

        def pin() -> None:
            try:
                csrc.pin_new_namespaces(csrc.CLONE_NEWNET | csrc.CLONE_NEWIPC | csrc.CLONE_NEWUTS,
                                        p.net, p.ipc, p.uts, hostname)
            except Exception as e:  # noqa: BLE001 - handed to the caller's thread
                errors.append(e)

        t = threading.Thread(target=pin, name=f"sandbox-{uid}", daemon=True)
        t.start()
        t.join()
        if errors:
            try:
                self.remove(uid)
            except SandboxError:
                pass  # the pin error below is the one the caller needs
            raise SandboxError(f"creating namespaces for pod {uid}: {errors[0]}") from errors[0]
        return p

    def remove(self, uid: str) -> None:
        """Idempotent; goes on past errors and raises one SandboxError listing them all."""
        p = self.paths(uid)
        failures: list[str] = []
        for f in (p.net, p.ipc, p.uts):
            for _ in range(8):  # a pin mounted twice is stacked: take all layers off
                try:
                    csrc.umount2(f, csrc.MNT_DETACH)
                except OSError as e:
                    if e.errno not in (errno.EINVAL, errno.ENOENT):
                        failures.append(f"umount {f}: {e.strerror}")
                    break
            try:
                os.unlink(f)
            except FileNotFoundError:
                pass
            except OSError as e:
                failures.append(f"unlink {f}: {e.strerror}")
        try:
            os.rmdir(os.path.dirname(p.net))
        except FileNotFoundError:
            pass
        except OSError as e:
            failures.append(f"rmdir {os.path.dirname(p.net)}: {e.strerror}")
        if failures:
            raise SandboxError(f"removing sandbox of pod {uid}: " + "; ".join(failures))

    def list(self) -> list[str]:
        try:
            with os.scandir(self.ns_dir) as it:
                return sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []

    def inodes(self, uid: str) -> dict[str, int]:
        """ns kind -> namespace inode, for the pinned kinds only."""
        p = self.paths(uid)
        return {k: os.stat(f).st_ino for k, f in zip(KINDS, (p.net, p.ipc, p.uts))
                if self._pinned(f)}

    def close(self, force: bool = False) -> None:
        """Unmount the run_dir/ns self bind mount if this driver made it (or if force:
        whenever it is a mount point, for `coracle down` from a fresh process)."""
        with self._lock:
            real = os.path.realpath(self.ns_dir)
            if (self._made_mount or force) and real in mount_points():
                try:
                    csrc.umount2(real, csrc.MNT_DETACH)
                except OSError as e:
                    if e.errno not in (errno.EINVAL, errno.ENOENT):
                        raise SandboxError(f"umount {real}: {e.strerror}") from e
            self._made_mount = False
            self._mount_checked = False


class FakeSandbox:
    """In-memory Sandbox for unit tests and hollow nodes: same contract, no kernel work."""

    _inode = itertools.count(4026532000)

    def __init__(self, run_dir: str = "/fake/run") -> None:
        self.ns_dir = os.path.join(run_dir, "ns")
        self.sandboxes: dict[str, dict[str, int]] = {}
        self.hostnames: dict[str, str] = {}
        self.closed = False

    def paths(self, uid: str) -> SandboxPaths:
        return sandbox_paths(self.ns_dir, uid)

    def ensure(self, uid: str, hostname: str) -> SandboxPaths:
        p = self.paths(uid)
        if uid not in self.sandboxes:
            self.sandboxes[uid] = {k: next(self._inode) for k in KINDS}
            self.hostnames[uid] = hostname
        return p

    def exists(self, uid: str) -> bool:
        return check_uid(uid) in self.sandboxes

    def remove(self, uid: str) -> None:
        self.sandboxes.pop(check_uid(uid), None)
        self.hostnames.pop(uid, None)

    def list(self) -> list[str]:
        return sorted(self.sandboxes)

    def inodes(self, uid: str) -> dict[str, int]:
        return dict(self.sandboxes.get(check_uid(uid), {}))

    def close(self, force: bool = False) -> None:
        self.closed = True
