"""The kernel side of one pod, synchronous and idempotent: build the sandbox
(namespaces, network, cgroup, /etc files), start, check and stop containers,
and tear everything down.  The pod worker calls these from worker threads;
every step saves the record first, with names derived from the pod UID, so
a crash at any point is finished or undone by the next sync.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from apimachinery import netplan
from cgroups import Cgroups, CgroupError, Resources
from nodeagent.runtime import oci
from nodeagent.pod import spec as podspec
from nodeagent.pod import probes
from nodeagent.runtime import rootfs as overlay_rootfs
from nodeagent.runtime.images import Image, ImageStore
from nodeagent.pod.network import Network
from nodeagent.pod.record import PodRecord, RecordStore
from nodeagent.runtime.runc import ContainerRuntime, RuncError
from nodeagent.pod.sandbox import Sandbox
from nodeagent.pod import containers, phases, podlog
from nodeagent.pod.clock import Clock, RealClock, rfc3339

log = logging.getLogger("coracle.agent.pod")
Obj = dict[str, Any]
CLUSTER_DNS = netplan.dns_ip()
QOS_PARENTS = ("", "burstable", "besteffort")
BESTEFFORT_SHARES = 2
# The build and teardown steps a crash can be injected after (CORACLE_CRASH_AT=<step>), for the
# restart-safety tests: the agent dies with os._exit(137) right after that step, as a SIGKILL would.
# "ip" and "veth" are hooks inside cni.plugin.add (after the IP reservation, after the veth).
BUILD_STEPS = ("namespaces", "ip", "veth", "network", "cgroup", "etc", "rootfs", "bundle", "runc-create", "runc-start")
TEARDOWN_STEPS = ("td-runc", "td-rootfs", "td-network", "td-sandbox", "td-cgroup")
CRASH_AT = os.environ.get("CORACLE_CRASH_AT", "")


def crash_point(step: str) -> None:
    """Die here, without any cleanup, when CORACLE_CRASH_AT names this step (read once, at start)."""
    if CRASH_AT and CRASH_AT == step:
        log.warning("CORACLE_CRASH_AT=%s: exiting at once", step)
        logging.shutdown()
        os._exit(137)


def _host_resolv() -> str:
    """The node's own resolv.conf (dnsPolicy Default, hostNetwork pods)."""
    try:
        with open("/etc/resolv.conf") as f:
            return f.read()
    except OSError:
        return ""


class RootfsDriver(Protocol):
    """A container's root filesystem in its container dir (real: nodeagent.runtime.rootfs, an overlay mount)."""

    def ensure(self, container_dir: str, image: Image) -> str:
        """Make (or finish) the rootfs; return its path.  Idempotent."""
        ...

    def remove(self, container_dir: str) -> None:
        """Take the rootfs down and delete container_dir.  Idempotent."""
        ...


