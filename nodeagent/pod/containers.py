"""The container verbs of the pod host (nodeagent.pod.host): create and start
one container from its spec, record its exit, prepare a restart, signal it.
Synchronous and idempotent; each kernel step saves the record first, so a
crash at any point is finished or undone by the next sync.  The actor
(nodeagent.pod.actor) calls these from worker threads.
"""
from __future__ import annotations

import calendar
import logging
import os
import signal
import time
from typing import TYPE_CHECKING, Any

from cgroups import CgroupError
from nodeagent.pod import phases, podlog
from nodeagent.pod import spec as podspec
from nodeagent.pod.clock import rfc3339
from nodeagent.pod.record import ContainerRecord, ContainerState, PodRecord
from nodeagent.pod.backoff import IMAGE_PULL, container_restart
from nodeagent.pod.status import terminated_state
from nodeagent.runtime import oci
from nodeagent.runtime.images import ImageNotFound
from nodeagent.runtime.runc import RuncError, write_bundle

if TYPE_CHECKING:
    from nodeagent.pod.host import PodHost

log = logging.getLogger("coracle.agent.pod")
Obj = dict[str, Any]
MAX_TERMINATION_MESSAGE = 4096


def _crash_point(step: str) -> None:
    from nodeagent.pod.host import crash_point
    crash_point(step)


def start_container(host: PodHost, pod: Obj, rec: PodRecord, spec_c: Obj) -> list[str]:
    """Create and start one container (or finish a half-done start). Returns warnings for events."""
    name = spec_c["name"]
    cr = rec.containers.setdefault(name, ContainerRecord(name))
    rid = host.runtime_id(rec.uid, name)
    state = host.runtime.state(rid)
    if state is not None:
        if state.get("status") == "created":
            host.runtime.start(rid)
            state = host.runtime.state(rid) or state
        if state.get("status") == "running":
            _mark_running(host, rec, cr, int(state.get("pid") or 0))
            return []
        # stopped: left over from an earlier instance whose exit we may have recorded already
        host.runtime.delete(rid, force=True)
    try:
        image = host.images.resolve(spec_c.get("image", ""))
    except ImageNotFound as e:
        ref = spec_c.get("image", "")
        failures = cr.pull_failures + 1 if cr.image == ref else 1  # the back-off is per pod and image
        cr.reason, cr.message, cr.image = "ErrImagePull", str(e), ref
        cr.pull_failures, cr.pull_backoff_until = failures, host.clock.now() + IMAGE_PULL.delay(failures)
        host.records.save(rec)
        return []
    try:
        declared = podspec.spec_env(pod, spec_c, host.node_name, host.host_ip, rec.ip, host.lookup,
                                    host.node_capacity)
    except (podspec.ConfigError, ValueError) as e:
        cr.reason, cr.message, cr.image = "CreateContainerConfigError", str(e), spec_c.get("image", "")
        host.records.save(rec)
        return []
    env = podspec.merge_env(pod, image.config.get("Env") or [], declared)
    args = podspec.container_args(spec_c, image.config, env, declared)
    if not args:
        cr.reason, cr.message = "CreateContainerError", "no command specified"
        host.records.save(rec)
        return []
    clock = host.clock
    m = phases.mark(clock)
    cdir = host.records.container_dir(rec.uid, name)
    host.rootfs.remove(cdir)  # a restart gets a fresh writable layer
    os.makedirs(cdir, exist_ok=True)
    root = host.rootfs.ensure(cdir, image)
    phases.done(rec, "rootfs", m, clock, name)
    _crash_point("rootfs")
    m = phases.mark(clock)
    limits = podspec.container_limits(spec_c)
    etc = os.path.join(host.records.pod_dir(rec.uid), "etc")
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
        pidns=_shared_pidns(host, pod, rec, name), host_namespaces=host_ns,
        cgroups_path=f"/{rec.cgroup}/{name}", cpu_shares=limits.cpu_shares, cpu_quota_us=limits.cpu_quota_us,
        cpu_period_us=podspec.CPU_PERIOD_US, memory_limit_bytes=limits.memory_limit_bytes)
    spec, warnings = oci.build_spec(cfg, host.limits)
    write_bundle(cdir, spec)
    phases.done(rec, "bundle", m, clock, name)
    _crash_point("bundle")
    log_path = host.records.log_path(rec.uid, name, cr.attempt)
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    cr.runtime_id, cr.image, cr.image_id = rid, spec_c.get("image", ""), f"sha256:{image.id}"
    cr.reason, cr.message = "ContainerCreating", ""
    host.records.save(rec)
    try:
        m = phases.mark(clock)
        pid = host.runtime.create(rid, cdir, log_path=log_path, exit_file=os.path.join(cdir, "exit"),
                                  pid_file=os.path.join(cdir, "pid"))
        phases.done(rec, "runc-create", m, clock, name)
        _crash_point("runc-create")
        m = phases.mark(clock)
        host.runtime.start(rid)
        phases.done(rec, "runc-start", m, clock, name)  # saved with the Running record below
        _crash_point("runc-start")
    except RuncError as e:
        host.runtime.delete(rid, force=True)
        cr.reason, cr.message = "RunContainerError", str(e)
        host.records.save(rec)
        return warnings
    _mark_running(host, rec, cr, pid)
    return warnings


