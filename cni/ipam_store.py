"""IPAM stores: host-local's disk layout and an in-memory fake for tests.

Disk layout (as host-local): `data_dir/<network>/<ip>` holds
"container_id\\nifname"; `last_reserved_ip.0` the last IP handed out; `lock`
is flock'd for the whole verb so two processes never hand out one IP.
`ipam.Allocator` is the only caller.
"""
from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
from collections.abc import Iterator

LAST_RESERVED = "last_reserved_ip.0"
LOCK = "lock"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class DiskStore:
    """host-local's file store.  Safe across processes while `lock()` is held."""

    def __init__(self, data_dir: str, network: str) -> None:
        self.dir = os.path.join(data_dir, network)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        os.makedirs(self.dir, mode=0o755, exist_ok=True)
        fd = os.open(os.path.join(self.dir, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the last fd of the open file drops the flock

    def reserve(self, ip: str, container_id: str, ifname: str) -> bool:
        path = os.path.join(self.dir, ip)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, f"{container_id.strip()}\n{ifname}".encode())
        finally:
            os.close(fd)
        return True

    def _entries(self) -> Iterator[tuple[str, str, str]]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return
        for name in names:
            if not _is_ip(name):
                continue
            try:
                with open(os.path.join(self.dir, name), encoding="utf-8") as f:
                    lines = f.read().replace("\r", "").split("\n")
            except FileNotFoundError:
                continue
            yield name, lines[0].strip(), (lines[1].strip() if len(lines) > 1 else "")

    def get_by_id(self, container_id: str, ifname: str) -> list[str]:
        return [ip for ip, cid, ifn in self._entries() if cid == container_id and ifn == ifname]

    def release_by_id(self, container_id: str, ifname: str) -> list[str]:
        freed = []
        for ip in self.get_by_id(container_id, ifname):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.dir, ip))
                freed.append(ip)
        return freed

    def last_reserved(self) -> str | None:
        try:
            with open(os.path.join(self.dir, LAST_RESERVED), encoding="utf-8") as f:
                return f.read().strip() or None
        except FileNotFoundError:
            return None

    def set_last_reserved(self, ip: str) -> None:
        tmp = os.path.join(self.dir, LAST_RESERVED + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(ip)
        os.replace(tmp, os.path.join(self.dir, LAST_RESERVED))

    def list(self) -> dict[str, tuple[str, str]]:
        return {ip: (cid, ifn) for ip, cid, ifn in self._entries()}


class MemoryStore:
    """The fake: same contract, a dict, a process-local lock."""

    def __init__(self) -> None:
        self.ips: dict[str, tuple[str, str]] = {}
        self.last: str | None = None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        yield

    def reserve(self, ip: str, container_id: str, ifname: str) -> bool:
        if ip in self.ips:
            return False
        self.ips[ip] = (container_id, ifname)
        return True

    def get_by_id(self, container_id: str, ifname: str) -> list[str]:
        return [ip for ip, owner in self.ips.items() if owner == (container_id, ifname)]

    def release_by_id(self, container_id: str, ifname: str) -> list[str]:
        freed = self.get_by_id(container_id, ifname)
        for ip in freed:
            del self.ips[ip]
        return freed

    def last_reserved(self) -> str | None:
        return self.last

    def set_last_reserved(self, ip: str) -> None:
        self.last = ip

    def list(self) -> dict[str, tuple[str, str]]:
        return dict(self.ips)
