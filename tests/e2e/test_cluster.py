"""End to end: one real pod on one real node, driven by the real `kubectl`.

A one-node cluster is started with the code `scripts/up` runs
(coracle.localcluster.LocalCluster) in a temp dir with its own ports, bridge, cgroup
root and CIDRs (10.246.0.0/16 pods, 10.98.0.0/16 services), and every claim
is checked twice: through kubectl, and from the kernel's side (cgroupfs,
/proc/<pid>/ns, `ip link`, mountinfo, runc).  Teardown runs
`down(purge=True)` and asserts nothing of the cluster is left on the host.
Helpers: tests/e2e/cluster_fixture.py.  Tests run in file order and share
the long-running pod `crt-hello`; each test deletes the other pods it makes.
"""
from __future__ import annotations

import ipaddress
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster_fixture import CLUSTER_CIDR, E2ECluster, have_tools, wait_for  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(have_tools() is not None, reason=str(have_tools()))]

HELLO = "crt-hello"
# The trap makes SIGTERM end the pod at once, so a quick `kubectl delete` proves the graceful path.
HELLO_POD = f"""apiVersion: v1
kind: Pod
metadata:
  name: {HELLO}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; echo hello; sleep 3600 & wait"]
    resources:
      limits: {{cpu: 500m, memory: 64Mi}}
"""


def pod_yaml(name: str, script: str, restart: str = "Always", image: str = "busybox",
             memory: str = "", grace: int = 2) -> str:
    limits = f"\n    resources:\n      limits: {{memory: {memory}}}" if memory else ""
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: {grace}
  containers:
  - name: main
    image: {image}
    command: ["sh", "-c", {json.dumps(script)}]{limits}
"""


# -- fixtures ----------------------------------------------------------------

@pytest.fixture(scope="module")
def kc(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[E2ECluster]:
    e = E2ECluster.make(Path(tmp_path_factory.mktemp("crt-e2e")))
    failed_before = request.session.testsfailed
    started = time.monotonic()
    try:
        e.cluster.up(timeout=60)
        yield e
    finally:
        if request.session.testsfailed > failed_before:
            _say(request, e.logs())
        left = e.teardown()
        _say(request, f"e2e cluster: {time.monotonic() - started:.1f}s from up to purged")
        assert not left, "left behind by the e2e cluster:\n" + "\n".join(left)


def _say(request: pytest.FixtureRequest, text: str) -> None:
    """Write past pytest's capture, so CI shows the cluster logs of a failed run."""
    tr = request.config.pluginmanager.getplugin("terminalreporter")
    if tr is not None:
        tr.write_line("")
        for line in text.splitlines():
            tr.write_line(line)
    else:
        print(text, file=sys.__stderr__)


@pytest.fixture(scope="module")
def hello(kc: E2ECluster) -> dict:
    """The long-running busybox pod (created once, deleted by test_delete_pod)."""
    kc.apply(HELLO_POD)
    kc.kubectl("wait", "--for=condition=Ready", f"pod/{HELLO}", "--timeout=60s", timeout=70)
    return kc.pod(HELLO)


@pytest.fixture
def cleanup(kc: E2ECluster) -> Iterator[list[str]]:
    """Names of pods a test made; deleted (and waited for) afterwards, also on failure."""
    names: list[str] = []
    yield names
    if names:
        kc.kubectl("delete", "pod", *names, "--ignore-not-found", "--wait=true", "--timeout=60s", timeout=70,
                   check=False)


def _runc_state(kc: E2ECluster, rid: str) -> dict | None:
    p = subprocess.run(["runc", "--root", os.path.join(kc.cluster.run_dir, "runc"), "state", rid],
                       capture_output=True, text=True)
    return json.loads(p.stdout) if p.returncode == 0 else None


def _cstatus(pod: dict) -> dict:
    return (pod.get("status", {}).get("containerStatuses") or [{}])[0]


def _mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f]


# -- 1. the node -------------------------------------------------------------

def test_node_ready_with_real_columns(kc: E2ECluster) -> None:
    out = kc.kubectl("get", "nodes").stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    row = out[1].split()
    assert row[0] == "crt-e2e" and row[1] == "Ready" and row[4].startswith("v1.")
    wide = kc.kubectl("get", "nodes", "-o", "wide").stdout.splitlines()
    header = re.split(r"\s{2,}", wide[0].strip())
    cells = dict(zip(header, re.split(r"\s{2,}", wide[1].strip())))
    assert cells["INTERNAL-IP"] == "127.0.0.1"
    assert cells["KERNEL-VERSION"] == os.uname().release
    assert re.fullmatch(r"runc://\d+\.\d+\.\d+\S*", cells["CONTAINER-RUNTIME"]), cells


