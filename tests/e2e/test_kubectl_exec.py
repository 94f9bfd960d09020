"""End to end through the real `kubectl`: exec (plain, -i, -it under a pty,
exit codes), port-forward, and logs (-f, --since, --timestamps, --tail, -c).

One node `crt-exec` with its own bridge, cgroup root and CIDRs (10.249.0.0/16
pods, 10.101.0.0/16 services); torn down at the end with a leftover check.
kubectl -> API server (WebSocket relay, master/apiserver/proxy.py) -> agent
(nodeagent/server/app.py) -> `runc exec` / a socket in the pod's netns.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster_fixture import E2ECluster, free_port, have_tools, running_cluster, wait_for  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(have_tools() is not None, reason=str(have_tools()))]

SERVER = "crt-x"
SERVER_POD = f"""apiVersion: v1
kind: Pod
metadata: {{name: {SERVER}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo started; mkdir -p /www; echo hello-from-pod > /www/index.html; exec httpd -f -p 8080 -h /www"]
"""
TICKER = "crt-xlog"
TICKER_POD = f"""apiVersion: v1
kind: Pod
metadata: {{name: {TICKER}}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "sleep 2; for i in 1 2 3 4; do echo line $i; sleep 1; done"]
"""


@pytest.fixture(scope="module")
def kc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ECluster]:
    yield from running_cluster(Path(tmp_path_factory.mktemp("crt-exec")), "crt-exec", "crt-bx", "10.249.0.0/16",
                               "10.101.0.0/16", SERVER_POD, (SERVER,), timeout=60)


def test_exec_prints_output(kc: E2ECluster) -> None:
    p = kc.kubectl("exec", SERVER, "--", "echo", "hi")
    assert p.stdout == "hi\n"
    p = kc.kubectl("exec", SERVER, "-c", "main", "--", "sh", "-c", "echo out; echo err >&2; cat /www/index.html")
    assert p.stdout == "out\nhello-from-pod\n" and "err" in p.stderr


def test_exec_exit_code(kc: E2ECluster) -> None:
    p = kc.kubectl("exec", SERVER, "--", "sh", "-c", "exit 3", check=False)
    assert p.returncode == 3, p
    assert "command terminated with exit code 3" in p.stderr


def test_exec_stdin(kc: E2ECluster) -> None:
    p = kc.kubectl("exec", "-i", SERVER, "--", "cat", input="hello\nworld\n")
    assert p.stdout == "hello\nworld\n"


def test_exec_runs_in_the_container(kc: E2ECluster) -> None:
    """The process is in the container's PID namespace (its init is httpd) and cgroup, not the host's."""
    p = kc.kubectl("exec", SERVER, "--", "cat", "/proc/1/comm", "/proc/self/cgroup")
    assert p.stdout.splitlines()[0] == "httpd"
    assert kc.cluster.cgroup_root in p.stdout


def test_exec_tty_under_a_pty(kc: E2ECluster) -> None:
    inner = shlex.join(["kubectl", "--cache-dir", str(kc.tmp / "kcache"), "exec", "-it", SERVER, "--",
                        "sh", "-c", "tty; stty size; exit 5"])
    p = subprocess.run(["script", "-qec", f"stty cols 91 rows 27; {inner}", "/dev/null"], capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL,
                       env=dict(os.environ, KUBECONFIG=kc.cluster.kubeconfig, HOME=str(kc.tmp)))
    assert re.search(r"/dev/pts/\d+", p.stdout), p
    assert "27 91" in p.stdout, p          # kubectl's terminal size reached the container's pty
    assert p.returncode == 5, p


def test_port_forward(kc: E2ECluster) -> None:
    local = free_port()
    pf = kc.kubectl_popen("port-forward", "--address", "127.0.0.1", f"pod/{SERVER}", f"{local}:8080")
    try:
        assert pf.stdout is not None
        line = pf.stdout.readline()
        assert f"127.0.0.1:{local}" in line, line + (pf.stderr.read() if pf.poll() is not None and pf.stderr else "")
        for _ in range(3):   # several connections over the one forward
            body = urllib.request.urlopen(f"http://127.0.0.1:{local}/index.html", timeout=10).read()
            assert body == b"hello-from-pod\n"
    finally:
        pf.terminate()
        pf.wait(timeout=10)


def test_logs_options(kc: E2ECluster) -> None:
    assert kc.kubectl("logs", SERVER).stdout == "started\n"
    assert kc.kubectl("logs", SERVER, "-c", "main", "--tail=1").stdout == "started\n"
    assert kc.kubectl("logs", SERVER, "--since=1h").stdout == "started\n"
    ts = kc.kubectl("logs", SERVER, "--timestamps").stdout
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z) started\n", ts)
    assert m, ts
    assert kc.kubectl("logs", SERVER, "--since-time=2100-01-01T00:00:00Z").stdout == ""


def test_logs_follow_streams_until_exit(kc: E2ECluster) -> None:
    kc.apply(TICKER_POD)
    try:
        wait_for(lambda: kc.pod(TICKER)["status"].get("phase") == "Running", 60, f"{TICKER} Running")
        f = kc.kubectl_popen("logs", "-f", TICKER)
        assert f.stdout is not None
        seen: list[tuple[float, str]] = []
        for line in f.stdout:
            seen.append((time.monotonic(), line))
        rc = f.wait(timeout=30)
        assert rc == 0 and [x for _, x in seen] == [f"line {i}\n" for i in range(1, 5)]
        assert seen[-1][0] - seen[0][0] > 2, "lines arrived all at once, not streamed"
        wait_for(lambda: kc.pod(TICKER)["status"].get("phase") == "Succeeded", 30, f"{TICKER} Succeeded")
    finally:
        kc.kubectl("delete", "pod", TICKER, "--wait=true", timeout=60, check=False)


def test_attach_streams_output(kc: E2ECluster) -> None:
    name = "crt-xatt"
    kc.apply(TICKER_POD.replace(TICKER, name).replace("line $i", "att $i"))
    try:
        wait_for(lambda: kc.pod(name)["status"].get("phase") == "Running", 60, f"{name} Running")
        p = kc.kubectl("attach", name, timeout=30)
        assert "att 4\n" in p.stdout and "line" not in p.stdout, p
    finally:
        kc.kubectl("delete", "pod", name, "--wait=true", timeout=60, check=False)
