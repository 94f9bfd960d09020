"""The kernel side of one pod, synchronous and idempotent: build the sandbox
(namespaces, network, cgroup, /etc files), start, check and stop containers,
and tear everything down.  The pod worker calls these from worker threads;
every step saves the record first, with names derived from the pod UID, so
a crash at any point is finished or undone by the next sync.
"""
from __future__ import annotations

import calendar
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
from nodeagent.runtime.images import Image, ImageNotFound, ImageStore
from nodeagent.pod.network import Network
from nodeagent.pod.record import ContainerRecord, ContainerState, PodRecord, RecordStore
from nodeagent.runtime.runc import ContainerRuntime, RuncError
from nodeagent.pod.sandbox import Sandbox
from nodeagent.pod.status import backoff_delay, next_backoff_step

log = logging.getLogger("coracle.agent.pod")
Obj = dict[str, Any]
CLUSTER_DNS = netplan.dns_ip()
QOS_PARENTS = ("", "burstable", "besteffort")
BESTEFFORT_SHARES = 2
MAX_TERMINATION_MESSAGE = 4096
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


def _ts(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t if t is not None else time.time()))


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
        paths = self.sandbox.ensure(rec.uid, hostname)
        crash_point("namespaces")
        if host_net:  # no veth, no IP: the pod uses the node's network and UTS namespaces
            ip, veth_name = self.host_ip, ""
            hostname = os.uname().nodename
        else:
            net = self.network.setup(rec.uid, paths.net)
            ip, veth_name = net.ip, net.host_veth
        crash_point("network")
        self._ensure_qos_parents()
        self.cgroups.ensure(rec.cgroup, podspec.pod_resources(pod))
        crash_point("cgroup")
        etc = os.path.join(self.records.pod_dir(rec.uid), "etc")
        os.makedirs(etc, exist_ok=True)
        self._write(os.path.join(etc, "hosts"), podspec.hosts_file(pod, ip))
        self._write(os.path.join(etc, "hostname"), hostname + "\n")
        self._write(os.path.join(etc, "resolv.conf"), podspec.resolv_conf(pod, self.cluster_dns, _host_resolv()))
        changed = (rec.ip, rec.host_veth, rec.netns) != (ip, veth_name, paths.net)
        rec.ip, rec.host_veth = ip, veth_name
        rec.netns, rec.ipcns, rec.utsns = paths.net, paths.ipc, paths.uts
        if not rec.started_at:
            rec.started_at = _ts()
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

    # -- containers --------------------------------------------------------
    def start_container(self, pod: Obj, rec: PodRecord, spec_c: Obj) -> list[str]:
        """Create and start one container (or finish a half-done start). Returns warnings for events."""
        name = spec_c["name"]
        cr = rec.containers.setdefault(name, ContainerRecord(name))
        rid = self.runtime_id(rec.uid, name)
        state = self.runtime.state(rid)
        if state is not None:
            if state.get("status") == "created":
                self.runtime.start(rid)
                state = self.runtime.state(rid) or state
            if state.get("status") == "running":
                self._mark_running(rec, cr, int(state.get("pid") or 0))
                return []
            # stopped: left over from an earlier instance whose exit we may have recorded already
            self.runtime.delete(rid, force=True)
        try:
            image = self.images.resolve(spec_c.get("image", ""))
        except ImageNotFound as e:
            cr.reason = "ErrImagePull" if cr.reason != "ErrImagePull" else "ImagePullBackOff"
            cr.message = str(e)
            cr.image = spec_c.get("image", "")
            self.records.save(rec)
            return []
        try:
            declared = podspec.spec_env(pod, spec_c, self.node_name, self.host_ip, rec.ip, self.lookup,
                                        self.node_capacity)
        except (podspec.ConfigError, ValueError) as e:
            cr.reason, cr.message, cr.image = "CreateContainerConfigError", str(e), spec_c.get("image", "")
            self.records.save(rec)
            return []
        env = podspec.merge_env(pod, image.config.get("Env") or [], declared)
        args = podspec.container_args(spec_c, image.config, env, declared)
        if not args:
            cr.reason, cr.message = "CreateContainerError", "no command specified"
            self.records.save(rec)
            return []
        cdir = self.records.container_dir(rec.uid, name)
        self.rootfs.remove(cdir)  # a restart gets a fresh writable layer
        os.makedirs(cdir, exist_ok=True)
        root = self.rootfs.ensure(cdir, image)
        crash_point("rootfs")
        limits = podspec.container_limits(spec_c)
        etc = os.path.join(self.records.pod_dir(rec.uid), "etc")
        mounts = tuple({"destination": f"/etc/{f}", "type": "bind", "source": os.path.join(etc, f),
                        "options": ["rbind", "rprivate", "rw"]} for f in ("hosts", "hostname", "resolv.conf"))
        # as kubelet: the termination message file is a host file bind-mounted at terminationMessagePath
        term = os.path.join(cdir, "termination-log")
        with open(term, "w"):
            pass
        mounts += ({"destination": spec_c.get("terminationMessagePath") or "/dev/termination-log", "type": "bind",
                    "source": term, "options": ["rbind", "rprivate", "rw"]},)
        host_ns: tuple[str, ...] = ("network", "uts") if pod["spec"].get("hostNetwork") else ()
        cfg = oci.ContainerConfig(
            args=args, env=env, cwd=spec_c.get("workingDir") or image.config.get("WorkingDir") or "/",
            rootfs=root, mounts=mounts, netns=rec.netns, ipcns=rec.ipcns, utsns=rec.utsns,
            pidns=self._shared_pidns(pod, rec, name), host_namespaces=host_ns,
            cgroups_path=f"/{rec.cgroup}/{name}", cpu_shares=limits.cpu_shares, cpu_quota_us=limits.cpu_quota_us,
            cpu_period_us=podspec.CPU_PERIOD_US, memory_limit_bytes=limits.memory_limit_bytes)
        spec, warnings = oci.build_spec(cfg, self.limits)
        from nodeagent.runtime.runc import write_bundle
        write_bundle(cdir, spec)
        crash_point("bundle")
        log_path = self.records.log_path(rec.uid, name, cr.attempt)
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        cr.runtime_id, cr.image, cr.image_id = rid, spec_c.get("image", ""), f"sha256:{image.id}"
        cr.reason, cr.message = "ContainerCreating", ""
        self.records.save(rec)
        try:
            pid = self.runtime.create(rid, cdir, log_path=log_path, exit_file=os.path.join(cdir, "exit"),
                                      pid_file=os.path.join(cdir, "pid"))
            crash_point("runc-create")
            self.runtime.start(rid)
            crash_point("runc-start")
        except RuncError as e:
            self.runtime.delete(rid, force=True)
            cr.reason, cr.message = "RunContainerError", str(e)
            self.records.save(rec)
            return warnings
        self._mark_running(rec, cr, pid)
        return warnings

    def _shared_pidns(self, pod: Obj, rec: PodRecord, name: str) -> str | None:
        """shareProcessNamespace: join the PID namespace of the first running app container (no pause
        process here); the first one to start makes it."""
        if not pod["spec"].get("shareProcessNamespace"):
            return None
        for c in pod["spec"].get("containers") or []:
            cr = rec.containers.get(c["name"])
            if c["name"] != name and cr is not None and cr.state is ContainerState.RUNNING and cr.pid:
                path = f"/proc/{cr.pid}/ns/pid"
                if os.path.exists(path):
                    return path
        return None

    def termination_message(self, rec: PodRecord, name: str, spec_c: Obj | None) -> str:
        """The container's termination message (at most 4 KiB), or with FallbackToLogsOnError and an error
        exit, the tail of its log."""
        cr = rec.containers[name]
        try:
            with open(os.path.join(self.records.container_dir(rec.uid, name), "termination-log"),
                      errors="replace") as f:
                msg = f.read(MAX_TERMINATION_MESSAGE)
        except OSError:
            msg = ""
        if not msg and cr.exit_code and (spec_c or {}).get("terminationMessagePolicy") == "FallbackToLogsOnError":
            try:
                with open(self.records.log_path(rec.uid, name, cr.attempt), "rb") as lf:
                    lf.seek(0, os.SEEK_END)
                    lf.seek(max(0, lf.tell() - 2048))
                    msg = b"\n".join(lf.read().splitlines()[-80:]).decode(errors="replace")
            except OSError:
                msg = ""
        return msg

    def _mark_running(self, rec: PodRecord, cr: ContainerRecord, pid: int) -> None:
        if cr.state is ContainerState.RUNNING and cr.pid == pid:
            return
        cr.transition(ContainerState.RUNNING)
        cr.pid, cr.started_at, cr.reason, cr.message = pid, _ts(), "", ""
        cr.exit_code, cr.finished_at = None, ""
        self.records.save(rec)

    def check_exit(self, rec: PodRecord, name: str, spec_c: Obj | None = None) -> bool:
        """Record a running container's exit if the shim wrote one. Returns True when it exited."""
        cr = rec.containers.get(name)
        if cr is None or cr.state is not ContainerState.RUNNING:
            return False
        cdir = self.records.container_dir(rec.uid, name)
        es = self.runtime.exit_status(os.path.join(cdir, "exit"))
        if es is None:
            if self.runtime.state(cr.runtime_id) is not None:
                return False
            # the runtime lost it (host reboot, manual delete): report an unknown exit
            code, finished = 137, time.time()
        else:
            code, finished = es.code, es.finished_at_ns / 1e9
        oom = False
        if code == 137:
            try:
                oom = self.cgroups.oom_kill_count(f"{rec.cgroup}/{name}") > 0
            except (CgroupError, OSError):
                oom = False
        self.runtime.delete(cr.runtime_id, force=True)
        started = calendar.timegm(time.strptime(cr.started_at, "%Y-%m-%dT%H:%M:%SZ")) if cr.started_at else finished
        cr.transition(ContainerState.EXITED)
        cr.exit_code, cr.finished_at = code, _ts(finished)
        cr.reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
        cr.message = self.termination_message(rec, name, spec_c)
        cr.backoff_step = next_backoff_step(cr.backoff_step, finished - started)
        cr.backoff_until = finished + backoff_delay(cr.backoff_step - 1, self.backoff_base)
        self.records.save(rec)
        return True

    def prepare_restart(self, rec: PodRecord, name: str) -> None:
        from nodeagent.pod.status import terminated_state
        cr = rec.containers[name]
        cr.last_terminated = terminated_state(cr)
        cr.transition(ContainerState.WAITING)
        cr.attempt += 1
        cr.pid, cr.exit_code, cr.reason, cr.message = 0, None, "", ""
        self.records.save(rec)

    def signal_container(self, rec: PodRecord, name: str, sig: int) -> None:
        cr = rec.containers.get(name)
        if cr is not None and cr.state is ContainerState.RUNNING:
            try:
                self.runtime.kill(cr.runtime_id, sig, all=sig == signal.SIGKILL)
            except RuncError as e:
                log.debug("kill %s: %s", cr.runtime_id, e)

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
                log.debug("runc list (retrying): %s", e)
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
