"""The real `kubectl` (1.32 via the gcloud dispatcher) against a real
`coracle master` process on a free loopback port, with its own SQLite file,
kubeconfig and kubectl cache dir.  No node agent: pods stay Pending."""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")]
REPO = Path(__file__).resolve().parents[2]

POD = """apiVersion: v1
kind: Pod
metadata:
  name: crt-web
  labels:
    app: {app}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: ["sleep", "3600"]
"""


class Master:
    def __init__(self, tmp: Path, components: str | None = None):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.tmp = tmp
        self.kubeconfig = str(tmp / "kubeconfig")
        self.cache = str(tmp / "kube-cache")
        self.log = open(tmp / "master.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "coracle.cli", "master", "--store", f"sqlite:///{tmp}/state.db",
             "--port", str(self.port), "--kubeconfig", self.kubeconfig,
             *(["--components", components] if components else [])],
            cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"master did not start:\n{(tmp / 'master.log').read_text()}")
            time.sleep(0.1)

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, HOME=str(self.tmp))
        return subprocess.run(["kubectl", "--cache-dir", self.cache, *args], input=input, capture_output=True,
                              text=True, env=env, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, HOME=str(self.tmp))
        return subprocess.Popen(["kubectl", "--cache-dir", self.cache, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)

    def stop(self) -> int:
        try:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return -9
        finally:
            self.log.close()


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    m = Master(tmp_path_factory.mktemp("crt-master"))
    stopped = False
    try:
        yield m
        rc = m.stop()
        stopped = True
        assert rc == 0, (m.tmp / "master.log").read_text()
    finally:
        if not stopped:
            m.stop()


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout={r.stdout}\nstderr={r.stderr}"
    return r.stdout


def test_version(master: Master) -> None:
    out = json.loads(ok(master.kubectl("version", "-o", "json")))
    assert out["serverVersion"]["major"] == "1" and out["serverVersion"]["minor"] == "32"


def test_api_resources(master: Master) -> None:
    rows = {line.split()[0]: line for line in ok(master.kubectl("api-resources")).splitlines()[1:]}
    assert {"pods", "nodes", "namespaces", "events", "leases"} <= set(rows)
    assert "coordination.k8s.io/v1" in rows["leases"] and "po" in rows["pods"].split()


def test_get_namespaces(master: Master) -> None:
    out = ok(master.kubectl("get", "ns"))
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "AGE"]
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= set(rows)
    assert rows["default"][1] == "Active"


def test_apply_create_unchanged_configured(master: Master) -> None:
    r = master.kubectl("apply", "-f", "-", input=POD.format(app="web"))
    assert ok(r).strip() == "pod/crt-web created"
    assert ok(master.kubectl("apply", "-f", "-", input=POD.format(app="web"))).strip() == "pod/crt-web unchanged"
    assert ok(master.kubectl("apply", "-f", "-", input=POD.format(app="web2"))).strip() == "pod/crt-web configured"
    got = json.loads(ok(master.kubectl("get", "pod", "crt-web", "-o", "json")))
    assert got["metadata"]["labels"] == {"app": "web2"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in got["metadata"]["annotations"]


def test_replace(master: Master) -> None:
    ok(master.kubectl("apply", "-f", "-", input=POD.format(app="web2")))
    new = POD.format(app="web2").replace("busybox:1.36", "busybox:1.37")
    assert ok(master.kubectl("replace", "-f", "-", input=new)).strip() == "pod/crt-web replaced"
    got = json.loads(ok(master.kubectl("get", "pod", "crt-web", "-o", "json")))
    assert got["spec"]["containers"][0]["image"] == "busybox:1.37"
    ok(master.kubectl("replace", "-f", "-", input=POD.format(app="web2")))


def test_get_wide_and_describe(master: Master) -> None:
    ok(master.kubectl("apply", "-f", "-", input=POD.format(app="web2")))
    lines = ok(master.kubectl("get", "pods", "-o", "wide")).splitlines()
    assert lines[0].split()[:8] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED"]
    row = next(line.split() for line in lines[1:] if line.startswith("crt-web "))
    assert row[1:4] == ["0/1", "Pending", "0"]
    out = ok(master.kubectl("describe", "pod", "crt-web"))
    assert "Name:" in out and "crt-web" in out and "Namespace:" in out and "busybox:1.36" in out
    assert "Status:" in out and "Pending" in out


def test_label_and_annotate(master: Master) -> None:
    ok(master.kubectl("apply", "-f", "-", input=POD.format(app="web2")))
    assert "labeled" in ok(master.kubectl("label", "pod", "crt-web", "crt=yes", "--overwrite"))
    assert "annotated" in ok(master.kubectl("annotate", "pod", "crt-web", "crt/note=hi", "--overwrite"))
    got = json.loads(ok(master.kubectl("get", "pod", "crt-web", "-o", "json")))
    assert got["metadata"]["labels"]["crt"] == "yes" and got["metadata"]["annotations"]["crt/note"] == "hi"
    assert "crt-web" in ok(master.kubectl("get", "pods", "-l", "crt=yes", "-o", "name"))
    assert ok(master.kubectl("get", "pods", "-l", "crt=no", "-o", "name")).strip() == ""


def test_get_watch_prints_change(master: Master) -> None:
    ok(master.kubectl("apply", "-f", "-", input=POD.format(app="web2")))
    proc = master.popen("get", "pods", "-w")
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    out: list[str] = []

    def until_rows(n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while sum(x.startswith("crt-web ") for x in out) < n:
            try:
                out.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"kubectl get -w printed {n} row(s) of crt-web within {timeout}s: {out}") from None
    try:
        until_rows(1)  # the list is printed; the watch starts from its resourceVersion, so a change made now is seen
        ok(master.kubectl("label", "pod", "crt-web", f"w={int(time.time())}", "--overwrite"))
        until_rows(2)
    finally:
        proc.terminate()
        proc.wait(10)
        reader.join(10)
        err = proc.stderr.read() if proc.stderr else ""
    assert out[0].split()[:3] == ["NAME", "READY", "STATUS"], (out, err)


def test_errors(master: Master) -> None:
    r = master.kubectl("get", "pod", "nope")
    assert r.returncode == 1 and 'pods "nope" not found' in r.stderr and "NotFound" in r.stderr
    r = master.kubectl("get", "foo")
    assert r.returncode == 1 and 'the server doesn\'t have a resource type "foo"' in r.stderr
    bad = POD.format(app="bad").replace("crt-web", "crt-bad").replace("    image: busybox:1.36\n", "")
    r = master.kubectl("create", "-f", "-", input=bad)
    assert r.returncode == 1 and 'The Pod "crt-bad" is invalid' in r.stderr, r.stderr
    assert "spec.containers[0].image: Required value" in r.stderr
    ok(master.kubectl("apply", "-f", "-", input=POD.format(app="web2")))
    r = master.kubectl("create", "-f", "-", input=POD.format(app="web2"))
    assert r.returncode == 1 and "AlreadyExists" in r.stderr


def test_delete_unbound_pod(master: Master) -> None:
    ok(master.kubectl("apply", "-f", "-", input=POD.format(app="web2").replace("crt-web", "crt-del")))
    t0 = time.monotonic()
    assert 'pod "crt-del" deleted' in ok(master.kubectl("delete", "pod", "crt-del", "--timeout=15s"))
    assert time.monotonic() - t0 < 10
    r = master.kubectl("get", "pod", "crt-del")
    assert r.returncode == 1 and "NotFound" in r.stderr
