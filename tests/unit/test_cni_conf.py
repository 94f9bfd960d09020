"""Unit tests for cni.conf, the pure parts of cni.plugin/veth, cni.__main__'s
protocol errors and nodeagent.pod.network.FakeNetwork (no root, no kernel objects)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cni import errors
from cni.__main__ import run
from cni.conf import make_conf, parse_conf
from cni.errors import CNIError
from cni.veth import host_veth_name, pod_mac
from nodeagent.pod.network import FakeNetwork

CONF = {"cniVersion": "1.0.0", "name": "coracle", "type": "coracle-bridge", "bridge": "coracle0",
        "isGateway": True, "ipMasq": False,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24", "gateway": "10.244.1.1"}]],
                 "dataDir": "/var/lib/coracle/cni"}}


def test_parse_the_documented_conf():
    nc = parse_conf(CONF)
    assert (nc.name, nc.bridge, nc.data_dir, nc.cni_version) == ("coracle", "coracle0", "/var/lib/coracle/cni", "1.0.0")
    assert str(nc.range.subnet) == "10.244.1.0/24" and str(nc.range.gateway) == "10.244.1.1"
    assert str(nc.range.start) == "10.244.1.1" and str(nc.range.end) == "10.244.1.254"
    assert parse_conf(make_conf("10.244.1.0/24", "coracle0", "/var/lib/coracle/cni")) == nc


def test_bridge_and_data_dir_come_from_the_config():
    """cni/ keeps no plan of its own (apimachinery.netplan is the agent's): a config names both."""
    assert _bad(bridge=None) == errors.INVALID_CONFIG
    c = json.loads(json.dumps(CONF))
    del c["ipam"]["dataDir"]
    with pytest.raises(CNIError) as e:
        parse_conf(c)
    assert e.value.code == errors.INVALID_CONFIG and "dataDir" in str(e.value.details)
    nc = parse_conf(make_conf("10.250.3.0/24", "crt-br1", "/tmp/crt-cni"))
    assert (nc.bridge, nc.data_dir, str(nc.range.gateway)) == ("crt-br1", "/tmp/crt-cni", "10.250.3.1")


def _bad(**kw):
    c = json.loads(json.dumps(CONF))
    for k, v in kw.items():
        if v is None:
            c.pop(k)
        else:
            c[k] = v
    with pytest.raises(CNIError) as e:
        parse_conf(c)
    return e.value.code


def test_bad_confs_get_spec_codes():
    assert _bad(cniVersion="9.9.9") == errors.INCOMPATIBLE_VERSION
    assert _bad(name="../x") == errors.INVALID_CONFIG
    assert _bad(ipam=None) == errors.INVALID_CONFIG
    assert _bad(bridge="x" * 16) == errors.INVALID_CONFIG
    assert _bad(ipMasq=True) == errors.UNSUPPORTED_FIELD
    assert _bad(ipam={"type": "dhcp"}) == errors.UNSUPPORTED_FIELD
    assert _bad(ipam={"ranges": [[{"subnet": "10.244.1.0/24", "gateway": "10.9.9.1"}]]}) == errors.INVALID_CONFIG
    assert _bad(ipam={"ranges": [[{"subnet": "not-a-net"}]]}) == errors.INVALID_CONFIG
    assert _bad(ipam={"ranges": [[{"subnet": "10.244.1.0/24"}, {"subnet": "10.244.2.0/24"}]]}) == errors.UNSUPPORTED_FIELD


def test_names_are_deterministic():
    assert host_veth_name("abc") == host_veth_name("abc") != host_veth_name("abd")
    assert len(host_veth_name("x" * 64)) == 15 and host_veth_name("a").startswith("cv")
    assert pod_mac("10.244.1.5") == "0a:58:0a:f4:01:05"


def test_error_json():
    assert CNIError(7, "bad", "why").to_json() == {"cniVersion": "1.0.0", "code": 7, "msg": "bad", "details": "why"}


def test_main_protocol_errors_without_root():
    rc, out = run({"CNI_COMMAND": "VERSION"}, "")
    assert rc == 0 and "1.0.0" in out["supportedVersions"]
    rc, out = run({"CNI_COMMAND": "NOPE"}, "{}")
    assert rc == 1 and out["code"] == errors.INVALID_ENV
    rc, out = run({"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c"}, "{not json")
    assert rc == 1 and out["code"] == errors.DECODE_FAILURE
    rc, out = run({"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c"}, json.dumps(CONF))
    assert rc == 1 and out["code"] == errors.INVALID_ENV and "CNI_NETNS" in out["msg"]


def test_main_as_executable_version():
    p = subprocess.run([sys.executable, "-m", "cni"], env={"CNI_COMMAND": "VERSION"},
                       capture_output=True, text=True, timeout=30, check=False)
    assert p.returncode == 0 and json.loads(p.stdout)["cniVersion"] == "1.0.0"
    p = subprocess.run([sys.executable, "-m", "cni"], env={"CNI_COMMAND": "ADD"}, input="[",
                       capture_output=True, text=True, timeout=30, check=False)
    assert p.returncode == 1 and json.loads(p.stdout)["code"] == errors.DECODE_FAILURE


def test_fake_network():
    n = FakeNetwork("10.250.3.0/24")
    a = n.setup("u1", "/run/netns/x")
    assert (a.ip, a.prefix, a.gateway) == ("10.250.3.2", 24, "10.250.3.1")
    assert n.setup("u1", "/run/netns/x") == a and n.status("u1") == a
    b = n.setup("u2", "/run/netns/y")
    assert b.ip != a.ip and n.allocated() == ["u1", "u2"]
    n.teardown("u1", None)
    n.teardown("u1", None)
    assert n.status("u1") is None and n.allocated() == ["u2"]
