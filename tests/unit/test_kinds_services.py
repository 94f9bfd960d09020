"""Services through the registry on a real SQLite store: upstream's defaults
and validation, ClusterIP and NodePort allocation (atomic claims in the
store, released on delete, on type changes and on failed writes, surviving
a restart), and the allocator's repair."""
from __future__ import annotations

import ipaddress
import threading
from pathlib import Path
from typing import Iterator

import pytest

from apimachinery import kinds
from master.apiserver import errors
from master.apiserver.registry import Registry
from master.apiserver.resources import allocator
from master.store import Store, open_store

SVC = kinds.lookup("", "v1", "services")
NS = kinds.lookup("", "v1", "namespaces")
assert SVC and NS


def _registry(store: Store) -> Registry:
    assert NS
    r = Registry(store, clock=lambda: "2026-01-01T00:00:00Z")
    if store.get("/registry/core/namespaces/default") is None:
        r.create(NS, None, {"metadata": {"name": "default"}})
    return r


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path}/state.db")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def reg(store: Store) -> Registry:
    return _registry(store)


def svc(name: str, stype: str = "ClusterIP", **spec: object) -> dict:
    return {"metadata": {"name": name}, "spec": {"type": stype, "selector": {"app": name},
                                                  "ports": [{"port": 80}], **spec}}


def create(reg: Registry, obj: dict) -> dict:
    assert SVC
    return reg.create(SVC, "default", obj)


def invalid(reg: Registry, obj: dict) -> list[str]:
    with pytest.raises(errors.APIError) as e:
        create(reg, obj)
    assert e.value.code == 422, e.value.message
    return [c["field"] for c in (e.value.details or {}).get("causes", [])]


def test_defaults_and_allocated_ip(reg: Registry, store: Store) -> None:
    out = create(reg, svc("web"))
    spec = out["spec"]
    ip = ipaddress.ip_address(spec["clusterIP"])
    assert ip in ipaddress.ip_network("10.96.0.0/16") and str(ip) not in ("10.96.0.1", "10.96.0.10", "10.96.0.0")
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert (spec["sessionAffinity"], spec["ipFamilies"], spec["ipFamilyPolicy"], spec["internalTrafficPolicy"]) == \
        ("None", ["IPv4"], "SingleStack", "Cluster")
    assert out["status"] == {"loadBalancer": {}}
    assert store.get(f"/registry/ranges/serviceips/{spec['clusterIP']}") is not None
    # what the store holds is what a read returns
    assert SVC and reg.get(SVC, "default", "web")["spec"]["clusterIP"] == spec["clusterIP"]