# -- 2. one real pod ---------------------------------------------------------

def test_pod_runs_end_to_end(kc: E2ECluster, hello: dict) -> None:
    uid = hello["metadata"]["uid"]
    node = json.loads(kc.kubectl("get", "node", "crt-e2e", "-o", "json").stdout)
    pod_cidr = ipaddress.ip_network(node["spec"]["podCIDR"])
    assert pod_cidr.subnet_of(ipaddress.ip_network(CLUSTER_CIDR)) and pod_cidr.prefixlen == 24

    wide = kc.kubectl("get", "pods", "-o", "wide").stdout.splitlines()
    header = re.split(r"\s{2,}", wide[0].strip())
    rows = [dict(zip(header, re.split(r"\s{2,}", ln.strip()))) for ln in wide[1:]]
    row = next(r for r in rows if r["NAME"] == HELLO)
    assert (row["READY"], row["STATUS"], row["NODE"]) == ("1/1", "Running", "crt-e2e")
    ip = row["IP"]
    assert ipaddress.ip_address(ip) in pod_cidr

    assert kc.kubectl("logs", HELLO).stdout == "hello\n"
    desc = kc.kubectl("describe", "pod", HELLO).stdout
    events = desc.split("Events:", 1)[1]
    assert re.search(r"Normal\s+Scheduled\s+.*default-scheduler\s+Successfully assigned default/crt-hello to crt-e2e",
                     events), events
    assert re.search(r"Normal\s+Started\s+.*kubelet\s+Started container main", events), events

    # The address lives in a network namespace this cluster made: ping it from the host.
    ping = subprocess.run(["ping", "-c1", "-W2", ip], capture_output=True, text=True, timeout=10)
    assert ping.returncode == 0, ping.stdout + ping.stderr

    # Limits, read from cgroupfs: a Guaranteed pod sits right under the cgroup root.
    cg = f"{kc.cluster.cgroup_root}/pod{uid}/main"
    assert Path(f"/sys/fs/cgroup/memory/{cg}/memory.limit_in_bytes").read_text().strip() == "67108864"
    assert Path(f"/sys/fs/cgroup/cpu/{cg}/cpu.cfs_quota_us").read_text().strip() == "50000"
    assert Path(f"/sys/fs/cgroup/cpu/{cg}/cpu.cfs_period_us").read_text().strip() == "100000"

    # The container's init joined the pinned netns, which is not the host's.
    state = _runc_state(kc, f"{uid}-main")
    assert state is not None and state["status"] == "running", state
    pid = state["pid"]
    assert str(pid) in Path(f"/sys/fs/cgroup/memory/{cg}/cgroup.procs").read_text().split()
    pinned = os.path.join(kc.cluster.run_dir, "ns", uid, "net")
    assert pinned in _mounts()
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(pinned).st_ino
    assert os.stat(f"/proc/{pid}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino
    inspected = kc.inspect(HELLO)
    assert inspected["containers"][0]["pid"] == pid

    # The host end of the veth is enslaved to the test bridge.
    veth = inspected["hostVeth"]
    link = json.loads(subprocess.run(["ip", "-j", "link", "show", veth], capture_output=True, text=True,
                                     check=True).stdout)[0]
    assert link["master"] == kc.cluster.bridge


# -- 3. watch ----------------------------------------------------------------

def test_watch_prints_rows(kc: E2ECluster, hello: dict, cleanup: list[str]) -> None:
    proc = kc.kubectl_popen("get", "pods", "-w", "--request-timeout=60s")
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    seen: list[str] = []

    def row(pattern: str) -> bool:
        while True:
            try:
                seen.append(lines.get_nowait().rstrip())
            except queue.Empty:
                break
        return any(re.search(pattern, s) for s in seen)

    try:
        wait_for(lambda: row(rf"^{HELLO}\s+1/1\s+Running"), 15, "the initial list row")
        cleanup.append("crt-watch")
        kc.apply(pod_yaml("crt-watch", "sleep 3600"))
        wait_for(lambda: row(r"^crt-watch\s+0/1\s+(Pending|ContainerCreating)"), 20, "a row for the new pod")
        wait_for(lambda: row(r"^crt-watch\s+1/1\s+Running"), 30, "a row for the pod's change to Running")
    finally:
        proc.kill()
        proc.wait(5)
    assert seen[0].split()[:3] == ["NAME", "READY", "STATUS"], seen


# -- 6. bad input ------------------------------------------------------------

def test_bad_input(kc: E2ECluster, hello: dict, cleanup: list[str]) -> None:
    empty = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: crt-empty\nspec:\n  containers: []\n"
    p = kc.kubectl("apply", "-f", "-", "-v=6", input=empty, check=False)
    assert p.returncode != 0
    assert re.search(r"\b422\b", p.stderr), p.stderr
    assert 'The Pod "crt-empty" is invalid' in p.stderr and "spec.containers" in p.stderr, p.stderr

    cleanup.append("crt-noimage")
    kc.apply(pod_yaml("crt-noimage", "sleep 3600", image="nosuch:1"))

    def waiting_reason() -> str | None:
        st = _cstatus(kc.pod("crt-noimage")).get("state", {})
        reason = st.get("waiting", {}).get("reason")
        return reason if reason in ("ErrImagePull", "ImagePullBackOff") else None

    wait_for(waiting_reason, 30, "ErrImagePull on nosuch:1")
    assert kc.pod("crt-noimage")["status"]["phase"] == "Pending"
    still = kc.pod(HELLO)
    assert still["status"]["phase"] == "Running" and _cstatus(still)["restartCount"] == 0
    assert _cstatus(still)["ready"] is True

    p = kc.kubectl("get", "foo", check=False)
    assert p.returncode != 0
    assert 'the server doesn\'t have a resource type "foo"' in p.stderr, p.stderr


# -- 7. OOM ------------------------------------------------------------------

def test_oom_killed(kc: E2ECluster, cleanup: list[str]) -> None:
    cleanup.append("crt-oom")
    kc.apply(pod_yaml("crt-oom", "tail /dev/zero", restart="Never", memory="16Mi"))
    pod = wait_for(lambda: (p := kc.pod("crt-oom"))["status"].get("phase") == "Failed" and p, 60, "phase Failed")
    term = _cstatus(pod)["state"]["terminated"]
    assert (term["reason"], term["exitCode"]) == ("OOMKilled", 137), term


# -- 8. restart policies -------------------------------------------------------

def test_restart_policies(kc: E2ECluster, cleanup: list[str]) -> None:
    cleanup += ["crt-ok", "crt-fail", "crt-crash"]
    kc.apply(pod_yaml("crt-ok", "exit 0", restart="Never"))
    kc.apply(pod_yaml("crt-fail", "exit 3", restart="Never"))
    kc.apply(pod_yaml("crt-crash", "echo attempt; exit 1", restart="Always"))

    ok = wait_for(lambda: (p := kc.pod("crt-ok"))["status"].get("phase") == "Succeeded" and p, 30, "Succeeded")
    assert _cstatus(ok)["state"]["terminated"]["exitCode"] == 0
    fail = wait_for(lambda: (p := kc.pod("crt-fail"))["status"].get("phase") == "Failed" and p, 30, "Failed")
    assert _cstatus(fail)["state"]["terminated"]["exitCode"] == 3
    assert _cstatus(fail)["restartCount"] == 0

    crash = wait_for(lambda: (p := kc.pod("crt-crash")) and _cstatus(p).get("restartCount", 0) >= 2 and p,
                     45, "restartCount >= 2 with a 1 s back-off base")
    cs = _cstatus(crash)
    assert cs["lastState"]["terminated"]["exitCode"] == 1, cs
    assert crash["status"]["phase"] == "Running"
    assert kc.kubectl("logs", "crt-crash", "--previous").stdout == "attempt\n"
    # Still restarting after that (the back-off grows but does not stop it).
    n = cs["restartCount"]
    wait_for(lambda: _cstatus(kc.pod("crt-crash"))["restartCount"] > n, 30, "a further restart")


# -- 9. the agent restarts without touching running pods ------------------------

def test_agent_sigkill_and_restart(kc: E2ECluster, hello: dict, cleanup: list[str]) -> None:
    uid = hello["metadata"]["uid"]
    before = _runc_state(kc, f"{uid}-main")
    assert before is not None and before["status"] == "running"
    pid = kc.cluster.running("agent")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: kc.cluster.running("agent") is None, 10, "the agent to die")
    kc.cluster.up(timeout=60)
    assert kc.cluster.running("agent") not in (None, pid)

    cleanup.append("crt-after")
    kc.apply(pod_yaml("crt-after", "sleep 3600"))
    kc.kubectl("wait", "--for=condition=Ready", "pod/crt-after", "--timeout=60s", timeout=70)
    after = _runc_state(kc, f"{uid}-main")
    assert after is not None and after["status"] == "running" and after["pid"] == before["pid"]
    pod = kc.pod(HELLO)
    assert pod["status"]["phase"] == "Running" and _cstatus(pod)["restartCount"] == 0
    assert _cstatus(pod)["ready"] is True


