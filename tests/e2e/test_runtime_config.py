"""`coracle master --runtime-config` with the real kubectl: switched-off
group-versions vanish from discovery, OpenAPI and REST paths; a group with one
of its two versions off keeps serving the other; the store keeps everything,
so a later master with the group back on serves the same objects; the
garbage collector and namespace controller keep working on what is served.

Each phase is its own `coracle master` process on a free loopback port over
one SQLite file in the test's temp dir, with a fresh kubectl cache."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")]
REPO = Path(__file__).resolve().parents[2]

HPA = """apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: crt-hpa}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: crt-web}
  maxReplicas: 4
  targetCPUUtilizationPercentage: 60
"""
INGRESS = """apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: crt-ing}
spec:
  defaultBackend: {service: {name: crt-svc, port: {number: 80}}}
"""


def owned_pod(name: str, api_version: str, kind: str) -> str:
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: {name}
  ownerReferences: [{{apiVersion: {api_version}, kind: {kind}, name: crt-owner,
                      uid: 4f1e2c1a-0000-4000-8000-00000000c0de}}]
spec:
  containers: [{{name: main, image: busybox, command: [sleep, "3600"]}}]
"""


class Master:
    """One `coracle master` process; `stop()` ends it (and only it)."""

    def __init__(self, tmp: Path, runtime_config: str, phase: str):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.tmp, self.phase = tmp, phase
        self.kubeconfig, self.cache = str(tmp / f"kubeconfig-{phase}"), str(tmp / f"kcache-{phase}")
        self.log_path = tmp / f"master-{phase}.log"
        args = [sys.executable, "-m", "coracle.cli", "master", "--store", f"sqlite:///{tmp}/state.db",
                "--port", str(self.port), "--kubeconfig", self.kubeconfig]
        if runtime_config:
            args += ["--runtime-config", runtime_config]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"master did not start:\n{self.log_path.read_text()}")
            time.sleep(0.1)

    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, HOME=str(self.tmp))
        return subprocess.run(["kubectl", "--cache-dir", self.cache, *args], input=input, capture_output=True,
                              text=True, env=env, timeout=30)

    def ok(self, *args: str, input: str | None = None) -> str:
        p = self.kubectl(*args, input=input)
        assert p.returncode == 0, f"kubectl {' '.join(args)}: {p.stdout}{p.stderr}"
        return p.stdout

    def fails(self, *args: str, input: str | None = None) -> str:
        p = self.kubectl(*args, input=input)
        assert p.returncode != 0, f"kubectl {' '.join(args)} should fail: {p.stdout}"
        return p.stderr

    def api_resources(self) -> dict[str, set[str]]:
        """api-resources as resource name -> its APIVERSIONs."""
        out: dict[str, set[str]] = {}
        for line in self.ok("api-resources", "--no-headers", "-o", "wide").splitlines():
            cols = line.split()
            version = next(c for c in cols[1:] if c == "v1" or "/" in c)
            out.setdefault(cols[0], set()).add(version)
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def masters(tmp_path: Path) -> Iterator[list[Master]]:
    started: list[Master] = []
    try:
        yield started
    finally:
        for m in started:
            m.stop()
        assert all(m.proc.poll() is not None for m in started)


