"""Integration tests for cni/ and nodeagent/network.py: real bridge, veths, netns (root).

Everything lives on a test bridge `crt-br<rand>` with node subnet
10.250.<rand>.0/24 and cluster CIDR 10.250.0.0/16; 10.244.0.0/16 is never
touched.  Traffic goes only from the host to addresses inside our own netns.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from cni import plugin
from cni.errors import CNIError
from cni.netns import iproute_in, open_netns
from cni.podside import inspect
from cni.routes import RTPROT_CORACLE
from cni.veth import host_veth_name
from nodeagent.pod.network import BridgeNetwork

pytestmark = pytest.mark.root


def sh(cmd: str, check: bool = True) -> str:
    return subprocess.run(cmd, shell=True, check=check, capture_output=True, text=True).stdout


@dataclass
class Env:
    net: BridgeNetwork
    subnet: str
    prefix3: str
    tag: str
    netns: list[str] = field(default_factory=list)
    uids: list[str] = field(default_factory=list)

    def make_netns(self) -> str:
        name = f"crt-{self.tag}-{len(self.netns)}"
        sh(f"ip netns add {name}")
        self.netns.append(name)
        return f"/run/netns/{name}"

    def uid(self) -> str:
        self.uids.append(f"crt-{self.tag}-{len(self.uids)}")
        return self.uids[-1]


@pytest.fixture
def env() -> Iterator[Env]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    tag = secrets.token_hex(3)
    third = 1 + secrets.randbelow(250)
    subnet = f"10.250.{third}.0/24"
    data_dir = tempfile.mkdtemp(prefix="coracle-t-cni-")
    net = BridgeNetwork(subnet, "10.250.0.0/16", f"crt-br{tag}", data_dir, "crt-net")
    e = Env(net, subnet, f"10.250.{third}", tag)
    try:
        net.ensure_node()
        yield e
    finally:
        for ns in e.netns:
            sh(f"ip netns del {ns}", check=False)
        for uid in e.uids:
            sh(f"ip link del {host_veth_name(uid)}", check=False)
        errs = net.remove_node()
        sh(f"ip route del 10.250.{third + 1}.0/24 proto {RTPROT_CORACLE}", check=False)
        net.close()
        shutil.rmtree(data_dir, ignore_errors=True)
        assert not errs
        assert f"crt-br{tag}" not in sh("ip -br link")
        assert "10.250." not in sh("ip route")


def ping(ip: str, netns: str | None = None) -> bool:
    pre = f"ip netns exec {netns} " if netns else ""
    return subprocess.run(f"{pre}ping -c1 -W1 {ip}", shell=True, capture_output=True, check=False).returncode == 0


def pod_view(netns_path: str):
    fd = open_netns(netns_path)
    try:
        ipr = iproute_in(fd)
        try:
            return inspect(ipr, "eth0")
        finally:
            ipr.close()
    finally:
        os.close(fd)


def test_setup_from_the_kernels_side(env: Env):
    ns, uid = env.make_netns(), env.uid()
    p = env.net.setup(uid, ns)
    assert p.gateway == f"{env.prefix3}.1" and p.ip.startswith(env.prefix3 + ".") and p.prefix == 24
    seen = pod_view(ns)
    assert seen.addresses == (f"{p.ip}/24",) and seen.up and seen.lo_up
    assert seen.default_gateway == p.gateway and seen.mac == p.mac
    link = json.loads(sh(f"ip -j link show {p.host_veth}"))[0]
    assert link["master"] == env.net.bridge and "UP" in link["flags"]
    assert ping(p.ip)
    assert env.net.status(uid) == p and env.net.allocated() == [uid]
    plugin.check(env.net.conf, uid, ns)
    routes = sh("ip route show 10.250.0.0/16")
    assert "unreachable 10.250.0.0/16" in routes
    assert f"{env.subnet} dev {env.net.bridge}" in sh(f"ip route show {env.subnet}")
    # ADD twice: same IP, same veth, still working
    assert env.net.setup(uid, ns) == p and ping(p.ip)
    # DEL twice
    env.net.teardown(uid, ns, netns_going_away=False)
    assert not sh(f"ip link show {p.host_veth}", check=False)
    env.net.teardown(uid, ns, netns_going_away=False)
    assert env.net.status(uid) is None and env.net.allocated() == []
    with pytest.raises(CNIError):
        plugin.check(env.net.conf, uid, ns)


def test_two_pods_ping_each_other(env: Env):
    (a_ns, a_uid), (b_ns, b_uid) = (env.make_netns(), env.uid()), (env.make_netns(), env.uid())
    a, b = env.net.setup(a_uid, a_ns), env.net.setup(b_uid, b_ns)
    assert a.ip != b.ip and a.host_veth != b.host_veth
    assert ping(b.ip, env.netns[0]) and ping(a.ip, env.netns[1])
    assert ping(a.gateway, env.netns[0])


def test_del_after_netns_is_gone_releases_ip(env: Env):
    ns, uid = env.make_netns(), env.uid()
    p = env.net.setup(uid, ns)
    sh(f"ip netns del {env.netns[-1]}")
    env.net.teardown(uid, ns)
    env.net.teardown(uid, None)
    assert env.net.allocated() == [] and env.net.status(uid) is None
    ns2, uid2 = env.make_netns(), env.uid()
    assert env.net.setup(uid2, ns2).ip != p.ip  # round robin moves on
    with pytest.raises(CNIError) as e:
        env.net.setup(env.uid(), "/run/netns/crt-does-not-exist")
    assert e.value.code == 3


def test_failed_add_leaks_nothing(env: Env):
    ns, uid = env.make_netns(), env.uid()
    sh(f"ip netns exec {env.netns[-1]} ip link add eth0 type bridge")  # the name is taken
    with pytest.raises(CNIError):
        env.net.setup(uid, ns)
    assert env.net.allocated() == []
    assert not sh(f"ip link show {host_veth_name(uid)}", check=False)


def test_peer_routes(env: Env):
    from cni import routes
    third = int(env.prefix3.split(".")[2])
    peer = f"10.250.{third + 1}.0/24"  # inside the test cluster CIDR, via an on-bridge address
    via = f"{env.prefix3}.200"
    routes.ensure_peer_routes(env.net._ipr, {peer: via})
    routes.ensure_peer_routes(env.net._ipr, {peer: via})
    assert f"via {via} dev {env.net.bridge}" in sh(f"ip route show {peer}")
    via2 = f"{env.prefix3}.201"
    routes.ensure_peer_routes(env.net._ipr, {peer: via2}, prune_within="10.250.0.0/16")
    assert f"via {via2}" in sh(f"ip route show {peer}") and via not in sh(f"ip route show {peer}")
    routes.ensure_peer_routes(env.net._ipr, {}, prune_within="10.250.0.0/16")
    assert not sh(f"ip route show {peer} proto {RTPROT_CORACLE}")
    assert routes.remove_peer_routes(env.net._ipr, [peer]) == []


def cni_exec(command: str, conf: dict, cid: str, netns: str) -> tuple[int, dict | None]:
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns,
           "CNI_IFNAME": "eth0", "CNI_PATH": "/usr/lib/cni", "PATH": os.environ.get("PATH", "")}
    p = subprocess.run([sys.executable, "-m", "cni"], input=json.dumps(conf), env=env,
                       capture_output=True, text=True, timeout=60, check=False)
    return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else None)


def test_cni_executable(env: Env):
    ns, uid = env.make_netns(), env.uid()
    conf = env.net.conf
    rc, res = cni_exec("ADD", conf, uid, ns)
    assert rc == 0, res
    assert res["cniVersion"] == "1.0.0"
    host, pod = res["interfaces"]
    assert host["name"] == host_veth_name(uid) and pod == {"name": "eth0", "mac": pod["mac"], "sandbox": ns}
    ip = res["ips"][0]
    assert ip["gateway"] == f"{env.prefix3}.1" and ip["interface"] == 1
    assert pod_view(ns).addresses == (ip["address"],)
    assert ping(ip["address"].split("/")[0])
    rc2, res2 = cni_exec("ADD", conf, uid, ns)
    assert rc2 == 0 and res2["ips"] == res["ips"]
    assert cni_exec("CHECK", conf, uid, ns) == (0, None)
    assert cni_exec("DEL", conf, uid, ns) == (0, None)
    assert cni_exec("DEL", conf, uid, ns) == (0, None)
    assert env.net.allocated() == []
    rc, err = cni_exec("CHECK", conf, uid, ns)
    assert rc == 1 and err["code"] == 999 and err["msg"]
    rc, err = cni_exec("ADD", {**conf, "cniVersion": "7.0.0"}, uid, ns)
    assert rc == 1 and err["code"] == 1
