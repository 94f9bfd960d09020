"""Host-local style IP allocator over a small Store (pure logic, no disk).

`ipam_store` holds the disk store and an in-memory fake; `plugin` calls
`Allocator.allocate` on ADD and `release` on DEL.  Like host-local: never the
network address, the gateway or the broadcast; round-robin after the last
reserved IP; ADD for a container that already holds an IP returns that IP.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from cni.conf import IPRange
from cni.errors import RANGE_EXHAUSTED, CNIError


class Store(Protocol):
    """Where allocations live.  Callers hold `lock()` around a whole verb;
    reserve/release are idempotent; nothing here is safe without the lock."""

    def lock(self) -> AbstractContextManager[None]: ...
    def reserve(self, ip: str, container_id: str, ifname: str) -> bool: ...
    def release_by_id(self, container_id: str, ifname: str) -> list[str]: ...
    def get_by_id(self, container_id: str, ifname: str) -> list[str]: ...
    def last_reserved(self) -> str | None: ...
    def set_last_reserved(self, ip: str) -> None: ...
    def list(self) -> dict[str, tuple[str, str]]: ...


@dataclass(frozen=True, slots=True)
class Allocation:
    ip: str
    prefix: int
    gateway: str

    @property
    def cidr(self) -> str:
        return f"{self.ip}/{self.prefix}"


def candidates(rng: IPRange, last: str | None) -> Iterator[ipaddress.IPv4Address]:
    """Every usable IP of the range once, starting after `last` and wrapping around."""
    skip = {rng.subnet.network_address, rng.subnet.broadcast_address, rng.gateway}
    size = int(rng.end) - int(rng.start) + 1
    first = rng.start
    if last is not None:
        prev = ipaddress.IPv4Address(last)
        if rng.start <= prev <= rng.end:
            first = prev + 1 if prev < rng.end else rng.start
    offset = int(first) - int(rng.start)
    for i in range(size):
        ip = rng.start + (offset + i) % size
        if ip not in skip:
            yield ip


class Allocator:
    """Allocate and release IPs of one range for (container_id, ifname)."""

    def __init__(self, rng: IPRange, store: Store) -> None:
        self.rng = rng
        self.store = store

    def _allocation(self, ip: str) -> Allocation:
        return Allocation(ip, self.rng.subnet.prefixlen, str(self.rng.gateway))

    def get(self, container_id: str, ifname: str) -> Allocation | None:
        with self.store.lock():
            return self._get(container_id, ifname)

    def _get(self, container_id: str, ifname: str) -> Allocation | None:
        for ip in self.store.get_by_id(container_id, ifname):
            if ipaddress.IPv4Address(ip) in self.rng.subnet:
                return self._allocation(ip)
        return None

    def allocate(self, container_id: str, ifname: str) -> Allocation:
        """Idempotent: a container that already has an IP gets the same one back."""
        with self.store.lock():
            have = self._get(container_id, ifname)
            if have is not None:
                return have
            for ip in candidates(self.rng, self.store.last_reserved()):
                if self.store.reserve(str(ip), container_id, ifname):
                    self.store.set_last_reserved(str(ip))
                    return self._allocation(str(ip))
        raise CNIError(RANGE_EXHAUSTED, "no IP addresses available in range",
                       f"{self.rng.start}-{self.rng.end} of {self.rng.subnet} is full")

    def release(self, container_id: str, ifname: str) -> list[str]:
        """Idempotent: releasing what is not held is success.  Returns the IPs freed."""
        with self.store.lock():
            return self.store.release_by_id(container_id, ifname)
