"""End to end: the pod spec the agent honours and its restart safety, on a real one-node cluster.

Node crt-life, bridge crt-bl<rand>, cluster CIDR 10.248.0.0/16, service CIDR 10.100.0.0/16, back-off
base 1 s (tests/e2e/cluster_fixture.py).  Covered: init containers in order, readiness (exec) and
liveness (tcpSocket to the pod IP) probes, preStop and the termination message, the agent killed
with SIGKILL re-adopting a running pod (same PID, no restart), a pod deleted while the agent was
down cleaned up when it returns, and an injected crash (CORACLE_CRASH_AT) during a pod's build.
Teardown purges the cluster and asserts nothing is left on the host.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster_fixture import E2ECluster, have_tools, wait_for  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(have_tools() is not None, reason=str(have_tools()))]


def manifest(name: str, spec: dict) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": {"terminationGracePeriodSeconds": 5, **spec}})


def box(name: str, script: str, **extra) -> dict:
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **extra}


@pytest.fixture(scope="module")
def kc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ECluster]:
    e = E2ECluster.make(Path(tmp_path_factory.mktemp("crt-life")), node_name="crt-life", bridge_prefix="crt-bl",
                        cluster_cidr="10.248.0.0/16", service_cidr="10.100.0.0/16")
    try:
        e.cluster.up(timeout=60)
        yield e
    finally:
        os.environ.pop("CORACLE_CRASH_AT", None)
        left = e.teardown()
        assert not left, "left behind:\n" + "\n".join(left) + "\n" + e.logs()


def _delete(kc: E2ECluster, *names: str) -> None:
    kc.kubectl("delete", "pod", *names, "--ignore-not-found", "--wait=true", "--timeout=60s", timeout=70, check=False)


def _cond(pod: dict, t: str) -> str:
    return {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions") or []}.get(t, "")


def test_init_containers_then_readiness(kc: E2ECluster) -> None:
    spec = {"initContainers": [box("first", "echo one; sleep 1"), box("second", "echo two")],
            "containers": [box("main", "sleep 3; touch /tmp/ready; sleep 3600",
                                readinessProbe={"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1})]}
    kc.apply(manifest("crt-init", spec))
    try:
        p = wait_for(lambda: (q := kc.pod("crt-init")) and q.get("status", {}).get("initContainerStatuses") and q,
                     30, "init statuses")
        wait_for(lambda: "Init:" in kc.kubectl("get", "pod", "crt-init").stdout or
                 _cond(kc.pod("crt-init"), "Initialized") == "True", 20, "Init:x/y column")
        p = wait_for(lambda: (q := kc.pod("crt-init")) and q["status"].get("phase") == "Running" and q, 30, "Running")
        inits = p["status"]["initContainerStatuses"]
        assert [s["state"]["terminated"]["reason"] for s in inits] == ["Completed", "Completed"]
        assert inits[0]["state"]["terminated"]["finishedAt"] <= inits[1]["state"]["terminated"]["startedAt"]
        assert _cond(p, "Initialized") == "True"
        assert _cond(p, "Ready") == "False"          # the probe has not passed yet
        wait_for(lambda: _cond(kc.pod("crt-init"), "Ready") == "True", 30, "ready by the exec probe")
    finally:
        _delete(kc, "crt-init")


def test_liveness_tcp_probe_restarts_and_termination_message(kc: E2ECluster) -> None:
    # nc serves the port for ~4 s, then exits: the tcpSocket probe to the pod IP fails and the container restarts
    live = {"tcpSocket": {"port": 8080}, "periodSeconds": 1, "failureThreshold": 2, "timeoutSeconds": 1}
    spec = {"containers": [box("web", "timeout 4 nc -lk -p 8080 -e cat; sleep 3600", livenessProbe=live)]}
    msg = {"restartPolicy": "Never",
           "containers": [box("job", "echo 'bye now' > /dev/termination-log; exit 3")]}
    kc.apply(manifest("crt-live", spec))
    kc.apply(manifest("crt-msg", msg))
    try:
        p = wait_for(lambda: (q := kc.pod("crt-msg")) and q["status"].get("phase") == "Failed" and q, 30, "Failed")
        t = p["status"]["containerStatuses"][0]["state"]["terminated"]
        assert t["exitCode"] == 3 and t["message"].strip() == "bye now"
        p = wait_for(lambda: (q := kc.pod("crt-live")) and
                     (q["status"].get("containerStatuses") or [{}])[0].get("restartCount", 0) >= 1 and q,
                     40, "a liveness restart")
        last = p["status"]["containerStatuses"][0]["lastState"]["terminated"]
        assert last["exitCode"] in (137, 143)
        ev = kc.kubectl("get", "events", "--field-selector", "involvedObject.name=crt-live").stdout
        assert "liveness" in ev
    finally:
        _delete(kc, "crt-live", "crt-msg")


def _agent_pid(kc: E2ECluster) -> int:
    pid = kc.cluster.running("agent")
    assert pid
    return pid


def _kill_agent(kc: E2ECluster) -> None:
    pid = _agent_pid(kc)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: kc.cluster.running("agent") is None, 10, "agent gone")


def test_agent_sigkill_readopts_and_cleans_pods_deleted_meanwhile(kc: E2ECluster) -> None:
    kc.apply(manifest("crt-keep", {"containers": [box("main", "sleep 3600")]}))
    kc.apply(manifest("crt-gone", {"containers": [box("main", "sleep 3600")]}))
    try:
        for n in ("crt-keep", "crt-gone"):
            kc.kubectl("wait", "--for=condition=Ready", f"pod/{n}", "--timeout=60s", timeout=70)
        startup = wait_for(lambda: (s := kc.inspect("crt-keep")["startup"]) and s[-1]["phase"] == "status" and s,
                           10, "the start-up phases in debug inspect")
        assert [(r["phase"], r["container"]) for r in startup] == [
            ("seen", None), ("sandbox", None), ("network", None), ("cgroup", None), ("etc", None),
            ("rootfs", "main"), ("bundle", "main"), ("runc-create", "main"), ("runc-start", "main"), ("status", None)]
        assert all(r["durationMs"] >= 0 for r in startup) and startup[-1]["sinceSeenMs"] > startup[7]["durationMs"]
        kc.inspect("crt-gone")
        keep_uid, gone_uid = kc.pod("crt-keep")["metadata"]["uid"], kc.pod("crt-gone")["metadata"]["uid"]
        before = kc.pod("crt-keep")["status"]["containerStatuses"][0]
        pid = _record(kc, keep_uid)["containers"]["main"]["pid"]
        assert pid and os.path.exists(f"/proc/{pid}")
        _kill_agent(kc)
        # deleted while the agent is down: the API keeps it (graceful) until the agent comes back
        kc.kubectl("delete", "pod", "crt-gone", "--wait=false")
        kc.cluster.up(timeout=60)
        wait_for(lambda: kc.kubectl("get", "pod", "crt-gone", check=False).returncode != 0, 40, "crt-gone removed")
        assert not Path(kc.cluster.data_dir, "pods", gone_uid).exists()
        assert _record(kc, keep_uid)["containers"]["main"]["pid"] == pid and os.path.exists(f"/proc/{pid}")
        cs = kc.pod("crt-keep")["status"]["containerStatuses"][0]
        assert cs["restartCount"] == 0 and cs["containerID"] == before["containerID"]
        assert cs["state"]["running"]["startedAt"] == before["state"]["running"]["startedAt"]
        assert kc.inspect("crt-keep")["startup"] == startup  # re-adopting does not rewrite the start-up
    finally:
        _delete(kc, "crt-keep", "crt-gone")


def _record(kc: E2ECluster, uid: str) -> dict:
    return json.loads(Path(kc.cluster.data_dir, "pods", uid, "record.json").read_text())


@pytest.mark.parametrize("step", ["network", "runc-create"])
def test_crash_point_during_build_then_runs_once(kc: E2ECluster, step: str) -> None:
    name = f"crt-crash-{step}"
    _kill_agent(kc)
    os.environ["CORACLE_CRASH_AT"] = step
    try:
        kc.cluster.up(timeout=60)
    finally:
        os.environ.pop("CORACLE_CRASH_AT", None)
    try:
        kc.apply(manifest(name, {"containers": [box("main", "sleep 3600")]}))
        wait_for(lambda: kc.cluster.running("agent") is None, 30, f"the agent crashing at {step}")
        kc.cluster.up(timeout=60)
        kc.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=60s", timeout=70)
        time.sleep(1)
        cs = kc.pod(name)["status"]["containerStatuses"][0]
        assert cs["restartCount"] == 0
        runc = os.path.join(kc.cluster.run_dir, "runc")
        ids = subprocess.run(["runc", "--root", runc, "list", "-q"], capture_output=True, text=True).stdout.split()
        uid = kc.pod(name)["metadata"]["uid"]
        assert [i for i in ids if i.startswith(uid)] == [f"{uid}-main"]
        kc.inspect(name)
    finally:
        _delete(kc, name)