@dataclass
class PodHost:
    records: RecordStore
    sandbox: Sandbox
    network: Network
    cgroups: Cgroups
    runtime: ContainerRuntime
    images: ImageStore
    cgroup_root: str
    node_name: str
    host_ip: str
    backoff_base: float = 10.0
    limits: oci.AgentLimits | None = None
    rootfs: RootfsDriver = field(default=overlay_rootfs)  # the module is the real driver
    lookup: podspec.Lookup | None = None  # configmaps/secrets from the agent's informers, when served
    node_capacity: podspec.NodeCapacity = field(default_factory=podspec.NodeCapacity)
    exec_fn: probes.ExecFn | None = None  # exec probes and hooks; default: `runc exec` under the runtime's root
    cluster_dns: str = CLUSTER_DNS  # the nameserver of ClusterFirst pods (podspec.cluster_dns of the service CIDR)
    clock: Clock = field(default_factory=RealClock)

    async def exec_in(self, rid: str, argv: list[str], timeout: float) -> int:
        """Run argv in a running container (probes, hooks); its exit code."""
        if self.exec_fn is not None:
            return await self.exec_fn(rid, argv, timeout)
        root = getattr(self.runtime, "root", None)
        if root is None:
            return 1
        return await probes.runc_exec(root, rid, argv, timeout, getattr(self.runtime, "binary", "runc"))

    def runtime_id(self, uid: str, name: str) -> str:
        return f"{uid}-{name}"

    # -- sandbox -----------------------------------------------------------
    def ensure_sandbox(self, pod: Obj, rec: PodRecord) -> None:
        """Namespaces, network, pod cgroup and the pod's /etc files.  Idempotent."""
        md = pod["metadata"]
        hostname = (pod["spec"].get("hostname") or md["name"])[:63]
        host_net = bool(pod["spec"].get("hostNetwork"))
        if not rec.cgroup:
            rec.cgroup = podspec.pod_cgroup(self.cgroup_root, pod)
            self.records.save(rec)
        clock = self.clock
        m = phases.mark(clock)
        paths = self.sandbox.ensure(rec.uid, hostname)
        phases.done(rec, "sandbox", m, clock)
        crash_point("namespaces")
        m = phases.mark(clock)
        if host_net:  # no veth, no IP: the pod uses the node's network and UTS namespaces
            ip, veth_name = self.host_ip, ""
            hostname = os.uname().nodename
        else:
            net = self.network.setup(rec.uid, paths.net)
            ip, veth_name = net.ip, net.host_veth
        phases.done(rec, "network", m, clock)
        crash_point("network")
        m = phases.mark(clock)
        self._ensure_qos_parents()
        self.cgroups.ensure(rec.cgroup, podspec.pod_resources(pod))
        phases.done(rec, "cgroup", m, clock)
        crash_point("cgroup")
        m = phases.mark(clock)
        etc = os.path.join(self.records.pod_dir(rec.uid), "etc")
        os.makedirs(etc, exist_ok=True)
        self._write(os.path.join(etc, "hosts"), podspec.hosts_file(pod, ip))
        self._write(os.path.join(etc, "hostname"), hostname + "\n")
        self._write(os.path.join(etc, "resolv.conf"), podspec.resolv_conf(pod, self.cluster_dns, _host_resolv()))
        phases.done(rec, "etc", m, clock)
        changed = (rec.ip, rec.host_veth, rec.netns) != (ip, veth_name, paths.net)
        rec.ip, rec.host_veth = ip, veth_name
        rec.netns, rec.ipcns, rec.utsns = paths.net, paths.ipc, paths.uts
        if not rec.started_at:
            rec.started_at = rfc3339(self.clock.now())
            changed = True
        if changed:
            self.records.save(rec)
        crash_point("etc")

    def _ensure_qos_parents(self) -> None:
        """As kubelet: the QoS parents under the root; BestEffort pods share the smallest CPU weight."""
        self.cgroups.ensure(self.cgroup_root)
        self.cgroups.ensure(f"{self.cgroup_root}/burstable")
        self.cgroups.ensure(f"{self.cgroup_root}/besteffort", Resources(cpu_shares=BESTEFFORT_SHARES))

    @staticmethod
    def _write(path: str, text: str) -> None:
        try:
            with open(path) as f:
                if f.read() == text:
                    return
        except FileNotFoundError:
            pass
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)

    # -- containers (nodeagent.pod.containers) ---------------------------
    def start_container(self, pod: Obj, rec: PodRecord, spec_c: Obj) -> list[str]:
        """Create and start one container (or finish a half-done start). Returns warnings for events."""
        return containers.start_container(self, pod, rec, spec_c)

    def check_exit(self, rec: PodRecord, name: str, spec_c: Obj | None = None) -> bool:
        """Record a running container's exit if the shim wrote one. Returns True when it exited."""
        return containers.check_exit(self, rec, name, spec_c)

    def prepare_restart(self, rec: PodRecord, name: str) -> None:
        containers.prepare_restart(self, rec, name)

    def signal_container(self, rec: PodRecord, name: str, sig: int) -> None:
        containers.signal_container(self, rec, name, sig)

    def termination_message(self, rec: PodRecord, name: str, spec_c: Obj | None) -> str:
        return containers.termination_message(self, rec, name, spec_c)

    # -- teardown ----------------------------------------------------------
    def teardown(self, uid: str, rec: PodRecord | None, keep_record: bool) -> list[str]:
        """Remove every kernel object of the pod; go on past errors and return them all."""
        errs: list[str] = []

        def attempt(what: str, fn, *a) -> None:
            try:
                fn(*a)
            except Exception as e:  # noqa: BLE001 - teardown must go on
                errs.append(f"{what}: {e}")

        ids = {c.runtime_id for c in (rec.containers.values() if rec else []) if c.runtime_id}
        for _ in range(3):
            # `runc list` fails when another container's state dir vanishes under it (a concurrent
            # delete); that is a race, not a leak: try again, and fall back to the record's ids.
            try:
                ids |= {c.get("id", "") for c in self.runtime.list() if c.get("id", "").startswith(uid + "-")}
                break
            except RuncError as e:
                podlog.for_pod(log, self.node_name, uid, rec=rec).debug("runc list (retrying): %s", e)
                time.sleep(0.02)
        for rid in sorted(ids):
            attempt(f"runc delete {rid}", self.runtime.delete, rid, True)
        crash_point("td-runc")
        cdirs = os.path.join(self.records.pod_dir(uid), "containers")
        for name in (os.listdir(cdirs) if os.path.isdir(cdirs) else []):
            attempt(f"rootfs {name}", self.rootfs.remove, os.path.join(cdirs, name))
        crash_point("td-rootfs")
        netns = rec.netns if rec and rec.netns else self.sandbox.paths(uid).net
        attempt("network", self.network.teardown, uid, netns if os.path.exists(netns) else None, True)
        crash_point("td-network")
        attempt("sandbox", self.sandbox.remove, uid)
        crash_point("td-sandbox")
        cgroups = [rec.cgroup] if rec and rec.cgroup else []
        cgroups += [f"{self.cgroup_root}/{p}/pod{uid}".replace("//", "/") for p in QOS_PARENTS]
        for path in dict.fromkeys(cgroups):
            attempt(f"cgroup {path}", self._remove_cgroup, path)
        crash_point("td-cgroup")
        if keep_record:
            if os.path.isdir(cdirs):
                attempt("container dirs", shutil.rmtree, cdirs)
        else:
            attempt("pod dir", self._rmtree, self.records.pod_dir(uid))
        return errs

    def _remove_cgroup(self, path: str) -> None:
        if self.cgroups.exists(path):
            for _ in range(20):
                try:
                    self.cgroups.remove(path)
                    return
                except CgroupError:
                    for pid in self.cgroups.pids(path):
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    time.sleep(0.05)
            self.cgroups.remove(path)

    @staticmethod
    def _rmtree(path: str) -> None:
        if os.path.exists(path):
            shutil.rmtree(path)
