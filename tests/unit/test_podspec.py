"""Unit tests for nodeagent.pod.spec: cgroup paths and limits, env, argv."""
from __future__ import annotations

import pytest

from nodeagent.pod import spec as podspec
from nodeagent.pod.spec import ContainerLimits


def pod(qos: str | None = "Burstable", containers: list | None = None, **md) -> dict:
    p = {"metadata": {"name": "web", "namespace": "prod", "uid": "u-1", **md},
         "spec": {"containers": containers or [{"name": "c", "image": "busybox"}], "serviceAccountName": "sa"},
         "status": {}}
    if qos:
        p["status"]["qosClass"] = qos
    return p


@pytest.mark.parametrize("qos,path", [
    ("Guaranteed", "coracle/podu-1"),
    ("Burstable", "coracle/burstable/podu-1"),
    ("BestEffort", "coracle/besteffort/podu-1"),
    (None, "coracle/besteffort/podu-1"),
])
def test_pod_cgroup_by_qos(qos, path):
    assert podspec.pod_cgroup("coracle", pod(qos)) == path


def res(req: dict | None = None, lim: dict | None = None) -> dict:
    return {"name": "c", "resources": {"requests": req or {}, "limits": lim or {}}}


def test_container_limits_from_requests_and_limits():
    assert podspec.container_limits(res({"cpu": "250m"}, {"cpu": "500m", "memory": "64Mi"})) == \
        ContainerLimits(cpu_shares=256, cpu_quota_us=50_000, memory_limit_bytes=64 << 20)
    assert podspec.container_limits(res({"cpu": "2"}, {"cpu": "1500m", "memory": "1G"})) == \
        ContainerLimits(2048, 150_000, 1_000_000_000)


def test_container_limits_none_set():
    assert podspec.container_limits({"name": "c"}) == ContainerLimits(2, None, None)
    # tiny values: shares floor of 2, quota floor of 1 ms
    assert podspec.container_limits(res({"cpu": "1m"}, {"cpu": "1m"})) == ContainerLimits(2, 1000, None)


def test_pod_resources_sums_when_every_container_limited():
    p = pod("Guaranteed", [res({"cpu": "100m"}, {"cpu": "100m", "memory": "10Mi"}),
                           res({"cpu": "200m"}, {"cpu": "300m", "memory": "20Mi"})])
    r = podspec.pod_resources(p)
    assert (r.cpu_shares, r.cpu_quota_us, r.memory_limit_bytes) == (102 + 204, 40_000, 30 << 20)
    assert r.cpu_period_us == podspec.CPU_PERIOD_US and r.pids_limit == podspec.DEFAULT_PIDS_LIMIT


def test_pod_resources_unlimited_when_one_container_is():
    p = pod("Burstable", [res({"cpu": "100m"}, {"cpu": "100m", "memory": "10Mi"}), res({"cpu": "1"})])
    r = podspec.pod_resources(p)
    assert (r.cpu_shares, r.cpu_quota_us, r.memory_limit_bytes) == (102 + 1024, None, None)
    assert podspec.pod_resources(pod("BestEffort")).cpu_shares == 2


@pytest.mark.parametrize("text,out", [
    ("$(A)-$(B)", "1-two"),
    ("$(MISSING)", "$(MISSING)"),
    ("$$(A)", "$(A)"),
    ("$$$(A)", "$1"),
    ("cost $5 $", "cost $5 $"),
    ("$(A", "$(A"),
    ("a$$b", "a$b"),
])
def test_expand(text, out):
    assert podspec.expand(text, {"A": "1", "B": "two"}) == out


def env_map(lines: list[str]) -> dict[str, str]:
    return dict(line.split("=", 1) for line in lines)