def wait_for(fn, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_one_version_and_one_group_off(tmp_path: Path, masters: list[Master]) -> None:
    m = Master(tmp_path, "autoscaling/v2=false,networking.k8s.io/v1=false", "a")
    masters.append(m)
    res = m.api_resources()
    assert res["horizontalpodautoscalers"] == {"autoscaling/v1"}
    assert "ingresses" not in res and res["deployments"] == {"apps/v1"} and res["pods"] == {"v1"}
    versions = m.ok("api-versions").split()
    assert "autoscaling/v1" in versions and "autoscaling/v2" not in versions
    assert not any(v.startswith("networking.k8s.io/") for v in versions)

    assert "created" in m.ok("create", "-f", "-", input=HPA)
    table = m.ok("get", "hpa")
    assert "crt-hpa" in table and "Deployment/crt-web" in table
    assert m.ok("get", "hpa", "crt-hpa", "-o", "jsonpath={.apiVersion} {.spec.maxReplicas}") == "autoscaling/v1 4"
    assert "GROUP:      autoscaling\nKIND:       HorizontalPodAutoscaler\nVERSION:    v1\n" in m.ok("explain", "hpa")

    err = m.fails("get", "ingress")
    assert 'the server doesn\'t have a resource type "ingress"' in err
    # (--validate=false: with validation on, kubectl first asks for CRDs and /openapi/v2, which Coracle lacks)
    assert 'no matches for kind "Ingress" in version "networking.k8s.io/v1"' in \
        m.fails("apply", "--validate=false", "-f", "-", input=INGRESS)
    for raw in ("/apis/autoscaling/v2", "/apis/networking.k8s.io/v1", "/openapi/v3/apis/autoscaling/v2",
                "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/crt-hpa"):
        assert "NotFound" in m.fails("get", "--raw", raw), raw
    assert '"preferredVersion":{"groupVersion":"autoscaling/v1"' in m.ok("get", "--raw", "/apis/autoscaling")
    m.stop()

    # everything on again over the same store: the object was kept, and v2 serves it
    m2 = Master(tmp_path, "", "b")
    masters.append(m2)
    assert m2.api_resources()["horizontalpodautoscalers"] == {"autoscaling/v2"}  # preferred, listed once
    assert m2.ok("get", "hpa.v2.autoscaling", "crt-hpa", "-o",
                 "jsonpath={.apiVersion} {.spec.maxReplicas} {.spec.metrics[0].resource.target.averageUtilization}") \
        == "autoscaling/v2 4 60"
    assert "NotFound" not in m2.ok("get", "--raw", "/apis/networking.k8s.io/v1")


def test_only_core(tmp_path: Path, masters: list[Master]) -> None:
    m = Master(tmp_path, "api/all=false,api/v1=true", "core")
    masters.append(m)
    res = m.api_resources()
    assert res and all(v == {"v1"} for v in res.values()), res
    assert {"pods", "namespaces", "configmaps", "services"} <= set(res)
    assert m.ok("api-versions").split() == ["v1"]
    for kind in ("deployments", "hpa", "ingress", "roles", "leases", "endpointslices"):
        assert "the server doesn't have a resource type" in m.fails("get", kind), kind
    assert m.ok("get", "--raw", "/openapi/v3").count("serverRelativeURL") == 1

    # the garbage collector runs on what is served: an owner of a served kind that is gone
    # takes its dependent with it; an owner of a switched-off kind leaves its dependent alone
    m.ok("create", "-f", "-", input=owned_pod("crt-rs-child", "apps/v1", "ReplicaSet"))
    m.ok("create", "-f", "-", input=owned_pod("crt-cm-child", "v1", "ConfigMap"))
    wait_for(lambda: m.kubectl("get", "pod", "crt-cm-child").returncode != 0, 15, "the GC to collect crt-cm-child")
    assert "crt-rs-child" in m.ok("get", "pod", "crt-rs-child", "-o", "name")

    # the namespace controller empties and removes a namespace
    m.ok("create", "namespace", "crt-rc-ns")
    m.ok("create", "configmap", "crt-cm", "-n", "crt-rc-ns", "--from-literal=a=b")
    m.ok("delete", "namespace", "crt-rc-ns", "--wait=false")
    wait_for(lambda: m.kubectl("get", "namespace", "crt-rc-ns").returncode != 0, 20, "crt-rc-ns to go")
    m.ok("delete", "pod", "crt-rs-child", "--grace-period=0", "--force")
    log = m.log_path.read_text()
    assert "Traceback" not in log, log


def test_bad_runtime_config_is_refused(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "coracle.cli", "master", "--store", f"sqlite:///{tmp_path}/s.db",
                        "--port", "1", "--runtime-config", "apps/v3=false"], cwd=REPO, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2 and "group version apps/v3 that has not been registered" in p.stderr
