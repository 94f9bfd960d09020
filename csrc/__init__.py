"""Python face of the C in csrc/: namespace and mount syscalls.

Each function raises OSError with the kernel's errno on failure.  Callers own
the threading contract of coracle_ns.h: unshare/setns only on a dedicated
thread.  Nothing above this module calls the C directly.
"""
from __future__ import annotations

import os

from csrc._native import ffi, lib  # type: ignore[import-not-found]

CLONE_NEWNS = lib.CLONE_NEWNS
CLONE_NEWNET = lib.CLONE_NEWNET
CLONE_NEWIPC = lib.CLONE_NEWIPC
CLONE_NEWUTS = lib.CLONE_NEWUTS
CLONE_NEWPID = lib.CLONE_NEWPID
MS_BIND = lib.MS_BIND
MS_REC = lib.MS_REC
MS_RDONLY = lib.MS_RDONLY
MS_PRIVATE = lib.MS_PRIVATE
MNT_DETACH = lib.MNT_DETACH


def _check(rc: int, what: str, path: str | None = None) -> None:
    if rc < 0:
        raise OSError(-rc, f"{what}: {os.strerror(-rc)}", path)


def _c(s: str | None):
    return ffi.NULL if s is None else s.encode()


def unshare(flags: int) -> None:
    _check(lib.coracle_unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(lib.coracle_setns(fd, nstype), "setns")


def mount(source: str | None, target: str, fstype: str | None = None,
          flags: int = 0, data: str | None = None) -> None:
    _check(lib.coracle_mount(_c(source), _c(target), _c(fstype), flags, _c(data)), "mount", target)


def umount2(target: str, flags: int = 0) -> None:
    _check(lib.coracle_umount2(_c(target), flags), "umount2", target)


def sethostname(name: str) -> None:
    _check(lib.coracle_sethostname(_c(name)), "sethostname")


def pin_new_namespaces(flags: int, net_path: str | None, ipc_path: str | None,
                       uts_path: str | None, hostname: str | None = None) -> None:
    """unshare(flags) on this thread and bind-mount each new namespace to its path."""
    _check(lib.coracle_pin_new_namespaces(flags, _c(net_path), _c(ipc_path), _c(uts_path),
                                          _c(hostname)), "pin namespaces", net_path)
