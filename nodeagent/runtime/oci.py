"""OCI runtime spec (config.json) for one container of a pod: a pure builder.

The pod worker turns a pod's container into a `ContainerConfig`; `build_spec`
turns that into the dict runc reads from the bundle (nodeagent.runtime.runc).  The
sandbox driver owns the net/ipc/uts namespaces the config joins by path; the
cgroups driver owns the pod cgroup the `cgroups_path` sits under.

Defaults follow runc's `spec` and containerd's: Docker's capability set, masked
and read-only /proc and /sys paths, no_new_privs, the standard mounts.  Things
this host forbids (MACHINE.md: no CAP_SYS_RESOURCE) are clamped to the agent's
own limits and reported as warnings for the pod's events.
"""
from __future__ import annotations

import copy
import resource
from dataclasses import dataclass

OCI_VERSION = "1.0.2"

# containerd's (and Docker's) default capability set
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

# runc spec's defaults
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

STANDARD_MOUNTS: tuple[dict, ...] = (
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
)


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    args: list[str]
    env: list[str]
    cwd: str = "/"
    hostname: str = ""
    rootfs: str = "rootfs"
    readonly_rootfs: bool = False
    mounts: tuple[dict, ...] = ()  # extra OCI mounts (volumes, /etc/hosts, resolv.conf, hostname)
    netns: str | None = None  # namespace paths to join; None = a new namespace
    pidns: str | None = None  # shareProcessNamespace: the first container's /proc/<pid>/ns/pid
    host_namespaces: tuple[str, ...] = ()  # kinds left out entirely, i.e. the host's ("network", "uts")
    ipcns: str | None = None
    utsns: str | None = None
    cgroups_path: str = ""  # e.g. "/coracle/burstable/pod<uid>/<container>"
    cpu_shares: int | None = None
    cpu_quota_us: int | None = None
    cpu_period_us: int = 100000
    memory_limit_bytes: int | None = None
    pids_limit: int | None = None
    oom_score_adj: int | None = None
    uid: int = 0
    gid: int = 0
    nofile_limit: int = 1048576
    max_nofile: int | None = None  # clamp further, below the agent's own hard limit
    tty: bool = False


@dataclass(frozen=True, slots=True)
class AgentLimits:
    """What the agent itself may not exceed without CAP_SYS_RESOURCE."""

    nofile_hard: int
    oom_score_adj: int

    @classmethod
    def current(cls) -> AgentLimits:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        try:
            with open("/proc/self/oom_score_adj") as f:
                adj = int(f.read().strip())
        except (OSError, ValueError):
            adj = 0
        return cls(nofile_hard=hard if hard != resource.RLIM_INFINITY else 1 << 20, oom_score_adj=adj)


def _namespaces(c: ContainerConfig) -> list[dict]:
    ns: list[dict] = [{"type": "mount"}]
    for kind, path in (("pid", c.pidns), ("network", c.netns), ("ipc", c.ipcns), ("uts", c.utsns)):
        if kind not in c.host_namespaces:
            ns.append({"type": kind, "path": path} if path else {"type": kind})
    return ns


def _resources(c: ContainerConfig) -> dict:
    res: dict = {"devices": [{"allow": False, "access": "rwm"}]}
    cpu: dict = {}
    if c.cpu_shares is not None:
        cpu["shares"] = c.cpu_shares
    if c.cpu_quota_us is not None:
        cpu["quota"] = c.cpu_quota_us
        cpu["period"] = c.cpu_period_us
    if cpu:
        res["cpu"] = cpu
    if c.memory_limit_bytes is not None:
        res["memory"] = {"limit": c.memory_limit_bytes}
    if c.pids_limit is not None:
        res["pids"] = {"limit": c.pids_limit}
    return res


def build_spec(c: ContainerConfig, limits: AgentLimits | None = None) -> tuple[dict, list[str]]:
    """The config.json dict for `c`, and the clamps made (one line each, for the pod's events).

    Pure apart from reading the agent's own limits when `limits` is None.
    """
    limits = limits or AgentLimits.current()
    warnings: list[str] = []

    nofile = c.nofile_limit
    cap = limits.nofile_hard if c.max_nofile is None else min(limits.nofile_hard, c.max_nofile)
    if nofile > cap:
        warnings.append(f"RLIMIT_NOFILE {nofile} clamped to {cap} (the agent's hard limit; "
                        "raising it needs CAP_SYS_RESOURCE)")
        nofile = cap

    process: dict = {
        "terminal": c.tty,
        "user": {"uid": c.uid, "gid": c.gid},
        "args": list(c.args),
        "env": list(c.env),
        "cwd": c.cwd or "/",
        "capabilities": {k: list(DEFAULT_CAPABILITIES) for k in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
        "noNewPrivileges": True,
    }
    if c.oom_score_adj is not None:
        adj = c.oom_score_adj
        if adj < limits.oom_score_adj:
            warnings.append(f"oomScoreAdj {adj} raised to {limits.oom_score_adj} (the agent's own; "
                            "lowering it needs CAP_SYS_RESOURCE)")
            adj = limits.oom_score_adj
        process["oomScoreAdj"] = adj

    spec: dict = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": c.rootfs, "readonly": c.readonly_rootfs},
        "mounts": copy.deepcopy(list(STANDARD_MOUNTS) + list(c.mounts)),
        "linux": {
            "namespaces": _namespaces(c),
            "resources": _resources(c),
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }
    # runc refuses a hostname without a private UTS namespace; a joined one
    # already carries the pod's hostname (set by the sandbox driver).
    if c.hostname and c.utsns is None and "uts" not in c.host_namespaces:
        spec["hostname"] = c.hostname
    if c.cgroups_path:
        spec["linux"]["cgroupsPath"] = c.cgroups_path
    return spec, warnings