# -- 4. the debug CLI, with the master down ------------------------------------

def _check_debug(kc: E2ECluster, uid: str) -> None:
    rows = json.loads(kc.debug("pods", "-o", "json").stdout)
    row = next(r for r in rows if r["name"] == HELLO)
    state = _runc_state(kc, f"{uid}-main")
    assert state is not None
    assert row["uid"] == uid and row["phase"] == "Running"
    assert ipaddress.ip_address(row["ip"]) in ipaddress.ip_network(CLUSTER_CIDR)
    assert row["hostVeth"] and row["netns"] == os.path.join(kc.cluster.run_dir, "ns", uid, "net")
    assert row["cgroup"] == f"{kc.cluster.cgroup_root}/pod{uid}"
    assert row["usage"]["memory_limit_bytes"] == 64 * 2**20 and row["usage"]["cpu_quota_us"] == 50000
    assert row["pids"] == [state["pid"]]
    table = kc.debug("pods").stdout
    line = next(ln for ln in table.splitlines() if f" {HELLO} " in ln)
    for cell in (row["ip"], row["hostVeth"], row["netns"], row["cgroup"], "64Mi", "50000/100000", str(state["pid"])):
        assert cell in line, (cell, line)
    ins = kc.inspect(HELLO)
    assert ins["veth"] == {"name": row["hostVeth"], "exists": True, "master": kc.cluster.bridge}
    c = ins["containers"][0]
    assert c["pid"] == state["pid"] and c["runc"]["status"] == "running"
    assert c["namespaces"]["net"] == ins["sandbox"]["inodes"]["net"] == os.stat(row["netns"]).st_ino
    assert c["usage"]["memory_limit_bytes"] == 64 * 2**20 and c["usage"]["cpu_quota_us"] == 50000


