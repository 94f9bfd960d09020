"""Store-backed allocators for Service ClusterIPs (the network plan's service CIDR) and NodePorts
(30000-32767).

Each allocated value is one key, `/registry/ranges/<range>/<value>`, whose
value names its owner (`namespace/name/uid`). Claiming is a store `create`,
which is atomic, so two API servers (or two requests) can never hand out the
same value; the state lives in the store, so it survives restarts. The
services strategy (`resources.services`) claims and releases; `repair` frees
values whose owner is gone (a crash between claim and write), as upstream's
repair controllers do.
"""
from __future__ import annotations

import ipaddress
import json
import random
from dataclasses import dataclass

from apimachinery import netplan
from master.store import Conflict, KeyExists, KeyNotFound, Store

PREFIX = "/registry/ranges/"


class Taken(Exception):
    """The value is held by another owner."""


class RangeFull(Exception):
    """No free value is left in the range."""


@dataclass(frozen=True, slots=True)
class Range:
    name: str          # "serviceips" or "servicenodeports"
    first: int         # integers: IPv4 addresses as ints, ports as themselves
    last: int
    reserved: frozenset[int] = frozenset()   # never handed out dynamically (may be asked for)
    is_ip: bool = False

    def contains(self, value: int) -> bool:
        return self.first <= value <= self.last

    def text(self, value: int) -> str:
        return str(ipaddress.IPv4Address(value)) if self.is_ip else str(value)

    def key(self, value: int) -> str:
        return f"{PREFIX}{self.name}/{self.text(value)}"

    def describe(self) -> str:
        return f"{self.text(self.first)}-{self.text(self.last)}"


def ip_range(cidr: str, reserved: tuple[str, ...] = ()) -> Range:
    net = ipaddress.ip_network(cidr)
    return Range("serviceips", int(net.network_address) + 1, int(net.broadcast_address) - 1,
                 frozenset(int(ipaddress.ip_address(a)) for a in reserved), True)


SERVICE_CIDR = netplan.SERVICE_CIDR
SERVICE_IPS = ip_range(SERVICE_CIDR, (netplan.api_server_ip(SERVICE_CIDR), netplan.dns_ip(SERVICE_CIDR)))
NODE_PORTS = Range("servicenodeports", 30000, 32767)


def parse(rng: Range, text: str | int) -> int:
    """The integer for a textual value; ValueError when malformed."""
    if rng.is_ip:
        addr = ipaddress.ip_address(str(text))
        if addr.version != 4:
            raise ValueError(f"{text} is not an IPv4 address")
        return int(addr)
    return int(text)


def claim(store: Store, rng: Range, value: int, owner: str) -> None:
    """Take `value` for owner. Idempotent for the same owner; Taken if another holds it."""
    key = rng.key(value)
    for _ in range(4):
        try:
            store.create(key, json.dumps({"owner": owner}).encode())
            return
        except KeyExists:
            kv = store.get(key)
            if kv is None:
                continue  # released between the two calls
            if json.loads(kv.value).get("owner") == owner:
                return
            raise Taken(rng.text(value)) from None
    raise Taken(rng.text(value))


def allocate(store: Store, rng: Range, owner: str, rand: random.Random | None = None) -> int:
    """Claim any free, unreserved value. RangeFull when none is left."""
    rand = rand or random.Random()
    for _ in range(16):  # a sparse range: random probes almost always succeed at once
        value = rand.randint(rng.first, rng.last)
        if value in rng.reserved:
            continue
        try:
            claim(store, rng, value, owner)
            return value
        except Taken:
            continue
    held = {parse(rng, kv.key.rsplit("/", 1)[1]) for kv in store.list(f"{PREFIX}{rng.name}/")[0]}
    free = [v for v in range(rng.first, rng.last + 1) if v not in held and v not in rng.reserved]
    rand.shuffle(free)
    for value in free:
        try:
            claim(store, rng, value, owner)
            return value
        except Taken:
            continue
    raise RangeFull(rng.describe())


def release(store: Store, rng: Range, value: int, owner: str) -> None:
    """Free `value` if owner holds it. Idempotent: already free or held by another is success."""
    key = rng.key(value)
    for _ in range(4):
        kv = store.get(key)
        if kv is None or json.loads(kv.value).get("owner") != owner:
            return
        try:
            store.delete(key, kv.mod_revision)
            return
        except KeyNotFound:
            return
        except Conflict:
            continue


def held(store: Store, rng: Range) -> dict[int, str]:
    """Every allocated value of the range and its owner."""
    return {parse(rng, kv.key.rsplit("/", 1)[1]): json.loads(kv.value).get("owner", "")
            for kv in store.list(f"{PREFIX}{rng.name}/")[0]}


def repair(store: Store, rng: Range, in_use: dict[int, str], before_revision: int) -> list[int]:
    """Free the values no live owner uses. `in_use` maps value -> owner as read from
    the stored services *after* `before_revision`; only claims made before it are
    touched, so a claim whose service write is still in flight survives."""
    freed = []
    for kv in store.list(f"{PREFIX}{rng.name}/")[0]:
        value = parse(rng, kv.key.rsplit("/", 1)[1])
        if kv.mod_revision > before_revision or in_use.get(value) == json.loads(kv.value).get("owner"):
            continue
        try:
            store.delete(kv.key, kv.mod_revision)
            freed.append(value)
        except (KeyNotFound, Conflict):
            pass
    return freed
