"""Unit tests for cni.ipam (allocator) over the memory and disk stores."""
from __future__ import annotations

import multiprocessing
import os

import pytest

from cni.conf import make_range
from cni.errors import RANGE_EXHAUSTED, CNIError
from cni.ipam import Allocator, candidates
from cni.ipam_store import DiskStore, MemoryStore


def test_candidates_skip_network_gateway_broadcast_and_wrap():
    rng = make_range("10.250.9.0/29")  # .0 net, .1 gw, .7 broadcast
    assert [str(i) for i in candidates(rng, None)] == [f"10.250.9.{i}" for i in (2, 3, 4, 5, 6)]
    assert [str(i) for i in candidates(rng, "10.250.9.4")] == [f"10.250.9.{i}" for i in (5, 6, 2, 3, 4)]
    assert str(next(candidates(rng, "10.250.9.6"))) == "10.250.9.2"
    assert str(next(candidates(rng, "192.0.2.9"))) == "10.250.9.2"  # foreign last: restart


def test_gateway_elsewhere_is_skipped():
    rng = make_range("10.250.9.0/29", gateway="10.250.9.3")
    assert "10.250.9.3" not in [str(i) for i in candidates(rng, None)]
    assert "10.250.9.1" in [str(i) for i in candidates(rng, None)]


@pytest.fixture(params=["memory", "disk"])
def store(request, tmp_path):
    return MemoryStore() if request.param == "memory" else DiskStore(str(tmp_path), "crt-net")


def test_allocate_round_robin_idempotent_release(store):
    a = Allocator(make_range("10.250.9.0/29"), store)
    first = a.allocate("c1", "eth0")
    assert (first.ip, first.prefix, first.gateway, first.cidr) == ("10.250.9.2", 29, "10.250.9.1", "10.250.9.2/29")
    assert a.allocate("c1", "eth0") == first  # ADD twice: same IP
    assert a.allocate("c2", "eth0").ip == "10.250.9.3"
    assert a.allocate("c1", "net1").ip == "10.250.9.4"  # another interface is another owner
    assert a.release("c2", "eth0") == ["10.250.9.3"]
    assert a.release("c2", "eth0") == []  # DEL twice is fine
    assert a.get("c2", "eth0") is None
    # round robin: the freed .3 is not reused before the rest of the range
    assert a.allocate("c3", "eth0").ip == "10.250.9.5"
    assert a.allocate("c4", "eth0").ip == "10.250.9.6"
    assert a.allocate("c5", "eth0").ip == "10.250.9.3"
    with pytest.raises(CNIError) as e:
        a.allocate("c6", "eth0")
    assert e.value.code == RANGE_EXHAUSTED and "full" in str(e.value)
    assert sorted(cid for cid, _ in store.list().values()) == ["c1", "c1", "c3", "c4", "c5"]


def test_range_start_end():
    a = Allocator(make_range("10.250.9.0/24", start="10.250.9.100", end="10.250.9.101"), MemoryStore())
    assert [a.allocate(f"c{i}", "eth0").ip for i in range(2)] == ["10.250.9.100", "10.250.9.101"]
    with pytest.raises(CNIError):
        a.allocate("c9", "eth0")


def test_disk_layout_is_host_local(tmp_path):
    a = Allocator(make_range("10.250.9.0/24"), DiskStore(str(tmp_path), "crt-net"))
    a.allocate("abc", "eth0")
    d = tmp_path / "crt-net"
    assert (d / "10.250.9.2").read_text() == "abc\neth0"
    assert (d / "last_reserved_ip.0").read_text() == "10.250.9.2"
    assert (d / "lock").exists()
    (d / "10.250.9.3").write_text("xyz\r\neth0")  # host-local's own line break is read too
    assert DiskStore(str(tmp_path), "crt-net").get_by_id("xyz", "eth0") == ["10.250.9.3"]
    a.release("abc", "eth0")
    assert not (d / "10.250.9.2").exists()


def _grab(data_dir: str, n: int, q) -> None:  # a separate process hammering the same store
    a = Allocator(make_range("10.250.9.0/24"), DiskStore(data_dir, "crt-net"))
    q.put([a.allocate(f"p{os.getpid()}-{i}", "eth0").ip for i in range(n)])


def test_two_processes_never_share_an_ip(tmp_path):
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_grab, args=(str(tmp_path), 40, q)) for _ in range(3)]
    for p in procs:
        p.start()
    ips = [ip for _ in procs for ip in q.get(timeout=30)]
    for p in procs:
        p.join(10)
    assert len(ips) == 120 and len(set(ips)) == 120
