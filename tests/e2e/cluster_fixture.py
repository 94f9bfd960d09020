"""A real one-node Coracle cluster for the e2e tests, started with the same
code as `scripts/up` (coracle.localcluster.LocalCluster) in a temp dir with its own
ports, bridge, cgroup root and CIDRs, plus the helpers the tests drive it
with: the real `kubectl`, `coracle debug`, deadline polling, and the
leftover check that runs after `down(purge=True)`.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from coracle.localcluster import LocalCluster

REPO = Path(__file__).resolve().parents[2]
CLUSTER_CIDR = "10.246.0.0/16"
SERVICE_CIDR = "10.98.0.0/16"
T = TypeVar("T")


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(fn: Callable[[], T], timeout: float, what: str, every: float = 0.2) -> T:
    """Poll fn() until it returns something truthy; fail with the last value seen at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - keep polling; report the last error at the deadline
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(every)


@dataclass
class E2ECluster:
    tmp: Path
    cluster: LocalCluster
    seen_veths: set[str] = field(default_factory=set)

    @classmethod
    def make(cls, tmp: Path, node_name: str = "crt-e2e", bridge_prefix: str = "crt-br",
             cluster_cidr: str = CLUSTER_CIDR, service_cidr: str = SERVICE_CIDR) -> E2ECluster:
        tag = secrets.token_hex(2)
        c = LocalCluster(data_dir=str(tmp / "data"), log_dir=str(tmp / "log"), run_dir=str(tmp / "run"),
                         kubeconfig=str(tmp / "kubeconfig"), api_port=free_port(), agent_port=free_port(),
                         node_name=node_name, cgroup_root=f"coracle-t-{tag}", bridge=f"{bridge_prefix}{tag}",
                         cluster_cidr=cluster_cidr, service_cidr=service_cidr, backoff_base=1.0)
        return cls(tmp, c)

    # -- driving -----------------------------------------------------------
    def _env(self) -> dict[str, str]:
        return dict(os.environ, KUBECONFIG=self.cluster.kubeconfig, HOME=str(self.tmp))

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 30,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(["kubectl", "--cache-dir", str(self.tmp / "kcache"), *args], input=input,
                           capture_output=True, text=True, env=self._env(), timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def kubectl_popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(["kubectl", "--cache-dir", str(self.tmp / "kcache"), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self._env())

    def pod(self, name: str) -> dict:
        return json.loads(self.kubectl("get", "pod", name, "-o", "json").stdout)

    def apply(self, manifest: str) -> None:
        self.kubectl("apply", "-f", "-", input=manifest)

    def debug(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        c = self.cluster
        p = subprocess.run([sys.executable, "-m", "coracle.cli", "debug", "--state-dir", c.data_dir,
                            "--run-dir", c.run_dir, "--cgroup-root", c.cgroup_root, *args],
                           capture_output=True, text=True, cwd=REPO, timeout=30)
        if check and p.returncode != 0:
            raise AssertionError(f"coracle debug {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def inspect(self, pod: str) -> dict:
        out = json.loads(self.debug("inspect", pod).stdout)
        if out.get("hostVeth"):
            self.seen_veths.add(out["hostVeth"])
        return out

    def logs(self) -> str:
        parts = []
        for name in ("master.log", "agent.log"):
            p = Path(self.cluster.log_dir) / name
            text = p.read_text(errors="replace") if p.exists() else "(missing)"
            parts.append(f"===== {name} (last 200 lines) =====\n" + "\n".join(text.splitlines()[-200:]))
        return "\n".join(parts)

    # -- leftovers ---------------------------------------------------------
    def leftovers(self) -> list[str]:
        """Every trace of this cluster still on the host (empty after a clean `down(purge=True)`)."""
        c, tmp = self.cluster, str(self.tmp)
        left: list[str] = []
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        names = {m.group(1) for m in re.finditer(r"^\d+: ([^:@]+)[@:]", links, re.M)}
        left += [f"link {n}" for n in sorted(names & ({c.bridge} | self.seen_veths))]
        routes = subprocess.run(["ip", "route", "show", "table", "all"], capture_output=True, text=True).stdout
        prefixes = "|".join(re.escape(".".join(cidr.split(".")[:2]) + ".") for cidr in (c.cluster_cidr, c.service_cidr))
        left += [f"route {r}" for r in routes.splitlines() if re.search(rf"\b({prefixes})", r)]
        with open("/proc/self/mountinfo") as f:
            left += [f"mount {ln.split()[4]}" for ln in f if ln.split()[4].startswith(tmp)]
        for ctrl in os.listdir("/sys/fs/cgroup"):
            d = os.path.join("/sys/fs/cgroup", ctrl, c.cgroup_root)
            if os.path.isdir(d):
                left.append(f"cgroup {d}")
        runc_root = os.path.join(c.run_dir, "runc")
        if os.path.isdir(runc_root):
            out = subprocess.run(["runc", "--root", runc_root, "list", "-q"], capture_output=True, text=True).stdout
            left += [f"runc container {x}" for x in out.split()]
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if int(pid) != os.getpid() and tmp in cmd and ("coracle" in cmd or "runc" in cmd):
                left.append(f"process {pid}: {cmd[:200]}")
        return left

    def teardown(self) -> list[str]:
        """down() (checking runc while the run dir still exists), then down(purge=True); return what is left."""
        errs = self.cluster.down()
        left = [f"down: {e}" for e in errs] + self.leftovers()
        errs = self.cluster.down(purge=True)
        left += [f"down --purge: {e}" for e in errs] + self.leftovers()
        if os.path.exists(self.cluster.data_dir) or os.path.exists(self.cluster.run_dir):
            left.append("data or run dir not purged")
        return sorted(set(left))


def sleeper_pod(name: str) -> str:
    """A busybox pod that sleeps an hour and stops at once when deleted (a target for exec and clients)."""
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
"""


def running_cluster(tmp: Path, node_name: str, bridge_prefix: str, cluster_cidr: str, service_cidr: str,
                    manifest: str = "", running: tuple[str, ...] = (), timeout: float = 90) -> Iterator[E2ECluster]:
    """A module fixture's body: a cluster up, `manifest` applied, the `running` pods Running; yielded,
    then torn down, asserting nothing is left (the cluster's logs printed when set-up or a test failed)."""
    e = E2ECluster.make(tmp, node_name=node_name, bridge_prefix=bridge_prefix, cluster_cidr=cluster_cidr,
                        service_cidr=service_cidr)
    ok = False
    try:
        e.cluster.up(timeout=timeout)
        if manifest:
            e.apply(manifest)
        for pod in running:
            wait_for(lambda pod=pod: e.pod(pod)["status"].get("phase") == "Running", timeout, f"{pod} Running")
        yield e
        ok = True
    finally:
        if not ok:
            print(e.logs(), file=sys.__stderr__)
        left = e.teardown()
        assert not left, "left behind:\n" + "\n".join(left)


def have_tools() -> str | None:
    """Why the e2e cluster cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("kubectl", "runc", "ping"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    return None
