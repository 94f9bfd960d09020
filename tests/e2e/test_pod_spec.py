"""End to end: the parts of the pod spec the agent honours, checked from inside the containers and
from the kernel side, on a real one-node cluster (real runc, namespaces, cgroups, veths).

Node crt-spec, bridge crt-bs<rand>, cluster CIDR 10.251.0.0/16, service CIDR 10.103.0.0/16, cgroup
root coracle-t-<rand>, back-off base 1 s (tests/e2e/cluster_fixture.py).  Covered: env from
ConfigMaps and Secrets (keyRefs, envFrom with a prefix, an optional missing key), resourceFieldRef,
`$(VAR)` expansion, workingDir, /etc/hosts and /etc/resolv.conf, hostNetwork, shareProcessNamespace,
postStart and preStop exec hooks (preStop before SIGTERM), readiness by httpGet, restart back-off
timing, QoS parent cgroups and the pods limit, and the agent removing orphans at start.
The pods that only need watching are created together by one fixture, so they start in parallel.
Teardown purges the cluster and asserts nothing is left on the host.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import yaml

sys.path.insert(0, os.path.dirname(__file__))
from cluster_fixture import E2ECluster, have_tools, wait_for  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(have_tools() is not None, reason=str(have_tools()))]

CGROUP_FS = "/sys/fs/cgroup"


def pod(name: str, spec: dict, **md) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **md},
            "spec": {"terminationGracePeriodSeconds": 5, **spec}}


def box(name: str, script: str, **extra) -> dict:
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **extra}


ENV_POD = pod("crt-env", {"containers": [{
    "name": "main", "image": "busybox", "workingDir": "/tmp",
    "command": ["sh", "-c", "echo 'cmd=$(GREETING)/$(CM_A)/$$(NOT)/$(UNDECLARED)/$(P_b)'; echo pwd=$(pwd); env | sort; "
                            "echo END; sleep 3600"],
    "resources": {"limits": {"memory": "48Mi"}},
    "env": [
        {"name": "CM_A", "valueFrom": {"configMapKeyRef": {"name": "crt-cm", "key": "a"}}},
        {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "crt-sec", "key": "pw"}}},
        {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "crt-cm", "key": "nope", "optional": True}}},
        {"name": "OPT_CM", "valueFrom": {"configMapKeyRef": {"name": "crt-no-such", "key": "k", "optional": True}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
        {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        {"name": "GREETING", "value": "hi-$(CM_A)"},
    ],
    "envFrom": [{"configMapRef": {"name": "crt-cm"}, "prefix": "P_"}, {"secretRef": {"name": "crt-sec"}}],
}]})
ETC_POD = pod("crt-etc", {
    "hostname": "web", "subdomain": "crt-sub",
    "hostAliases": [{"ip": "10.251.99.9", "hostnames": ["foo.crt", "bar.crt"]}],
    "dnsConfig": {"searches": ["crt.example"], "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]},
    "containers": [box("main", "cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo host=$(hostname); "
                               "echo END; sleep 3600")]})
HOSTNET_POD = pod("crt-hostnet", {"hostNetwork": True, "containers": [
    box("main", "cat /proc/net/dev; echo ---; cat /etc/resolv.conf; echo END; sleep 3600")]})
SHAREPID_POD = pod("crt-sharepid", {"shareProcessNamespace": True, "containers": [
    box("a", "exec sleep 3601"),
    box("b", "until ps | grep -v grep | grep -q 'sleep 3601'; do sleep 0.2; done; echo FOUND-A; sleep 3600")]})
HOOKS_POD = pod("crt-hooks", {"terminationGracePeriodSeconds": 10, "containers": [box(
    "main", "trap 'echo got-term; sleep 1; exit 0' TERM; "
            "until [ -f /tmp/poststart ]; do sleep 0.1; done; echo saw-poststart; "
            "while true; do sleep 0.1; done",
    lifecycle={"postStart": {"exec": {"command": ["touch", "/tmp/poststart"]}},
               "preStop": {"exec": {"command": ["sh", "-c", "echo prestop-begin > /proc/1/fd/1; sleep 2; "
                                                            "echo prestop-end > /proc/1/fd/1"]}}})]})
READY_POD = pod("crt-ready", {"containers": [box(
    "web", "mkdir -p /www; echo ok > /www/index.html; exec httpd -f -p 8080 -h /www",
    readinessProbe={"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1,
                    "failureThreshold": 1, "timeoutSeconds": 1})]})
QOS_PODS = [
    pod("crt-guaranteed", {"containers": [box("main", "sleep 3600", resources={
        "limits": {"cpu": "100m", "memory": "32Mi"}})]}),
    pod("crt-burstable", {"containers": [box("main", "sleep 3600", resources={"requests": {"cpu": "50m"}})]}),
    pod("crt-besteffort", {"containers": [box("main", "sleep 3600")]}),
]
CONFIG = [
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "crt-cm"}, "data": {"a": "1", "b": "two"}},
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "crt-sec"}, "stringData": {"pw": "s3cret"}},
]
WATCHED = [ENV_POD, ETC_POD, HOSTNET_POD, SHAREPID_POD, HOOKS_POD, READY_POD, *QOS_PODS]


def _list(items: list[dict]) -> str:
    return yaml.safe_dump_all(items)


@pytest.fixture(scope="module")
def kc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ECluster]:
    e = E2ECluster.make(Path(tmp_path_factory.mktemp("crt-spec")), node_name="crt-spec", bridge_prefix="crt-bs",
                        cluster_cidr="10.251.0.0/16", service_cidr="10.103.0.0/16")
    try:
        e.cluster.up(timeout=60)
        e.apply(_list(CONFIG))
        e.apply(_list(WATCHED))
        yield e
    finally:
        e.kubectl("delete", "pods", "--all", "--wait=true", "--timeout=60s", timeout=70, check=False)
        left = e.teardown()
        assert not left, "left behind:\n" + "\n".join(left) + "\n" + e.logs()


def _cond(p: dict, t: str) -> str:
    return {c["type"]: c["status"] for c in p.get("status", {}).get("conditions") or []}.get(t, "")


def _logs(kc: E2ECluster, name: str, container: str | None = None, marker: str = "END") -> str:
    args = ["logs", name] + (["-c", container] if container else [])
    def seen() -> str:
        out = kc.kubectl(*args, check=False).stdout
        return out if marker in out else ""
    return wait_for(seen, 40, f"{marker} in the logs of {name}")


def _running(kc: E2ECluster, name: str) -> dict:
    return wait_for(lambda: (p := kc.pod(name)) and p["status"].get("phase") == "Running" and p, 40, f"{name} Running")


def test_env_from_configmap_secret_resources_and_expansion(kc: E2ECluster) -> None:
    out = _logs(kc, "crt-env")
    env = dict(ln.partition("=")[::2] for ln in out.splitlines() if "=" in ln)
    assert env["CM_A"] == "1" and env["PW"] == "s3cret"
    assert env["P_a"] == "1" and env["P_b"] == "two" and env["pw"] == "s3cret"   # envFrom, with and without prefix
    assert "OPT" not in env and "OPT_CM" not in env                               # optional and missing: unset
    assert env["MEM"] == str(48 * 1024 * 1024) and env["MEM_MI"] == "48"
    assert env["GREETING"] == "hi-1"
    # $(VAR) in the command: declared vars expand, $$ escapes, unknown references stay as written
    assert "cmd=hi-1/1/$(NOT)/$(UNDECLARED)/two" in out   # envFrom's variables expand too
    assert "pwd=/tmp" in out


def test_missing_configmap_key_is_a_config_error(kc: E2ECluster) -> None:
    spec = {"containers": [box("main", "sleep 3600", env=[
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "crt-cm", "key": "absent"}}}])]}
    kc.apply(json.dumps(pod("crt-cfgerr", spec)))
    try:
        w = wait_for(lambda: (kc.pod("crt-cfgerr")["status"].get("containerStatuses") or [{}])[0]
                     .get("state", {}).get("waiting"), 30, "a waiting state")
        wait_for(lambda: (kc.pod("crt-cfgerr")["status"]["containerStatuses"][0]["state"].get("waiting") or {})
                 .get("reason") == "CreateContainerConfigError", 30, f"CreateContainerConfigError (was {w})")
        # the key appears: the pod starts without being recreated
        kc.kubectl("patch", "configmap", "crt-cm", "--type=merge", "-p", '{"data":{"absent":"here"}}')
        _running(kc, "crt-cfgerr")
    finally:
        kc.kubectl("delete", "pod", "crt-cfgerr", "--wait=true", "--timeout=60s", timeout=70, check=False)


def test_unsupported_volume_keeps_the_container_waiting(kc: E2ECluster) -> None:
    """Defect: a pod with a configMap volume ran without its files.  The agent builds no volume type yet:
    the container that mounts one waits with CreateContainerConfigError and an event names the volume."""
    spec = {"containers": [box("main", "ls /cfg; sleep 3600", volumeMounts=[{"name": "cfg", "mountPath": "/cfg"}])],
            "volumes": [{"name": "cfg", "configMap": {"name": "crt-cm"}}]}
    kc.apply(json.dumps(pod("crt-vol", spec)))
    msg = 'volume "cfg": volume type configMap is not supported on this node yet'
    try:
        w = wait_for(lambda: ((kc.pod("crt-vol")["status"].get("containerStatuses") or [{}])[0]
                              .get("state", {}).get("waiting") or {}).get("reason") == "CreateContainerConfigError"
                     and kc.pod("crt-vol")["status"]["containerStatuses"][0], 30, "CreateContainerConfigError")
        assert w["state"]["waiting"]["message"] == msg and "containerID" not in w
        assert kc.pod("crt-vol")["status"]["phase"] == "Pending"

        def event() -> dict | None:
            evs = json.loads(kc.kubectl("get", "events", "-o", "json").stdout)["items"]
            return next((e for e in evs if e["involvedObject"].get("name") == "crt-vol"
                         and e["reason"] == "Failed" and e["type"] == "Warning"), None)
        ev = wait_for(event, 20, "the Failed event")
        assert ev["message"] == f"Error: {msg}"
        uid = kc.pod("crt-vol")["metadata"]["uid"]
        ids = subprocess.run(["runc", "--root", os.path.join(kc.cluster.run_dir, "runc"), "list", "-q"],
                             capture_output=True, text=True).stdout.split()
        assert not [c for c in ids if c.startswith(uid)], "a container was created"
        assert kc.inspect("crt-vol")["containers"][0]["runtimeId"] in ("", None)
    finally:
        kc.kubectl("delete", "pod", "crt-vol", "--wait=true", "--timeout=60s", timeout=70, check=False)


def test_etc_hosts_and_resolv_conf(kc: E2ECluster) -> None:
    out = _logs(kc, "crt-etc")
    ip = _running(kc, "crt-etc")["status"]["podIP"]
    hosts, _, resolv = out.partition("---")
    lines = [ln.split() for ln in hosts.splitlines() if ln.strip()]
    assert ["127.0.0.1", "localhost"] in lines
    assert [ip, "web.crt-sub.default.svc.cluster.local", "web"] in lines
    assert ["10.251.99.9", "foo.crt", "bar.crt"] in lines
    assert "host=web" in out
    assert "nameserver 10.103.0.10" in resolv       # the cluster DNS address is in this cluster's service CIDR
    assert "search default.svc.cluster.local svc.cluster.local cluster.local crt.example" in resolv
    assert "options ndots:2 edns0" in resolv        # dnsConfig overrides ndots and adds edns0


def test_host_network(kc: E2ECluster) -> None:
    out = _logs(kc, "crt-hostnet")
    p = _running(kc, "crt-hostnet")
    assert f"{kc.cluster.bridge}:" in out             # the node's bridge is visible: the host's netns
    assert p["status"]["podIP"] == p["status"]["hostIP"]
    # dnsPolicy ClusterFirst on the host network falls back to the node's resolv.conf, as upstream
    want = [ln.split()[1] for ln in Path("/etc/resolv.conf").read_text().splitlines() if ln.startswith("nameserver")]
    got = [ln.split()[1] for ln in out.partition("---")[2].splitlines() if ln.startswith("nameserver")]
    assert got == want[:3] and "10.103.0.10" not in got
    assert not kc.inspect("crt-hostnet").get("hostVeth")  # no veth, no IP from the pod range
    rec = json.loads(Path(kc.cluster.data_dir, "pods", p["metadata"]["uid"], "record.json").read_text())
    pid = rec["containers"]["main"]["pid"]
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino


def test_share_process_namespace(kc: E2ECluster) -> None:
    out = _logs(kc, "crt-sharepid", "b", marker="FOUND-A")
    assert "FOUND-A" in out
    p = _running(kc, "crt-sharepid")
    assert all(s["state"].get("running") for s in p["status"]["containerStatuses"])


def test_post_start_and_pre_stop_before_sigterm(kc: E2ECluster) -> None:
    _logs(kc, "crt-hooks", marker="saw-poststart")
    p = _running(kc, "crt-hooks")
    uid = p["metadata"]["uid"]
    log_path = Path(kc.cluster.data_dir, "pods", uid, "logs", "main", "0.log")
    assert log_path.exists()
    start = time.monotonic()
    kc.kubectl("delete", "pod", "crt-hooks", "--wait=false")
    seen = ""

    def got_term() -> bool:
        nonlocal seen
        try:
            seen = log_path.read_text(errors="replace")
        except OSError:
            return False
        return "got-term" in seen
    wait_for(got_term, 20, "the TERM trap in the log", every=0.05)
    elapsed = time.monotonic() - start
    order = [w for w in ("prestop-begin", "prestop-end", "got-term") if w in seen]
    assert order == ["prestop-begin", "prestop-end", "got-term"], seen
    assert seen.index("prestop-end") < seen.index("got-term")
    assert elapsed >= 2.0                                   # the hook's sleep 2 delayed the SIGTERM
    wait_for(lambda: kc.kubectl("get", "pod", "crt-hooks", check=False).returncode != 0, 30, "crt-hooks gone")


def test_readiness_http_get(kc: E2ECluster) -> None:
    wait_for(lambda: _cond(kc.pod("crt-ready"), "Ready") == "True", 40, "Ready by httpGet")
    kc.kubectl("exec", "crt-ready", "--", "rm", "/www/index.html")
    wait_for(lambda: _cond(kc.pod("crt-ready"), "Ready") == "False", 20, "not Ready once the file is gone")
    p = kc.pod("crt-ready")
    assert p["status"]["containerStatuses"][0]["restartCount"] == 0 and p["status"]["phase"] == "Running"
    kc.kubectl("exec", "crt-ready", "--", "sh", "-c", "echo ok > /www/index.html")
    wait_for(lambda: _cond(kc.pod("crt-ready"), "Ready") == "True", 20, "Ready again")


def _cg(ctrl: str, path: str, f: str) -> str:
    return Path(CGROUP_FS, ctrl, path, f).read_text().strip()


def test_qos_parent_cgroups_and_pids_limit(kc: E2ECluster) -> None:
    root = kc.cluster.cgroup_root
    expect = {"crt-guaranteed": ("Guaranteed", root), "crt-burstable": ("Burstable", f"{root}/burstable"),
              "crt-besteffort": ("BestEffort", f"{root}/besteffort")}
    for name, (qos, parent) in expect.items():
        p = _running(kc, name)
        assert p["status"]["qosClass"] == qos
        cg = f"{parent}/pod{p['metadata']['uid']}"
        for ctrl in ("cpu", "memory", "pids"):
            assert Path(CGROUP_FS, ctrl, cg).is_dir(), f"{ctrl}:{cg}"
        assert _cg("pids", cg, "pids.max") == "4096"
        # the container's process is in that cgroup
        pids = _cg("pids", f"{cg}/main", "cgroup.procs").split()
        assert pids and int(_cg("pids", cg, "pids.current")) >= 1
        if name == "crt-guaranteed":
            assert int(_cg("memory", cg, "memory.limit_in_bytes")) == 32 * 1024 * 1024
            assert _cg("cpu", cg, "cpu.cfs_quota_us") == "10000"
        if name == "crt-burstable":
            assert _cg("cpu", cg, "cpu.shares") == str(50 * 1024 // 1000)
    assert _cg("cpu", f"{root}/besteffort", "cpu.shares") == "2"


def test_restart_backoff_doubles(kc: E2ECluster) -> None:
    kc.apply(json.dumps(pod("crt-backoff", {"containers": [box("main", "exit 1")]})))
    try:
        bumps: dict[int, float] = {}       # restartCount -> when it was first seen (monotonic)
        attempts: dict[int, tuple[str, str]] = {}  # attempt -> (startedAt, finishedAt)

        def observe() -> bool:
            cs = (kc.pod("crt-backoff")["status"].get("containerStatuses") or [{}])[0]
            n = cs.get("restartCount", 0)
            bumps.setdefault(n, time.monotonic())
            st, last = cs.get("state", {}), (cs.get("lastState") or {}).get("terminated")
            if "terminated" in st:
                attempts[n] = (st["terminated"]["startedAt"], st["terminated"]["finishedAt"])
            elif (st.get("waiting") or {}).get("reason") == "CrashLoopBackOff" and last:
                attempts[n] = (last["startedAt"], last["finishedAt"])   # the exited attempt, in back-off
            elif last and n >= 1:
                attempts.setdefault(n - 1, (last["startedAt"], last["finishedAt"]))
            # attempt 0 may never be seen: it is restarted at once, in the same sync
            return all(k in attempts for k in range(1, 5))
        try:
            wait_for(observe, 40, "attempts 1-4 of the crashing container", every=0.05)
        except AssertionError as e:
            raise AssertionError(f"{e}\nattempts {attempts}\nrestart counts seen {bumps}") from None

        def t(s: str) -> float:
            return time.mktime(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))
        # back-off before restart k: 0 (the first restart is at once), then 1 s doubling (seconds in the API)
        for k, want in ((1, 0), (2, 1), (3, 2), (4, 4)):
            if k - 1 in attempts:
                gap = t(attempts[k][0]) - t(attempts[k - 1][1])
                assert abs(gap - want) <= 1.0, (k, gap, attempts)
        # the same from the wall clock, at the poll's resolution
        intervals = [bumps[k + 1] - bumps[k] for k in (1, 2, 3)]
        for got, want in zip(intervals, (1, 2, 4)):
            assert want - 0.3 <= got <= want + 1.0, (intervals, bumps)
    finally:
        kc.kubectl("delete", "pod", "crt-backoff", "--wait=true", "--timeout=60s", timeout=70, check=False)


def test_agent_removes_orphans_at_start(kc: E2ECluster) -> None:
    import cgroups
    from nodeagent.pod.sandbox import Sandbox
    orphan = str(uuid.uuid4())
    cg = f"{kc.cluster.cgroup_root}/besteffort/pod{orphan}"
    kc.cluster.stop("agent")
    sandbox, driver = Sandbox(kc.cluster.run_dir), cgroups.detect()
    try:
        paths = sandbox.ensure(orphan, "x")
        driver.ensure(cg)
        assert os.path.exists(paths.net) and Path(CGROUP_FS, "cpu", cg).is_dir()
        kc.cluster.up(timeout=60)
        wait_for(lambda: not sandbox.exists(orphan) and not os.path.exists(os.path.dirname(paths.net))
                 and not any(Path(CGROUP_FS, c, cg).exists() for c in ("cpu", "memory", "pids")),
                 30, "the orphan sandbox and cgroup removed")
        # the pods the agent owns are untouched
        assert kc.pod("crt-besteffort")["status"]["containerStatuses"][0]["restartCount"] == 0
    finally:
        errs = []
        try:
            sandbox.remove(orphan)
        except Exception as e:  # noqa: BLE001 - clean up everything, report at the end
            errs.append(f"sandbox: {e}")
        try:
            if driver.exists(cg):
                driver.remove(cg)
        except Exception as e:  # noqa: BLE001
            errs.append(f"cgroup: {e}")
        if kc.cluster.running("agent") is None:
            kc.cluster.up(timeout=60)
        assert not errs, errs