def test_container_env_field_refs_and_expansion():
    p = pod(labels={"app": "shop", "tier.k8s/x": "y"}, annotations={"note": "hi"})
    c = {"name": "c", "env": [
        {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "TIER", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier.k8s/x']"}}},
        {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
        {"name": "NOLABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['nope']"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "URL", "value": "http://$(IP):80/$(NAME)/$(PATH)/$$(NS)"},
        {"name": "LATER", "value": "$(AFTER)"},
        {"name": "AFTER", "value": "x"},
        {"name": "PATH", "value": "/override"},
    ]}
    env = env_map(podspec.container_env(p, c, ["PATH=/bin", "LANG=C"], "node-1", "192.0.2.1", "10.244.0.7"))
    assert env["NAME"] == "web" and env["NS"] == "prod" and env["UID"] == "u-1"
    assert env["APP"] == "shop" and env["TIER"] == "y" and env["NOTE"] == "hi" and env["NOLABEL"] == ""
    assert env["IP"] == "10.244.0.7" and env["HOST"] == "192.0.2.1" and env["NODE"] == "node-1" and env["SA"] == "sa"
    # only variables declared earlier in the list expand; image env is not visible; $$ escapes
    assert env["URL"] == "http://10.244.0.7:80/web/$(PATH)/$(NS)"
    assert env["LATER"] == "$(AFTER)"
    assert env["PATH"] == "/override" and env["LANG"] == "C"
    assert env["HOSTNAME"] == "web"


IMAGE = {"Entrypoint": ["/entry"], "Cmd": ["--default"]}


@pytest.mark.parametrize("c,argv", [
    ({}, ["/entry", "--default"]),                                      # neither: Entrypoint + Cmd
    ({"command": ["/bin/sh", "-c"]}, ["/bin/sh", "-c"]),                # command: drops Cmd too
    ({"args": ["--x"]}, ["/entry", "--x"]),                             # args: replace Cmd
    ({"command": ["/bin/echo"], "args": ["a", "b"]}, ["/bin/echo", "a", "b"]),  # both
])
def test_container_args_four_cases(c, argv):
    assert podspec.container_args({"name": "c", **c}, IMAGE, []) == argv


def test_container_args_expand_from_env_and_no_image_command():
    c = {"name": "c", "command": ["echo", "$(MSG)", "$$(MSG)", "$(PATH)"], "args": ["$(NOPE)"],
         "env": [{"name": "MSG", "value": "hello"}]}
    # only variables the container declares expand; the image's (PATH) stay as written
    assert podspec.container_args(c, {}, ["MSG=hello", "PATH=/bin"]) == ["echo", "hello", "$(MSG)", "$(PATH)", "$(NOPE)"]
    assert podspec.container_args({"name": "c"}, {"Cmd": ["sh"]}, []) == ["sh"]
    assert podspec.container_args({"name": "c"}, {}, []) == []


def test_hostname_env_follows_spec_hostname_and_can_be_overridden():
    p = pod()
    assert env_map(podspec.container_env(p, {"name": "c"}, [], "n", "h", "i"))["HOSTNAME"] == "web"
    p["spec"]["hostname"] = "db-0"
    assert env_map(podspec.container_env(p, {"name": "c"}, [], "n", "h", "i"))["HOSTNAME"] == "db-0"
    c = {"name": "c", "env": [{"name": "HOSTNAME", "value": "mine"}]}
    assert env_map(podspec.container_env(p, c, [], "n", "h", "i"))["HOSTNAME"] == "mine"


@pytest.mark.parametrize("containers,qos", [
    ([{"name": "c"}], "BestEffort"),
    ([{"name": "c", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}], "Guaranteed"),
    ([{"name": "c", "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2", "memory": "1Gi"}}}], "Burstable"),
    ([{"name": "c", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}, {"name": "d"}], "Burstable"),
])
def test_qos_class_computed_when_status_has_none(containers, qos):
    assert podspec.qos_class(pod(None, containers)) == qos


def test_init_container_raises_pod_limits():
    p = pod(containers=[res({"cpu": "100m"}, {"cpu": "200m", "memory": "64Mi"})])
    p["spec"]["initContainers"] = [res({"cpu": "1"}, {"cpu": "1", "memory": "128Mi"})]
    r = podspec.pod_resources(p)
    assert r.cpu_shares == 1024 and r.cpu_quota_us == 100_000 and r.memory_limit_bytes == 128 << 20
    assert r.pids_limit == podspec.DEFAULT_PIDS_LIMIT


def test_resource_field_ref():
    c = res({"cpu": "250m", "memory": "32Mi"}, {"cpu": "1500m", "memory": "64Mi"})
    node = podspec.NodeCapacity(cpu_millicores=2000, memory_bytes=1 << 30)
    f = lambda r, d=None: podspec.resource_field(c, {"resource": r, **({"divisor": d} if d else {})}, node)
    assert f("limits.cpu") == "2" and f("requests.cpu") == "1" and f("requests.cpu", "1m") == "250"
    assert f("limits.memory", "1Mi") == "64" and f("requests.memory") == str(32 << 20)
    assert podspec.resource_field({"name": "x"}, {"resource": "limits.memory"}, node) == str(1 << 30)


def test_env_from_and_key_refs_with_prefix_and_secret_decoding():
    objs = {("configmaps", "prod", "cm"): {"data": {"A": "1", "B": "2"}},
            ("secrets", "prod", "s"): {"data": {"PW": "aHVudGVyMg=="}}}
    c = {"name": "c", "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "X_"}, {"secretRef": {"name": "s"}}],
         "env": [{"name": "B2", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "B"}}},
                 {"name": "U", "value": "$(X_A)-$(PW)"}]}
    env = podspec.container_env(pod(), c, [], "n", "h", "p", lambda k, ns, n: objs.get((k, ns, n)))
    assert {"X_A=1", "X_B=2", "PW=hunter2", "B2=2", "U=1-hunter2"} <= set(env)
    with pytest.raises(podspec.ConfigError):
        podspec.container_env(pod(), {"name": "c", "envFrom": [{"secretRef": {"name": "gone"}}]}, [], "n", "h", "p",
                              lambda k, ns, n: None)
    env = podspec.container_env(pod(), {"name": "c", "envFrom": [{"secretRef": {"name": "gone", "optional": True}}]},
                                [], "n", "h", "p", None)
    assert env == ["HOSTNAME=web"]


def test_hosts_file_with_subdomain():
    p = pod()
    p["spec"].update(hostname="db-0", subdomain="db")
    text = podspec.hosts_file(p, "10.244.0.9")
    assert "10.244.0.9\tdb-0.db.prod.svc.cluster.local\tdb-0\n" in text and text.startswith("127.0.0.1\tlocalhost")
