"""`coracle up` / `coracle down`: a one-node cluster on this host — the
master on the embedded SQLite store and one node agent — started in the
background with logs under the log dir, and stopped again with every kernel
object removed.  scripts/up, scripts/down and the e2e tests all use this.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx

from apimachinery import netplan


@dataclass(frozen=True, slots=True)
class LocalCluster:
    data_dir: str = netplan.STATE_DIR
    log_dir: str = "/var/log/coracle"
    run_dir: str = netplan.RUN_DIR
    kubeconfig: str = "/etc/coracle/admin.kubeconfig"
    api_port: int = 6443
    agent_port: int = 10250
    node_name: str = ""
    cgroup_root: str = "coracle"
    bridge: str = netplan.BRIDGE
    cluster_cidr: str = netplan.CLUSTER_CIDR
    service_cidr: str = netplan.SERVICE_CIDR
    backoff_base: float = 10.0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def node(self) -> str:
        return self.node_name or socket.gethostname().lower()

    def _pidfile(self, what: str) -> str:
        return os.path.join(self.run_dir, f"{what}.pid")

    def _agent_args(self) -> list[str]:
        return ["--run-dir", self.run_dir, "--state-dir", self.data_dir,
                "--cgroup-root", self.cgroup_root, "--cluster-cidr", self.cluster_cidr,
                "--service-cidr", self.service_cidr, "--bridge", self.bridge]

    def _spawn(self, what: str, args: list[str]) -> int:
        os.makedirs(self.log_dir, exist_ok=True)
        os.makedirs(self.run_dir, exist_ok=True)
        log = open(os.path.join(self.log_dir, f"{what}.log"), "ab")
        proc = subprocess.Popen([sys.executable, "-m", "coracle.cli", *args], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                cwd=os.path.dirname(os.path.abspath(__file__)))
        log.close()
        with open(self._pidfile(what), "w") as f:
            f.write(str(proc.pid))
        return proc.pid

    def running(self, what: str) -> int | None:
        try:
            with open(self._pidfile(what)) as f:
                pid = int(f.read())
            try:  # started by this process (tests): reap it, or a dead child lingers as a zombie
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return None
            except ChildProcessError:
                pass
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def up(self, timeout: float = 60.0) -> None:
        """Start master and agent unless running; return once the Node is Ready."""
        os.makedirs(os.path.dirname(self.kubeconfig), exist_ok=True)
        if not self.running("master"):
            self._spawn("master", ["master", "--store", f"sqlite:///{self.data_dir}/master/state.db",
                                   "--port", str(self.api_port), "--kubeconfig", self.kubeconfig,
                                   "--cluster-cidr", self.cluster_cidr])
        deadline = time.monotonic() + timeout
        self._wait(lambda: httpx.get(f"{self.api_url}/readyz", timeout=1).status_code == 200, deadline, "master", "master")
        if not self.running("agent"):
            self._spawn("agent", ["agent", "--api", self.api_url, "--node-name", self.node, "--node-ip", "127.0.0.1",
                                  "--port", str(self.agent_port), "--backoff-base", str(self.backoff_base),
                                  *self._agent_args()])
        self._wait(self._node_ready, deadline, "node", "agent")

    def _node_ready(self) -> bool:
        r = httpx.get(f"{self.api_url}/api/v1/nodes/{self.node}", timeout=1)
        if r.status_code != 200:
            return False
        conds = r.json().get("status", {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

    def _wait(self, ready, deadline: float, what: str, proc: str) -> None:
        """Poll ready() until the deadline; fail early if the process that should get there died."""
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except httpx.HTTPError:
                pass
            if self.running(proc) is None:
                raise RuntimeError(f"the {proc} exited; see {os.path.join(self.log_dir, proc + '.log')}")
            time.sleep(0.1)
        raise TimeoutError(f"{what} not ready after the timeout; see the logs in {self.log_dir}")

    def stop(self, what: str, timeout: float = 15.0) -> None:
        pid = self.running(what)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            end = time.monotonic() + timeout
            while time.monotonic() < end and self.running(what):
                time.sleep(0.05)
            if self.running(what):
                os.kill(pid, signal.SIGKILL)
        try:
            os.remove(self._pidfile(what))
        except FileNotFoundError:
            pass

    def down(self, purge: bool = False) -> list[str]:
        """Stop both and remove every kernel object (pods, veths, cgroups, mounts, routes, bridge)."""
        from nodeagent.agent import AgentConfig, reset_node
        self.stop("agent")
        self.stop("master")
        cfg = AgentConfig(node_name=self.node, run_dir=self.run_dir, state_dir=self.data_dir,
                          cgroup_root=self.cgroup_root, cluster_cidr=self.cluster_cidr,
                          service_cidr=self.service_cidr, bridge=self.bridge)
        errs = reset_node(cfg)
        if purge:
            for path in (self.data_dir, self.log_dir, self.run_dir):
                shutil.rmtree(path, ignore_errors=True)
            for path in (self.kubeconfig,):
                if os.path.exists(path):
                    os.remove(path)
        return errs


def from_env() -> LocalCluster:
    """Overrides for the defaults, e.g. CORACLE_DATA_DIR, CORACLE_API_PORT (used by tests)."""
    kw: dict[str, object] = {}
    for field, conv in (("data_dir", str), ("log_dir", str), ("run_dir", str), ("kubeconfig", str),
                        ("api_port", int), ("agent_port", int), ("node_name", str), ("cgroup_root", str),
                        ("bridge", str), ("backoff_base", float)):
        v = os.environ.get(f"CORACLE_{field.upper()}")
        if v:
            kw[field] = conv(v)
    return LocalCluster(**kw)  # type: ignore[arg-type]


def main(argv: list[str]) -> int:
    c = from_env()
    if argv and argv[0] == "down":
        errs = c.down(purge="--purge" in argv)
        for e in errs:
            print(f"coracle down: {e}", file=sys.stderr)
        print("coracle down: stopped" + (" and purged" if "--purge" in argv else ""))
        return 1 if errs else 0
    c.up()
    print(f"Coracle is up: API {c.api_url}, node {c.node} Ready. Logs in {c.log_dir}.")
    print(f"  export KUBECONFIG={c.kubeconfig}")
    print("  kubectl get nodes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