def test_debug_cli_with_master_down(kc: E2ECluster, hello: dict) -> None:
    uid = hello["metadata"]["uid"]
    _check_debug(kc, uid)
    kc.cluster.stop("master")
    try:
        assert kc.kubectl("get", "pods", "--request-timeout=2s", check=False).returncode != 0
        _check_debug(kc, uid)
    finally:
        kc.cluster.up(timeout=60)
    assert kc.pod(HELLO)["status"]["phase"] == "Running"


# -- 5. delete: graceful, and every kernel object goes ----------------------------

def test_delete_pod(kc: E2ECluster, hello: dict) -> None:
    uid = hello["metadata"]["uid"]
    ins = kc.inspect(HELLO)
    ip, veth, rid = ins["ip"], ins["hostVeth"], f"{uid}-main"
    ns_dir = os.path.join(kc.cluster.run_dir, "ns", uid)
    ipam = Path(kc.cluster.data_dir, "cni", "coracle", ip)
    assert ipam.exists() and uid in ipam.read_text()
    assert _runc_state(kc, rid) is not None
    assert any(m.startswith(ns_dir) for m in _mounts())

    t = time.monotonic()
    # grace is 30 s; the pod's trap ends it on SIGTERM, so a quick return shows the graceful path
    p = kc.kubectl("delete", "pod", HELLO, "--timeout=60s", timeout=70)
    took = time.monotonic() - t
    assert f'pod "{HELLO}" deleted' in p.stdout
    assert took < 15, f"delete took {took:.1f}s: SIGTERM did not end the pod"
    assert kc.kubectl("get", "pod", HELLO, check=False).returncode != 0

    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f" {veth}@" not in links and f" {veth}:" not in links
    assert not [m for m in _mounts() if m.startswith(ns_dir)]
    assert not os.path.exists(ns_dir)
    left = [d for d in Path("/sys/fs/cgroup").glob(f"*/{kc.cluster.cgroup_root}/pod{uid}")]
    assert not left, left
    assert not ipam.exists()
    assert not any(uid in f.read_text() for f in Path(kc.cluster.data_dir, "cni").rglob("*")
                   if f.is_file() and f.name[0].isdigit())
    assert _runc_state(kc, rid) is None
    assert not Path(kc.cluster.data_dir, "pods", uid).exists()
    assert subprocess.run(["ping", "-c1", "-W1", ip], capture_output=True).returncode != 0