def test_validation(reg: Registry) -> None:
    assert invalid(reg, svc("Bad_Name")) == ["metadata.name"]
    assert invalid(reg, svc("1abc")) == ["metadata.name"]  # DNS-1035: starts with a letter
    assert invalid(reg, {"metadata": {"name": "noports"}, "spec": {}}) == ["spec.ports"]
    assert invalid(reg, svc("p", ports=[{"port": 0}])) == ["spec.ports[0].port"]
    assert invalid(reg, svc("p", ports=[{"port": 80}, {"port": 81}])) == ["spec.ports[0].name", "spec.ports[1].name"]
    assert invalid(reg, svc("p", "Weird")) == ["spec.type"]
    assert invalid(reg, svc("p", ports=[{"port": 80, "nodePort": 30001}])) == ["spec.ports[0].nodePort"]
    assert invalid(reg, svc("p", "NodePort", ports=[{"port": 80, "nodePort": 80}])) == ["spec.ports[0].nodePort"]
    assert invalid(reg, svc("p", "ExternalName")) == ["spec.externalName"]
    assert invalid(reg, svc("p", clusterIP="10.0.0.5")) == ["spec.clusterIPs"]  # outside the range
    assert invalid(reg, svc("p", clusterIP="banana")) == ["spec.clusterIPs[0]"]
    # headless needs no ports and gets no IP; ExternalName neither
    assert create(reg, {"metadata": {"name": "hl"}, "spec": {"clusterIP": "None"}})["spec"]["clusterIPs"] == ["None"]
    ext = create(reg, {"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "example.org"}})
    assert "clusterIP" not in ext["spec"]


def test_requested_ip_and_conflicts(reg: Registry, store: Store) -> None:
    assert create(reg, svc("a", clusterIP="10.96.5.5"))["spec"]["clusterIP"] == "10.96.5.5"
    causes = invalid(reg, svc("b", clusterIP="10.96.5.5"))
    assert causes == ["spec.clusterIPs"]
    # the reserved DNS address is never handed out by chance but may be asked for
    assert create(reg, svc("dns", clusterIP="10.96.0.10"))["spec"]["clusterIP"] == "10.96.0.10"
    # a create that fails as AlreadyExists must not take the other's IP away or leak its own
    with pytest.raises(errors.APIError) as e:
        create(reg, svc("a", clusterIP="10.96.6.6"))
    assert e.value.code == 409
    assert store.get("/registry/ranges/serviceips/10.96.6.6") is None
    assert store.get("/registry/ranges/serviceips/10.96.5.5") is not None


def test_delete_releases_ip_and_ports(reg: Registry, store: Store) -> None:
    assert SVC
    out = create(reg, svc("np", "NodePort", clusterIP="10.96.7.7", ports=[{"port": 80, "name": "http"},
                                                                           {"port": 443, "name": "https", "nodePort": 31443}]))
    ports = [p["nodePort"] for p in out["spec"]["ports"]]
    assert ports[1] == 31443 and 30000 <= ports[0] <= 32767 and ports[0] != 31443
    assert out["spec"]["externalTrafficPolicy"] == "Cluster"
    assert invalid(reg, svc("other", "NodePort", ports=[{"port": 1, "nodePort": 31443}])) == ["spec.ports[0].nodePort"]
    reg.delete(SVC, "default", "np")
    assert allocator.held(store, allocator.SERVICE_IPS) == {}
    assert allocator.held(store, allocator.NODE_PORTS) == {}
    again = create(reg, svc("other", "NodePort", clusterIP="10.96.7.7", ports=[{"port": 1, "nodePort": 31443}]))
    assert again["spec"]["ports"][0]["nodePort"] == 31443


def test_update_keeps_allocations_and_clusterip_is_immutable(reg: Registry, store: Store) -> None:
    assert SVC
    out = create(reg, svc("u", "NodePort"))
    ip, np = out["spec"]["clusterIP"], out["spec"]["ports"][0]["nodePort"]
    # a PUT of the manifest without the allocated values (kubectl replace) keeps them
    put = svc("u", "NodePort")
    updated = reg.update(SVC, "default", "u", put)
    assert updated["spec"]["clusterIP"] == ip and updated["spec"]["ports"][0]["nodePort"] == np
    with pytest.raises(errors.APIError) as e:
        reg.update(SVC, "default", "u", svc("u", "NodePort", clusterIP="10.96.9.9"))
    assert e.value.code == 422 and "spec.clusterIP" in e.value.message
    # NodePort -> ClusterIP gives the node port back, keeps the IP
    back = svc("u", clusterIP=ip)
    reg.update(SVC, "default", "u", back)
    assert allocator.held(store, allocator.NODE_PORTS) == {}
    assert list(allocator.held(store, allocator.SERVICE_IPS)) == [allocator.parse(allocator.SERVICE_IPS, ip)]
    # ClusterIP -> NodePort claims one again
    grown = reg.update(SVC, "default", "u", svc("u", "NodePort"))
    assert list(allocator.held(store, allocator.NODE_PORTS)) == [grown["spec"]["ports"][0]["nodePort"]]


def test_allocations_survive_a_restart(tmp_path: Path) -> None:
    assert SVC
    s1 = open_store(f"sqlite:///{tmp_path}/db")
    try:
        ip = create(_registry(s1), svc("keep"))["spec"]["clusterIP"]
    finally:
        s1.close()
    s2 = open_store(f"sqlite:///{tmp_path}/db")
    try:
        reg = _registry(s2)
        assert invalid(reg, svc("thief", clusterIP=ip)) == ["spec.clusterIPs"]
        reg.delete(SVC, "default", "keep")
        assert create(reg, svc("thief", clusterIP=ip))["spec"]["clusterIP"] == ip
    finally:
        s2.close()


def test_concurrent_creates_get_distinct_ips(tmp_path: Path) -> None:
    """Two registries (two API servers) on one store file race for a tiny range."""
    stores = [open_store(f"sqlite:///{tmp_path}/shared.db") for _ in range(2)]
    regs = [_registry(stores[0]), _registry(stores[1])]
    small = allocator.Range("serviceips", int(ipaddress.ip_address("10.96.0.2")),
                            int(ipaddress.ip_address("10.96.0.41")), frozenset(), True)
    results: list[str] = []
    errs: list[BaseException] = []
    orig = allocator.SERVICE_IPS
    allocator.SERVICE_IPS = small  # type: ignore[misc]
    try:
        def run(i: int) -> None:
            try:
                for n in range(20):
                    results.append(create(regs[i], svc(f"s{i}-{n}"))["spec"]["clusterIP"])
            except BaseException as e:  # noqa: B902
                errs.append(e)
        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errs
        assert len(results) == 40 and len(set(results)) == 40  # the whole range, no duplicate
        with pytest.raises(errors.APIError) as e:
            create(regs[0], svc("one-too-many"))
        assert e.value.code == 500 and "range is full" in e.value.message
    finally:
        allocator.SERVICE_IPS = orig  # type: ignore[misc]
        for s in stores:
            s.close()


def test_repair_frees_orphans_only(store: Store) -> None:
    rng = allocator.NODE_PORTS
    allocator.claim(store, rng, 30100, "default/live/u1")
    allocator.claim(store, rng, 30101, "default/gone/u2")
    before = store.current_revision()
    allocator.claim(store, rng, 30102, "default/inflight/u3")
    freed = allocator.repair(store, rng, {30100: "default/live/u1"}, before)
    assert freed == [30101]
    assert sorted(allocator.held(store, rng)) == [30100, 30102]
    # release is idempotent and never frees another owner's value
    allocator.release(store, rng, 30100, "default/someone-else/x")
    allocator.release(store, rng, 30101, "default/gone/u2")
    assert sorted(allocator.held(store, rng)) == [30100, 30102]