def _shared_pidns(host: PodHost, pod: Obj, rec: PodRecord, name: str) -> str | None:
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

def termination_message(host: PodHost, rec: PodRecord, name: str, spec_c: Obj | None) -> str:
    """The container's termination message (at most 4 KiB), or with FallbackToLogsOnError and an error
    exit, the tail of its log."""
    cr = rec.containers[name]
    try:
        with open(os.path.join(host.records.container_dir(rec.uid, name), "termination-log"),
                  errors="replace") as f:
            msg = f.read(MAX_TERMINATION_MESSAGE)
    except OSError:
        msg = ""
    if not msg and cr.exit_code and (spec_c or {}).get("terminationMessagePolicy") == "FallbackToLogsOnError":
        try:
            with open(host.records.log_path(rec.uid, name, cr.attempt), "rb") as lf:
                lf.seek(0, os.SEEK_END)
                lf.seek(max(0, lf.tell() - 2048))
                msg = b"\n".join(lf.read().splitlines()[-80:]).decode(errors="replace")
        except OSError:
            msg = ""
    return msg

def _mark_running(host: PodHost, rec: PodRecord, cr: ContainerRecord, pid: int) -> None:
    if cr.state is ContainerState.RUNNING and cr.pid == pid:
        return
    cr.transition(ContainerState.RUNNING)
    cr.pid, cr.started_at, cr.reason, cr.message = pid, rfc3339(host.clock.now()), "", ""
    cr.exit_code, cr.finished_at = None, ""
    cr.pull_failures, cr.pull_backoff_until = 0, 0.0
    host.records.save(rec)


def check_exit(host: PodHost, rec: PodRecord, name: str, spec_c: Obj | None = None) -> bool:
    """Record a running container's exit if the shim wrote one. Returns True when it exited."""
    cr = rec.containers.get(name)
    if cr is None or cr.state is not ContainerState.RUNNING:
        return False
    cdir = host.records.container_dir(rec.uid, name)
    es = host.runtime.exit_status(os.path.join(cdir, "exit"))
    if es is None:
        if host.runtime.state(cr.runtime_id) is not None:
            return False
        # the runtime lost it (host reboot, manual delete): report an unknown exit
        code, finished = 137, host.clock.now()
    else:
        code, finished = es.code, es.finished_at_ns / 1e9
    oom = False
    if code == 137:
        try:
            oom = host.cgroups.oom_kill_count(f"{rec.cgroup}/{name}") > 0
        except (CgroupError, OSError):
            oom = False
    host.runtime.delete(cr.runtime_id, force=True)
    started = calendar.timegm(time.strptime(cr.started_at, "%Y-%m-%dT%H:%M:%SZ")) if cr.started_at else host.clock.now()
    cr.transition(ContainerState.EXITED)
    cr.exit_code, cr.finished_at = code, rfc3339(finished)
    cr.reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
    podlog.for_pod(log, host.node_name, rec.uid, rec=rec).info("container %s exited with code %d (%s)", name, code,
                                                               cr.reason)
    cr.message = termination_message(host, rec, name, spec_c)
    # the back-off runs on the agent's clock from when the exit was noticed (a shim's exit time is
    # another clock's reading; it only goes into finishedAt)
    noticed = host.clock.now()
    restarts = container_restart(host.backoff_base)
    cr.backoff_step = restarts.next_count(cr.backoff_step, noticed - started)
    cr.backoff_until = noticed + restarts.delay(cr.backoff_step - 1)  # the first restart is immediate
    host.records.save(rec)
    return True

def prepare_restart(host: PodHost, rec: PodRecord, name: str) -> None:
    cr = rec.containers[name]
    cr.last_terminated = terminated_state(cr)
    cr.transition(ContainerState.WAITING)
    cr.attempt += 1
    cr.pid, cr.exit_code, cr.reason, cr.message = 0, None, "", ""
    host.records.save(rec)

def signal_container(host: PodHost, rec: PodRecord, name: str, sig: int) -> None:
    cr = rec.containers.get(name)
    if cr is not None and cr.state is ContainerState.RUNNING:
        try:
            host.runtime.kill(cr.runtime_id, sig, all=sig == signal.SIGKILL)
        except RuncError as e:
            podlog.for_pod(log, host.node_name, rec.uid, rec=rec).debug("kill %s: %s", cr.runtime_id, e)

