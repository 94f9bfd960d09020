"""Unit tests of nodeagent.pod.spec's resolv.conf by dnsPolicy/dnsConfig, the cluster DNS address, and
`$(VAR)` expansion of command/args over the spec's env and envFrom (not the image's env)."""
from __future__ import annotations

from nodeagent.pod import spec as podspec

HOST = "nameserver 10.255.255.53\nnameserver 10.255.255.54\nsearch corp.example\noptions rotate timeout:2\n"


def _pod(**spec) -> dict:
    return {"metadata": {"name": "p", "namespace": "team", "uid": "u"}, "spec": {"containers": [], **spec}}


def test_cluster_dns_is_tenth_of_service_range() -> None:
    assert podspec.cluster_dns("10.96.0.0/16") == "10.96.0.10"
    assert podspec.cluster_dns("10.103.0.0/16") == "10.103.0.10"


def test_cluster_first_default() -> None:
    assert podspec.resolv_conf(_pod(), "10.96.0.10", HOST) == (
        "nameserver 10.96.0.10\nsearch team.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n")


def test_host_network_falls_back_to_default_unless_with_host_net() -> None:
    assert podspec.resolv_conf(_pod(hostNetwork=True), "10.96.0.10", HOST) == (
        "nameserver 10.255.255.53\nnameserver 10.255.255.54\nsearch corp.example\noptions rotate timeout:2\n")
    out = podspec.resolv_conf(_pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"), "10.96.0.10", HOST)
    assert out.startswith("nameserver 10.96.0.10\n")


def test_dns_config_merges_and_none_uses_it_alone() -> None:
    cfg = {"nameservers": ["1.2.3.4", "10.96.0.10"], "searches": ["x.example"],
           "options": [{"name": "ndots", "value": "1"}, {"name": "edns0"}]}
    out = podspec.resolv_conf(_pod(dnsConfig=cfg), "10.96.0.10", HOST)
    assert out == ("nameserver 10.96.0.10\nnameserver 1.2.3.4\n"
                   "search team.svc.cluster.local svc.cluster.local cluster.local x.example\noptions ndots:1 edns0\n")
    assert podspec.resolv_conf(_pod(dnsPolicy="None", dnsConfig={"nameservers": ["1.1.1.1"]}), "x", HOST) == \
        "nameserver 1.1.1.1\n"
    four = {"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"]}
    assert podspec.resolv_conf(_pod(dnsPolicy="None", dnsConfig=four), "x", HOST).count("nameserver") == 3


def test_command_expands_env_from_but_not_image_env() -> None:
    pod = _pod()
    c = {"name": "c", "command": ["echo", "$(P_A)", "$(B)", "$(IMG)", "$$(B)"], "env": [{"name": "B", "value": "b-$(P_A)"}],
         "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "P_"}]}

    def lookup(kind: str, ns: str, name: str) -> dict | None:
        return {"data": {"A": "from-cm"}} if (kind, ns, name) == ("configmaps", "team", "cm") else None
    declared = podspec.spec_env(pod, c, "n", "h", "1.2.3.4", lookup)
    assert declared == {"P_A": "from-cm", "B": "b-from-cm"}
    env = podspec.merge_env(pod, ["IMG=image", "B=image-b"], declared)
    assert "B=b-from-cm" in env and "IMG=image" in env and "HOSTNAME=p" in env
    assert podspec.container_args(c, {}, env, declared) == ["echo", "from-cm", "b-from-cm", "$(IMG)", "$(B)"]
    # the same env through container_env
    assert podspec.container_env(pod, c, ["IMG=image"], "n", "h", "1.2.3.4", lookup) == \
        ["IMG=image", "P_A=from-cm", "B=b-from-cm", "HOSTNAME=p"]
